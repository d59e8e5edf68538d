"""Hostile review 44: ``AnsweredTimes`` (latest answered time per kind: the create's, chunk writes
with a fraction, chunk writes without; at take, the latest per precision) and the read-back's
"another client changed it" check (later than EACH returned time, per ``_is_later``).

Each test fails on the code as reviewed; each asserts what a task returned or raised, and what the
sandbox holds. Another client's edit is made in the sandbox itself, at the first listing read after
the task's last write was answered (its read-back), so the order never depends on timing."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from support import impatient_sandbox
from support import outcome as _outcome

from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.operators.walkme import WalkMeSyncSegmentOperator
from airflow_provider_segments.testing import TEST_SYSTEM_GUID
from airflow_provider_segments.testing import walkme as fake_walkme


@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)  # 5 ids: the create + 2 adds
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.0)


WANTED = [f"u{i}" for i in range(5)]


def _members(sandbox) -> set[str]:
    (segment,) = [s for s in sandbox.walkme.segments(TEST_SYSTEM_GUID) if s["name"] == "Audience"]
    return set(sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]))


def _clock(monkeypatch, start: datetime, step_ms: int) -> None:
    """The sandbox's clock: ``start``, then ``step_ms`` later at each write (create, adds, swap)."""
    ticks = itertools.count()

    def now() -> str:
        moment = start + timedelta(milliseconds=step_ms * next(ticks))
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    monkeypatch.setattr(fake_walkme, "_now", now)


def _cut(value: str) -> str:
    return value[:19] + "Z"


def _rounded(value: str) -> str:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    moment = (moment + timedelta(milliseconds=500)).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def _another_client_swaps_after(monkeypatch, writes: int) -> dict:
    """At the first listing read after the task's ``writes``-th write (POST or PUT) was answered,
    another client removes one member of "Audience" and adds "intruder": the count stays, the
    segment's update time moves (as any write of WalkMe's does). (As in test_review42/43.)"""
    real = fake_walkme.WalkMeApp._segment_call
    seen = {"writes": 0, "swapped": False}

    def segment_call(self, request, system, segment):
        if request.method == "GET" and seen["writes"] >= writes and not seen["swapped"]:
            seen["swapped"] = True
            with self._lock:
                (audience,) = [s for s in self._systems[system.lower()].values() if s.name == "Audience"]
                audience.members.pop(next(iter(audience.members)))
                audience.members["intruder"] = None
                audience.updated_at = fake_walkme._after(audience.updated_at)
        if request.method in ("POST", "PUT"):
            seen["writes"] += 1
        return real(self, request, system, segment)

    monkeypatch.setattr(fake_walkme.WalkMeApp, "_segment_call", segment_call)
    return seen


def _run(path: str, parallel: int, tmp_path):
    if path == "hook-create":
        return _outcome(
            lambda: WalkMeHook(max_parallel_requests=parallel).create_segment(
                "Audience", WANTED, system_guid=TEST_SYSTEM_GUID
            )
        )
    return _outcome(
        lambda: WalkMeSyncSegmentOperator(
            task_id="sync",
            name="Audience",
            state_path=str(tmp_path / "audience.snapshot"),
            user_ids=WANTED,
            max_parallel_requests=parallel,
        ).execute({})
    )


# == 1. a create answered in whole seconds hides a swap after exact chunk answers ====================
@pytest.mark.parametrize(
    "create_serializer, start, listed_at",
    [
        # create at 04.100 answered "04" (cut); adds 04.300, 04.500; swap at 04.700
        ("cut", datetime(2030, 1, 1, 0, 0, 4, 100_000, tzinfo=timezone.utc), "2030-01-01T00:00:04.700Z"),
        # create at 04.600 answered "05" (rounded); adds 04.800, 05.000; swap at 05.200
        ("rounded", datetime(2030, 1, 1, 0, 0, 4, 600_000, tzinfo=timezone.utc), "2030-01-01T00:00:05.200Z"),
    ],
)
@pytest.mark.parametrize("parallel", [1, 4])
@pytest.mark.parametrize("path", ["hook-create", "sync-create"])
def test_a_swap_after_exact_chunk_answers_is_caught_when_the_create_is_answered_in_whole_seconds(
    sandbox, monkeypatch, tmp_path, path, parallel, create_serializer, start, listed_at
):
    """WalkMe answers the create in whole seconds (its serializer cuts or rounds; review 43's server)
    and its ``add`` writes, as its listing, in milliseconds. After the last add was answered another
    client swaps a member 200 ms later: the count stays, the listing shows the swap's time.

    The adds' exact answers say when the task's last write landed, and the create came before
    every add, so its whole-second answer cannot stand for anything later than them. Yet
    ``AnsweredTimes.take`` returns the create's whole-second time beside the adds' latest (one per
    precision), and ``verify`` fails the task only when the listed time is later than EACH: the
    swap, less than a whole second after the create's "04" / "05", passes, and the task reports
    ``verified: True`` on a segment holding "intruder". Neither documented limit applies: every
    chunk write was answered with an exact time (the swap is 200 ms after the last one)."""
    _clock(monkeypatch, start, 200)
    json_response = fake_walkme.json_response
    whole = _cut if create_serializer == "cut" else _rounded

    def whole_seconds_for_the_create(status, payload, headers=None):
        if status == 201 and isinstance(payload, dict):
            payload = {**payload, "updatedAt": whole(payload["updatedAt"])}
        return json_response(status, payload, headers)

    monkeypatch.setattr(fake_walkme, "json_response", whole_seconds_for_the_create)
    seen = _another_client_swaps_after(monkeypatch, writes=3)
    result = _run(path, parallel, tmp_path)
    members = _members(sandbox)
    (listed,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    assert listed["updatedAt"] == listed_at, listed  # the swap, 200 ms after the task's last add
    assert seen["swapped"] and "intruder" in members, (seen, members, result)
    assert not isinstance(result, dict), f"reported success with members {sorted(members)}: {result!r}"
    assert "another client changed it" in result, result
