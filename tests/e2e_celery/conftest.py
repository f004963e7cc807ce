"""Fixtures of the Celery end-to-end run (``make e2e-celery``), package-scoped, torn down at the end.

* ``celery_output`` — ``tests/e2e_celery/output/`` (or ``$BOLNA_E2E_CELERY_OUTPUT``), emptied
  at start: ``logs/`` (each service, each worker, redis, the sandbox), ``airflow_home/``
  (task logs), ``figures.json`` (what the runs measured);
* ``celery_db`` — a PostgreSQL database ``airflow_celery_<pid>`` on ``$BOLNA_TEST_POSTGRES_URI``'s
  server: Airflow's metadata, Celery's result backend, the ``customers`` table and the
  provider's tables (workers on several machines share no SQLite file). The runs use the DAG's
  default query and state table, so their conf holds only what any trigger may set;
* ``redis`` — Debian's ``redis-server`` on a free loopback port (the broker);
* ``rate_sandbox`` — the Bolna sandbox limited to :data:`RATE` requests a minute (latency
  :data:`LATENCY_MS`, ``$BOLNA_E2E_CELERY_LATENCY_MS``);
* ``celery_stack`` — scheduler, api-server, dag-processor, triggerer and two Celery workers of two
  slots each; ``celery_rest`` — its REST client, with pool ``bolna_api`` of four slots.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import harness
from tests.e2e.stack import AirflowREST, PostgresDatabase, sqlalchemy_uri
from tests.e2e_celery.stack import CeleryStack, RedisServer, redis_server_path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
#: The account's budget, requests per minute, enforced by the sandbox (429 above it).
RATE = 1000
#: Seeded customers (one create request each: numbers go inline).
CUSTOMERS = int(os.environ.get("BOLNA_E2E_CELERY_CUSTOMERS", "3000"))
#: The sandbox's latency per request (0 by default; e.g. 1000 to check the in-flight sizing).
LATENCY_MS = float(os.environ.get("BOLNA_E2E_CELERY_LATENCY_MS", "0"))
WORKERS, WORKER_SLOTS = 2, 2
#: Figures of every scenario, written to ``figures.json`` and printed at the end.
FIGURES: dict[str, Any] = {}


def _require(reason: str) -> None:
    """Skip — or fail when ``BOLNA_REQUIRE_E2E=1`` (CI must not skip silently)."""
    if os.environ.get("BOLNA_REQUIRE_E2E") == "1":
        pytest.fail(f"{reason} (BOLNA_REQUIRE_E2E=1)")
    pytest.skip(reason)


@pytest.fixture(scope="package")
def celery_output() -> Path:
    """The output folder (emptied first)."""
    if not os.environ.get("BOLNA_TEST_POSTGRES_URI"):
        _require("no PostgreSQL: `eval $(make -s postgres)` exports BOLNA_TEST_POSTGRES_URI")
    for module, why in (("celery", "apache-airflow-providers-celery"), ("redis", "the redis client")):
        try:
            __import__(module)
        except ImportError:
            _require(f"{why} missing: run `bash scripts/e2e-celery-setup.sh`")
    if redis_server_path() is None:
        _require("redis-server missing: run `bash scripts/e2e-celery-setup.sh`")
    out = Path(os.environ.get("BOLNA_E2E_CELERY_OUTPUT", HERE / "output")).resolve()
    if out.exists():
        shutil.rmtree(out)
    (out / "logs").mkdir(parents=True)
    return out


@pytest.fixture(scope="package")
def celery_db(celery_output: Path) -> Iterator[PostgresDatabase]:
    """An empty PostgreSQL database, dropped at the end."""
    database = PostgresDatabase(os.environ["BOLNA_TEST_POSTGRES_URI"], f"airflow_celery_{os.getpid()}")
    try:
        database.create()
    except Exception as error:  # noqa: BLE001 - anything here means "no usable server"
        _require(f"cannot create a database on the PostgreSQL server: {error}")
    yield database
    try:
        database.drop()
    except Exception as error:  # noqa: BLE001 - teardown must not hide the test result
        print(f"e2e-celery: could not drop {database.name}: {error}", file=sys.stderr)


def database_sql(database: PostgresDatabase, sql: str) -> list[tuple[Any, ...]]:
    """Run one statement on ``database`` (autocommit) and return its rows."""
    import psycopg

    with psycopg.connect(database.uri, autocommit=True) as conn:
        cur = conn.execute(sql)
        return [tuple(row) for row in cur.fetchall()] if cur.description else []


def drop_provider_tables(database: PostgresDatabase) -> list[str]:
    """Drop the provider's tables (``bolna_*``: state, budget, ...): the next run starts afresh."""
    tables = [
        row[0]
        for row in database_sql(
            database,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'bolna\\_%'",
        )
    ]
    for table in tables:
        database_sql(database, f'DROP TABLE IF EXISTS "{table}" CASCADE')
    return tables


@pytest.fixture(scope="package")
def redis(celery_output: Path) -> Iterator[RedisServer]:
    server = RedisServer(celery_output / "redis", celery_output / "logs" / "redis.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def rate_sandbox(celery_output: Path) -> Iterator[Any]:
    """The sandbox at R = :data:`RATE`/min (token bucket of one second), log in the output."""
    from airflow_provider_bolna.sandbox.testing import SandboxServer

    server = SandboxServer(
        celery_output / "sandbox.db", log_level="warning", rate_limit_per_min=RATE, latency_ms=LATENCY_MS
    )
    server.log_path = celery_output / "logs" / "sandbox.log"
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def customers(celery_db: PostgresDatabase, celery_output: Path) -> str:
    """``customers`` seeded with :data:`CUSTOMERS` rows; returns the table name."""
    table = "customers"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "seed_customers.py"),
            "--postgres",
            celery_db.uri,
            "--table",
            table,
            "--count",
            str(CUSTOMERS),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )
    (celery_output / "logs" / "seed-customers.log").write_text(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return table


def bolna_conn(sandbox: Any) -> str:
    """``bolna_default``: the sandbox, the account's budget as the connection's rate budget."""
    conn = json.loads(harness.bolna_conn_json(sandbox))
    conn["extra"]["requests_per_minute"] = RATE
    return json.dumps(conn)


@pytest.fixture(scope="package")
def celery_stack(
    celery_output: Path, celery_db: PostgresDatabase, redis: RedisServer, rate_sandbox: Any, customers: str
) -> Iterator[CeleryStack]:
    env = harness.airflow_env(rate_sandbox, None)
    env["AIRFLOW_CONN_BOLNA_DEFAULT"] = bolna_conn(rate_sandbox)
    env["AIRFLOW_CONN_BOLNA_CUSTOMERS"] = celery_db.uri  # PostgresHook: customers and state
    stack = CeleryStack(
        home=celery_output / "airflow_home",
        dags_folder=REPO / "dags",
        db_uri=sqlalchemy_uri(celery_db.uri),
        log_dir=celery_output / "logs",
        extra_env=env,
        broker_url=redis.url,
        workers=WORKERS,
        worker_slots=WORKER_SLOTS,
    )
    try:
        stack.migrate()
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="package")
def celery_rest(celery_stack: CeleryStack) -> Iterator[AirflowREST]:
    client = AirflowREST(celery_stack.url)
    harness.ensure_pool(client, slots=WORKERS * WORKER_SLOTS)
    client.wait_for_dag("bolna_bulk_provision", timeout=180)
    client.unpause("bolna_bulk_provision")
    yield client
    client.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures of the runs (and where the logs are)."""
    if not FIGURES:
        return
    terminalreporter.section("bolna e2e-celery")
    for name, figures in FIGURES.items():
        terminalreporter.write_line(f"{name}: {json.dumps(figures, default=str)}")
    out = Path(os.environ.get("BOLNA_E2E_CELERY_OUTPUT", HERE / "output")).resolve()
    terminalreporter.write_line(f"logs: {out / 'logs'}   figures: {out / 'figures.json'}")
