"""Restrict Help Center content to VIP staff with a Zendesk user segment, then clean up.

Runs against the local test server in the tests (``zendesk_help_center_default`` points at it):

1. ``create_segment``: a ``staff`` segment restricted by tags and organization (a rerun updates the
   segment of that name instead of creating a duplicate).
2. ``list_segments``: every user segment, across all pages.
3. ``update_segment``: widen it with ``or_tags`` and a group.
4. ``list_usage``: the sections and topics restricted to the segment.
5. ``report``: print what the segment restricts.
6. ``delete_segment``: remove it again (a segment already gone counts as deleted).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_segments.operators.zendesk import (
    ZendeskCreateUserSegmentOperator,
    ZendeskDeleteUserSegmentOperator,
    ZendeskListUserSegmentsOperator,
    ZendeskListUserSegmentUsageOperator,
    ZendeskUpdateUserSegmentOperator,
)

SEGMENT_ID = "{{ ti.xcom_pull(task_ids='create_segment')['id'] }}"

with DAG(
    dag_id="zendesk_user_segments_demo",
    description="Create, list, update, inspect and delete a Zendesk Help Center user segment",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    render_template_as_native_obj=True,
    params={"segment_name": "VIP agents (demo)", "organization_id": 42},
    tags=["segments", "zendesk", "example"],
) as dag:
    create_segment = ZendeskCreateUserSegmentOperator(
        task_id="create_segment",
        name="{{ params.segment_name }}",
        user_type="staff",
        tags=["vip"],
        organization_ids=["{{ params.organization_id }}"],
    )

    list_segments = ZendeskListUserSegmentsOperator(task_id="list_segments")

    update_segment = ZendeskUpdateUserSegmentOperator(
        task_id="update_segment",
        user_segment_id=SEGMENT_ID,
        or_tags=["gold", "platinum"],
        group_ids=[12],
    )

    list_usage = ZendeskListUserSegmentUsageOperator(task_id="list_usage", user_segment_id=SEGMENT_ID)

    @task
    def report(segment: dict, segments: list[dict], usage: dict) -> str:
        """Say what the segment restricts."""
        sections = ", ".join(s["name"] for s in usage["sections"]) or "no sections"
        topics = ", ".join(t["name"] for t in usage["topics"]) or "no topics"
        summary = (
            f"User segment {segment['name']!r} (id {segment['id']}, {segment['user_type']}, "
            f"tags {segment['tags']}, or_tags {segment['or_tags']}) is one of {len(segments)} segments; "
            f"it restricts {sections} and {topics}."
        )
        print(f"DEMO SUMMARY: {summary}")
        return summary

    delete_segment = ZendeskDeleteUserSegmentOperator(task_id="delete_segment", user_segment_id=SEGMENT_ID)

    summary = report(update_segment.output, list_segments.output, list_usage.output)
    create_segment >> list_segments >> update_segment >> list_usage >> summary >> delete_segment
