"""WalkMeSegmentPropagationSensor: when it waits, how it defers, and what it confirms."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from types import SimpleNamespace

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException, TaskDeferred
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


def test_defers_to_a_time_trigger_at_changed_at_plus_window_within_the_timeout(api):
    changed = pendulum.now("UTC").subtract(minutes=3)
    sensor = WalkMeSegmentPropagationSensor(
        task_id="wait", segment_guid=GUID, changed_at=changed.isoformat(), deferrable=True, timeout=3600
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, DateTimeTrigger)
    assert abs((trigger.moment - (changed + timedelta(minutes=10))).total_seconds()) < 1
    assert deferred.value.method_name == "execute_complete"
    # The trigger may not outlive the sensor's timeout (counted from the sensor's start, i.e. now).
    assert timedelta(minutes=59) < deferred.value.timeout <= timedelta(hours=1)


def test_deferral_carries_only_types_the_task_supervisor_can_send(api):
    # A task reports its deferral to the supervisor process in msgpack, which refuses pendulum's
    # Interval: a timeout computed from pendulum datetimes failed every deferral in a real deployment
    # (tests/deployment), while dag.test(), which runs in one process, passed.
    sensor = WalkMeSegmentPropagationSensor(task_id="wait", segment_guid=GUID, deferrable=True, timeout=600)
    started = pendulum.now("UTC")  # what Airflow gives as the task instance's start_date
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"ti": SimpleNamespace(start_date=started)})
    assert type(deferred.value.timeout) is timedelta
    assert timedelta(minutes=9) < deferred.value.timeout <= timedelta(minutes=10)


def test_deferrable_defaults_to_airflows_default_deferrable_setting(monkeypatch):
    monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", raising=False)
    sensor = WalkMeSegmentPropagationSensor(task_id="w", segment_guid=GUID)
    assert (sensor.deferrable, sensor.mode) == (False, "reschedule")
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    sensor = WalkMeSegmentPropagationSensor(task_id="w", segment_guid=GUID)
    assert (sensor.deferrable, sensor.mode) == (True, "poke")
    explicit = WalkMeSegmentPropagationSensor(task_id="w", segment_guid=GUID, deferrable=False)
    assert explicit.mode == "reschedule"


def test_without_changed_at_the_window_starts_now(api):
    sensor = WalkMeSegmentPropagationSensor(
        task_id="wait", segment_guid=GUID, propagation_window=timedelta(minutes=2), deferrable=True
    )
    before = pendulum.now("UTC")
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    moment = deferred.value.trigger.moment
    assert before + timedelta(minutes=2) <= moment <= pendulum.now("UTC") + timedelta(minutes=2)


def test_window_already_over_returns_without_deferring(api):
    old = pendulum.now("UTC").subtract(hours=1).isoformat()
    result = WalkMeSegmentPropagationSensor(task_id="w", segment_guid=GUID, changed_at=old).execute({})
    assert result == {"segment_guid": GUID, "name": "Enterprise", "user_count": None}


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


def test_non_deferrable_mode_reschedules_and_pokes_until_ready_returning_the_segment(api):
    sensor = WalkMeSegmentPropagationSensor(task_id="w", segment_guid=GUID, deferrable=False)
    assert sensor.mode == "reschedule"
    sensor.changed_at = pendulum.now("UTC").isoformat()
    assert not sensor.poke({})
    sensor.changed_at = pendulum.now("UTC").subtract(minutes=11).isoformat()
    done = sensor.poke({})
    assert done and done.xcom_value == {"segment_guid": GUID, "name": "Enterprise", "user_count": None}


def test_a_window_ending_after_the_timeout_fails_at_once_saying_when(api):
    sensor = WalkMeSegmentPropagationSensor(task_id="w", segment_guid=GUID, deferrable=True, timeout=60)
    ends = r"ends at .*, after this sensor's timeout \(timeout of 60 s"
    with pytest.raises(AirflowSensorTimeout, match=ends):
        sensor.execute({})
    assert api.request_history == []
    sensor.soft_fail = True
    with pytest.raises(AirflowSkipException):
        sensor.execute({})


def test_never_fail_skips_where_the_sensor_fails_on_its_own_as_airflows_poke_loop_does(api):
    """Hostile review 28: Airflow's ``never_fail`` skips a sensor whose poke fails; this sensor's
    own checks in ``execute`` (a window ending after the timeout, a segment not listed) failed it.
    A mistake in the task's input still fails (nothing was asked of the platform)."""
    ends_late = WalkMeSegmentPropagationSensor(
        task_id="w", segment_guid=GUID, deferrable=True, timeout=60, never_fail=True
    )
    with pytest.raises(AirflowSkipException, match="ends at"):
        ends_late.execute({})
    other = "99999999-123c-4d83-8b38-a5a456789d0a"
    with pytest.raises(AirflowSkipException, match="is not listed"):
        WalkMeSegmentPropagationSensor(task_id="w", segment_guid=other, never_fail=True).execute({})
    with pytest.raises(AirflowFailException, match="not a hyphenated GUID"):
        WalkMeSegmentPropagationSensor(task_id="w", segment_guid="nope", never_fail=True).execute({})


def test_changed_at_beyond_a_clock_skew_in_the_future_is_refused_naming_it(api):
    soon = pendulum.now("UTC").add(minutes=4)
    assert parse_changed_at(soon.isoformat()) == soon  # within the 5 min tolerance: clock skew
    later = pendulum.now("UTC").add(hours=9).isoformat()
    refused = rf"changed_at '{re.escape(later)}' is 5\d\d min in the future"
    with pytest.raises(AirflowFailException, match=refused):
        WalkMeSegmentPropagationSensor(task_id="w", segment_guid=GUID, changed_at=later).execute({})
    assert api.request_history == []


def test_parse_changed_at_reads_naive_in_the_default_time_zone_here_utc():
    assert parse_changed_at("2026-01-31T12:00:00").utcoffset() == timedelta(0)
    assert parse_changed_at("2026-01-31T13:00:00+01:00") == pendulum.datetime(2026, 1, 31, 12)
    assert parse_changed_at(datetime(2026, 1, 31, 12)) == pendulum.datetime(2026, 1, 31, 12)
    assert parse_changed_at(None) is None


# -- the gate: the listed member count must be what the sync left ----------------------------------
@pytest.fixture
def sandbox_segment(monkeypatch):
    from support import sandbox_conn_env

    from airflow_provider_segments.testing import TEST_SYSTEM_GUID, SegmentsTestServer

    with SegmentsTestServer() as server:
        for name, value in sandbox_conn_env(server.url).items():
            monkeypatch.setenv(name, value)
        long_ago = pendulum.now("UTC").subtract(minutes=30).isoformat().replace("+00:00", "Z")
        members = [f"u{i}" for i in range(25)]
        guid = server.walkme.create_segment(TEST_SYSTEM_GUID, "Gated", members, created_at=long_ago)["guid"]
        yield server, guid


@pytest.mark.parametrize("expected", [25, "25"])  # native rendering gives an int, plain rendering a string
def test_the_gate_passes_when_walkme_lists_the_expected_count(sandbox_segment, expected):
    _, guid = sandbox_segment
    sensor = WalkMeSegmentPropagationSensor(
        task_id="gate", segment_guid=guid, changed_at="2020-01-01T00:00:00Z", expected_user_count=expected
    )
    assert sensor.execute({}) == {"segment_guid": guid, "name": "Gated", "user_count": 25}


def test_the_gate_fails_with_both_counts_when_a_stale_write_changed_the_segment(sandbox_segment):
    _, guid = sandbox_segment
    sensor = WalkMeSegmentPropagationSensor(
        task_id="gate",
        segment_guid=guid,
        deferrable=True,
        propagation_window=timedelta(0),
        expected_user_count=60,
    )
    with pytest.raises(AirflowFailException, match=r"lists 25 members.*60.*rerun the sync"):
        sensor.execute({})
    # The same check after a deferred wait: a late `override` cut the segment during the window.
    sensor = WalkMeSegmentPropagationSensor(
        task_id="gate", segment_guid=guid, deferrable=True, expected_user_count=25, timeout=3600
    )
    with pytest.raises(TaskDeferred):
        sensor.execute({})
    hook = sensor.hook
    hook.update_segment(guid, "override", ["late"], max_removal_fraction=None)
    with pytest.raises(AirflowFailException, match=r"lists 1 members for segment .*, not the 25"):
        sensor.execute_complete({}, event=None)


def test_without_a_listed_count_the_gate_says_so_and_confirms_the_listing(api, caplog):
    sensor = WalkMeSegmentPropagationSensor(
        task_id="gate", segment_guid=GUID, changed_at="2020-01-01T00:00:00Z", expected_user_count=3
    )
    assert sensor.execute({})["segment_guid"] == GUID


def test_a_bad_expected_user_count_is_refused_naming_it():
    with pytest.raises(AirflowFailException, match=r"expected_user_count 'many' is not a whole number"):
        WalkMeSegmentPropagationSensor(task_id="gate", segment_guid=GUID, expected_user_count="many").execute(
            {}
        )


# -- review 10: the window runs from the segment's latest change, whatever changed_at says ----------
def test_a_change_listed_after_changed_at_restarts_the_window(sandbox_segment):
    """Another task swapped every member (same count: the gate cannot see it) after the change
    changed_at names: WalkMe lists the later update, and the editor needs the window after it."""
    _, guid = sandbox_segment
    sensor = WalkMeSegmentPropagationSensor(
        task_id="gate",
        segment_guid=guid,
        changed_at=pendulum.now("UTC").subtract(minutes=30).isoformat(),
        expected_user_count=25,
        deferrable=True,
        timeout=3600,
    )
    sensor.hook.update_segment(guid, "override", [f"v{i}" for i in range(25)], max_removal_fraction=None)
    with pytest.raises(TaskDeferred) as deferred:  # the trigger fired for changed_at's window: wait again
        sensor.execute_complete({}, event=None)
    assert deferred.value.trigger.moment > pendulum.now("UTC").add(minutes=9)
    with pytest.raises(TaskDeferred) as deferred:  # and a first run defers to the later window at once
        sensor.execute({})
    assert deferred.value.trigger.moment > pendulum.now("UTC").add(minutes=9)


def test_a_change_listed_after_changed_at_keeps_a_poking_sensor_waiting(sandbox_segment):
    _, guid = sandbox_segment
    sensor = WalkMeSegmentPropagationSensor(
        task_id="gate", segment_guid=guid, changed_at=pendulum.now("UTC").subtract(minutes=30).isoformat()
    )
    sensor.hook.update_segment(guid, "add", ["late-user"])
    assert sensor.poke({}) is False


def test_a_segment_last_changed_before_changed_at_passes_at_once(sandbox_segment):
    _, guid = sandbox_segment  # listed as changed 30 minutes ago
    sensor = WalkMeSegmentPropagationSensor(
        task_id="gate", segment_guid=guid, changed_at=pendulum.now("UTC").subtract(minutes=20).isoformat()
    )
    assert sensor.execute({})["segment_guid"] == guid


@pytest.mark.parametrize("value", ["2026-12-06", "2026-12", "2026", "20261206"])
def test_changed_at_without_a_time_of_day_is_refused_naming_it(api, value):
    """'{{ ds }}' as changed_at read as midnight: the window of a change made a minute ago was over."""
    sensor = WalkMeSegmentPropagationSensor(task_id="w", segment_guid=GUID, changed_at=value, deferrable=True)
    with pytest.raises(AirflowFailException, match=re.escape(repr(value))):
        sensor.execute({})
    assert api.request_history == []


def test_a_bad_system_guid_or_connection_fails_without_retry(api, monkeypatch):
    from support import walkme_conn_json

    sensor = WalkMeSegmentPropagationSensor(
        task_id="w", segment_guid=GUID, system_guid="not/a guid", changed_at="2020-01-01T00:00:00Z"
    )
    with pytest.raises(AirflowFailException, match="not/a guid"):
        sensor.execute({})
    monkeypatch.setenv("AIRFLOW_CONN_WALKME_DEFAULT", walkme_conn_json(host="", region="mars"))
    sensor = WalkMeSegmentPropagationSensor(task_id="w", segment_guid=GUID, changed_at="2020-01-01T00:00:00Z")
    with pytest.raises(AirflowFailException, match="mars"):
        sensor.execute({})
    assert api.request_history == []


@pytest.mark.parametrize("value", ["20261206T223047Z", "20261206T223047", "20261206T223047.590964Z"])
def test_changed_at_in_iso_basic_format_is_a_moment(api, value):
    """(review 11) The basic format has a time of day too (and no colon)."""
    assert parse_changed_at(value, now=pendulum.datetime(2026, 12, 7)) == pendulum.datetime(
        2026, 12, 6, 22, 30, 47
    ).add(microseconds=590964 if "." in value else 0)


def test_a_rescheduled_sensor_after_changed_ats_window_still_waits_for_a_later_listed_change(
    sandbox_segment, monkeypatch
):
    """A later try of a rescheduled sensor, once changed_at's window is over, reads the segment
    before it says usable (review 13): WalkMe lists a change made since."""
    _, guid = sandbox_segment
    sensor = WalkMeSegmentPropagationSensor(
        task_id="gate",
        segment_guid=guid,
        changed_at=pendulum.now("UTC").subtract(minutes=30).isoformat(),
        deferrable=False,
        timeout=3600,
    )
    sensor.hook.update_segment(guid, "add", ["late-user"])
    pokes = []
    monkeypatch.setattr(
        WalkMeSegmentPropagationSensor, "poke", lambda self, context: pokes.append(1) or False
    )
    monkeypatch.setattr(
        "airflow.sdk.bases.sensor.BaseSensorOperator.execute", lambda self, context: self.poke(context)
    )
    assert sensor.execute({"task_reschedule_count": 1}) is False  # it went to poke(), not "usable"
    assert pokes == [1]


# -- review 16: a trigger that fires before its moment by this worker's clock releases nothing ---------
def _resumed_sensor(guid: str, window_end: pendulum.DateTime) -> WalkMeSegmentPropagationSensor:
    return WalkMeSegmentPropagationSensor(
        task_id="wait",
        segment_guid=guid,
        changed_at=window_end.subtract(minutes=10).isoformat(),
        deferrable=True,
        timeout=3600,
    )


@pytest.mark.parametrize("as_text", [False, True], ids=["datetime", "iso-text"])
def test_a_trigger_fired_minutes_early_by_this_workers_clock_defers_again(sandbox_segment, as_text):
    """A triggerer whose clock runs 5 minutes ahead fires the DateTimeTrigger at its moment by its
    own clock; the event names the moment, and this worker waits until it has passed here too."""
    _, guid = sandbox_segment
    window_end = pendulum.now("UTC").add(minutes=5)
    sensor = _resumed_sensor(guid, window_end)
    event = window_end.isoformat() if as_text else window_end
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute_complete({}, event=event)
    assert abs((deferred.value.trigger.moment - window_end).total_seconds()) < 1


def test_a_trigger_fired_a_few_seconds_early_waits_them_out_before_releasing(sandbox_segment):
    _, guid = sandbox_segment
    window_end = pendulum.now("UTC").add(seconds=2)
    result = _resumed_sensor(guid, window_end).execute_complete({}, event=window_end)
    assert pendulum.now("UTC") >= window_end and result["segment_guid"] == guid


def test_a_trigger_fired_on_time_releases_at_once(sandbox_segment):
    _, guid = sandbox_segment
    window_end = pendulum.now("UTC").subtract(seconds=1)
    assert _resumed_sensor(guid, window_end).execute_complete({}, event=window_end)["segment_guid"] == guid


def test_a_short_wait_after_a_resume_never_runs_past_the_timeout(sandbox_segment):
    _, guid = sandbox_segment
    timeout = 60
    sensor = WalkMeSegmentPropagationSensor(
        task_id="wait",
        segment_guid=guid,
        changed_at=pendulum.now("UTC").subtract(minutes=30).isoformat(),
        propagation_window=timedelta(seconds=3),
        deferrable=True,
        timeout=timeout,
    )
    sensor.hook.update_segment(guid, "add", ["u2"])  # WalkMe lists a change now: window ends ~now+3 s
    # the sensor started (timeout - 1) s ago: its deadline is ~now+1 s, before the window ends
    ti = SimpleNamespace(start_date=pendulum.now("UTC").subtract(seconds=timeout - 1))
    started = time.monotonic()
    with pytest.raises(AirflowSensorTimeout, match="after this sensor's timeout"):
        sensor.execute_complete({"ti": ti}, event=None)
    assert time.monotonic() - started < 1  # failed at once, not after waiting


def test_a_change_listed_during_a_short_wait_after_a_resume_restarts_the_window(sandbox_segment, monkeypatch):
    """The segment is read again after waiting a few seconds here: a change WalkMe lists meanwhile
    restarts the window (review 10's rule), it is not released on what was read before the wait."""
    _, guid = sandbox_segment
    sensor = _resumed_sensor(guid, pendulum.now("UTC").add(seconds=1))
    real_sleep = time.sleep

    def sleep_while_someone_changes_it(seconds):
        sensor.hook.update_segment(guid, "add", ["late"])  # another task changes it during the wait
        real_sleep(seconds)

    monkeypatch.setattr("airflow_provider_segments.sensors.walkme.time.sleep", sleep_while_someone_changes_it)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute_complete({}, event=pendulum.now("UTC").add(seconds=1))
    assert deferred.value.trigger.moment > pendulum.now("UTC").add(minutes=9)


def test_a_timeout_reaching_past_the_calendar_waits_as_without_one(api):
    """Airflow takes any timeout up to ``timedelta.max``; a deadline past year 9999 crashed the
    sensor with an OverflowError before it asked WalkMe anything. Such a timeout never ends."""
    changed = pendulum.now("UTC").subtract(minutes=3)
    sensor = WalkMeSegmentPropagationSensor(
        task_id="wait",
        segment_guid=GUID,
        changed_at=changed.isoformat(),
        deferrable=True,
        timeout=timedelta.max,
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    assert abs((deferred.value.trigger.moment - (changed + timedelta(minutes=10))).total_seconds()) < 1
    # none: Airflow's execution API adds a deferral's timeout to its clock (review 32: datetime.max - now
    # overflowed there a moment later)
    assert deferred.value.timeout is None
    assert [r.method for r in api.request_history] == ["POST", "GET"]  # token, the segment listed
    sensor.changed_at = pendulum.now("UTC").subtract(minutes=11).isoformat()
    assert sensor.execute_complete({})["segment_guid"] == GUID


# -- 4. the sensor: a propagation window reaching past the calendar -------------------------------
def test_a_propagation_window_reaching_past_the_calendar_is_refused_naming_it(requests_mock, walkme_conn):
    """43a01bf/ac911f0 made a *timeout* reaching past year 9999 wait without end (NEVER); the other
    duration the sensor adds to a moment, ``propagation_window``, is still added unchecked:
    ``(changed or started) + propagation_window`` raises a bare ``OverflowError: date value out of
    range`` that names neither the argument nor its value (and, not being a validation error, the
    task's retries repeat it). Bad input gets a clear error naming the value, at parse time as a
    negative window does, or when the task runs before anything is sent."""
    from datetime import timedelta as td

    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider_segments.exceptions import SegmentsValidationError
    from airflow_provider_segments.sensors.walkme import WalkMeSegmentPropagationSensor

    guid = "12345aeb-123c-4d83-8b38-a5a456789d0a"
    try:
        sensor = WalkMeSegmentPropagationSensor(
            task_id="wait", segment_guid=guid, deferrable=True, propagation_window=td(days=999_999_999)
        )
        sensor.execute({})
    except SegmentsValidationError as err:
        assert "propagation_window" in str(err)
        return
    except TaskDeferred:
        pytest.fail("deferred with a window past the calendar")
    except Exception as err:
        pytest.fail(f"a propagation window past the calendar fails as {type(err).__name__}: {err}")


def test_a_listed_update_near_the_calendars_end_fails_naming_it_not_as_a_bare_overflow(
    requests_mock, walkme_conn
):
    """05d2f8d refuses a propagation_window that would reach past year 9999 when added to a moment to
    come, but the sensor also adds it to the updated_at WalkMe lists (_window_end): a listed
    updated_at near the calendar's end (a sentinel, a corrupt clock) plus the default 10-minute
    window raises a bare ``OverflowError: date value out of range`` naming neither the value nor the
    segment, the very failure the commit set out to remove."""
    from support import WALKME_SYSTEM, WALKME_TEST_URL

    from airflow_provider_segments.sensors.walkme import WalkMeSegmentPropagationSensor

    guid = "12345aeb-123c-4d83-8b38-a5a456789d0a"
    requests_mock.post(f"{WALKME_TEST_URL}/accounts/connect/token", json={"access_token": "tok-0123456789"})
    requests_mock.get(
        f"{WALKME_TEST_URL}/public/v1/user/system/{WALKME_SYSTEM}/segment",
        json=[{"guid": guid, "name": "E", "updated_at": "9999-12-31T23:59:00Z"}],
    )
    sensor = WalkMeSegmentPropagationSensor(task_id="w", segment_guid=guid, deferrable=True)
    try:
        sensor.execute({})
    except OverflowError as err:
        pytest.fail(f"a listed updated_at near year 9999 fails the sensor as a bare OverflowError: {err}")
    except Exception as err:  # a clear error or a timeout naming the listed time is right
        assert "9999-12-31" in str(err), str(err)
