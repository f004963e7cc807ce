"""Run the real ``airflow`` CLI (``dags test``, ``db migrate``...) from tests, in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from airflow_provider_bolna.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS

#: Airflow 3.0's in-process ``dags test`` supervisor logs every message of the task at DEBUG to
#: stdout, unfiltered: its ``MaskSecret(value=...)`` requests print the very values to mask
#: (upstream; 3.1+ does not, and a real 3.0 worker sends them over a socket, unlogged).
DAGS_TEST_PRINTS_MASKED_VALUES = AIRFLOW_V_3_0_PLUS and not AIRFLOW_V_3_1_PLUS
_MASK_REQUEST = re.compile(r"\bSending request\s+msg=MaskSecret\(")


def scannable(stdout: str) -> str:
    """``airflow dags test`` output as a leak check reads it: all of it, except on Airflow 3.0
    the supervisor's DEBUG lines of ``MaskSecret`` requests (:data:`DAGS_TEST_PRINTS_MASKED_VALUES`).

    :param stdout: the command's output.
    """
    if not DAGS_TEST_PRINTS_MASKED_VALUES:
        return stdout
    return "\n".join(line for line in stdout.splitlines() if not _MASK_REQUEST.search(line))


@dataclass
class AirflowCLI:
    """The ``airflow`` command bound to one AIRFLOW_HOME and DAGs folder.

    :param airflow_home: AIRFLOW_HOME (holds the SQLite metadata DB and task logs).
    :param dags_folder: the DAG bundle folder.
    :param env: extra environment for every command (connections as ``AIRFLOW_CONN_*``...).
    """

    airflow_home: Path
    dags_folder: Path
    env: dict[str, str] = field(default_factory=dict)

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment a command runs with."""
        env = dict(os.environ)
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.airflow_home}/airflow.db",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.env)
        env.update(extra or {})
        return env

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``airflow ARGS`` and return the completed process (stdout+stderr in ``.stdout``)."""
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.environ(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-6000:]}")
        return proc

    def migrate(self) -> None:
        """Create or upgrade the metadata DB."""
        self.run("db", "migrate", timeout=300)

    def dags_test(
        self,
        dag_id: str,
        conf: dict | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """``airflow dags test DAG_ID [-c CONF]``: run every task of one DAG run in-process."""
        import json

        args = ["dags", "test", dag_id]
        if conf is not None:
            args += ["-c", json.dumps(conf)]
        return self.run(*args, env=env, check=check, timeout=timeout)
