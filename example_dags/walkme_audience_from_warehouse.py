"""From a warehouse query to WalkMe content: the pipeline this provider exists for.

1. ``seed_demo_warehouse`` builds the small bundled SQLite warehouse (``sql/demo_warehouse.sql``);
   in a real deployment the warehouse already exists and this task goes away.
2. ``export_audience`` runs the audience query ("active users of Enterprise accounts") and streams
   the ids into a file. Only the file's URI goes through XCom: XCom lives in the metadata DB and a
   million ids would be ~40 MB there.
3. ``sync_segment`` makes the WalkMe segment hold exactly those ids: created on the first run, then
   only the difference since the last successful sync (a snapshot at ``state_path``).
4. ``wait_for_propagation`` defers (no worker slot) until WalkMe's editor can use the segment.
5. ``publish_content`` runs only after that.

Connections: ``walkme_default`` and ``segments_demo_warehouse`` (type ``sqlite``, host = the database
file). The id files and the snapshot go under ``SEGMENTS_EXAMPLE_DATA_DIR`` (default: a folder in
the temp dir, which only works when every task runs on one machine); with several workers point it
at object storage, e.g. ``s3://aws_default@my-bucket/segments`` (see Deploying).
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, ObjectStoragePath, task

from airflow_provider_segments.operators.walkme import WalkMeSyncSegmentOperator
from airflow_provider_segments.sensors.walkme import WalkMeSegmentPropagationSensor

#: Where the example's files and snapshot live, as text: a local folder by default, or a URI of
#: Airflow's object storage such as ``s3://aws_default@my-bucket/segments`` (the connection id before
#: the ``@``). Only such strings go to XCom and ``state_path``, so any worker of any executor finds them.
DATA_URI = os.environ.get("SEGMENTS_EXAMPLE_DATA_DIR") or os.path.join(
    tempfile.gettempdir(), "segments-example"
)


def data_uri(*parts: str) -> str:
    """A location under ``DATA_URI``, joined as text: ``pathlib`` would turn ``s3://b/x`` into ``s3:/b/x``."""
    return "/".join([DATA_URI.rstrip("/"), *parts])


STATE_PATH = data_uri("state", "enterprise-accounts.snapshot")
WAREHOUSE_CONN_ID = "segments_demo_warehouse"
PROPAGATION = timedelta(seconds=int(os.environ.get("SEGMENTS_DEMO_PROPAGATION_SECONDS", "600")))
AUDIENCE_QUERY = """
    SELECT u.email
    FROM users u JOIN accounts a ON a.id = u.account_id
    WHERE a.plan = 'enterprise' AND u.active = 1
    ORDER BY u.id
"""

with DAG(
    dag_id="walkme_audience_from_warehouse",
    description="Warehouse query -> id file -> WalkMe segment sync -> propagation -> content",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two syncs of one segment must not interleave
    template_searchpath=[str(Path(__file__).parent / "sql")],
    params={"segment_name": "Enterprise accounts (warehouse)"},
    tags=["segments", "walkme", "example"],
) as dag:
    seed_demo_warehouse = SQLExecuteQueryOperator(
        task_id="seed_demo_warehouse",
        conn_id=WAREHOUSE_CONN_ID,
        sql="demo_warehouse.sql",
        split_statements=True,
        return_last=False,
    )

    @task
    def export_audience(query: str, run_id: str | None = None) -> str:
        """Stream the query's ids into a file, one per line; return the file's URI (not the ids)."""
        from airflow.providers.sqlite.hooks.sqlite import SqliteHook

        run = "".join(c if c.isalnum() else "_" for c in run_id or "manual")
        uri = data_uri("audiences", f"enterprise-{run}.txt")
        path = ObjectStoragePath(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = SqliteHook(sqlite_conn_id=WAREHOUSE_CONN_ID).get_conn()
        try:
            cursor = connection.execute(query)
            with path.open("w", encoding="utf-8") as out:
                while rows := cursor.fetchmany(10_000):
                    out.writelines(f"{email}\n" for (email,) in rows)
        finally:
            connection.close()
        return uri

    audience_file = export_audience(AUDIENCE_QUERY)

    sync_segment = WalkMeSyncSegmentOperator(
        task_id="sync_segment",
        name="{{ params.segment_name }}",
        user_ids_path=audience_file,  # the URI from XCom, rendered at run time
        state_path=STATE_PATH,
        retries=2,
        # A retry must start after the failed try's requests can no longer land: longer than the
        # connection's connect + read timeouts (10 s + 60 s by default, see docs/deploying.md).
        retry_delay=timedelta(minutes=2),
    )

    wait_for_propagation = WalkMeSegmentPropagationSensor(
        task_id="wait_for_propagation",
        segment_guid="{{ ti.xcom_pull(task_ids='sync_segment')['segment_guid'] }}",
        changed_at="{{ ti.xcom_pull(task_ids='sync_segment')['changed_at'] }}",
        expected_user_count="{{ ti.xcom_pull(task_ids='sync_segment')['user_count'] }}",
        propagation_window=PROPAGATION,
        deferrable=True,  # explicit: the default follows Airflow's [operators] default_deferrable
    )

    @task
    def publish_content(sync: dict) -> str:
        """Stand-in for the content change that targets the segment."""
        summary = (
            f"Segment {sync['name']!r} ({sync['segment_guid']}): {sync['user_count']:,} users, "
            f"{sync['mode']} sync, +{sync['added']:,} / -{sync['removed'] or 0:,} in {sync['requests']} "
            "write request(s); content published after the propagation window."
        )
        print(f"DEMO SUMMARY: {summary}")
        return summary

    seed_demo_warehouse >> audience_file
    sync_segment >> wait_for_propagation >> publish_content(sync_segment.output)
