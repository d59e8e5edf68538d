"""WalkMeSegmentPropagationSensor: when it waits, how it defers, and what it confirms."""

from __future__ import annotations

from datetime import timedelta

import pendulum
import pytest
from airflow.sdk.exceptions import TaskDeferred
from support import WALKME_SYSTEM, WALKME_TEST_URL

from airflow_provider_segments._compat import AirflowFailException, DateTimeTrigger
from airflow_provider_segments.exceptions import SegmentsError
from airflow_provider_segments.sensors.walkme import WalkMeSegmentPropagationSensor, parse_changed_at

SEGMENTS_URL = f"{WALKME_TEST_URL}/public/v1/user/system/{WALKME_SYSTEM}/segment"
GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"


@pytest.fixture
def api(requests_mock, walkme_conn):
    requests_mock.post(f"{WALKME_TEST_URL}/accounts/connect/token", json={"access_token": "tok-0123456789"})
    requests_mock.get(SEGMENTS_URL, json=[{"guid": GUID, "name": "Enterprise"}])
    return requests_mock


def test_defers_to_a_time_trigger_at_changed_at_plus_window(api):
    changed = pendulum.now("UTC").subtract(minutes=3)
    sensor = WalkMeSegmentPropagationSensor(task_id="wait", segment_guid=GUID, changed_at=changed.isoformat())
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, DateTimeTrigger)
    assert abs((trigger.moment - (changed + timedelta(minutes=10))).total_seconds()) < 1
    assert deferred.value.method_name == "execute_complete"


def test_without_changed_at_the_window_starts_now(api):
    sensor = WalkMeSegmentPropagationSensor(
        task_id="wait", segment_guid=GUID, propagation_window=timedelta(minutes=2)
    )
    before = pendulum.now("UTC")
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    moment = deferred.value.trigger.moment
    assert before + timedelta(minutes=2) <= moment <= pendulum.now("UTC") + timedelta(minutes=2)


def test_window_already_over_returns_without_deferring(api):
    old = pendulum.now("UTC").subtract(hours=1).isoformat()
    result = WalkMeSegmentPropagationSensor(task_id="w", segment_guid=GUID, changed_at=old).execute({})
    assert result == {"segment_guid": GUID, "name": "Enterprise"}


def test_resume_confirms_the_segment_is_still_listed(api):
    sensor = WalkMeSegmentPropagationSensor(task_id="w", segment_guid=GUID)
    assert sensor.execute_complete({}, event=None)["name"] == "Enterprise"
    api.get(SEGMENTS_URL, json=[])
    with pytest.raises(SegmentsError, match=f"{GUID} is not listed in system {WALKME_SYSTEM}"):
        sensor.execute_complete({}, event=None)


def test_unknown_segment_fails_at_once_instead_of_after_the_window(api):
    other = "99999999-123c-4d83-8b38-a5a456789d0a"
    with pytest.raises(SegmentsError, match="is not listed"):
        WalkMeSegmentPropagationSensor(task_id="w", segment_guid=other).execute({})


def test_malformed_inputs_fail_fast_before_any_request(api):
    with pytest.raises(AirflowFailException, match="not a hyphenated GUID"):
        WalkMeSegmentPropagationSensor(task_id="w", segment_guid="nope").execute({})
    with pytest.raises(AirflowFailException, match="changed_at 'yesterday'"):
        WalkMeSegmentPropagationSensor(task_id="w", segment_guid=GUID, changed_at="yesterday").execute({})
    assert api.request_history == []


def test_non_deferrable_mode_reschedules_and_pokes_until_ready(api):
    sensor = WalkMeSegmentPropagationSensor(task_id="w", segment_guid=GUID, deferrable=False)
    assert sensor.mode == "reschedule"
    future = pendulum.now("UTC").isoformat()
    sensor.changed_at = future
    assert sensor.poke({}) is False
    sensor.changed_at = pendulum.now("UTC").subtract(minutes=11).isoformat()
    assert sensor.poke({}) is True


def test_parse_changed_at_treats_naive_as_utc():
    assert parse_changed_at("2026-01-31T12:00:00").utcoffset() == timedelta(0)
    assert parse_changed_at("2026-01-31T13:00:00+01:00") == pendulum.datetime(2026, 1, 31, 12)
    assert parse_changed_at(None) is None
