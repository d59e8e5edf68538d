"""The WalkMe DAGs the deployment test triggers over the REST API (tests/deployment/test_production_shape.py).

``segments_deployment_pipeline``: sync the ids of a file into a segment, wait out a 20-second
propagation window in the triggerer (deferred), then run a downstream task.
``segments_deployment_kill_retry``: the same sync alone, with one retry; the test kills its first try
while the sandbox holds a write and checks that the retry leaves the segment exact.

The connection the test gives both has ``connect_timeout`` 2 s and ``timeout`` (read, and the deadline
of one attempt) 10 s, so a request of a killed try can be in flight for at most about 13 s: the retry
starts 15 s later, when none can still land (see docs/deploying.md).

``segments_deployment_stale_write``: the pipeline again; the test overrides the segment while the
sensor waits, as a killed try's late write would, and the gate must stop the content task.

``SEGMENTS_DEPLOYMENT_SABOTAGE`` breaks the DAG on purpose, to show the test catches it:
``non_deferrable`` makes the sensor poke instead of deferring; ``log_secret`` makes the downstream task
fetch a WalkMe token on its own and print it; ``no_gate`` drops the sensor's ``expected_user_count``.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_segments.operators.walkme import WalkMeSyncSegmentOperator
from airflow_provider_segments.sensors.walkme import WalkMeSegmentPropagationSensor

SABOTAGE = os.environ.get("SEGMENTS_DEPLOYMENT_SABOTAGE", "")
PROPAGATION = timedelta(seconds=20)
RETRY_DELAY = timedelta(seconds=15)  # > connect 2 s + read 10 s + the deadline's grace 1 s
START = pendulum.datetime(2026, 1, 1, tz="UTC")
PARAMS = {"segment_name": "", "ids_path": "", "state_path": "", "system_guid": ""}


def sync_task() -> WalkMeSyncSegmentOperator:
    return WalkMeSyncSegmentOperator(
        task_id="sync_segment",
        name="{{ params.segment_name }}",
        user_ids_path="{{ params.ids_path }}",
        state_path="{{ params.state_path }}",
        system_guid="{{ params.system_guid }}",
        retries=1,
        retry_delay=RETRY_DELAY,
    )


def gated_pipeline(dag_id: str, description: str) -> DAG:
    """sync -> deferred propagation sensor gating on the synced count -> the content task."""
    with DAG(
        dag_id=dag_id,
        description=description,
        schedule=None,
        start_date=START,
        catchup=False,
        max_active_runs=1,  # two syncs with one state_path must not interleave
        params=PARAMS,
        tags=["segments", "deployment-test"],
    ) as dag:
        sync = sync_task()
        wait = WalkMeSegmentPropagationSensor(
            task_id="wait_for_propagation",
            segment_guid="{{ ti.xcom_pull(task_ids='sync_segment')['segment_guid'] }}",
            changed_at="{{ ti.xcom_pull(task_ids='sync_segment')['changed_at'] }}",
            system_guid="{{ params.system_guid }}",
            propagation_window=PROPAGATION,
            deferrable=SABOTAGE != "non_deferrable",
            # Only for non_deferrable: Airflow 3.2-3.3 can fail a reschedule-mode sensor whose next poke
            # is queued before the executor's report of the previous one arrives (apache/airflow#71172).
            poke_interval=30,
            timeout=300,
            **(
                {}
                if SABOTAGE == "no_gate"
                else {"expected_user_count": "{{ ti.xcom_pull(task_ids='sync_segment')['user_count'] }}"}
            ),
        )
        sync >> wait >> publish_content(sync.output)
    return dag


@task
def publish_content(synced: dict) -> dict:
    """Stands in for the content that may only go live after the window."""
    if SABOTAGE == "log_secret":  # a bug that fetches a token the masker never heard of, and logs it
        import requests
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection("walkme_default")
        answer = requests.post(
            f"{conn.host}/accounts/connect/token",
            data={"grant_type": "client_credentials"},
            auth=(conn.login, conn.password),
            timeout=10,
        )
        print(f"debugging the token: {answer.json()['access_token']}")
    return {"segment_guid": synced["segment_guid"], "user_count": synced["user_count"]}


pipeline = gated_pipeline(
    "segments_deployment_pipeline",
    "Deployment test: ids file -> sync -> deferred propagation sensor -> downstream task",
)
# The same pipeline; the test changes the segment behind its back while the sensor waits (a stale
# write landing late): the gate must fail and the content task must not run.
stale_write = gated_pipeline(
    "segments_deployment_stale_write",
    "Deployment test: a write lands during the propagation window; the gate stops the content",
)

with DAG(
    dag_id="segments_deployment_kill_retry",
    description="Deployment test: a sync whose first try is killed mid-write, then retried",
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    tags=["segments", "deployment-test"],
) as kill_retry:
    sync_task()
