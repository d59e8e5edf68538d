"""Hostile review 44: ``AnsweredTimes`` (latest answered time per kind: the create's, chunk writes
with a fraction, chunk writes without; at take, the latest per precision) and the read-back's
"another client changed it" check (later than EACH returned time, per ``_is_later``).

Each test fails on the code as reviewed; each asserts what a task returned or raised, and what the
sandbox holds. Another client's edit is made in the sandbox itself, at the first listing read after
the task's last write was answered (its read-back), so the order never depends on timing."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from answer_times import another_client_swaps_after as _another_client_swaps_after
from answer_times import audience_members as _members
from answer_times import clock as _clock
from answer_times import create_audience as _run
from answer_times import seconds_cut as _cut
from answer_times import seconds_rounded as _rounded
from support import impatient_sandbox

from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.testing import TEST_SYSTEM_GUID
from airflow_provider_segments.testing import walkme as fake_walkme


@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)  # 5 ids: the create + 2 adds
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.0)


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
