"""Hostile review 42: the per-segment answered times (``AnsweredTimes``, ``begin_change``, the
read-back's take) and the exact-``str`` fast path of the id checks (commit 0f73a68).

Each test fails on the code as reviewed; each asserts what the sandbox holds, or what a task
returned or raised. Another client's edit is made in the sandbox itself, at the first listing read
after the task's last write was answered (its read-back), so the order never depends on timing."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from answer_times import WANTED, create_audience
from answer_times import another_client_swaps_after as _another_client_swaps_after
from answer_times import audience_members as _members
from support import impatient_sandbox
from support import outcome as _outcome

from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.testing import TEST_SYSTEM_GUID
from airflow_provider_segments.testing import walkme as fake_walkme


@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)  # 5 ids: the create + 2 adds
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.0)


# == 1. a create answered with an update time the hook cannot read turns the check off ==============
@pytest.mark.parametrize("parallel", [1, 4])
@pytest.mark.parametrize("path", ["hook-create", "sync-create"])
def test_a_create_answered_with_an_unreadable_time_still_catches_a_swap_after_its_adds(
    sandbox, monkeypatch, tmp_path, path, parallel
):
    """WalkMe answers the create with ``updatedAt`` as epoch milliseconds (a number: its document
    shows no response bodies); its chunk writes (``add``) and its listing carry ISO times, as usual.
    The create of "Audience" (5 ids: the create, then 2 adds, each answered with its time) is
    followed, after its last add was answered, by another client's same-count swap.

    The adds' answers say when the task's last write landed, and the listing shows a later time:
    the read-back must fail the task ("another client changed it"), as it does when the create is
    answered with no time at all (review 40: "a create precedes every later write, so only a chunk
    write answered without a time" turns the check off). Now the hook notes the create's
    unreadable time, ``AnsweredTimes.note`` makes the segment's record "unknown", and unknown stays
    unknown through the adds: the task reports ``verified: True`` on members it did not send."""
    create_locked = fake_walkme.WalkMeApp._create_locked

    def answered_in_epoch_ms(segments, name, user_ids, external_id):
        created = create_locked(segments, name, user_ids, external_id)
        return {**created, "updatedAt": 1_733_580_000_123}  # the answer only: the listing keeps ISO

    monkeypatch.setattr(fake_walkme.WalkMeApp, "_create_locked", staticmethod(answered_in_epoch_ms))
    seen = _another_client_swaps_after(monkeypatch, writes=3)
    result = create_audience(path, parallel, tmp_path)
    members = _members(sandbox)
    assert seen["swapped"] and "intruder" in members, (seen, members, result)
    assert not isinstance(result, dict), f"reported success with members {sorted(members)}: {result!r}"
    assert "another client changed it" in result, result


# == 2. the latest answered time is picked by value, whatever the precision it was written in ========
def test_an_honest_create_whose_adds_are_answered_in_whole_seconds_is_not_failed(sandbox, monkeypatch):
    """WalkMe answers the create with milliseconds and its ``add`` writes in whole seconds (cut, as
    another serializer keeps them: what ``_is_later`` allows for); the listing shows milliseconds.
    Nobody else touches the segment: create at 05.100, adds at 05.400 and 05.700, answered
    "…:05Z". The read-back lists 05.700, the time of the task's own last add.

    ``AnsweredTimes.note`` keeps the latest time by value: "05Z" (05.000) is not later than 05.100,
    so the create's "05.100Z" stays "the last write" and the listed 05.700 is compared with it at
    millisecond precision: the honest change fails as "another client changed it". The whole-second
    answers of the adds only say "within second 05", which the listed time is."""
    clock = itertools.count()
    base = datetime(2030, 1, 1, 0, 0, 5, 100_000, tzinfo=timezone.utc)

    def now() -> str:  # 05.100, 05.400, 05.700, ... all in second 05
        moment = base + timedelta(milliseconds=300 * next(clock))
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    json_response = fake_walkme.json_response

    def whole_seconds_for_puts(status, payload, headers=None):
        if status == 200 and isinstance(payload, dict) and isinstance(payload.get("updatedAt"), str):
            payload = {**payload, "updatedAt": payload["updatedAt"][:19] + "Z"}  # cut to the second
        return json_response(status, payload, headers)

    monkeypatch.setattr(fake_walkme, "_now", now)
    monkeypatch.setattr(fake_walkme, "json_response", whole_seconds_for_puts)
    result = _outcome(
        lambda: WalkMeHook(max_parallel_requests=1).create_segment(
            "Audience", WANTED, system_guid=TEST_SYSTEM_GUID
        )
    )
    (listed,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    assert _members(sandbox) == set(WANTED)
    assert listed["updatedAt"] == "2030-01-01T00:00:05.700Z", listed  # (the task's own last add)
    assert isinstance(result, dict), result
    assert result["verified"] is True, result
