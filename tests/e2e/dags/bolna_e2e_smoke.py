"""Smoke DAG of the end-to-end suite (bundle ``e2e-smoke``): proves the stack itself works.

``hello`` (a plain task on the LocalExecutor) → ``wait_deferred`` (defers to a 15-second
``TimeDeltaTrigger``, so the triggerer must pick it up) — independent of the project's DAGs.

15 s, not 3: on a loaded machine the LocalExecutor reported the deferral's "success" 6 s late,
after a 3 s trigger had already re-queued the task, and Airflow 3.3's scheduler then marks the
task failed ("task state changed externally"). That race is Airflow's, not the stack's.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.python import PythonOperator
from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import DAG, BaseOperator


def _hello(**context):
    print(f"e2e smoke says hello, conf={context['dag_run'].conf!r}")
    return "hello"


class DeferOnceOperator(BaseOperator):
    """Always defers once to a time trigger, then succeeds."""

    def execute(self, context):
        self.log.info("deferring to the triggerer")
        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=15)), method_name="resume")

    def resume(self, context, event=None):
        self.log.info("resumed after the trigger fired: %s", event)
        return "resumed"


with DAG(dag_id="bolna_e2e_smoke", schedule=None, catchup=False, tags=["e2e"]) as dag:
    PythonOperator(task_id="hello", python_callable=_hello) >> DeferOnceOperator(task_id="wait_deferred")
