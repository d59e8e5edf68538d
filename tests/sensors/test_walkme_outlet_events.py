"""WalkMeSegmentPropagationSensor and asset events: every way it passes fills its segment's event."""

from __future__ import annotations

import pendulum
import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from airflow.sdk.execution_time.context import OutletEventAccessors
from support import WALKME_SYSTEM, WALKME_TEST_URL

from airflow_provider_segments.assets import walkme_segment_asset
from airflow_provider_segments.exceptions import SegmentsError
from airflow_provider_segments.sensors.walkme import WalkMeSegmentPropagationSensor

SEGMENTS_URL = f"{WALKME_TEST_URL}/public/v1/user/system/{WALKME_SYSTEM}/segment"
GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"
LISTED = {"guid": GUID, "name": "Enterprise", "usersCount": 1_200, "updatedAt": "2026-01-31T11:59:00Z"}
CHANGED = "2026-01-31T12:00:00+01:00"  # what the sync returned, in another offset than UTC
BY_GUID = walkme_segment_asset(WALKME_SYSTEM, GUID)
BY_NAME = walkme_segment_asset(WALKME_SYSTEM, "Enterprise")
EXPECTED = {
    "user_count": 1_200,
    "changed_at": "2026-01-31T11:00:00+00:00",
    "mode": "delta",
    "segment_guid": GUID,
    "name": "Enterprise",
    "system_guid": WALKME_SYSTEM,
}


@pytest.fixture
def api(requests_mock, walkme_conn):
    requests_mock.post(f"{WALKME_TEST_URL}/accounts/connect/token", json={"access_token": "tok-0123456789"})
    requests_mock.get(SEGMENTS_URL, json=[LISTED])
    return requests_mock


def sensor(**kwargs) -> WalkMeSegmentPropagationSensor:
    kwargs = {"changed_at": CHANGED, "sync_mode": "delta", "outlets": [BY_GUID], **kwargs}
    return WalkMeSegmentPropagationSensor(task_id="gate", segment_guid=GUID, **kwargs)


def extras(context) -> dict[str, dict]:
    return {asset.uri: dict(context["outlet_events"][asset].extra) for asset in context["outlet_events"]}


def test_window_already_over_fills_the_outlet_event_with_count_mode_and_changed_at(api):
    context = {"outlet_events": OutletEventAccessors()}
    assert sensor().execute(context) == {"segment_guid": GUID, "name": "Enterprise", "user_count": 1200}
    assert extras(context) == {BY_GUID.uri: EXPECTED}


def test_deferred_sensor_fills_the_event_when_it_resumes_not_before(api):
    gate = sensor(changed_at=pendulum.now("UTC").isoformat(), deferrable=True)
    context = {"outlet_events": OutletEventAccessors()}
    with pytest.raises(TaskDeferred):
        gate.execute(context)
    assert extras(context) == {}
    resumed = {"outlet_events": OutletEventAccessors()}  # a new process: a new context
    gate.execute_complete(resumed, event=None)
    assert extras(resumed)[BY_GUID.uri]["user_count"] == 1_200


def test_poking_sensor_fills_the_event_on_the_poke_that_passes_only(api):
    gate = sensor(changed_at=pendulum.now("UTC").isoformat(), deferrable=False)
    context = {"outlet_events": OutletEventAccessors()}
    assert not gate.poke(context)
    assert extras(context) == {}
    gate.changed_at = CHANGED
    assert gate.poke(context).is_done
    assert extras(context) == {BY_GUID.uri: EXPECTED}


def test_an_outlet_naming_the_segment_by_name_or_by_another_spelling_gets_the_extra(api):
    spelled = Asset(uri=f"walkme-segment://{WALKME_SYSTEM.upper()}/{GUID.replace('-', '').upper()}")
    other_kind = Asset(uri="s3://bucket/audience.txt")
    context = {"outlet_events": OutletEventAccessors()}
    sensor(outlets=[BY_NAME, spelled, other_kind], sync_mode=None).execute(context)
    got = extras(context)
    assert got[BY_NAME.uri] == {**EXPECTED, "mode": None}
    assert got[spelled.uri] == {**EXPECTED, "mode": None}
    assert other_kind.uri not in got  # not this provider's business


def test_an_outlet_naming_another_segment_gets_no_extra_and_a_warning(api, capfd):
    elsewhere = walkme_segment_asset(WALKME_SYSTEM, "Churned users")
    other_system = walkme_segment_asset("0000aaaa0000bbbb0000cccc0000dddd", GUID)
    context = {"outlet_events": OutletEventAccessors()}
    sensor(outlets=[elsewhere, other_system]).execute(context)
    assert extras(context) == {}
    output = capfd.readouterr()
    warned = [
        line for line in (output.out + output.err).splitlines() if "names another WalkMe segment" in line
    ]
    assert len(warned) == 2 and elsewhere.uri in warned[0] and other_system.uri in warned[1]


def test_without_changed_at_the_event_says_when_walkme_lists_the_last_change(api):
    context = {"outlet_events": OutletEventAccessors()}
    gate = sensor(changed_at=None, deferrable=True)
    gate.execute_complete(context, event=None)
    assert extras(context)[BY_GUID.uri]["changed_at"] == "2026-01-31T11:59:00Z"


def test_a_gate_that_fails_fills_no_event(api):
    api.get(SEGMENTS_URL, json=[])
    context = {"outlet_events": OutletEventAccessors()}
    with pytest.raises(SegmentsError, match="is not listed"):
        sensor().execute_complete(context, event=None)
    assert extras(context) == {}


def test_sync_mode_is_a_templated_text_field():
    assert "sync_mode" in WalkMeSegmentPropagationSensor.template_fields
    assert "sync_mode" in WalkMeSegmentPropagationSensor.text_fields


def test_a_failed_gate_fills_no_outlet_event(api):
    context = {"outlet_events": OutletEventAccessors()}
    with pytest.raises(AirflowFailException, match="lists 1,200 members"):
        sensor(expected_user_count=60_000).execute(context)
    assert extras(context) == {}
