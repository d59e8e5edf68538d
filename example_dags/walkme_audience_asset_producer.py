"""Producer of a data-aware pipeline: sync a WalkMe segment, and announce it once WalkMe can use it.

1. ``export_audience`` writes the audience to a file, one id per line (a stand-in for a warehouse
   export such as ``walkme_audience_from_warehouse``); only the file's path goes through XCom.
2. ``sync_segment`` makes the WalkMe segment hold exactly those ids (created on the first run, then
   only the difference since the last sync).
3. ``wait_for_propagation`` waits out WalkMe's propagation window, then its outlet, the segment's
   asset, gets an event whose ``extra`` says ``user_count``, ``mode`` and ``changed_at``. Only this
   gate names the asset: content must not react to the sync, only to a segment WalkMe can use.

``walkme_audience_content`` is scheduled on the same asset and runs after each event. The segment
is named by name (``walkme-segment://<system>/name/<name>``) because its GUID exists only once the
first run created it; both DAGs build the asset with the same helper and values.

Connection: ``walkme_default``. The system GUID comes from ``SEGMENTS_EXAMPLE_WALKME_SYSTEM_GUID``
(the asset must name it when the DAG is parsed, before any connection is read). The id files and
the snapshot go under ``SEGMENTS_EXAMPLE_DATA_DIR``: a local folder by default, object storage such
as ``s3://aws_default@my-bucket/segments`` when the tasks may run on different workers.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, ObjectStoragePath, task

from airflow_provider_segments.assets import walkme_segment_asset
from airflow_provider_segments.operators.walkme import WalkMeSyncSegmentOperator
from airflow_provider_segments.sensors.walkme import WalkMeSegmentPropagationSensor

SYSTEM_GUID = os.environ.get("SEGMENTS_EXAMPLE_WALKME_SYSTEM_GUID", "5f2b9c1e8d7a4b3c9e6f1a2d3c4b5a69")
SEGMENT_NAME = "Active enterprise users"
#: The asset both DAGs name: walkme-segment://<system>/name/Active%20enterprise%20users
AUDIENCE_SEGMENT = walkme_segment_asset(SYSTEM_GUID, SEGMENT_NAME)

PROPAGATION = timedelta(seconds=int(os.environ.get("SEGMENTS_DEMO_PROPAGATION_SECONDS", "600")))

#: Where the example's files and snapshot live, as text: a local folder by default, or a URI of
#: Airflow's object storage such as ``s3://aws_default@my-bucket/segments`` (the connection id before
#: the ``@``). Only such strings go to XCom and ``state_path``, so any worker of any executor finds them.
DATA_URI = os.environ.get("SEGMENTS_EXAMPLE_DATA_DIR") or os.path.join(
    tempfile.gettempdir(), "segments-example"
)


def data_uri(*parts: str) -> str:
    """A location under ``DATA_URI``, joined as text: ``pathlib`` would turn ``s3://b/x`` into ``s3:/b/x``."""
    return "/".join([DATA_URI.rstrip("/"), *parts])


STATE_PATH = data_uri("state", "active-enterprise-users.snapshot")

with DAG(
    dag_id="walkme_audience_asset_producer",
    description="Id file -> WalkMe segment sync -> propagation gate that emits the segment's asset event",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two syncs of one segment must not interleave
    tags=["segments", "walkme", "assets", "example"],
) as dag:

    @task
    def export_audience(run_id: str | None = None) -> str:
        """Write the audience, one id per line; return the file's URI (not the ids)."""
        run = "".join(c if c.isalnum() else "_" for c in run_id or "manual")
        uri = data_uri("audiences", f"active-enterprise-{run}.txt")
        path = ObjectStoragePath(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            out.writelines(f"user-{n:05d}@enterprise.example\n" for n in range(1, 1_201))
        return uri

    sync_segment = WalkMeSyncSegmentOperator(
        task_id="sync_segment",
        name=SEGMENT_NAME,
        system_guid=SYSTEM_GUID,
        user_ids_path=export_audience(),
        state_path=STATE_PATH,
        retries=2,
        retry_delay=timedelta(seconds=30),
    )

    wait_for_propagation = WalkMeSegmentPropagationSensor(
        task_id="wait_for_propagation",
        system_guid=SYSTEM_GUID,
        segment_guid="{{ ti.xcom_pull(task_ids='sync_segment')['segment_guid'] }}",
        changed_at="{{ ti.xcom_pull(task_ids='sync_segment')['changed_at'] }}",
        sync_mode="{{ ti.xcom_pull(task_ids='sync_segment')['mode'] }}",
        propagation_window=PROPAGATION,
        deferrable=True,
        outlets=[AUDIENCE_SEGMENT],  # the event carries user_count, mode and changed_at
    )

    sync_segment >> wait_for_propagation
