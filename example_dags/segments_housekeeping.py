"""Weekly clean-up on both platforms: delete the temporary segments nobody needs any more.

Lists the WalkMe segments and the custom Zendesk user segments, keeps those whose name starts with
``params.name_prefix`` and that were created more than ``params.older_than_days`` days ago, and
deletes each in its own mapped task instance (dynamic task mapping), so one failure is retried
alone and the UI shows what went. A segment whose creation time the API does not report is kept:
the DAG never deletes what it cannot date.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_segments.operators.walkme import WalkMeDeleteSegmentOperator, WalkMeListSegmentsOperator
from airflow_provider_segments.operators.zendesk import (
    ZendeskDeleteUserSegmentOperator,
    ZendeskListUserSegmentsOperator,
)


def is_stale(segment: dict, prefix: str, cutoff: datetime) -> bool:
    """True for a segment named with ``prefix`` and created before ``cutoff``."""
    created = segment.get("created_at")
    if not str(segment.get("name") or "").startswith(prefix) or not created:
        return False
    return pendulum.parse(created) < cutoff


with DAG(
    dag_id="segments_housekeeping",
    description="Delete old temporary segments on WalkMe and Zendesk Help Center",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"name_prefix": "tmp-", "older_than_days": 30},
    tags=["segments", "walkme", "zendesk", "example"],
) as dag:
    walkme_segments = WalkMeListSegmentsOperator(
        task_id="list_walkme_segments", name_prefix="{{ params.name_prefix }}"
    )
    zendesk_segments = ZendeskListUserSegmentsOperator(task_id="list_zendesk_segments", built_in=False)

    @task
    def stale_walkme_guids(segments: list[dict], params: dict | None = None) -> list[str]:
        """The GUIDs of the WalkMe segments to delete."""
        cutoff = pendulum.now("UTC") - timedelta(days=int(params["older_than_days"]))
        return [s["segment_guid"] for s in segments if is_stale(s, params["name_prefix"], cutoff)]

    @task
    def stale_zendesk_ids(segments: list[dict], params: dict | None = None) -> list[int]:
        """The ids of the custom Zendesk user segments to delete."""
        cutoff = pendulum.now("UTC") - timedelta(days=int(params["older_than_days"]))
        return [
            s["id"] for s in segments if not s.get("built_in") and is_stale(s, params["name_prefix"], cutoff)
        ]

    WalkMeDeleteSegmentOperator.partial(task_id="delete_walkme_segment").expand(
        segment_guid=stale_walkme_guids(walkme_segments.output)
    )
    ZendeskDeleteUserSegmentOperator.partial(task_id="delete_zendesk_segment").expand(
        user_segment_id=stale_zendesk_ids(zendesk_segments.output)
    )
