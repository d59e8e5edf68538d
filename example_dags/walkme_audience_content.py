"""Consumer of a data-aware pipeline: publish content each time the WalkMe segment is ready.

Scheduled on the asset of the segment that ``walkme_audience_asset_producer`` syncs: Airflow creates a
run of this DAG after each event the producer's propagation gate emits, that is, once WalkMe's
editor can use the changed segment. ``publish_content`` reads the triggering event's ``extra``
(``user_count``, ``mode``, ``changed_at``, ``segment_guid``, ``name``, ``system_guid``) instead of
pulling the producer's XComs, and could skip a change too small to matter.

The asset is built exactly as the producer builds it: same helper, system GUID
(``SEGMENTS_EXAMPLE_WALKME_SYSTEM_GUID``) and segment name. A DAG that names the segment by its GUID
instead would wait for another asset and never run.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_segments.assets import walkme_segment_asset

SYSTEM_GUID = os.environ.get("SEGMENTS_EXAMPLE_WALKME_SYSTEM_GUID", "5f2b9c1e8d7a4b3c9e6f1a2d3c4b5a69")
SEGMENT_NAME = "Active enterprise users"
AUDIENCE_SEGMENT = walkme_segment_asset(SYSTEM_GUID, SEGMENT_NAME)

with DAG(
    dag_id="walkme_audience_content",
    description="Runs when the WalkMe segment's asset gets an event: publishes content targeting it",
    schedule=[AUDIENCE_SEGMENT],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["segments", "walkme", "assets", "example"],
) as dag:

    @task
    def publish_content(triggering_asset_events: Any = None) -> dict[str, Any]:
        """Stand-in for the content change; it reads the latest event that triggered this run."""
        event = triggering_asset_events[AUDIENCE_SEGMENT][-1]
        segment = event.extra
        summary = (
            f"Segment {segment['name']!r} ({segment['segment_guid']}) holds {segment['user_count']:,} "
            f"users after a {segment['mode']} sync changed at {segment['changed_at']}; "
            f"event from {event.source_dag_id}.{event.source_task_id}: content published."
        )
        print(f"CONTENT SUMMARY: {summary}")
        return dict(segment)

    publish_content()
