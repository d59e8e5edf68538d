"""A field given as a template that renders to nothing (``None`` under native rendering, ``"None"``
or a blank string under plain rendering: an upstream task that pushed nothing) is refused by name
before anything is sent. Read as "not given", it changed membership silently: a Zendesk create
cleared the tags an existing segment was restricted to, an update left the added users as they
were and reported success, a sensor's count gate turned itself off, a WalkMe change went to the
connection's default system."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeDeleteSegmentOperator,
    WalkMeListSegmentsOperator,
    WalkMeSyncSegmentOperator,
    WalkMeUpdateSegmentOperator,
)
from airflow_provider_segments.operators.zendesk import (
    ZendeskCreateUserSegmentOperator,
    ZendeskDeleteUserSegmentOperator,
    ZendeskListUserSegmentsOperator,
    ZendeskListUserSegmentUsageOperator,
    ZendeskUpdateUserSegmentOperator,
)
from airflow_provider_segments.sensors.walkme import WalkMeSegmentPropagationSensor
from airflow_provider_segments.testing import TEST_SYSTEM_GUID

GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"
#: What a template that gives nothing renders to: (native rendering?, the value of the parameter).
NOTHING = [(True, None), (False, None), (True, ""), (False, " ")]

WALKME_IDS = {"user_ids": ["a", "b"]}
#: (operator class, its other arguments, the templated field); every field a write, a sensor or a
#: usage listing takes from a template.
CASES: list[tuple[type, dict[str, Any], str]] = [
    (WalkMeCreateSegmentOperator, {"name": "VIP", **WALKME_IDS}, "external_id"),
    (WalkMeCreateSegmentOperator, {"name": "VIP", **WALKME_IDS}, "system_guid"),
    (WalkMeCreateSegmentOperator, {"name": "VIP"}, "user_ids"),
    (WalkMeCreateSegmentOperator, WALKME_IDS, "name"),
    (WalkMeUpdateSegmentOperator, {"segment_guid": GUID, "action": "add", **WALKME_IDS}, "system_guid"),
    (WalkMeUpdateSegmentOperator, {"action": "add", **WALKME_IDS}, "segment_guid"),
    (WalkMeSyncSegmentOperator, {"name": "VIP", **WALKME_IDS}, "state_path"),
    (
        WalkMeSyncSegmentOperator,
        {"name": "VIP", "state_path": "/tmp/s", "user_ids_path": "/x.csv"},
        "user_ids_column",
    ),
    (WalkMeSyncSegmentOperator, {"name": "VIP", "state_path": "/tmp/s"}, "user_ids_path"),
    (WalkMeDeleteSegmentOperator, {"segment_guid": GUID}, "system_guid"),
    (WalkMeListSegmentsOperator, {}, "system_guid"),
    (WalkMeListSegmentsOperator, {}, "name_prefix"),  # not every segment: a clean-up may delete them
    (WalkMeSegmentPropagationSensor, {"segment_guid": GUID}, "expected_user_count"),
    (WalkMeSegmentPropagationSensor, {"segment_guid": GUID}, "changed_at"),
    (ZendeskCreateUserSegmentOperator, {"name": "VIP", "user_type": "signed_in_users"}, "tags"),
    (ZendeskCreateUserSegmentOperator, {"name": "VIP", "user_type": "signed_in_users"}, "or_tags"),
    (ZendeskCreateUserSegmentOperator, {"name": "VIP", "user_type": "signed_in_users"}, "group_ids"),
    (ZendeskCreateUserSegmentOperator, {"name": "VIP", "user_type": "signed_in_users"}, "organization_ids"),
    (ZendeskCreateUserSegmentOperator, {"name": "VIP", "user_type": "signed_in_users"}, "added_user_ids"),
    (ZendeskUpdateUserSegmentOperator, {"user_segment_id": 7}, "added_user_ids"),
    (ZendeskUpdateUserSegmentOperator, {"user_segment_id": 7}, "tags"),
    (ZendeskUpdateUserSegmentOperator, {"user_segment_id": 7}, "name"),
    (ZendeskUpdateUserSegmentOperator, {"tags": ["vip"]}, "user_segment_id"),
    (ZendeskDeleteUserSegmentOperator, {}, "user_segment_id"),
    (ZendeskListUserSegmentUsageOperator, {}, "user_segment_id"),
    (ZendeskListUserSegmentsOperator, {}, "user_id"),  # not every segment: the user's
]


def rendered(operator_class: type, kwargs: dict[str, Any], field: str, native: bool, value: Any) -> Any:
    with DAG(
        "d", schedule=None, start_date=pendulum.datetime(2026, 1, 1), render_template_as_native_obj=native
    ):
        operator = operator_class(task_id="t", **kwargs, **{field: "{{ params.value }}"})
    operator.render_template_fields({"params": {"value": value}})
    return operator


@pytest.mark.parametrize(("native", "value"), NOTHING)
@pytest.mark.parametrize(
    ("operator_class", "kwargs", "field"), CASES, ids=lambda c: getattr(c, "__name__", c)
)
def test_a_template_rendering_to_nothing_fails_naming_it_and_nothing_is_sent(
    sandbox, operator_class, kwargs, field, native, value
):
    operator = rendered(operator_class, kwargs, field, native, value)
    with pytest.raises(
        AirflowFailException, match=rf"^{field} was given as the template '{{{{ params.value }}}}'"
    ):
        operator.execute({})
    assert sandbox.requests == []


def test_a_zendesk_create_no_longer_clears_the_tags_an_existing_segment_is_restricted_to(sandbox):
    existing = sandbox.zendesk.create_segment(name="VIP", user_type="signed_in_users", tags=["vip"])
    operator = rendered(
        ZendeskCreateUserSegmentOperator, {"name": "VIP", "user_type": "signed_in_users"}, "tags", True, None
    )
    with pytest.raises(AirflowFailException, match=r"rendered to None.* nothing was sent"):
        operator.execute({})
    assert sandbox.zendesk.segment(existing["id"])["tags"] == ["vip"]
    # the tags given: the create goes ahead (an existing segment of the name is made equal to it)
    operator.tags = ["vip", "gold"]
    operator.execute({})
    assert sandbox.zendesk.segment(existing["id"])["tags"] == ["vip", "gold"]


def test_a_zendesk_update_whose_added_users_rendered_to_nothing_does_not_report_success(sandbox):
    existing = sandbox.zendesk.create_segment(name="VIP", user_type="signed_in_users", added_user_ids=[1, 2])
    operator = rendered(
        ZendeskUpdateUserSegmentOperator, {"user_segment_id": existing["id"]}, "added_user_ids", True, None
    )
    with pytest.raises(AirflowFailException, match=r"rendered to None"):
        operator.execute({})
    assert sandbox.requests == []


def test_a_list_of_both_kinds_of_segment_may_come_from_a_template_rendering_to_nothing(sandbox):
    operator = rendered(ZendeskListUserSegmentsOperator, {}, "built_in", True, None)
    assert len(operator.execute({})) == len(sandbox.zendesk.segments())  # documented: None lists both


def test_a_sensor_s_sync_mode_may_render_to_nothing_it_only_labels_the_asset_event(sandbox):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "VIP", ["a"])["guid"]
    operator = rendered(
        WalkMeSegmentPropagationSensor,
        {"segment_guid": guid, "changed_at": "2026-01-01T00:00:00+00:00", "deferrable": True},
        "sync_mode",
        True,
        None,
    )
    with pytest.raises(TaskDeferred):  # past the check: it waits for the window of the listed change
        operator.execute({})


def test_a_literal_none_still_means_not_given(sandbox):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "VIP", ["a"])["guid"]
    operator = rendered(
        WalkMeUpdateSegmentOperator,
        {"segment_guid": guid, "action": "add", "system_guid": None},
        "user_ids",
        True,
        ["b"],
    )
    operator.execute({})  # system_guid None, given literally: the connection's system
    assert sorted(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) == ["a", "b"]
