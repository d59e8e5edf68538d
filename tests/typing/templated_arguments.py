"""Type-checked by mypy in CI (``make test``), never run: the Jinja strings the docs and example DAGs
pass to templated parameters must be accepted by the operators' signatures."""

from __future__ import annotations

from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeDeleteSegmentOperator,
    WalkMeSyncSegmentOperator,
    WalkMeUpdateSegmentOperator,
)
from airflow_provider_segments.operators.zendesk import (
    ZendeskCreateUserSegmentOperator,
    ZendeskDeleteUserSegmentOperator,
    ZendeskListUserSegmentsOperator,
    ZendeskUpdateUserSegmentOperator,
)
from airflow_provider_segments.sensors.walkme import WalkMeSegmentPropagationSensor

XCOM = "{{ ti.xcom_pull(task_ids='export') }}"

WalkMeCreateSegmentOperator(
    task_id="create", name="{{ params.name }}", user_ids=XCOM, external_id="{{ params.external_id }}"
)
WalkMeUpdateSegmentOperator(task_id="update", segment_guid=XCOM, action="add", user_ids_path=XCOM)
WalkMeSyncSegmentOperator(task_id="sync", name="{{ params.name }}", user_ids_path=XCOM, state_path=XCOM)
WalkMeDeleteSegmentOperator(task_id="delete", segment_guid=XCOM, missing_ok="{{ params.missing_ok }}")
WalkMeSegmentPropagationSensor(
    task_id="ready",
    segment_guid=XCOM,
    changed_at="{{ ti.xcom_pull(task_ids='sync')['changed_at'] }}",
    expected_user_count="{{ ti.xcom_pull(task_ids='sync')['user_count'] }}",
)

ZendeskCreateUserSegmentOperator(
    task_id="z_create",
    name="{{ params.segment_name }}",
    user_type="staff",
    tags="{{ params.tags }}",
    or_tags=["vip", "{{ params.tag }}"],
    organization_ids="{{ params.organization_ids }}",
    group_ids=["{{ params.group_id }}", 7],
    added_user_ids=XCOM,
    if_exists="{{ params.if_exists }}",
)
ZendeskUpdateUserSegmentOperator(
    task_id="z_update", user_segment_id=XCOM, tags="{{ params.tags }}", added_user_ids=["{{ params.user }}"]
)
ZendeskDeleteUserSegmentOperator(
    task_id="z_delete", user_segment_id=XCOM, missing_ok="{{ params.missing_ok }}"
)
ZendeskListUserSegmentsOperator(
    task_id="z_list", built_in="{{ params.built_in }}", applicable="{{ params.applicable }}", user_id=XCOM
)
