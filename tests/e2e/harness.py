"""Pieces of the end-to-end environment, shared by the pytest fixtures and ``serve``.

``python -m tests.e2e.harness [--output DIR] [--customers N]`` starts the same environment as
the test session (sandbox, seeded customers DB, Airflow on PostgreSQL) and keeps it running
until Ctrl-C, printing the UI URL and the login — handy to click around or debug a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.e2e.stack import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    AirflowREST,
    AirflowStack,
    PostgresDatabase,
    sqlalchemy_uri,
)

E2E_DIR = Path(__file__).resolve().parent
REPO = E2E_DIR.parents[1]
#: Dashboard root put in the ``bolna_default`` connection: extra links must be built on it.
DASHBOARD_URL = "https://dashboard.bolna-e2e.example"
#: Seconds a new phone number stays invisible in the sandbox: makes the sensors really defer.
NUMBER_VISIBILITY_DELAY_S = 20.0
#: Pool the provisioning tasks run in (the DAGs' docs say to create it once).
POOL = "bolna_api"
POOL_SLOTS = 2
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5433/bolna_test"


def dag_bundles() -> list[dict[str, Any]]:
    """The project's ``dags/`` (``[core] dags_folder``) plus this suite's smoke DAG."""
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    return [
        {"name": "dags-folder", "classpath": local, "kwargs": {}},
        {"name": "e2e-smoke", "classpath": local, "kwargs": {"path": str(E2E_DIR / "dags")}},
    ]


def bolna_conn_json(sandbox: Any, api_key: str | None = None) -> str:
    """``AIRFLOW_CONN_BOLNA_DEFAULT`` for the sandbox, with the dashboard URL the link uses."""
    conn = json.loads(sandbox.airflow_conn_json(dashboard_url=DASHBOARD_URL, timeout=10, max_retries=3))
    if api_key is not None:
        conn["password"] = api_key
    return json.dumps(conn)


def customers_conn_json(path: Path) -> str:
    """``AIRFLOW_CONN_BOLNA_CUSTOMERS``: the SQLite customer DB (common-sql / SqliteHook)."""
    return json.dumps({"conn_type": "sqlite", "host": str(path)})


def seed_customers(path: Path, count: int, log_path: Path | None = None) -> Path:
    """Seed ``count`` customers with ``scripts/seed_customers.py`` (the library helper if absent)."""
    script = REPO / "scripts" / "seed_customers.py"
    if script.exists():
        proc = subprocess.run(
            [sys.executable, str(script), "--db", str(path), "--count", str(count)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
        )
        if log_path is not None:
            log_path.write_text(proc.stdout)
        if proc.returncode != 0:
            raise RuntimeError(f"seed_customers.py exited {proc.returncode}:\n{proc.stdout[-3000:]}")
    else:
        from airflow_provider_bolna.sandbox.seed import seed_sqlite

        seed_sqlite(path, count)
        if log_path is not None:
            log_path.write_text(
                f"seeded {count} customers with seed_sqlite() (scripts/seed_customers.py missing)\n"
            )
    return path


#: The provisioning page's deployments (``[bolna] ui_deployments``): the repository's DAGs.
UI_DEPLOYMENTS = [
    {
        "dag_id": "bolna_bulk_provision",
        "signup_dag_id": "bolna_customer_signup",
        "scope": "bolna",
        "state_conn_id": "bolna_customers",
        "state_table": "bolna_provisioning_state",
    }
]


def airflow_env(sandbox: Any, customers_db: Path | None) -> dict[str, str]:
    """Connections, bundles and the provisioning page's deployments every Airflow service gets."""
    env = {
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(dag_bundles()),
        "AIRFLOW__BOLNA__UI_DEPLOYMENTS": json.dumps(UI_DEPLOYMENTS),
        "AIRFLOW_CONN_BOLNA_DEFAULT": bolna_conn_json(sandbox),
        # example_bolna_sip_trunk reads the carrier's SIP password from this connection
        "AIRFLOW_CONN_BOLNA_EXAMPLE_CARRIER": json.dumps(
            {"conn_type": "generic", "password": "e2e-sip-secret"}
        ),
    }
    if customers_db is not None:
        env["AIRFLOW_CONN_BOLNA_CUSTOMERS"] = customers_conn_json(customers_db)
    return env


def ensure_pool(rest: AirflowREST, name: str = POOL, slots: int = POOL_SLOTS) -> None:
    """Create the provisioning pool through the REST API (as an operator would, once)."""
    response = rest.http.get(f"/pools/{name}")
    if response.status_code == 200:
        return
    rest.request(
        "POST", "/pools", expect=201, json={"name": name, "slots": slots, "description": "Bolna API (e2e)"}
    )


def new_sandbox(output: Path) -> Any:
    """A (not yet started) sandbox whose DB and log live in ``output``."""
    from airflow_provider_bolna.sandbox.testing import SandboxServer

    server = SandboxServer(
        output / "sandbox.db", log_level="info", number_visibility_delay_s=NUMBER_VISIBILITY_DELAY_S
    )
    server.log_path = output / "logs" / "sandbox.log"
    return server


def new_stack(output: Path, db_uri: str, env: dict[str, str]) -> AirflowStack:
    """The Airflow stack (not started) with its home and logs under ``output``."""
    return AirflowStack(
        home=output / "airflow_home",
        dags_folder=REPO / "dags",
        db_uri=sqlalchemy_uri(db_uri),
        log_dir=output / "logs",
        extra_env=env,
    )


def main(argv: list[str] | None = None) -> None:
    """Serve the e2e environment until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.harness", description=__doc__)
    parser.add_argument("--output", type=Path, default=E2E_DIR / "output" / "serve")
    parser.add_argument("--customers", type=int, default=24)
    args = parser.parse_args(argv)
    output = args.output.resolve()
    shutil.rmtree(output, ignore_errors=True)
    (output / "logs").mkdir(parents=True)
    server_uri = os.environ.get("BOLNA_TEST_POSTGRES_URI", DEFAULT_POSTGRES)
    database = PostgresDatabase(server_uri, f"airflow_e2e_serve_{os.getpid()}").create()
    sandbox = new_sandbox(output).start()
    customers = seed_customers(
        output / "customers.db", args.customers, output / "logs" / "seed-customers.log"
    )
    stack = new_stack(output, database.uri, airflow_env(sandbox, customers))
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        stack.stop()
        sandbox.stop()
        database.drop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        stack.migrate()
        stack.start()
        rest = AirflowREST(stack.url)
        ensure_pool(rest)
        print(
            f"Airflow UI  {stack.url}  (user {ADMIN_USER!r}, password {ADMIN_PASSWORD!r})\n"
            f"sandbox     {sandbox.url}  (key {sandbox.api_key!r})\n"
            f"logs        {output / 'logs'}\nCtrl-C to stop.",
            flush=True,
        )
        (output / "urls.json").write_text(json.dumps({"airflow": stack.url, "sandbox": sandbox.url}))
        while True:
            time.sleep(2)
            stack.check_alive()
    finally:
        stop()


if __name__ == "__main__":
    main()
