"""Zendesk operators: templated arguments, one hook call, XCom-ready results, fail-fast input errors."""

from __future__ import annotations

import inspect

import pendulum
import pytest
from airflow.sdk import DAG
from support import ZENDESK_TEST_URL, ZendeskSegmentStore

from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.exceptions import SegmentsNotFoundError, SegmentsValidationError
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
    requests_mock.get(f"{BASE}/user_segments.json", json={"user_segments": [], "meta": {"has_more": False}})
    requests_mock.post(f"{BASE}/user_segments.json", json=ZendeskSegmentStore(requests_mock, BASE).create(5))
    requests_mock.get(f"{BASE}/user_segments/5/sections.json", json={"sections": [{"id": 1}]})
    requests_mock.get(f"{BASE}/user_segments/5/topics.json", json={"topics": [{"id": 2}]})
    return requests_mock


@pytest.mark.parametrize(
    "operator",
    [
        ZendeskCreateUserSegmentOperator,
        ZendeskUpdateUserSegmentOperator,
        ZendeskDeleteUserSegmentOperator,
        ZendeskListUserSegmentsOperator,
        ZendeskListUserSegmentUsageOperator,
    ],
)
def test_every_argument_but_the_connection_is_templated(operator):
    arguments = set(inspect.signature(operator.__init__).parameters) - {"self", "kwargs", "zendesk_conn_id"}
    assert set(operator.template_fields) == arguments


def test_create_update_delete_list_return_xcom_values(api):
    created = ZendeskCreateUserSegmentOperator(task_id="c", name="VIP", user_type="staff").execute({})
    assert created["id"] == 5
    updated = ZendeskUpdateUserSegmentOperator(task_id="u", user_segment_id=5, tags=["vip"]).execute({})
    assert updated["tags"] == ["vip"]
    assert api.request_history[-2].json() == {"user_segment": {"tags": ["vip"]}}  # then the read-back
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


# -- booleans and choices: strict, checked at parse time when literal, at run time when templated --
@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("false", False), (" TRUE ", True), ("False", False)],
)
def test_built_in_and_applicable_accept_booleans_and_their_strings(api, value, expected):
    api.get(f"{BASE}/user_segments/applicable.json", json={"user_segments": [], "meta": {"has_more": False}})
    ZendeskListUserSegmentsOperator(task_id="l", built_in=value, applicable=value).execute({})
    request = api.request_history[-1]
    assert request.path.endswith("/applicable.json") is expected
    assert request.qs["built_in"] == [str(expected).lower()]


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda v: ZendeskListUserSegmentsOperator(task_id="l", built_in=v), "built_in"),
        (lambda v: ZendeskListUserSegmentsOperator(task_id="l", applicable=v), "applicable"),
        (
            lambda v: ZendeskDeleteUserSegmentOperator(task_id="d", user_segment_id=5, missing_ok=v),
            "missing_ok",
        ),
        (
            lambda v: ZendeskCreateUserSegmentOperator(task_id="c", name="n", user_type="staff", if_exists=v),
            "if_exists",
        ),
    ],
)
def test_a_bad_boolean_or_choice_fails_at_parse_time_or_when_templated_at_run_time(api, make, field):
    with pytest.raises(SegmentsValidationError, match=f"{field} 'maybe' is not valid"):
        make("maybe")  # a literal: refused when the DAG is parsed
    op = make("{{ params.x }}")  # a template: accepted now, checked once rendered
    setattr(op, field, "maybe")
    with pytest.raises(AirflowFailException, match=f"{field} 'maybe' is not valid"):
        op.execute({})
    assert api.request_history == []


def test_templated_missing_ok_false_is_honoured(api):
    api.delete(
        f"{BASE}/user_segments/6.json", status_code=404, reason="Not Found", json={"error": "RecordNotFound"}
    )
    api.get(
        f"{BASE}/user_segments/6.json", status_code=404, reason="Not Found", json={"error": "RecordNotFound"}
    )
    op = ZendeskDeleteUserSegmentOperator(task_id="d", user_segment_id=6, missing_ok="{{ params.ok }}")
    op.missing_ok = "False"  # what a non-native DAG renders
    with pytest.raises(SegmentsNotFoundError):
        op.execute({})
