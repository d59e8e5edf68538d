"""Zendesk operators: templated arguments, one hook call, XCom-ready results, fail-fast input errors."""

from __future__ import annotations

import pendulum
import pytest
from airflow.sdk import DAG
from support import ZENDESK_TEST_URL

from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.operators.zendesk import (
    ZendeskCreateUserSegmentOperator,
    ZendeskDeleteUserSegmentOperator,
    ZendeskListUserSegmentsOperator,
    ZendeskListUserSegmentUsageOperator,
    ZendeskUpdateUserSegmentOperator,
)

BASE = f"{ZENDESK_TEST_URL}/api/v2/help_center"


@pytest.fixture
def api(requests_mock, zendesk_conn):
    segment = {"id": 5, "name": "VIP", "user_type": "staff", "built_in": False}
    requests_mock.get(f"{BASE}/user_segments.json", json={"user_segments": [], "meta": {"has_more": False}})
    requests_mock.post(f"{BASE}/user_segments.json", status_code=201, json={"user_segment": segment})
    requests_mock.put(f"{BASE}/user_segments/5.json", json={"user_segment": {**segment, "tags": ["vip"]}})
    requests_mock.delete(f"{BASE}/user_segments/5.json", status_code=204)
    requests_mock.get(f"{BASE}/user_segments/5/sections.json", json={"sections": [{"id": 1}]})
    requests_mock.get(f"{BASE}/user_segments/5/topics.json", json={"topics": [{"id": 2}]})
    return requests_mock


def test_every_argument_is_templated():
    assert set(ZendeskCreateUserSegmentOperator.template_fields) == {
        "name",
        "user_type",
        "group_ids",
        "organization_ids",
        "tags",
        "or_tags",
        "added_user_ids",
    }
    assert "user_segment_id" in ZendeskUpdateUserSegmentOperator.template_fields
    assert set(ZendeskListUserSegmentsOperator.template_fields) == {"built_in", "applicable", "user_id"}


def test_create_update_delete_list_return_xcom_values(api):
    created = ZendeskCreateUserSegmentOperator(task_id="c", name="VIP", user_type="staff").execute({})
    assert created["id"] == 5
    updated = ZendeskUpdateUserSegmentOperator(task_id="u", user_segment_id=5, tags=["vip"]).execute({})
    assert updated["tags"] == ["vip"]
    assert api.request_history[-1].json() == {"user_segment": {"tags": ["vip"]}}
    assert ZendeskDeleteUserSegmentOperator(task_id="d", user_segment_id="5").execute({}) == 5
    assert ZendeskListUserSegmentsOperator(task_id="l", built_in=False).execute({}) == []
    usage = ZendeskListUserSegmentUsageOperator(task_id="s", user_segment_id=5).execute({})
    assert usage == {"user_segment_id": 5, "sections": [{"id": 1}], "topics": [{"id": 2}]}


def test_invalid_user_type_fails_the_task_without_retry_or_request(api):
    with pytest.raises(AirflowFailException, match="user_type 'admins'"):
        ZendeskCreateUserSegmentOperator(task_id="c", name="VIP", user_type="admins", retries=3).execute({})
    assert api.request_history == []


def test_templated_arguments_render_from_params():
    with DAG(
        "zd_render",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1),
        render_template_as_native_obj=True,
    ):
        op = ZendeskCreateUserSegmentOperator(
            task_id="c",
            name="{{ params.name }}",
            user_type="{{ params.kind }}",
            organization_ids="{{ params.orgs }}",
            tags=["vip", "{{ params.tag }}"],
        )
    op.render_template_fields({"params": {"name": "VIP", "kind": "staff", "orgs": [42], "tag": "gold"}})
    assert (op.name, op.user_type, op.organization_ids, op.tags) == ("VIP", "staff", [42], ["vip", "gold"])
