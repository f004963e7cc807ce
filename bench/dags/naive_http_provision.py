"""The DAG a user would write with apache-airflow-providers-http alone (benchmark peer).

One task reads every customer; one mapped ``HttpOperator`` POSTs a trunk per customer
(``response_filter`` keeps the new trunk's id); a small task pairs ids with numbers; one mapped
``HttpOperator`` POSTs each number. No state table, no idempotency, no rate budget, secrets in
XCom: this is the baseline, not a recommendation.

Needs ``[core] max_map_length`` above the number of customers and of numbers (default 1024:
``AIRFLOW__CORE__MAX_MAP_LENGTH``). Connections: ``bolna_customers`` (SQLite) and
``bolna_http`` (HTTP: host, port, and the ``Authorization`` header in the extra).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from airflow.providers.http.operators.http import HttpOperator
from airflow.sdk import dag, task


@dag(
    dag_id="naive_http_provision",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["bench"],
)
def naive_http_provision() -> None:
    @task
    def read_customers() -> list[dict[str, Any]]:
        from airflow.providers.sqlite.hooks.sqlite import SqliteHook

        from bench.naive_body import numbers_of, trunk_body

        hook = SqliteHook(sqlite_conn_id="bolna_customers")
        conn = hook.get_conn()
        cur = conn.cursor()
        cur.execute("SELECT * FROM customers ORDER BY customer_id")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        conn.close()
        return [
            {"data": json.dumps(trunk_body(row, inline_numbers=False)), "numbers": numbers_of(row)}
            for row in rows
        ]

    customers = read_customers()

    create_trunk = HttpOperator.partial(
        task_id="create_trunk",
        http_conn_id="bolna_http",
        method="POST",
        endpoint="/sip-trunks/trunks",
        headers={"Content-Type": "application/json"},
        response_filter=lambda response: response.json()["id"],
    ).expand(data=customers.map(lambda c: c["data"]))

    @task
    def number_requests(ids: Any, customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = [ids[i] for i in range(len(ids))]
        return [
            {
                "endpoint": f"/sip-trunks/trunks/{trunk_id}/numbers",
                "data": json.dumps({"phone_number": number}),
            }
            for trunk_id, customer in zip(ids, customers)
            for number in customer["numbers"]
        ]

    HttpOperator.partial(
        task_id="add_number",
        http_conn_id="bolna_http",
        method="POST",
        headers={"Content-Type": "application/json"},
    ).expand_kwargs(number_requests(create_trunk.output, customers))


naive_http_provision()
