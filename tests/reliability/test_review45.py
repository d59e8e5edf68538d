"""Hostile review 45: ``AnsweredTimes`` (note/take) and the read-back's "another client changed it"
check (``verify`` / ``_is_later``).

Each test fails on the code as reviewed; each asserts what a task returned or raised, and what the
sandbox holds."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from answer_times import WANTED, another_client_swaps_after
from answer_times import audience_members as _members
from answer_times import microsecond_clock as _clock
from answer_times import milliseconds_cut as _ms_cut
from answer_times import milliseconds_rounded as _ms_rounded
from answer_times import same as _same
from answer_times import seconds_cut as _s_cut
from answer_times import seconds_rounded as _s_rounded
from answer_times import serialize as _serialize
from answer_times import trimmed as _trimmed
from support import impatient_sandbox
from support import outcome as _outcome

from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.testing import TEST_SYSTEM_GUID
from airflow_provider_segments.testing import walkme as fake_walkme


@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)  # 5 ids: the create + 2 adds
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.0)


# == 1. sub-second precisions that differ: an honest change fails as "another client changed it" ====
@pytest.mark.parametrize(
    "answer, listing, start",
    [
        # answers in milliseconds (cut), listing in microseconds: create 04.100250, adds 04.350250 and
        # 04.600250 (answered "04.600Z"); the listing shows "04.600250Z", 250 us after the answer
        (_ms_cut, _same, datetime(2030, 1, 1, 0, 0, 4, 100_250, tzinfo=timezone.utc)),
        # answers in microseconds, listing from a DATETIME(3) column (rounded to milliseconds):
        # last add 04.600600 (answered so), listed "04.601Z", 400 us after the answer
        (_same, _ms_rounded, datetime(2030, 1, 1, 0, 0, 4, 100_600, tzinfo=timezone.utc)),
    ],
    ids=["ms-answers-us-listing", "us-answers-rounded-ms-listing"],
)
@pytest.mark.parametrize("parallel", [1, 4])
def test_an_honest_create_is_not_failed_where_answers_and_listing_keep_different_fractions(
    sandbox, monkeypatch, parallel, answer, listing, start
):
    """Invariant (b), "the listing's own precision": WalkMe writes its answers and its listing with
    different numbers of fraction digits (one serializer in milliseconds, the store or the other in
    microseconds; or a DATETIME(3) column rounding a microsecond time). Nobody else touches the
    segment. ``_is_later`` compares two times with a fraction exactly, so the listing's extra (or
    rounded-up) sub-millisecond digits read as "later than the last write": the honest create
    fails as "another client changed it" on almost every run (any time not on a whole millisecond)."""
    _clock(monkeypatch, start, 250)
    _serialize(monkeypatch, answer, listing)
    result = _outcome(
        lambda: WalkMeHook(max_parallel_requests=parallel).create_segment(
            "Audience", WANTED, system_guid=TEST_SYSTEM_GUID
        )
    )
    assert _members(sandbox) == set(WANTED)  # nobody else wrote
    assert isinstance(result, dict), result
    assert result["verified"] is True, result


# == 2. whole seconds: answers cut, listing rounded =================================================
@pytest.mark.xfail(
    strict=True,
    reason="known limit (docs/reliability.md): whole-second answers cut and a listing rounded cannot "
    "be told from another client's edit a second later; counting it as ours would widen the blind "
    "window of every whole-second server to two seconds",
)
@pytest.mark.parametrize("parallel", [1, 4])
def test_an_honest_create_is_not_failed_where_answers_cut_and_the_listing_rounds_whole_seconds(
    sandbox, monkeypatch, parallel
):
    """Invariant (b), "cut or rounded seconds": WalkMe answers its writes in whole seconds, cut (a
    "yyyy-MM-ddTHH:mm:ssZ" format of the time it wrote), and stores them in a DATETIME(0) column,
    which rounds: the listing shows the rounded row. Create at 04.100, adds at 04.350 and 04.600,
    all answered "04Z"; the listing shows 04.600 rounded: "05Z". Nobody else touches the segment.

    ``_is_later`` takes "05" as surely later than "04" (a whole second more), but a cut "04" is
    any moment of [04, 05) and a rounded "05" any of [04.5, 05.5): the same moment can be both.
    The honest create fails as "another client changed it" whenever its last write lands in the
    second half of a second."""
    _clock(monkeypatch, datetime(2030, 1, 1, 0, 0, 4, 100_000, tzinfo=timezone.utc), 250)
    _serialize(monkeypatch, _s_cut, _s_rounded)
    result = _outcome(
        lambda: WalkMeHook(max_parallel_requests=parallel).create_segment(
            "Audience", WANTED, system_guid=TEST_SYSTEM_GUID
        )
    )
    assert _members(sandbox) == set(WANTED)  # nobody else wrote
    assert isinstance(result, dict), result
    assert result["verified"] is True, result


# == 3. a plan's second phase loses the first phase's evidence that "05" is exact ==================


def test_a_swap_after_an_override_plans_last_add_is_caught_where_walkme_drops_trailing_zeros(
    sandbox, monkeypatch
):
    """Invariant (a). WalkMe writes times in milliseconds, trailing zeros dropped (answers and listing
    alike; review 43's server). An ``override`` of 3 ids (2 per request) is an override chunk, a read-
    back, then one ``add`` (the ids keep the 2 members: no removal guard). Override at 04.700 (answered
    "04.7Z"), add at 05.000 (answered "05Z"); after the add was answered another client swaps a member
    at 05.300 ("05.3Z"; the count stays).

    The change's chunk writes were answered both with and without a fraction, so by the rule of
    ``AnsweredTimes`` "05" is 05.000, exact, and 05.3 is later: the task must fail. But the
    between-phases read-back took (and dropped) the override's "04.7", so the final read-back sees
    only "05" and compares at the whole second: the swap passes and ``update_segment`` reports
    ``verified: True``. The documented limit covers "a change whose ONLY chunk write is answered
    '05'"; this change has two."""
    guid = sandbox.walkme.create_segment(
        TEST_SYSTEM_GUID, "Audience", ["old0", "old1"], created_at="2030-01-01T00:00:01.5Z"
    )["guid"]
    times = iter(["2030-01-01T00:00:04.700Z", "2030-01-01T00:00:05.000Z", "2030-01-01T00:00:05.300Z"])
    monkeypatch.setattr(fake_walkme, "_now", lambda: next(times))
    _serialize(monkeypatch, _trimmed, _trimmed)

    seen = another_client_swaps_after(monkeypatch, writes=2)  # at the first listing after the add
    result = _outcome(
        lambda: WalkMeHook(max_parallel_requests=1).update_segment(
            guid, "override", ["old0", "old1", "c"], system_guid=TEST_SYSTEM_GUID
        )
    )
    members = _members(sandbox)
    (listed,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    assert listed["updatedAt"] == "2030-01-01T00:00:05.300Z", listed  # the swap, 300 ms after the add
    assert seen["swapped"] and "intruder" in members, (seen, members, result)
    assert not isinstance(result, dict), f"reported success with members {sorted(members)}: {result!r}"
    assert "another client changed it" in result, result
