"""Hostile review 43: the answered time a read-back compares with, chosen since 9a01bae "by the last
moment each time can stand for" (``AnsweredTimes.note``: a whole-second time counts as its second
plus 1 s, a time with a fraction as itself) and ``note_create``.

Each test fails on the code as reviewed; each asserts what a task returned or raised, and what the
sandbox holds. Nobody but the task touches the segment in these tests: they are honest changes
(invariant b), which must never fail as "another client changed it"."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from answer_times import WANTED
from answer_times import another_client_swaps_after as _another_client_swaps_after
from answer_times import audience_members as _members
from answer_times import clock as _clock
from answer_times import create_audience as _run
from answer_times import seconds_cut as _cut
from answer_times import seconds_rounded as _rounded
from answer_times import trimmed as _trimmed
from support import impatient_sandbox

from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.testing import TEST_SYSTEM_GUID
from airflow_provider_segments.testing import walkme as fake_walkme


@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)  # 5 ids: the create + 2 adds
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.0)


# == 1. a store that rounds to whole seconds: the create's rounded answer is kept over the adds' ====
@pytest.mark.parametrize("parallel", [1, 4])
@pytest.mark.parametrize("path", ["hook-create", "sync-create"])
def test_an_honest_create_is_not_failed_where_walkme_stores_rounded_whole_seconds(
    sandbox, monkeypatch, tmp_path, path, parallel
):
    """WalkMe keeps update times in whole seconds, rounded (a DATETIME(0) column rounds a fraction):
    the create's answer and the listing show the stored row; a PUT answers with the time it wrote,
    in milliseconds. Nobody else touches the segment: create at 04.100 (answered "…:04Z"), adds at
    04.350 and 04.600 (answered "04.350Z", "04.600Z"); the listing shows 04.600 rounded: "…:05Z".

    Before 9a01bae the latest answer was 04.600 by value, and "05" (whole seconds) is not a whole
    second after it: verified. Now ``note`` keeps "04" (it "stands for" up to 05.000, later than
    04.600), and the listed "05" is a whole second after "04": the honest create fails as "another
    client changed it". ``_last_moment`` takes a whole second as cut, while the docstrings (and
    ``_is_later``) allow a rounded one; and the choice discards the adds' exact time, which the
    coarse listing needed."""
    _clock(monkeypatch, datetime(2030, 1, 1, 0, 0, 4, 100_000, tzinfo=timezone.utc), 250)
    json_response = fake_walkme.json_response

    def rounded_rows(status, payload, headers=None):
        if status == 201 and isinstance(payload, dict):  # the create answers with the stored row
            payload = {**payload, "updatedAt": _rounded(payload["updatedAt"])}
        elif status == 200 and isinstance(payload, list):  # the listing reads the stored rows
            payload = [{**row, "updatedAt": _rounded(row["updatedAt"])} for row in payload]
        return json_response(status, payload, headers)

    monkeypatch.setattr(fake_walkme, "json_response", rounded_rows)
    result = _run(path, parallel, tmp_path)
    (listed,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    assert listed["updatedAt"] == "2030-01-01T00:00:04.600Z", listed  # the task's own last add
    assert _members(sandbox) == set(WANTED)
    assert isinstance(result, dict), result
    assert result["verified"] is True, result


# == 2. a tie: a whole second "stands for" exactly the next second's .000 ============================
@pytest.mark.parametrize("parallel", [1, 4])
@pytest.mark.parametrize("path", ["hook-create", "sync-create"])
def test_an_honest_create_whose_last_add_lands_on_the_next_whole_second_is_not_failed(
    sandbox, monkeypatch, tmp_path, path, parallel
):
    """WalkMe answers the create in whole seconds (cut) and its adds, as its listing, in
    milliseconds (review 42's mix the other way round). Nobody else touches the segment: create at
    04.500 (answered "…:04Z"), adds at 04.750 and 05.000 (answered "04.750Z", "05.000Z"); the
    listing shows 05.000, the task's own last add.

    Before 9a01bae 05.000 was kept (later by value): verified. Now "04" stands for up to 05.000 and
    "05.000" for 05.000: a tie, and ``note`` keeps the first noted ("04", only a strictly later last
    moment replaces it). The listed 05.000 is a whole second after "04": the honest create fails as
    "another client changed it" (any add landing on the .000 of the next second does this)."""
    _clock(monkeypatch, datetime(2030, 1, 1, 0, 0, 4, 500_000, tzinfo=timezone.utc), 250)
    json_response = fake_walkme.json_response

    def whole_seconds_for_the_create(status, payload, headers=None):
        if status == 201 and isinstance(payload, dict):
            payload = {**payload, "updatedAt": _cut(payload["updatedAt"])}
        return json_response(status, payload, headers)

    monkeypatch.setattr(fake_walkme, "json_response", whole_seconds_for_the_create)
    result = _run(path, parallel, tmp_path)
    (listed,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    assert listed["updatedAt"] == "2030-01-01T00:00:05.000Z", listed  # the task's own last add
    assert _members(sandbox) == set(WANTED)
    assert isinstance(result, dict), result
    assert result["verified"] is True, result


# == 3. a serializer that drops trailing zeros: a write on a whole second hides a later edit ========


@pytest.mark.parametrize("parallel", [1, 4])
@pytest.mark.parametrize("path", ["hook-create", "sync-create"])
def test_a_swap_after_the_last_add_is_caught_where_walkme_drops_trailing_zeros(
    sandbox, monkeypatch, tmp_path, path, parallel
):
    """WalkMe writes update times in milliseconds, trailing zeros dropped (answers and listing
    alike: "05.2Z", and "05Z" for 05.000; ``_is_later``'s docstring allows for it). Create at 04.800
    ("04.8Z"), adds at 05.000 ("05Z") and 05.200 ("05.2Z"); after the last add was answered, another
    client swaps a member at 05.400: the listing shows "05.4Z", the count is unchanged.

    The task's last write was answered "05.2Z", with a fraction, and the edit is 200 ms after it:
    before 9a01bae the read-back kept 05.2 and failed the task ("another client changed it"). Now
    ``note`` keeps "05Z", the first add's answer, because a time without a fraction "stands for" up
    to 06.000, and ``_is_later`` compares "05.4Z" with "05Z" only to the whole second: the task
    reports ``verified: True`` on a segment holding "intruder". Neither documented limit applies:
    every write was answered with its time, and WalkMe does not write whole seconds (the 05.000
    answer only looks whole), so any change with a write landing on a .000 in its last second
    loses the check for the rest of that second."""
    _clock(monkeypatch, datetime(2030, 1, 1, 0, 0, 4, 800_000, tzinfo=timezone.utc), 200)
    json_response = fake_walkme.json_response

    def trimmed_times(status, payload, headers=None):
        if isinstance(payload, dict) and isinstance(payload.get("updatedAt"), str):
            payload = {**payload, "updatedAt": _trimmed(payload["updatedAt"])}
        elif isinstance(payload, list):
            payload = [
                {**row, "updatedAt": _trimmed(row["updatedAt"])} if isinstance(row, dict) else row
                for row in payload
            ]
        return json_response(status, payload, headers)

    monkeypatch.setattr(fake_walkme, "json_response", trimmed_times)
    seen = _another_client_swaps_after(monkeypatch, writes=3)
    result = _run(path, parallel, tmp_path)
    members = _members(sandbox)
    (listed,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    assert listed["updatedAt"] == "2030-01-01T00:00:05.400Z", listed  # the swap, 200 ms after 05.200
    assert seen["swapped"] and "intruder" in members, (seen, members, result)
    assert not isinstance(result, dict), f"reported success with members {sorted(members)}: {result!r}"
    assert "another client changed it" in result, result
