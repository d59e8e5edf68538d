"""The DAGs the Celery deployment test triggers (tests/deployment/test_celery_workers.py).

Each exports ids to object storage (``s3://<conn_id>@<bucket>/...``, an S3-compatible server the test
starts) and syncs them into a WalkMe segment with ``state_path`` in the same bucket. Only the URI goes
through XCom. Two Celery workers each consume the shared ``default`` queue and one of their own
(``worker_a``, ``worker_b``), so a DAG can pin a task to a worker:

``segments_celery_export_a_sync_b`` / ``segments_celery_export_b_sync_a``: export on one worker, sync on
the other; both sync the same segment with the same ``state_path``, so runs that alternate between the
two DAGs alternate the sync between the workers, each reading the snapshot the other one wrote.
``segments_celery_kill``: export on ``worker_a``, sync on the shared queue with one retry; the test
SIGKILLs the whole worker that runs the sync while the sandbox holds its create, and the retry runs
on the other worker.

Params: ``segment_name``, ``system_guid``, ``first``/``count`` (the ids are ``<prefix><n>`` for ``n``
in ``first .. first + count - 1``), ``prefix``, ``state_key`` (the snapshot's key in the bucket).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, ObjectStoragePath, get_current_context, task

from airflow_provider_segments.operators.walkme import WalkMeSyncSegmentOperator

#: The Airflow connection to the S3-compatible server, named in every URI (``s3://<conn_id>@...``).
S3_CONN_ID = "segments_s3"
BUCKET = os.environ.get("SEGMENTS_CELERY_BUCKET", "segments-deployment")
# > connect 2 s + read 10 s + the deadline's grace 1 s: no request of a killed try lands after it.
RETRY_DELAY = timedelta(seconds=15)
START = pendulum.datetime(2026, 1, 1, tz="UTC")
PARAMS = {"segment_name": "", "system_guid": "", "first": 0, "count": 0, "prefix": "", "state_key": ""}


@task
def export_ids() -> str:
    """Write this run's ids to the bucket and return the URI (with its connection id), not the ids."""
    context = get_current_context()
    params = context["params"]
    first, count = int(params["first"]), int(params["count"])
    target = ObjectStoragePath(f"s3://{S3_CONN_ID}@{BUCKET}/ids/{context['run_id']}/ids.txt")
    target.write_text("".join(f"{params['prefix']}{n:06d}\n" for n in range(first, first + count)))
    return str(target)


def sync_segment(queue: str, retries: int = 0) -> WalkMeSyncSegmentOperator:
    return WalkMeSyncSegmentOperator(
        task_id="sync_segment",
        name="{{ params.segment_name }}",
        system_guid="{{ params.system_guid }}",
        user_ids_path="{{ ti.xcom_pull(task_ids='export_ids') }}",
        state_path=f"s3://{S3_CONN_ID}@{BUCKET}/state/{{{{ params.state_key }}}}.snapshot",
        queue=queue,
        retries=retries,
        retry_delay=RETRY_DELAY,
    )


def export_then_sync(dag_id: str, export_queue: str, sync_queue: str, retries: int = 0) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        max_active_runs=1,  # two syncs with one state_path must not interleave
        params=PARAMS,
        tags=["segments", "deployment-test"],
    ) as dag:
        export_ids.override(queue=export_queue)() >> sync_segment(sync_queue, retries)
    return dag


export_a_sync_b = export_then_sync("segments_celery_export_a_sync_b", "worker_a", "worker_b")
export_b_sync_a = export_then_sync("segments_celery_export_b_sync_a", "worker_b", "worker_a")
kill = export_then_sync("segments_celery_kill", "worker_a", "default", retries=1)
