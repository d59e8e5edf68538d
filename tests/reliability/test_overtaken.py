"""A change overtaken by another client between its last write and its read-back (review 8).

Two workers with their own state_path (no shared lease) sync one segment; the other worker's whole
sync lands after this task's last write was answered. The count and update time read back are the
other worker's: without tying the read-back to this task's own writes, the task reported
``verified`` on the other worker's members, and its snapshot then kept that state for good.
Where WalkMe's write answers carry the segment's update time (the test server's do), a later
listed time means someone wrote after this task: it fails, and its rerun repairs the segment.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support import impatient_sandbox

from airflow_provider_segments.exceptions import MembershipMismatchError
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.operators.walkme import WalkMeSyncSegmentOperator, WalkMeUpdateSegmentOperator
from airflow_provider_segments.testing import TEST_SYSTEM_GUID


@pytest.fixture
def sandbox(monkeypatch):
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.5)


def sync(state, **kwargs):
    kwargs.setdefault("max_removal_fraction", 1.0)
    return WalkMeSyncSegmentOperator(
        task_id="sync", name="Audience", state_path=str(state), **kwargs
    ).execute({})


def members(sandbox) -> set[str]:
    (segment,) = [s for s in sandbox.walkme.segments(TEST_SYSTEM_GUID) if s["name"] == "Audience"]
    return set(sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]))


def after_the_first_write(monkeypatch, other_client: Callable[[], object]) -> list[int]:
    """Run ``other_client`` once, right after this task's first PUT was answered."""
    original, fired = WalkMeHook.put_users, []

    def put_then_other_client(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if not fired:
            fired.append(1)
            monkeypatch.setattr(WalkMeHook, "put_users", original)
            other_client()

    monkeypatch.setattr(WalkMeHook, "put_users", put_then_other_client)
    return fired


@pytest.mark.parametrize(
    ("first", "wanted", "other", "full_refresh"),
    [
        (["a", "b"], ["a", "b", "x"], ["c", "d", "e"], False),  # a delta of one add, overtaken
        (["a", "b"], ["a", "x"], ["c", "d"], True),  # a full sync in one chunk, overtaken
    ],
)
def test_a_sync_overtaken_after_its_last_write_fails_and_its_rerun_repairs(
    sandbox, tmp_path, monkeypatch, first, wanted, other, full_refresh
):
    worker_a, worker_b = tmp_path / "a.snapshot", tmp_path / "b.snapshot"
    sync(worker_a, user_ids=first)
    fired = after_the_first_write(monkeypatch, lambda: sync(worker_b, user_ids=other))
    with pytest.raises(MembershipMismatchError, match="after this task's last write"):
        sync(worker_a, user_ids=wanted, full_refresh=full_refresh)
    assert fired and members(sandbox) == set(other)
    again = sync(worker_a, user_ids=wanted)  # the rerun: a full sync, since the snapshot is not trusted
    assert members(sandbox) == set(wanted)
    assert (again["verified"], again["verification"], again["mode"]) == (True, "exact", "full")


def test_an_override_overtaken_after_its_write_fails(sandbox, tmp_path, monkeypatch):
    sync(tmp_path / "a.snapshot", user_ids=["a", "b"])
    (segment,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    after_the_first_write(monkeypatch, lambda: sync(tmp_path / "b.snapshot", user_ids=["c", "d"]))
    with pytest.raises(MembershipMismatchError, match="after this task's last write"):
        WalkMeUpdateSegmentOperator(
            task_id="u", segment_guid=segment["guid"], action="override", user_ids=["x", "y"]
        ).execute({})


def test_a_change_nobody_overtook_is_still_exact(sandbox, tmp_path):
    sync(tmp_path / "a.snapshot", user_ids=["a", "b"])
    result = sync(tmp_path / "a.snapshot", user_ids=["a", "b", "x"])
    assert (result["verified"], result["verification"], result["mode"]) == (True, "exact", "delta")


# -- review 9: the comparison must not fail correct changes ----------------------------------------
def answer_times_coarser(monkeypatch, cut: Callable[[str], str]) -> None:
    """The test server's PUT answers carry the instant its listing shows, written less precisely."""
    import json

    from airflow_provider_segments.testing import walkme as walkme_app
    from airflow_provider_segments.testing.base import Response

    original = walkme_app.WalkMeApp._update

    def coarse(self, *args, **kwargs):
        response = original(self, *args, **kwargs)
        body = json.loads(response.body)
        body["updatedAt"] = cut(body["updatedAt"])
        return Response(response.status, json.dumps(body).encode(), response.headers)

    monkeypatch.setattr(walkme_app.WalkMeApp, "_update", coarse)


@pytest.mark.parametrize(
    "cut",
    # (a fraction cut to tenths cannot be told from a server that drops trailing zeros: compared as is)
    [lambda t: t[:19] + "Z", lambda t: t[:19] + "+00:00", lambda t: t[:23] + "+00:00"],
    ids=["seconds", "seconds-offset", "ms-offset"],
)
def test_write_answers_less_precise_than_the_listing_do_not_fail_a_correct_change(
    sandbox, tmp_path, monkeypatch, cut
):
    sync(tmp_path / "a.snapshot", user_ids=["a", "b"])
    answer_times_coarser(monkeypatch, cut)
    for round_ in range(3):  # (a listing that happens to fall on .000 would hide it)
        wanted = ["a", "b", f"x{round_}"]
        result = sync(tmp_path / "a.snapshot", user_ids=wanted)
        assert members(sandbox) == set(wanted)
        assert (result["verified"], result["verification"]) == (True, "exact")


def test_coarse_write_answers_still_catch_a_change_made_a_second_later(sandbox, tmp_path, monkeypatch):
    import time

    sync(tmp_path / "a.snapshot", user_ids=["a", "b"])
    answer_times_coarser(monkeypatch, lambda t: t[:19] + "Z")

    def later_other_client():
        time.sleep(1.05)  # the other client's write is listed in a later second than this task's
        sync(tmp_path / "b.snapshot", user_ids=["c", "d", "e"])

    after_the_first_write(monkeypatch, later_other_client)
    with pytest.raises(MembershipMismatchError, match="after this task's last write"):
        sync(tmp_path / "a.snapshot", user_ids=["a", "b", "x"])


# -- review 11: precision read from the text, not the string's length --------------------------------
from datetime import datetime, timedelta, timezone  # noqa: E402


def server_clock(monkeypatch, trim: bool) -> None:
    """The test server's clock from now on: a second tomorrow, +500 ms, then +50 ms per write;
    written with trailing zeros dropped when ``trim`` (as Go's RFC3339Nano writes them)."""
    from airflow_provider_segments.testing import walkme as walkme_app

    base = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    ticks = iter(range(10_000))

    def now() -> str:
        moment = base + timedelta(milliseconds=500 + 50 * next(ticks))
        text = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if trim:
            head, _, frac = text[:-1].partition(".")
            frac = frac.rstrip("0")
            text = head + ("." + frac if frac else "") + "Z"
        return text

    monkeypatch.setattr(walkme_app, "_now", now)


@pytest.mark.parametrize("trim", [False, True], ids=["padded", "trailing-zeros-dropped"])
def test_an_overtaken_change_is_caught_whatever_the_servers_time_format(sandbox, tmp_path, monkeypatch, trim):
    worker_a, worker_b = tmp_path / "a.snapshot", tmp_path / "b.snapshot"
    sync(worker_a, user_ids=["a", "b"])
    server_clock(monkeypatch, trim)  # this task's write: .500 ("…:00.5Z" trimmed); the other's: .550
    fired = after_the_first_write(monkeypatch, lambda: sync(worker_b, user_ids=["c", "d", "e"]))
    try:
        result = sync(worker_a, user_ids=["a", "b", "x"])
    except MembershipMismatchError:
        result = None
    assert fired and members(sandbox) == {"c", "d", "e"}  # the other worker's members are listed
    assert result is None, (
        f"reported {result.get('verified')=} {result.get('verification')=} on wrong members"
    )


def test_with_trimmed_times_the_next_sync_after_an_overtaken_one_repairs_the_segment(
    sandbox, tmp_path, monkeypatch
):
    worker_a, worker_b = tmp_path / "a.snapshot", tmp_path / "b.snapshot"
    sync(worker_a, user_ids=["a", "b"])
    server_clock(monkeypatch, trim=True)
    after_the_first_write(monkeypatch, lambda: sync(worker_b, user_ids=["c", "d", "e"]))
    with pytest.raises(MembershipMismatchError):  # overtaken: it must say so
        sync(worker_a, user_ids=["a", "b", "x"])
    sync(worker_a, user_ids=["a", "b", "x"])  # the next scheduled run, same input
    assert members(sandbox) == {"a", "b", "x"}


def answers_finer_than_a_rounded_listing(monkeypatch) -> None:
    """The mirror of review 9's case: the server answers a write with its in-memory instant (7
    fractional digits, as .NET's "o" format writes it) while its listing comes from a store that keeps
    whole seconds and rounds (MySQL DATETIME, PostgreSQL timestamp(0)): 12:00:00.7654321 is listed as
    12:00:01."""
    import json

    from airflow_provider_segments.testing import walkme as walkme_app
    from airflow_provider_segments.testing.base import Response

    base = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    ticks = iter(range(10_000))
    monkeypatch.setattr(
        walkme_app,
        "_now",
        lambda: (base + timedelta(seconds=10 * next(ticks) + 1)).isoformat().replace("+00:00", "Z"),
    )
    original = walkme_app.WalkMeApp._update

    def finer(self, *args, **kwargs):
        response = original(self, *args, **kwargs)
        body = json.loads(response.body)
        rounded = datetime.fromisoformat(body["updatedAt"].replace("Z", "+00:00"))
        exact = rounded - timedelta(microseconds=234568)  # .765432 -> rounds up to the listed second
        body["updatedAt"] = exact.strftime("%Y-%m-%dT%H:%M:%S.%f") + "1Z"  # 7 digits
        return Response(response.status, json.dumps(body).encode(), response.headers)

    monkeypatch.setattr(walkme_app.WalkMeApp, "_update", finer)


def test_write_answers_finer_than_a_rounded_listing_do_not_fail_a_correct_change(
    sandbox, tmp_path, monkeypatch
):
    sync(tmp_path / "a.snapshot", user_ids=["a", "b"])
    answers_finer_than_a_rounded_listing(monkeypatch)
    result = sync(tmp_path / "a.snapshot", user_ids=["a", "b", "x"])
    assert members(sandbox) == {"a", "b", "x"}
    assert (result["verified"], result["verification"]) == (True, "exact")
