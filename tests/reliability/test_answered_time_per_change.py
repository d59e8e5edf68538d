"""The read-back's other-client check is judged per change, on the writes of that change.

A hook notes the update time WalkMe answers each write with; the read-back fails a change whose
segment is listed as updated later than that (another client changed it meanwhile). A write
answered without a time makes the latest unknown, which turns the check off. That must hold for
the change it happened in only: a hook used for several changes (a PythonOperator calling its
methods in turn) must not carry one change's unknown time, or one segment's time, into the next.
"""

from __future__ import annotations

import pytest
from support import impatient_sandbox
from support import outcome as _outcome

from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.testing import TEST_SYSTEM_GUID
from airflow_provider_segments.testing import walkme as fake_walkme


@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.0)


def _members(sandbox, name: str) -> set[str]:
    (segment,) = [s for s in sandbox.walkme.segments(TEST_SYSTEM_GUID) if s["name"] == name]
    return set(sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]))


def _an_admin_swaps_after_the_second_add(monkeypatch, hook: WalkMeHook, removed: str) -> dict:
    """After ``hook``'s second ``add`` was answered (its change's last write), another client swaps
    ``removed`` for "intruder" (the count stays); the number of ``hook``'s adds is in ``["n"]``."""
    put_users = WalkMeHook.put_users
    adds = {"n": 0}

    def then_an_admin_swaps(self, system, segment_guid, action, user_ids, **kwargs):
        put_users(self, system, segment_guid, action, user_ids, **kwargs)
        if self is hook and action == "add":
            adds["n"] += 1
            if adds["n"] == 2:
                admin = WalkMeHook()
                put_users(admin, system, segment_guid, "remove", [removed])
                put_users(admin, system, segment_guid, "add", ["intruder"])

    monkeypatch.setattr(WalkMeHook, "put_users", then_an_admin_swaps)
    return adds


def test_an_earlier_change_answered_without_a_time_leaves_the_next_changes_check_on(sandbox, monkeypatch):
    """Change 1 (segment "First") is answered without update times, so its read-back cannot tell
    another client's edit from its own writes. Change 2 (segment "Second"), with the same hook, is
    answered with times; another client swaps one of its members after its last write. Its
    read-back must catch the swap (listed later than the last write answered): the task fails."""
    update = fake_walkme.WalkMeApp._update
    answer_times = {"on": False}

    def maybe_without_a_time(self, request, system, segment_guid, payload):
        response = update(self, request, system, segment_guid, payload)
        return response if answer_times["on"] else fake_walkme.empty_response(204)

    monkeypatch.setattr(fake_walkme.WalkMeApp, "_update", maybe_without_a_time)
    hook = WalkMeHook(max_parallel_requests=1)
    first = [f"f{i}" for i in range(4)]
    created = _outcome(lambda: hook.create_segment("First", first, system_guid=TEST_SYSTEM_GUID))
    assert created["user_count"] == 4, created

    answer_times["on"] = True
    adds = _an_admin_swaps_after_the_second_add(monkeypatch, hook, "s0")
    wanted = [f"s{i}" for i in range(6)]
    outcome = _outcome(lambda: hook.create_segment("Second", wanted, system_guid=TEST_SYSTEM_GUID))
    members = _members(sandbox, "Second")
    assert adds["n"] == 2, outcome
    assert members != set(wanted)  # (the swap landed: "intruder" in, "s0" out)
    assert not isinstance(outcome, dict), f"reported success with members {sorted(members)}: {outcome!r}"
    assert "another client changed it" in outcome


def test_a_failed_change_does_not_leave_its_unknown_time_to_the_next_change_of_the_segment(
    sandbox, monkeypatch
):
    """Change 1 adds to a segment; its first chunk is answered without a time, its second is refused
    (400): it fails before its read-back, with the record "time unknown". Change 2 adds to the same
    segment with the same hook, answered with times; another client swaps a member after its last
    write. Its read-back must catch the swap: a change is judged on its own writes only."""
    SEGMENTS = f"/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"
    segment = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Audience", ["a0", "a1"])
    guid = segment["guid"]
    update = fake_walkme.WalkMeApp._update
    answer_times = {"on": False}

    def maybe_without_a_time(self, request, system, segment_guid, payload):
        response = update(self, request, system, segment_guid, payload)
        return response if answer_times["on"] else fake_walkme.empty_response(204)

    monkeypatch.setattr(fake_walkme.WalkMeApp, "_update", maybe_without_a_time)
    hook = WalkMeHook(max_parallel_requests=1)
    sandbox.inject_fault(f"{SEGMENTS}/", 400, method="PUT", skip=1)
    failed = _outcome(
        lambda: hook.update_segment(guid, "add", ["f0", "f1", "f2", "f3"], system_guid=TEST_SYSTEM_GUID)
    )
    assert isinstance(failed, str) and "PartialUpdateError" in failed, failed

    answer_times["on"] = True
    adds = _an_admin_swaps_after_the_second_add(monkeypatch, hook, "a0")
    outcome = _outcome(
        lambda: hook.update_segment(guid, "add", ["s0", "s1", "s2", "s3"], system_guid=TEST_SYSTEM_GUID)
    )
    members = set(sandbox.walkme.members(TEST_SYSTEM_GUID, guid))
    assert adds["n"] == 2, outcome
    assert "intruder" in members and "a0" not in members  # (the swap landed)
    assert not isinstance(outcome, dict), f"reported success with members {sorted(members)}: {outcome!r}"
    assert "another client changed it" in outcome
