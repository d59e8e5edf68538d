"""A value that is given but falsy ("", 0, False, [], {}, ()) is not "not given". Read with
``value or default``, a system_guid template rendering to an empty list under native rendering sent
the write to the connection's default system, and a name_prefix rendering to ``[]`` listed every
segment (a clean-up DAG deletes what it lists). Only ``None`` means "not given"; anything else is
validated and refused by name before any request. Also: a count of non-ASCII digits ("1²", "١٢")
is refused by name, not a bare ValueError (or, for "١٢", silently read as 12)."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeDeleteSegmentOperator,
    WalkMeListSegmentsOperator,
)
from airflow_provider_segments.sensors.walkme import WalkMeSegmentPropagationSensor
from airflow_provider_segments.testing import TEST_SYSTEM_GUID

GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"
#: What a native rendering (or a literal) may give that is falsy yet not None.
EMPTY_COLLECTIONS: list[Any] = [[], {}, ()]
FALSY_LITERALS: list[Any] = ["", 0, False, [], {}, ()]


def rendered(operator_class: type, field: str, value: Any, **kwargs: Any) -> Any:
    start = pendulum.datetime(2026, 1, 1)
    with DAG("d", schedule=None, start_date=start, render_template_as_native_obj=True):
        operator = operator_class(task_id="t", **kwargs, **{field: "{{ params.value }}"})
    operator.render_template_fields({"params": {"value": value}})
    return operator


@pytest.mark.parametrize("value", EMPTY_COLLECTIONS, ids=repr)
def test_a_system_guid_rendering_to_an_empty_collection_is_refused_not_sent_to_the_default_system(
    sandbox, value
):
    create = rendered(WalkMeCreateSegmentOperator, "system_guid", value, name="VIP", user_ids=["a"])
    with pytest.raises(AirflowFailException, match=r"^system_guid .* is not valid: a WalkMe system GUID"):
        create.execute({})
    assert sandbox.requests == []
    assert sandbox.walkme.segments(TEST_SYSTEM_GUID) == []


@pytest.mark.parametrize("value", EMPTY_COLLECTIONS, ids=repr)
def test_a_delete_whose_system_guid_rendered_to_an_empty_collection_deletes_nothing(sandbox, value):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "VIP", ["a"])["guid"]
    sandbox.clear_request_log()
    delete = rendered(WalkMeDeleteSegmentOperator, "system_guid", value, segment_guid=guid)
    with pytest.raises(AirflowFailException, match=r"^system_guid"):
        delete.execute({})
    assert sandbox.requests == []
    assert [s["guid"] for s in sandbox.walkme.segments(TEST_SYSTEM_GUID)] == [guid]


@pytest.mark.parametrize("value", FALSY_LITERALS, ids=repr)
def test_a_falsy_system_guid_given_to_the_hook_is_refused_by_name(sandbox, value):
    with pytest.raises(SegmentsValidationError, match=r"^system_guid .* leave it out \(None\)"):
        WalkMeHook().create_segment("VIP", ["a"], system_guid=value)
    with pytest.raises(SegmentsValidationError, match=r"^system_guid"):
        WalkMeHook().list_segments(system_guid=value)
    assert sandbox.requests == []
    assert sandbox.walkme.segments(TEST_SYSTEM_GUID) == []


@pytest.mark.parametrize("value", [*FALSY_LITERALS, "not/a guid"], ids=repr)
def test_a_literal_system_guid_that_is_no_system_guid_fails_when_the_dag_is_parsed(value):
    with pytest.raises(SegmentsValidationError, match=r"^system_guid"):
        WalkMeCreateSegmentOperator(task_id="t", name="VIP", user_ids=["a"], system_guid=value)
    with pytest.raises(SegmentsValidationError, match=r"^system_guid"):
        WalkMeListSegmentsOperator(task_id="l", system_guid=value)


def test_a_system_guid_from_an_upstream_xcom_is_not_checked_at_parse_time():
    with DAG("d", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        upstream = WalkMeListSegmentsOperator(task_id="up")
        listing = WalkMeListSegmentsOperator(task_id="l", system_guid=upstream.output["system"])
    assert listing.system_guid is not None  # resolved and checked when the task runs


@pytest.mark.parametrize("value", EMPTY_COLLECTIONS, ids=repr)
def test_a_name_prefix_rendering_to_an_empty_collection_is_refused_not_every_segment_listed(sandbox, value):
    sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Keep me", ["a"])
    sandbox.clear_request_log()
    listing = rendered(WalkMeListSegmentsOperator, "name_prefix", value)
    with pytest.raises(AirflowFailException, match=r"^name_prefix .* is not valid"):
        listing.execute({})
    assert sandbox.requests == []


@pytest.mark.parametrize("value", [*FALSY_LITERALS, " ", 7], ids=repr)
def test_a_literal_name_prefix_that_is_no_text_fails_when_the_dag_is_parsed(value):
    with pytest.raises(SegmentsValidationError, match=r"^name_prefix"):
        WalkMeListSegmentsOperator(task_id="l", name_prefix=value)


@pytest.mark.parametrize("value", EMPTY_COLLECTIONS, ids=repr)
def test_a_sensor_whose_system_guid_rendered_to_an_empty_collection_fails_by_name(sandbox, value):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "VIP", ["a"])["guid"]  # listed by the default
    sandbox.clear_request_log()
    sensor = rendered(
        WalkMeSegmentPropagationSensor, "system_guid", value, segment_guid=guid, deferrable=False
    )
    with pytest.raises(AirflowFailException, match=r"^system_guid"):
        sensor.execute({})
    assert sandbox.requests == []


@pytest.mark.parametrize("value", ["1²", "١٢", "²", " 3⁴ ", ""], ids=repr)
def test_an_expected_user_count_that_is_not_ascii_digits_fails_by_name_before_any_request(sandbox, value):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "VIP", ["a"])["guid"]
    sandbox.clear_request_log()
    sensor = WalkMeSegmentPropagationSensor(
        task_id="w", segment_guid=guid, expected_user_count=value, deferrable=False
    )
    with pytest.raises(AirflowFailException, match=r"^expected_user_count .* is not a whole number"):
        sensor.execute({})
    assert sandbox.requests == []


def test_a_templated_expected_user_count_with_a_superscript_digit_fails_by_name(sandbox):
    sensor = rendered(
        WalkMeSegmentPropagationSensor, "expected_user_count", "1²", segment_guid=GUID, deferrable=False
    )
    with pytest.raises(AirflowFailException, match=r"^expected_user_count '1²' is not a whole number"):
        sensor.execute({})
    assert sandbox.requests == []
