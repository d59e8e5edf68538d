"""Ids from files and object storage, and delta sync with a snapshot, against the sandbox over HTTP."""

from __future__ import annotations

import pytest

from airflow_provider_segments._compat import AirflowFailException, ObjectStoragePath
from airflow_provider_segments.exceptions import (
    PartialUpdateError,
    SegmentsInputMissingError,
    SegmentsValidationError,
)
from airflow_provider_segments.membership import StateStore
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeSyncSegmentOperator,
    WalkMeUpdateSegmentOperator,
)
from airflow_provider_segments.testing import TEST_SYSTEM_GUID

N = 60_001


def ids(n: int, prefix: str = "user") -> list[str]:
    return [f"{prefix}{i:07d}@example.com" for i in range(n)]


def writes(sandbox) -> list[tuple[str, int]]:
    return [(r["action"], r["ids"]) for r in sandbox.requests if r.get("action")]


def members(sandbox, guid) -> list[str]:
    return sandbox.walkme.members(TEST_SYSTEM_GUID, guid)


# -- input from files ----------------------------------------------------------------------------
def test_create_from_a_local_file_of_60001_ids_streams_them_in_three_requests(sandbox, tmp_path):
    wanted = ids(N)
    path = tmp_path / "audience.txt"
    path.write_text("\n".join(wanted[:30_000]) + "\n\n" + "\n".join(wanted[30_000:] + wanted[:5]) + "\n")
    result = WalkMeCreateSegmentOperator(task_id="c", name="From file", user_ids_path=str(path)).execute({})
    assert result["user_count"] == N and result["requests"] == 3
    # blank line skipped, duplicates dropped (the add chunks go out in parallel: in any order)
    assert sorted(members(sandbox, result["segment_guid"])) == sorted(wanted)
    sent = writes(sandbox)
    assert sent[0] == ("create", 25_000) and sorted(sent[1:]) == [("add", 10_001), ("add", 25_000)]


def test_update_from_an_object_storage_path_with_60001_ids(sandbox, tmp_path):
    wanted = ids(N, "obj")
    uri = f"file://{tmp_path}/bucket/audience.txt"  # resolved by Airflow's object storage, as s3:// would be
    path = ObjectStoragePath(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(wanted) + "\n")
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Obj", ["stale"])["guid"]
    result = WalkMeUpdateSegmentOperator(
        task_id="u", segment_guid=guid, action="override", user_ids_path=uri
    ).execute({})
    assert result["user_count"] == N and result["requests"] == 3
    assert sorted(members(sandbox, guid)) == sorted(wanted)  # the add chunks go out in parallel


def test_csv_with_a_named_column(sandbox, tmp_path):
    path = tmp_path / "audience.csv"
    path.write_text('account,email\n1,"a@x.com"\n2,b@x.com\n\n3,"c,d@x.com"\n')
    result = WalkMeCreateSegmentOperator(
        task_id="c", name="CSV", user_ids_path=str(path), user_ids_column="email"
    ).execute({})
    assert members(sandbox, result["segment_guid"]) == ["a@x.com", "b@x.com", "c,d@x.com"]
    with pytest.raises(
        AirflowFailException, match=r"has no column 'mail'; its header has: 'account', 'email'"
    ):
        WalkMeCreateSegmentOperator(
            task_id="c2", name="CSV2", user_ids_path=str(path), user_ids_column="mail"
        ).execute({})


def test_a_bad_id_deep_in_the_file_fails_with_its_line_number_and_nothing_is_sent(sandbox, tmp_path):
    lines = ids(N)
    lines[N - 1] = "z" * 101  # the last line
    path = tmp_path / "audience.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AirflowFailException, match=rf"audience.txt line {N:,} = 'zzz.*101 characters"):
        WalkMeCreateSegmentOperator(task_id="c", name="Bad", user_ids_path=str(path)).execute({})
    assert sandbox.requests == []


def test_exactly_one_input_is_required():
    with pytest.raises(SegmentsValidationError, match="exactly one of user_ids"):
        WalkMeCreateSegmentOperator(task_id="c", name="x")
    with pytest.raises(SegmentsValidationError, match="exactly one of user_ids"):
        WalkMeCreateSegmentOperator(task_id="c", name="x", user_ids=["a"], user_ids_path="/tmp/a")


def test_a_missing_file_fails_naming_it_and_is_left_to_the_retries(sandbox, tmp_path):
    with pytest.raises(SegmentsInputMissingError, match=r"nope\.txt' does not exist"):
        WalkMeCreateSegmentOperator(task_id="c", name="x", user_ids_path=str(tmp_path / "nope.txt")).execute(
            {}
        )
    assert sandbox.requests == []


# -- delta sync ----------------------------------------------------------------------------------
def sync(state, **kwargs):
    return WalkMeSyncSegmentOperator(task_id="s", name="Synced", state_path=str(state), **kwargs).execute({})


def test_first_sync_is_full_then_only_the_difference_is_sent(sandbox, tmp_path):
    state = tmp_path / "state" / "synced.snapshot"
    first = ids(60_000)
    result = sync(state, user_ids=first)
    assert (result["mode"], result["added"], result["removed"], result["requests"]) == ("full", 60_000, 0, 3)
    assert list(read_snapshot(state).ids) == first

    second = first[500:] + ids(300, "new")  # 500 gone, 300 new
    sandbox.clear_request_log()
    result = sync(state, user_ids=second)
    assert result["mode"] == "delta"
    assert (result["added"], result["removed"], result["unchanged"], result["requests"]) == (
        300,
        500,
        59_500,
        2,
    )
    assert sorted(writes(sandbox)) == [("add", 300), ("remove", 500)]  # in parallel: any order
    assert set(members(sandbox, result["segment_guid"])) == set(second)
    assert list(read_snapshot(state).ids) == second


def test_full_refresh_overrides_even_with_a_snapshot(sandbox, tmp_path):
    state = tmp_path / "s.snapshot"
    sync(state, user_ids=["a", "b"])
    sandbox.clear_request_log()
    result = sync(state, user_ids=["b", "c"], full_refresh=True)
    assert result["mode"] == "full" and writes(sandbox) == [("override", 2)]


def test_failure_mid_sync_keeps_the_old_snapshot_and_a_rerun_converges(sandbox, tmp_path):
    state = tmp_path / "s.snapshot"
    sync(state, user_ids=ids(10_000))
    before = state.read_bytes()
    target = ids(60_000, "next")  # 60,000 adds (3 chunks) + 10,000 removes
    sandbox.inject_fault("/public/", 500, method="PUT", skip=1, count=50)
    with pytest.raises(PartialUpdateError, match=r"1 of 4 chunks were applied") as failure:
        sync(state, user_ids=target, max_removal_fraction=1.0)
    # The three add chunks go out in parallel, so whichever reaches the server first lands: the error
    # must name that chunk and its size, and the server must hold exactly that change. The remove
    # (chunk 4) waits for the adds, so it is never sent.
    error = failure.value
    assert f"({error.applied_ids:,} of 70,000 ids)" in str(error) and error.unsent_chunks == [4]
    (guid,) = [s["guid"] for s in sandbox.walkme.segments(TEST_SYSTEM_GUID) if s["name"] == "Synced"]
    held, old = set(members(sandbox, guid)), set(ids(10_000))
    assert len(error.landed_chunks) == 1 and error.landed_chunks[0] in (1, 2, 3)
    assert held >= old and len(held - old) == error.applied_ids and held - old <= set(target)
    assert state.read_bytes() == before  # the snapshot never runs ahead of the API
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []  # nor its body, written ahead
    sandbox.clear_faults()
    result = sync(state, user_ids=target, max_removal_fraction=1.0)
    # The journal left 70,000 ids unknown: resending them as a delta (4 chunks) costs more than a full
    # override (3 chunks), so the recovery is full.
    assert result["mode"] == "full" and set(members(sandbox, result["segment_guid"])) == set(target)
    assert list(read_snapshot(state).ids) == target


def test_dry_run_sends_nothing_and_leaves_the_snapshot_alone(sandbox, tmp_path):
    state = tmp_path / "s.snapshot"
    result = sync(state, user_ids=ids(30_000), dry_run=True)
    assert (result["mode"], result["requests"], result["dry_run"]) == ("full", 2, True)
    assert writes(sandbox) == [] and not state.exists()  # read-only calls at most
    sync(state, user_ids=ids(30_000))
    before = state.read_bytes()
    sandbox.clear_request_log()
    result = sync(state, user_ids=ids(30_100), dry_run=True)
    assert (result["mode"], result["added"], result["removed"], result["requests"]) == ("delta", 100, 0, 1)
    assert writes(sandbox) == [] and state.read_bytes() == before


def test_a_snapshot_of_another_segment_is_not_used(sandbox, tmp_path):
    state = tmp_path / "s.snapshot"
    sync(state, user_ids=["a"])
    sandbox.clear_request_log()
    result = WalkMeSyncSegmentOperator(
        task_id="s", name="Other", state_path=str(state), user_ids=["a"]
    ).execute({})
    assert result["mode"] == "full" and writes(sandbox) == [("create", 1)]


def test_snapshot_on_object_storage(sandbox, tmp_path):
    state = f"file://{tmp_path}/state/synced.snapshot"
    sync(state, user_ids=["a", "b", "c"])
    result = sync(state, user_ids=["a", "b", "d"])
    assert (result["mode"], result["added"], result["removed"]) == ("delta", 1, 1)
    assert list(read_snapshot(state).ids) == ["a", "b", "d"]
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["synced.snapshot"]  # no temp left


def test_a_foreign_file_as_state_path_is_refused(sandbox, tmp_path):
    state = tmp_path / "not-a-snapshot.txt"
    state.write_text("hello\n")
    with pytest.raises(AirflowFailException, match="is not a segments snapshot"):
        sync(state, user_ids=["a"])
    assert sandbox.requests == []


def read_snapshot(state):
    import logging

    return StateStore(str(state)).read_snapshot(logging.getLogger("test"))


def test_a_sync_that_sends_nothing_returns_the_time_of_the_last_change(sandbox, tmp_path):
    state = tmp_path / "s.snapshot"
    first = sync(state, user_ids=["a", "b"])
    sandbox.clear_request_log()
    second = sync(state, user_ids=["b", "a"])
    assert (second["mode"], second["requests"], writes(sandbox)) == ("delta", 0, [])
    # The sensor's window counts from the last change that sent anything: it passes at once.
    assert second["changed_at"] == first["changed_at"]


# -- the snapshot's body is written while the requests are out -------------------------------------
def test_the_snapshots_body_is_on_disk_before_the_change_is_verified(sandbox, tmp_path, monkeypatch):
    """While the writes are out, a thread writes the ids' lines beside the snapshot and flushes them;
    once the platform confirmed the change only the header (with its evidence) is written."""
    state = tmp_path / "state" / "synced.snapshot"
    wanted = ids(60_000)
    seen_once_verified: list[tuple[str, int]] = []
    confirm_lease = StateStore.confirm_lease  # the first step after the read-back

    def confirmed(store):
        seen_once_verified.extend((p.name, p.stat().st_size) for p in state.parent.iterdir())
        return confirm_lease(store)

    monkeypatch.setattr(StateStore, "confirm_lease", confirmed)
    sync(state, user_ids=wanted)
    body_bytes = sum(len(user_id) + 1 for user_id in wanted)
    assert any(".tmp-" in name and size >= body_bytes for name, size in seen_once_verified), (
        seen_once_verified
    )
    sandbox.clear_request_log()
    sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Unrelated", ["x"])  # (the sandbox stays busy)
    result = sync(state, user_ids=wanted[100:])
    assert (result["mode"], result["removed"], writes(sandbox)) == ("delta", 100, [("remove", 100)])
    assert list(read_snapshot(state).ids) == wanted[100:]
    assert sorted(p.name for p in state.parent.iterdir()) == ["synced.snapshot"]  # no temporary left


def test_a_header_too_long_for_the_room_left_still_makes_a_readable_snapshot(sandbox, tmp_path):
    """A listed name of thousands of escaped characters does not fit the header's room: the snapshot
    is then written whole, and the next sync still finds it and sends only the difference."""
    long_name = "\U0001f600" * 1_000  # 12 bytes each in the JSON header
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, long_name, ["old"])["guid"]
    state = tmp_path / "s.snapshot"

    def by_guid(user_ids):
        return WalkMeSyncSegmentOperator(
            task_id="s", segment_guid=guid, state_path=str(state), user_ids=user_ids, max_removal_fraction=1.0
        ).execute({})

    assert by_guid(["a", "b"])["mode"] == "full"
    snapshot = read_snapshot(state)
    assert snapshot is not None and snapshot.name == long_name and list(snapshot.ids) == ["a", "b"]
    result = by_guid(["a", "c"])
    assert (result["mode"], result["added"], result["removed"]) == ("delta", 1, 1)
    assert sorted(members(sandbox, guid)) == ["a", "c"]
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_a_snapshot_that_cannot_be_written_fails_saying_the_segment_holds_the_input(
    sandbox, tmp_path, monkeypatch
):
    """The disk fills while the snapshot's body is written beside it: the change stands (verified),
    and the error says so, then why the snapshot is missing; no temporary is left, and the next run
    (the journal stays) syncs in full and records it."""
    from airflow_provider_segments.exceptions import SegmentsError
    from airflow_provider_segments.membership import state_file

    state = tmp_path / "s.snapshot"
    wanted = ids(30_000)

    def full_disk(state_file_object):
        raise OSError(28, "No space left on device")

    write_ahead = state_file.WrittenAhead.__init__
    monkeypatch.setattr(state_file.WrittenAhead, "__init__", lambda self, target, body: full_disk(target))
    with pytest.raises(
        SegmentsError, match=r"holds the input \(30,000 ids, verified\).*No space left"
    ) as caught:
        sync(state, user_ids=wanted)
    assert not isinstance(caught.value, OSError)
    (guid,) = [s["guid"] for s in sandbox.walkme.segments(TEST_SYSTEM_GUID) if s["name"] == "Synced"]
    assert sorted(members(sandbox, guid)) == wanted and not state.exists()
    monkeypatch.setattr(state_file.WrittenAhead, "__init__", write_ahead)
    result = sync(state, user_ids=wanted)
    assert result["mode"] == "full" and list(read_snapshot(state).ids) == wanted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.snapshot"]


def test_what_a_killed_sync_left_beside_the_snapshot_is_removed_by_the_next(sandbox, tmp_path):
    """A sync killed while its writes were out leaves the body it wrote ahead (and a journal's copy);
    the next sync of the state_path, holding the lease, removes them: the folder does not fill up
    with a copy of the ids per killed run. Files of other names stay."""
    state = tmp_path / "s.snapshot"
    left = [f"s.snapshot.tmp-{'a' * 32}", f"s.snapshot.journal.tmp-{'b' * 32}"]
    kept = ["s.snapshot.tmp-notours", f"other.snapshot.tmp-{'c' * 32}", "s.snapshot.tmp-" + "d" * 31]
    for name in left + kept:
        (tmp_path / name).write_text("user1\nuser2\n")
    sync(state, user_ids=["a", "b"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["s.snapshot", *kept])
