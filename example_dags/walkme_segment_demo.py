"""Push an audience into a WalkMe segment, wait out the editor's propagation window, then publish.

The main example of the provider, and what ``make demo`` runs against the local test server:

1. ``build_audience`` stands in for the warehouse export: it writes 60,000 ids to a file and hands
   on the file's URI (a small XCom: the ids themselves never go through the metadata DB or the log).
2. ``create_segment`` creates the segment, or overrides its users if a segment of that name exists
   (so a rerun never duplicates it); more than 25,000 ids go out in chunks.
3. ``wait_for_propagation`` defers (no worker slot) until ``changed_at`` + the propagation window,
   then gates: the segment must be listed with exactly the ``user_count`` the create left.
4. ``publish_content`` runs only after the window and the gate: here it prints a summary.
Set ``SEGMENTS_DEMO_PROPAGATION_SECONDS`` to shorten WalkMe's 10 minutes for a local run.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, ObjectStoragePath, task

from airflow_provider_segments.operators.walkme import WalkMeCreateSegmentOperator
from airflow_provider_segments.sensors.walkme import WalkMeSegmentPropagationSensor

AUDIENCE_SIZE = 60_000
PROPAGATION = timedelta(seconds=int(os.environ.get("SEGMENTS_DEMO_PROPAGATION_SECONDS", "600")))

#: Where the example's id file lives, as text: a local folder by default, or a URI of Airflow's object
#: storage such as ``s3://aws_default@my-bucket/segments`` (the connection id before the ``@``). Only
#: such strings go to XCom, so the next task finds the file on any worker of any executor.
DATA_URI = os.environ.get("SEGMENTS_EXAMPLE_DATA_DIR") or os.path.join(
    tempfile.gettempdir(), "segments-example"
)


def data_uri(*parts: str) -> str:
    """A location under ``DATA_URI``, joined as text: ``pathlib`` would turn ``s3://b/x`` into ``s3:/b/x``."""
    return "/".join([DATA_URI.rstrip("/"), *parts])


def demo_audience(size: int = AUDIENCE_SIZE) -> list[str]:
    """The ids the demo pushes: what a warehouse query for "accounts on the Enterprise plan" returns."""
    return [f"user{i:06d}@enterprise.example.com" for i in range(size)]


with DAG(
    dag_id="walkme_segment_demo",
    description="Create a WalkMe segment, wait for propagation, publish content",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    render_template_as_native_obj=True,
    params={"segment_name": "Enterprise accounts (demo)"},
    tags=["segments", "walkme", "example"],
) as dag:

    @task
    def build_audience(run_id: str | None = None) -> str:
        """Stand-in for the warehouse export: the ids go to a file, only its URI to XCom."""
        run = "".join(c if c.isalnum() else "_" for c in run_id or "manual")
        uri = data_uri("demo", f"audience-{run}.txt")
        path = ObjectStoragePath(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(demo_audience()) + "\n", encoding="utf-8")
        return uri

    audience = build_audience()

    create_segment = WalkMeCreateSegmentOperator(
        task_id="create_segment",
        name="{{ params.segment_name }}",
        user_ids_path="{{ ti.xcom_pull(task_ids='build_audience') }}",
        retries=2,
        # A retry must start after the failed try's requests can no longer land: longer than the
        # connection's connect + read timeouts (10 s + 60 s by default, see docs/deploying.md).
        retry_delay=timedelta(minutes=2),
    )

    wait_for_propagation = WalkMeSegmentPropagationSensor(
        task_id="wait_for_propagation",
        segment_guid="{{ ti.xcom_pull(task_ids='create_segment')['segment_guid'] }}",
        changed_at="{{ ti.xcom_pull(task_ids='create_segment')['changed_at'] }}",
        expected_user_count="{{ ti.xcom_pull(task_ids='create_segment')['user_count'] }}",
        propagation_window=PROPAGATION,
        deferrable=True,  # explicit: the default follows Airflow's [operators] default_deferrable
    )

    @task
    def publish_content(segment: dict) -> str:
        """Runs only once WalkMe's editor can use the segment."""
        summary = (
            f"Segment {segment['name']!r} ({segment['segment_guid']}) holds {segment['user_count']:,} users "
            f"after {segment['requests']} write request(s); propagation window over, content published."
        )
        print(f"DEMO SUMMARY: {summary}")
        return summary

    audience >> create_segment >> wait_for_propagation >> publish_content(create_segment.output)
