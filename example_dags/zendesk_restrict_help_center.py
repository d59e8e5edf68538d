"""Keep a Help Center area for staff of some organizations, and report what it restricts.

``upsert_segment`` creates the ``staff`` user segment restricted by tags and organizations, or
updates the segment of that name on later runs (never a duplicate). ``list_usage`` lists the
Help Center sections and community topics restricted to it, and ``report`` prints them, e.g. for a
weekly access review. Connection: ``zendesk_help_center_default``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_segments.operators.zendesk import (
    ZendeskCreateUserSegmentOperator,
    ZendeskListUserSegmentUsageOperator,
)

with DAG(
    dag_id="zendesk_restrict_help_center",
    description="Create or update a staff user segment by tags and organizations; report its sections",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    render_template_as_native_obj=True,  # params render as lists, not strings
    params={
        "segment_name": "Enterprise support staff",
        "tags": ["enterprise"],
        "organization_ids": [42, 43],
    },
    tags=["segments", "zendesk", "example"],
) as dag:
    upsert_segment = ZendeskCreateUserSegmentOperator(
        task_id="upsert_segment",
        name="{{ params.segment_name }}",
        user_type="staff",
        tags="{{ params.tags }}",
        organization_ids="{{ params.organization_ids }}",
        if_exists="update",
    )

    list_usage = ZendeskListUserSegmentUsageOperator(
        task_id="list_usage", user_segment_id="{{ ti.xcom_pull(task_ids='upsert_segment')['id'] }}"
    )

    @task
    def report(segment: dict, usage: dict) -> list[str]:
        """One line per section and topic the segment restricts."""
        lines = [f"section {s['id']}: {s['name']}" for s in usage["sections"]]
        lines += [f"topic {t['id']}: {t['name']}" for t in usage["topics"]]
        print(
            f"DEMO SUMMARY: user segment {segment['name']!r} (id {segment['id']}, tags {segment['tags']}, "
            f"organizations {segment['organization_ids']}) restricts {len(lines)} item(s): "
            + ("; ".join(lines) or "nothing yet")
        )
        return lines

    upsert_segment >> list_usage  # the id comes from upsert_segment's XCom: run after it
    report(upsert_segment.output, list_usage.output)
