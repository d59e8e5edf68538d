"""A segment's membership is exactly what the task was asked for, or the task fails and says so:
after failed runs with other inputs, hostile text, slow or lost creates, deletes whose answer was
lost, and (model-based) any sequence of failures followed by one clean run. Against the sandbox
over HTTP; every assertion is on what the sandbox holds or received."""

from __future__ import annotations

import gc
import json
import os
import random
import re
import tempfile
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from support import impatient_sandbox, sandbox_conn_env

from airflow_provider_segments import id_files
from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.exceptions import (
    MembershipMismatchError,
    PartialUpdateError,
    SegmentsBusyError,
    SegmentsError,
)
from airflow_provider_segments.hooks import _base as base_hooks
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.membership import read_back
from airflow_provider_segments.membership import writes as sync_module
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeDeleteSegmentOperator,
    WalkMeSyncSegmentOperator,
    WalkMeUpdateSegmentOperator,
)
from airflow_provider_segments.testing import TEST_SYSTEM_GUID

SEGMENTS = f"/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"


@pytest.fixture
def sandbox(monkeypatch):
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.5)


def segments_named(sandbox, name: str) -> list[dict]:
    return [s for s in sandbox.walkme.segments(TEST_SYSTEM_GUID) if s["name"] == name]


def members_of(sandbox, name: str) -> set[str]:
    (segment,) = segments_named(sandbox, name)
    return set(sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]))


def writes(sandbox) -> list[dict]:
    return [
        r for r in sandbox.requests if r["method"] in ("POST", "PUT", "DELETE") and "segment" in r["path"]
    ]


def sync(state, name="Audience", **kwargs):
    kwargs.setdefault("max_removal_fraction", 1.0)  # the guards have tests of their own
    return WalkMeSyncSegmentOperator(task_id="sync", name=name, state_path=str(state), **kwargs).execute({})


# -- 1. a delta after a failed run with other input ---------------------------------------------
def test_a_failed_delta_then_a_run_with_new_input_leaves_exactly_the_new_input(sandbox, tmp_path):
    state = tmp_path / "audience.snapshot"
    sync(state, user_ids=["a", "b", "c", "d"])
    # Yesterday's run: its `add` (e, f) lands, its `remove` (a, b) is refused.
    sandbox.inject_fault(f"{SEGMENTS}/", 400, method="PUT", skip=1)
    with pytest.raises(PartialUpdateError):
        sync(state, user_ids=["c", "d", "e", "f"])
    sandbox.clear_faults()
    sync(state, user_ids=["c", "d", "g"])  # today's audience
    assert members_of(sandbox, "Audience") == {"c", "d", "g"}


def test_ids_a_failed_run_removed_with_a_lost_answer_are_added_back(sandbox, tmp_path):
    state = tmp_path / "audience.snapshot"
    sync(state, user_ids=["a", "b", "c", "d"])
    # The `remove` of a and b is applied, but every answer is lost: the run fails.
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", skip=1, lose_response=True, count=5)
    with pytest.raises(PartialUpdateError):
        sync(state, user_ids=["c", "d", "e"])
    sandbox.clear_faults()
    sync(state, user_ids=["a", "c", "d"])
    assert members_of(sandbox, "Audience") == {"a", "c", "d"}


def test_a_recovery_delta_reports_the_change_the_platform_saw_not_the_ids_it_resent(
    sandbox, tmp_path, monkeypatch
):
    """Hostile review 28: a failed run's writes never landed (WalkMe's update time did not move); the
    rerun resends its ids as a delta, and reported them as added and removed although the segment
    held those members all along. The XCom and lineage now say what changed on the platform; the ids
    sent are counted apart (``ids_sent``)."""
    from airflow_provider_segments.hooks.walkme import WalkMeHook
    from airflow_provider_segments.lineage import walkme_change

    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 4)  # the resend is cheaper as a delta
    state = tmp_path / "audience.snapshot"
    first = [f"u{i:02d}" for i in range(20)]
    sync(state, user_ids=first)
    sandbox.inject_fault(f"{SEGMENTS}/", 500, method="PUT", count=50)  # nothing of the next run lands
    with pytest.raises(PartialUpdateError):
        sync(state, user_ids=[*first[3:], "n0"])
    sandbox.clear_faults()
    result = sync(state, user_ids=[*first[1:], "n1"])  # u00 leaves, n1 joins
    assert members_of(sandbox, "Audience") == {*first[1:], "n1"}
    assert result["mode"] == "delta" and result["verified"] is True
    assert (result["added"], result["removed"], result["unchanged"], result["user_count"]) == (1, 1, 19, 20)
    sent = result["ids_sent"]  # the failed run's four ids resent, and the two changes
    assert sent == sum(r["ids"] for r in writes(sandbox)[-result["requests"] :]) and sent > 2
    assert walkme_change(None, result).ids_sent == sent


def test_a_killed_full_sync_makes_the_next_run_full(sandbox, tmp_path, monkeypatch):
    state = tmp_path / "audience.snapshot"
    sync(state, user_ids=["a", "b"])
    original = WalkMeHook.put_users

    def killed_after_override(self, system, guid, action, user_ids, **kwargs):
        original(self, system, guid, action, user_ids, **kwargs)
        raise KeyboardInterrupt  # the process dies between two chunks

    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)
    monkeypatch.setattr(WalkMeHook, "put_users", killed_after_override)
    with pytest.raises(KeyboardInterrupt):
        sync(state, user_ids=["x", "y", "z"], full_refresh=True)
    monkeypatch.setattr(WalkMeHook, "put_users", original)
    result = sync(state, user_ids=["a", "b", "q"])
    assert result["mode"] == "full"
    assert members_of(sandbox, "Audience") == {"a", "b", "q"}


# -- 2. byte-order marks ---------------------------------------------------------------------------
def test_a_byte_order_mark_is_not_part_of_the_first_id(sandbox, tmp_path):
    lines = tmp_path / "audience.txt"
    lines.write_bytes(b"\xef\xbb\xbfuser1\r\nuser2\r\n")
    csv_file = tmp_path / "audience.csv"
    csv_file.write_bytes(b"\xef\xbb\xbfemail,plan\r\nuser3,pro\r\n")
    state = tmp_path / "audience.snapshot"
    sync(state, user_ids_path=str(lines))
    assert members_of(sandbox, "Audience") == {"user1", "user2"}
    sync(state, user_ids_path=str(csv_file), user_ids_column="email")
    assert members_of(sandbox, "Audience") == {"user3"}


# -- 3. the snapshot holds the normalised ids --------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(["a", "b", "a"], {"a", "b"}, id="duplicates"),
        pytest.param([1, 2, 2], {"1", "2"}, id="ints"),
        pytest.param('["ab", "cd"]', {"ab", "cd"}, id="json-string"),
    ],
)
def test_the_snapshot_stores_the_validated_ids_and_the_next_run_works(sandbox, tmp_path, given, expected):
    state = tmp_path / "audience.snapshot"
    sync(state, user_ids=given)
    assert state.read_text().splitlines()[1:] == sorted(expected, key=str)
    result = sync(state, user_ids=[*sorted(expected), "new"])
    assert (result["mode"], result["added"], result["removed"]) == ("delta", 1, 0)
    assert members_of(sandbox, "Audience") == {*expected, "new"}


# -- 4. a snapshot of a deleted and recreated segment -----------------------------------------------
def test_a_by_name_sync_after_the_segment_was_recreated_is_full(sandbox, tmp_path):
    state = tmp_path / "audience.snapshot"
    first = sync(state, user_ids=["a", "b"])
    WalkMeHook().delete_segment(first["segment_guid"])
    sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Audience", ["stranger"])
    result = sync(state, user_ids=["a", "b"])
    assert result["mode"] == "full"
    assert members_of(sandbox, "Audience") == {"a", "b"}


# -- 5. control characters -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bad", "code"),
    [
        ("a\rb", "U+000D"),
        ("a\nb", "U+000A"),
        ("a\x00b", "U+0000"),
        ("\ufeffa", "U+FEFF"),
        ("a\u2028b", "U+2028"),
        ("a\u2029b", "U+2029"),
        ("a\x85b", "U+0085"),
        ("a\x7fb", "U+007F"),
    ],
)
def test_control_characters_are_refused_naming_the_id_before_anything_is_sent(sandbox, tmp_path, bad, code):
    with pytest.raises(
        AirflowFailException, match=rf"user_ids\[1\] = .* control character {re.escape(code)}"
    ):
        WalkMeCreateSegmentOperator(task_id="c", name="A", user_ids=["ok", bad]).execute({})
    path = tmp_path / "ids.txt"
    path.write_text(f"ok\n{bad}\n", newline="")
    line = 3 if bad == "a\nb" else 2  # a newline in a file is a line break: its second half is line 3
    if bad != "a\nb":
        with pytest.raises(
            AirflowFailException, match=rf"ids.txt line {line} = .* control character {re.escape(code)}"
        ):
            WalkMeCreateSegmentOperator(task_id="c", name="A", user_ids_path=str(path)).execute({})
    assert writes(sandbox) == []


# -- 6. a slow create is not duplicated ---------------------------------------------------------
def test_a_create_slower_than_the_read_timeout_is_found_not_sent_again(sandbox):
    # The server takes 2.5 s (the client gives up after 1 s) and then creates the segment.
    sandbox.inject_fault(SEGMENTS, method="POST", delay=2.5)
    started = time.monotonic()
    result = WalkMeCreateSegmentOperator(task_id="c", name="Slow", user_ids=["a", "b"]).execute({})
    time.sleep(max(0.0, started + 2.7 - time.monotonic()))  # until the slow create has surely landed
    assert len(segments_named(sandbox, "Slow")) == 1
    assert result["segment_guid"] == segments_named(sandbox, "Slow")[0]["guid"]
    assert members_of(sandbox, "Slow") == {"a", "b"}
    assert sum(1 for r in writes(sandbox) if r["method"] == "POST") == 1


def test_a_create_that_never_shows_up_fails_as_unknown_without_a_resend(sandbox, monkeypatch):
    monkeypatch.setattr(sync_module, "CREATE_LOOKUP_INTERVAL", 0.01)
    sandbox.inject_fault(SEGMENTS, method="POST", drop_connection=True)  # dropped: never applied
    with pytest.raises(SegmentsError, match=r"unknown outcome.*rerun"):
        WalkMeCreateSegmentOperator(task_id="c", name="Lost", user_ids=["a"]).execute({})
    assert [r["method"] for r in writes(sandbox)] == ["POST"]
    result = WalkMeCreateSegmentOperator(task_id="c", name="Lost", user_ids=["a"]).execute({})  # the rerun
    assert result["created"] and members_of(sandbox, "Lost") == {"a"}


# -- 7. a partial create with if_exists="error" converges ----------------------------------------------
def _context(run_id: str) -> dict:
    return {"ti": _task_instance("dag", "create"), "run_id": run_id}


def _task_instance(dag_id: str, task_id: str) -> SimpleNamespace:
    """What the operators read of a task instance: its identity, and XCom pushes (kept here)."""
    pushed: dict = {}
    return SimpleNamespace(
        dag_id=dag_id,
        task_id=task_id,
        map_index=-1,
        pushed=pushed,
        xcom_push=lambda key, value: pushed.update({key: value}),
    )


def test_a_retry_of_a_partial_create_with_if_exists_error_converges(sandbox):
    ids = [f"user{i:05d}" for i in range(30_000)]
    operator = WalkMeCreateSegmentOperator(task_id="create", name="Big", user_ids=ids, if_exists="error")
    sandbox.inject_fault(f"{SEGMENTS}/", 400, method="PUT")  # the `add` of the last 5,000 ids
    with pytest.raises(PartialUpdateError, match="1 of 2 chunks"):
        operator.execute(_context("run-1"))
    sandbox.clear_faults()
    result = operator.execute(_context("run-1"))  # Airflow's retry of the same task in the same run
    assert members_of(sandbox, "Big") == set(ids) and len(segments_named(sandbox, "Big")) == 1
    assert result["segment_guid"] == segments_named(sandbox, "Big")[0]["guid"]
    with pytest.raises(AirflowFailException, match="already exists"):
        operator.execute(_context("run-2"))  # another run: the segment is not its own


# -- 8. a delete whose answer was lost --------------------------------------------------------------
def test_a_delete_whose_answer_was_lost_is_reported_done_with_missing_ok_false(sandbox):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Old", ["a"])["guid"]
    sandbox.inject_fault(f"{SEGMENTS}/", method="DELETE", lose_response=True)
    assert WalkMeDeleteSegmentOperator(task_id="d", segment_guid=guid, missing_ok=False).execute({}) == guid
    assert segments_named(sandbox, "Old") == []
    with pytest.raises(SegmentsError, match="404"):  # a segment that really is not there
        WalkMeDeleteSegmentOperator(task_id="d", segment_guid=guid, missing_ok=False).execute({})


# -- 9. GUIDs: none in a create answer, none hyphenated --------------------------------------------
def test_a_create_answer_without_a_guid_never_sends_to_segment_none(sandbox, monkeypatch):
    monkeypatch.setattr(sync_module, "CREATE_LOOKUP_INTERVAL", 0.01)
    sandbox.inject_fault(SEGMENTS, 201, method="POST", body="{}")
    with pytest.raises(SegmentsError, match="unknown outcome"):
        WalkMeCreateSegmentOperator(task_id="c", name="A", user_ids=["a", "b"]).execute({})
    assert not any("None" in r["path"] for r in sandbox.requests)


def test_a_segment_guid_of_32_hex_digits_is_sent_hyphenated(sandbox):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Hex", ["a"])["guid"]
    WalkMeUpdateSegmentOperator(
        task_id="u", segment_guid=guid.replace("-", "").upper(), action="add", user_ids=["b"]
    ).execute({})
    assert members_of(sandbox, "Hex") == {"a", "b"}
    assert [r["path"] for r in writes(sandbox)] == [f"{SEGMENTS}/{guid.upper()}"]


# == issue 17: membership verified against the platform; one create/delete core ==================
# -- 17.1. an override overtaken by its own retry -------------------------------------------------------
def test_a_late_landing_override_cannot_wipe_the_adds_after_it(sandbox, tmp_path, monkeypatch):
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)
    ids = [f"u{i}" for i in range(5)]  # override 2, add 2, add 1
    sync(tmp_path / "s", user_ids=["old"])
    # The override is held 2.5 s (the client gives up after ~1.1 s), then applied.
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", delay=2.5)
    started = time.monotonic()
    result = sync(tmp_path / "s", user_ids=ids, full_refresh=True)
    time.sleep(max(0.0, started + 2.8 - time.monotonic()))  # until the held copy has surely landed
    assert members_of(sandbox, "Audience") == set(ids)
    assert result["verified"] and result["listed_user_count"] == 5


def test_a_snapshot_the_listed_count_disagrees_with_is_not_used(sandbox, tmp_path):
    state = tmp_path / "s"
    first = sync(state, user_ids=["a", "b", "c"])
    # Out of band (or a write that landed late): b is gone, yet the snapshot says a, b, c.
    WalkMeHook().update_segment(first["segment_guid"], "remove", ["b"])
    result = sync(state, user_ids=["a", "b", "c"])
    assert result["mode"] == "full" and result["requests"] >= 1
    assert members_of(sandbox, "Audience") == {"a", "b", "c"}


def test_a_change_the_read_back_disagrees_with_fails_and_the_retry_repairs_it(sandbox, tmp_path, monkeypatch):
    from airflow_provider_segments.membership import read_back

    monkeypatch.setattr(read_back, "VERIFY_INTERVAL", 0.0)
    original = WalkMeHook.put_users

    def swallowed_add(self, system, guid, action, user_ids, **kwargs):
        if action == "add":
            return  # "acknowledged" but never applied
        original(self, system, guid, action, user_ids, **kwargs)

    monkeypatch.setattr(WalkMeHook, "put_users", swallowed_add)
    sync(tmp_path / "s", user_ids=["a"])
    with pytest.raises(Exception, match=r"lists 1 members.*exactly 2"):
        sync(tmp_path / "s", user_ids=["a", "b"])
    monkeypatch.setattr(WalkMeHook, "put_users", original)
    result = sync(tmp_path / "s", user_ids=["a", "b"])
    assert result["mode"] == "full" and members_of(sandbox, "Audience") == {"a", "b"}


# -- 17.2. two workers, each with its own local state ---------------------------------------------------
def test_two_workers_with_their_own_snapshot_alternate_and_membership_stays_exact(sandbox, tmp_path):
    worker_a, worker_b = tmp_path / "a.snapshot", tmp_path / "b.snapshot"
    sync(worker_a, user_ids=["a", "b"])
    sync(worker_b, user_ids=["c", "d"])
    result = sync(
        worker_a, user_ids=["a", "b"]
    )  # same count as the segment holds: only the update time tells
    assert result["mode"] == "full" and result["requests"] == 1
    assert members_of(sandbox, "Audience") == {"a", "b"}


# -- 17.3. an old-format snapshot ---------------------------------------------------------------------------
def test_a_version_1_snapshot_reads_as_no_snapshot(sandbox, tmp_path):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Audience", ["a", "x"])["guid"]
    state = tmp_path / "s"
    header = {"version": 1, "segment_guid": guid, "system_guid": TEST_SYSTEM_GUID, "count": 2}
    state.write_text(f"#segments-snapshot {json.dumps(header)}\na\nb\n")
    result = sync(state, user_ids=["a", "b"])
    assert result["mode"] == "full"
    assert members_of(sandbox, "Audience") == {"a", "b"}
    assert json.loads(state.read_text().splitlines()[0].split(" ", 1)[1])["version"] == 3


# -- 17.4. a slow Zendesk create ----------------------------------------------------------------------------
def test_a_zendesk_create_slower_than_the_read_timeout_is_found_not_sent_again(sandbox):
    sandbox.inject_fault("/api/v2/help_center/user_segments.json", method="POST", delay=2.5)
    created = ZendeskHelpCenterHook().create_user_segment("Slow", "staff", tags=["vip"])
    time.sleep(1.0)  # past the held create
    named = [s for s in sandbox.zendesk.segments() if s["name"] == "Slow"]
    assert len(named) == 1 and created["id"] == named[0]["id"]
    posts = [r for r in sandbox.requests if r["method"] == "POST" and "user_segments" in r["path"]]
    assert len(posts) == 1


# -- 17.5. if_exists="error" with the task's own external id -------------------------------------------------
def test_a_retry_of_a_partial_create_with_an_external_id_and_if_exists_error_converges(sandbox):
    ids = [f"user{i:05d}" for i in range(30_000)]
    run = SimpleNamespace(start_date=datetime.now(timezone.utc) - timedelta(seconds=5))
    context = {"ti": _task_instance("d", "c"), "run_id": "r1", "dag_run": run}
    operator = WalkMeCreateSegmentOperator(
        task_id="c", name="Big", user_ids=ids, if_exists="error", external_id="heap-42"
    )
    sandbox.inject_fault(f"{SEGMENTS}/", 400, method="PUT")  # the `add` of the last 5,000 ids
    with pytest.raises(PartialUpdateError):
        operator.execute(context)
    sandbox.clear_faults()
    operator.execute(context)  # Airflow's retry: the segment is its own
    assert members_of(sandbox, "Big") == set(ids)
    later = SimpleNamespace(start_date=datetime.now(timezone.utc) + timedelta(seconds=5))
    with pytest.raises(AirflowFailException, match="already exists"):  # a later run: not its own
        operator.execute({**context, "run_id": "r2", "dag_run": later})


# -- 17.8. state files ----------------------------------------------------------------------------------
def test_a_directory_as_state_path_fails_before_anything_is_sent(sandbox, tmp_path):
    with pytest.raises(AirflowFailException, match="is a directory"):
        sync(tmp_path, user_ids=["a"])
    assert writes(sandbox) == []


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda text: text.encode()[: len(text) // 2], id="torn"),
        pytest.param(lambda text: text.encode() + b"\xff\xfe\n", id="not-utf-8"),
        pytest.param(lambda text: text.encode()[:5], id="cut-inside-the-header"),
        pytest.param(lambda text: b"", id="empty"),
    ],
)
def test_a_damaged_snapshot_of_ours_means_a_full_sync_and_exact_membership(sandbox, tmp_path, damage):
    state = tmp_path / "s"
    sync(state, user_ids=["a", "b", "c", "d"])
    state.write_bytes(damage(state.read_text()))
    result = sync(state, user_ids=["a", "e"])
    assert result["mode"] == "full" and members_of(sandbox, "Audience") == {"a", "e"}


def test_a_second_sync_of_the_same_state_path_while_one_runs_fails_clearly(sandbox, tmp_path):
    state = tmp_path / "s"
    lease = {"holder": "airflow-other-run", "host": os.uname().nodename, "pid": os.getpid()}
    now = time.time()
    (tmp_path / "s.lease").write_text(json.dumps({**lease, "acquired_at": now, "expires_at": now + 60}))
    with pytest.raises(SegmentsBusyError, match="airflow-other-run"):
        sync(state, user_ids=["a"])
    assert writes(sandbox) == []


def test_a_lease_being_created_is_never_taken_over_by_a_second_sync(tmp_path, monkeypatch):
    """Worker A stalls half-way through creating the lease (whichever step its creation takes);
    worker B tries meanwhile. Exactly one of them may hold it: both holding it is two syncs at once."""
    import logging
    import threading

    from airflow_provider_segments.membership import state_file as state_file_module
    from airflow_provider_segments.membership.state import StateStore

    b_tried = threading.Event()
    stalled: list[str] = []

    def stalling(real):
        def stall(*args, **kwargs):
            if threading.current_thread().name == "A" and not stalled:
                stalled.append(real.__name__)
                b_tried.wait(1)  # (B may be kept waiting for A: then A goes on after a second)
            return real(*args, **kwargs)

        return stall

    for step in ("fdopen", "link", "replace", "fsync"):
        monkeypatch.setattr(state_file_module.os, step, stalling(getattr(os, step)))
    holders: list[str] = []

    def acquire(holder: str) -> None:
        try:
            StateStore(str(tmp_path / "s")).acquire_lease(holder, logging.getLogger("test"))
            holders.append(holder)
        except SegmentsBusyError:
            pass

    worker_a = threading.Thread(target=acquire, args=("worker-a",), name="A")
    worker_a.start()
    time.sleep(0.2)  # A is inside its creation now
    acquire("worker-b")
    b_tried.set()
    worker_a.join(10)
    assert len(holders) == 1, holders


def test_an_unreadable_lease_is_taken_over_only_once_it_is_not_being_written(sandbox, tmp_path):
    state = tmp_path / "s"
    lease = tmp_path / "s.lease"
    lease.write_bytes(b"")  # what a sync that takes the lease without hard links shows at first
    with pytest.raises(SegmentsBusyError, match=r"cannot be read yet: another sync may be taking it"):
        sync(state, user_ids=["a"])
    assert writes(sandbox) == []
    long_ago = time.time() - 120
    os.utime(lease, (long_ago, long_ago))  # a sync killed while writing it: damaged, taken over
    sync(state, user_ids=["a"])
    assert members_of(sandbox, "Audience") == {"a"} and not lease.exists()


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "file-uri"])
def test_two_syncs_taking_over_a_stale_lease_at_once_never_both_hold_it(tmp_path, monkeypatch, as_uri):
    """Worker B reads an expired lease and stalls before removing it; worker A takes it over
    meanwhile. B must not then remove A's fresh lease and take its own: one holder at most."""
    import logging
    import threading

    from airflow_provider_segments.membership.state import StateStore
    from airflow_provider_segments.membership.state_file import StateFile

    state = f"file://{tmp_path}/s" if as_uri else str(tmp_path / "s")  # file:// is local disk too
    old = time.time() - 7200
    expired = {
        "holder": "killed-run",
        "host": "elsewhere",
        "pid": 1,
        "acquired_at": old,
        "expires_at": old + 3600,
    }
    (tmp_path / "s.lease").write_text(json.dumps(expired))
    a_done = threading.Event()
    remove = StateFile.remove

    def stalling_remove(self):
        if threading.current_thread().name == "B":
            a_done.wait(1)  # B has read the expired lease; A goes first if it can
        remove(self)

    monkeypatch.setattr(StateFile, "remove", stalling_remove)
    holders: list[str] = []

    def acquire(holder: str) -> None:
        try:
            StateStore(state).acquire_lease(holder, logging.getLogger("test"))
            holders.append(holder)
        except SegmentsBusyError:
            pass
        finally:
            if holder == "worker-a":
                a_done.set()

    worker_b = threading.Thread(target=acquire, args=("worker-b",), name="B")
    worker_b.start()
    time.sleep(0.2)  # B is stalled between its read and its remove
    worker_a = threading.Thread(target=acquire, args=("worker-a",), name="A")
    worker_a.start()
    worker_a.join(10)
    worker_b.join(10)
    assert len(holders) == 1, holders


def test_a_lease_path_that_is_a_directory_is_refused_before_anything_is_sent(sandbox, tmp_path):
    state = tmp_path / "s"
    (tmp_path / "s.lease").mkdir()
    with pytest.raises(AirflowFailException, match=r"s\.lease is a directory.*Nothing was sent"):
        sync(state, user_ids=["a"])
    assert writes(sandbox) == [] and (tmp_path / "s.lease").is_dir()


def test_a_lease_path_that_is_not_a_regular_file_is_refused_before_anything_is_sent(sandbox, tmp_path):
    os.mkfifo(tmp_path / "s.lease")  # reading it would block the sync (and the folder) for good
    with pytest.raises(AirflowFailException, match=r"s\.lease is not a regular file.*Nothing was sent"):
        sync(tmp_path / "s", user_ids=["a"])
    assert writes(sandbox) == []


def test_a_folder_locked_by_another_program_fails_the_sync_after_a_bounded_wait(
    sandbox, tmp_path, monkeypatch
):
    import fcntl

    from airflow_provider_segments.membership import state_file

    monkeypatch.setattr(state_file, "FOLDER_LOCK_SECONDS", 0.3)
    folder = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(folder, fcntl.LOCK_EX)  # e.g. `flock /data/segments cron-job`
    try:
        with pytest.raises(
            SegmentsBusyError, match=r"locked by another process for 0\.3 s.*nothing was sent"
        ):
            WalkMeHook().sync_segment(["a"], name="Audience", state_path=str(tmp_path / "s"))
    finally:
        os.close(folder)
    assert writes(sandbox) == []


@pytest.mark.parametrize(
    ("action", "user_ids"),
    [("override", ["a", "b", "x"]), ("add", ["d"]), ("remove", ["c"])],
)
def test_a_write_answered_but_not_applied_is_never_reported_verified(sandbox, monkeypatch, action, user_ids):
    """The platform (or a proxy) answers 200 but changes nothing: the count still fits (3 for a
    3-id override of 3 members; at least 1 after an add; at most 3 after a remove), but WalkMe still
    lists the update time read before the writes. The task fails and says so."""
    monkeypatch.setattr(read_back, "VERIFY_INTERVAL", 0.01)
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "S", ["a", "b", "c"])["guid"]
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", status=200, body="{}", count=100)
    operator = WalkMeUpdateSegmentOperator(
        task_id="u", segment_guid=guid, action=action, user_ids=user_ids, max_removal_fraction=None
    )
    with pytest.raises(
        MembershipMismatchError, match=r"not later than the update time read before .* did not take effect"
    ):
        operator.execute({})
    sandbox.clear_faults()
    operator.execute({})  # Airflow's retry
    expected = {"override": {"a", "b", "x"}, "add": {"a", "b", "c", "d"}, "remove": {"a", "b"}}[action]
    assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) == expected


def test_a_sync_whose_writes_were_not_applied_fails_and_its_rerun_repairs_the_segment(
    sandbox, tmp_path, monkeypatch
):
    monkeypatch.setattr(read_back, "VERIFY_INTERVAL", 0.01)
    state = tmp_path / "s"
    sync(state, user_ids=["a", "b", "c"])
    guid = segments_named(sandbox, "Audience")[0]["guid"]
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", status=200, body="{}", count=100)
    with pytest.raises(MembershipMismatchError, match="did not take effect"):
        sync(state, user_ids=["a", "b", "x"], full_refresh=True)  # the count (3) fits by coincidence
    sandbox.clear_faults()
    again = sync(state, user_ids=["a", "b", "x"])
    assert again["mode"] == "full" and members_of(sandbox, "Audience") == {"a", "b", "x"}
    assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) == {"a", "b", "x"}


@pytest.fixture
def two_ids_a_chunk(monkeypatch):
    monkeypatch.setattr(read_back, "VERIFY_INTERVAL", 0.01)
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)


@pytest.mark.parametrize("how", ["update", "sync"])
def test_an_override_whose_first_chunk_was_not_applied_fails_though_the_final_count_fits(
    sandbox, tmp_path, two_ids_a_chunk, how
):
    """The override chunk is answered but not applied; the adds land on the old members, and
    2 old + 2 added = the 4 asked for. The segment is read back after the override chunk."""
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Audience", ["p", "q"])["guid"]
    wanted = ["a", "b", "x", "y"]
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", status=200, body="{}", count=1)

    def run():
        if how == "update":
            return WalkMeUpdateSegmentOperator(
                task_id="u", segment_guid=guid, action="override", user_ids=wanted, max_removal_fraction=1.0
            ).execute({})
        return sync(tmp_path / "s", user_ids=wanted, full_refresh=True)

    with pytest.raises(MembershipMismatchError, match="override chunk"):
        run()
    assert [r["method"] for r in sandbox.requests].count("PUT") == 1  # the override only: no add sent
    run()
    assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) == set(wanted)


def test_a_delta_whose_adds_and_removes_were_partly_not_applied_fails_and_the_rerun_repairs_it(
    sandbox, tmp_path, two_ids_a_chunk
):
    """One add and one remove answered but not applied: the final count (10) fits. The segment is
    read back after the adds: it must hold exactly the snapshot's count plus the adds."""
    state = tmp_path / "s"
    base = [f"m{i}" for i in range(10)]
    sync(state, user_ids=base)
    wanted = [*base[4:], "n1", "n2", "n3", "n4"]  # 2 add chunks, then 2 remove chunks
    for _second_add_then_second_remove in range(2):
        sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", status=200, body="{}", skip=1, count=1)
    with pytest.raises(MembershipMismatchError, match="after its adds"):
        sync(state, user_ids=wanted, max_parallel_requests=1)
    sandbox.clear_faults()
    again = sync(state, user_ids=wanted)
    assert again["mode"] == "full" and members_of(sandbox, "Audience") == set(wanted)


@pytest.mark.parametrize(
    ("action", "user_ids"), [("add", ["n1", "n2", "n3", "n4"]), ("remove", ["m0", "m1", "m2"])]
)
def test_an_add_or_remove_is_never_reported_verified_the_platform_cannot_say_who_is_a_member(
    sandbox, two_ids_a_chunk, action, user_ids
):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "S", [f"m{i}" for i in range(10)])["guid"]
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", status=200, body="{}", skip=1, count=1)  # chunk 2 lost
    result = WalkMeUpdateSegmentOperator(
        task_id="u", segment_guid=guid, action=action, user_ids=user_ids
    ).execute({})
    assert result["verified"] is False and result["verification"] == "bounds"
    override = WalkMeUpdateSegmentOperator(
        task_id="u", segment_guid=guid, action="override", user_ids=["a"], max_removal_fraction=1.0
    ).execute({})
    assert override["verified"] is True and override["verification"] == "exact"


def test_the_retry_of_a_failed_delta_is_read_back_between_its_phases_too(sandbox, tmp_path, two_ids_a_chunk):
    """The first try failed before anything landed (its journal lists the ids it was changing); the
    retry's second add and second remove are answered but not applied: the final count fits."""
    state = tmp_path / "s"
    base = [f"m{i}" for i in range(10)]
    sync(state, user_ids=base)
    wanted = [*base[4:], "n1", "n2", "n3", "n4"]
    sandbox.inject_fault(f"{SEGMENTS}/", 400, method="PUT", count=1)
    with pytest.raises(PartialUpdateError):
        sync(state, user_ids=wanted, max_parallel_requests=1)
    sandbox.clear_faults()
    for _second_add_then_second_remove in range(2):
        sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", status=200, body="{}", skip=1, count=1)
    with pytest.raises(MembershipMismatchError, match="after its adds"):
        sync(state, user_ids=wanted, max_parallel_requests=1)
    sandbox.clear_faults()
    assert sync(state, user_ids=wanted)["mode"] == "full" and members_of(sandbox, "Audience") == set(wanted)


def test_a_coarse_update_time_does_not_fail_a_two_phase_change_that_landed(
    sandbox, monkeypatch, two_ids_a_chunk
):
    """Were WalkMe's update times whole seconds, the read-back between the phases and the last write
    could share one: the final check compares with the time before the change, which moved."""
    from datetime import datetime, timezone

    from airflow_provider_segments.testing import walkme as test_server

    monkeypatch.setattr(
        test_server, "_after", lambda previous: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    guid = sandbox.walkme.create_segment(
        TEST_SYSTEM_GUID, "S", ["p", "q"], created_at="2026-01-01T00:00:00Z"
    )["guid"]
    result = WalkMeUpdateSegmentOperator(
        task_id="u",
        segment_guid=guid,
        action="override",
        user_ids=["a", "b", "c", "d"],
        max_removal_fraction=1.0,
    ).execute({})
    assert result["verified"] and set(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) == {"a", "b", "c", "d"}


def test_without_a_listed_update_time_no_change_is_reported_exact(sandbox, monkeypatch, two_ids_a_chunk):
    """The count alone cannot tell an override chunk answered but not applied (2 old members, a
    first chunk of 2): where WalkMe lists no update time the change is only checked against bounds."""
    list_segments = WalkMeHook.list_segments

    def without_update_times(self, system_guid=None):
        return [{**segment, "updated_at": None} for segment in list_segments(self, system_guid)]

    monkeypatch.setattr(WalkMeHook, "list_segments", without_update_times)
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "S", ["p", "q"])["guid"]
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", status=200, body="{}", count=1)
    result = WalkMeUpdateSegmentOperator(
        task_id="u",
        segment_guid=guid,
        action="override",
        user_ids=["a", "b", "x", "y"],
        max_removal_fraction=1.0,
    ).execute({})
    assert result["verification"] == "bounds" and result["verified"] is False


# -- 17.9. no listed member count ----------------------------------------------------------------------------
def test_an_override_whose_removal_cannot_be_checked_is_refused(sandbox, monkeypatch):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Counted", [f"u{i}" for i in range(40)])["guid"]
    original = WalkMeHook.list_segments

    def without_counts(self, system_guid=None):
        return [{**segment, "user_count": None} for segment in original(self, system_guid)]

    monkeypatch.setattr(WalkMeHook, "list_segments", without_counts)
    with pytest.raises(AirflowFailException, match="lists no member count"):
        WalkMeUpdateSegmentOperator(
            task_id="u", segment_guid=guid, action="override", user_ids=["u1"]
        ).execute({})
    assert writes(sandbox) == []
    result = WalkMeUpdateSegmentOperator(
        task_id="u", segment_guid=guid, action="override", user_ids=["u1"], max_removal_fraction=1.0
    ).execute({})
    assert result["verified"] is False and set(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) == {"u1"}


# -- model-based: any sequence of failing runs, then one clean run ---------------------------------
class Killed(BaseException):
    """The task process dies: nothing of the provider's error handling runs."""


FAILURES = ("none", "4xx", "5xx", "lost-response", "late-landing", "kill")
#: What happens between two runs: someone edits the segment or deletes it, a state file is lost or
#: torn (a worker's disk, an interrupted copy), or nothing.
BETWEEN_RUNS = ("none", "none", "edit", "delete-segment", "lose-snapshot", "lose-journal", "tear-snapshot")
SEQUENCES = int(os.environ.get("MODEL_SEQUENCES", "500"))
#: A late-landing write is held this long; the client gives up after ~0.3 s (timeout 0.2).
HELD = 0.5


@pytest.mark.slow
def test_model_any_sequence_of_failed_syncs_then_a_clean_run_leaves_exactly_its_input(
    sandbox, tmp_path, monkeypatch
):
    """Hundreds of random sequences of runs on two workers, each with its own local snapshot: random
    inputs; each run failing at a random write (an error, a lost answer, a write that lands after the
    client gave up on it, a killed process) or not; between runs out-of-band edits, a deleted segment,
    lost or torn state files. Inputs come as a list or as a file with repeats, and each sequence
    holds ids in memory or spills them sorted to disk past 2 or 5 ids (input, snapshot, journal and
    delta: the path of millions of ids). After every successful run (and the late copies of its
    writes having landed) the segment holds exactly that run's input; a last clean run always
    succeeds."""
    rng = random.Random(20261205)
    universe = [f"u{i}" for i in range(12)]
    for name, value in sandbox_conn_env(sandbox.url, timeout=0.2, max_attempts=2).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 3)  # several chunks from a dozen ids
    monkeypatch.setattr(sync_module, "CREATE_LOOKUP_INTERVAL", 0.0)
    # Each run fetches a new token; Airflow's masker recompiles one pattern of every secret it was
    # given, which over a thousand runs in one process costs more than the runs (a task is a process).
    monkeypatch.setattr(base_hooks, "mask_secret", lambda secret: None)
    original_put = WalkMeHook.put_users
    kill_after: list[int] = []

    def put_users(self, system, guid, action, user_ids, **kwargs):
        if kill_after and kill_after[0] == 0:
            raise Killed
        original_put(self, system, guid, action, user_ids, **kwargs)
        if kill_after:
            kill_after[0] -= 1

    monkeypatch.setattr(WalkMeHook, "put_users", put_users)
    outcomes: dict[str, int] = dict.fromkeys(FAILURES, 0)
    between: dict[str, int] = dict.fromkeys(BETWEEN_RUNS, 0)
    spill_counts: dict[int, int] = {}
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_dir))
    for sequence in range(SEQUENCES):
        sandbox.reset()  # a fresh system per sequence keeps every list call small
        spill_at = rng.choice([id_files.SPILL_AT_IDS, 2, 5])
        spill_counts[spill_at] = spill_counts.get(spill_at, 0) + 1
        monkeypatch.setattr(id_files, "SPILL_AT_IDS", spill_at)
        name = f"Model {sequence}"
        workers = [tmp_path / f"model-{sequence}-a.snapshot", tmp_path / f"model-{sequence}-b.snapshot"]
        for _run in range(rng.randint(1, 4)):
            kill_after[:] = []
            event = rng.choice(BETWEEN_RUNS)
            between[event] += 1
            _between_runs(sandbox, name, event, rng.choice(workers), rng.sample(universe, 3), rng)
            wanted = rng.sample(universe, rng.randint(1, len(universe)))
            failure = rng.choice(FAILURES)
            at = rng.randint(0, 4)
            method = rng.choice(["PUT", "PUT", "POST"])
            if failure == "4xx":
                sandbox.inject_fault(SEGMENTS, 400, method=method, skip=at)
            elif failure == "5xx":
                sandbox.inject_fault(SEGMENTS, 500, method=method, skip=at, count=5)
            elif failure == "lost-response":
                sandbox.inject_fault(SEGMENTS, method=method, skip=at, lose_response=True, count=5)
            elif failure == "late-landing":  # applied after the client gave up on it (and retried)
                landed_before = _held_requests_answered(sandbox)  # by earlier runs of this sequence
                held = sandbox.inject_fault(SEGMENTS, method=method, skip=at, delay=HELD, count=2)
            elif failure == "kill":
                kill_after[:] = [at]
            given = _as_input(wanted, rng, tmp_path / f"model-{sequence}-{_run}.txt")
            try:
                sync(rng.choice(workers), name=name, full_refresh=rng.random() < 0.1, **given)
            except (SegmentsError, AirflowFailException, Killed):
                succeeded = False
            else:
                succeeded = True
                outcomes[failure] += 1
            if failure == "late-landing":  # every held copy (a failed run's too) lands before anyone looks
                _wait_for_held_requests(sandbox, landed_before + 2 - held.count)  # held.count counts down
            sandbox.clear_faults()
            if succeeded:
                assert members_of(sandbox, name) == set(wanted), f"sequence {sequence}, {failure}"
        kill_after[:] = []
        final = rng.sample(universe, rng.randint(1, len(universe)))
        sync(rng.choice(workers), name=name, user_ids=final)
        assert members_of(sandbox, name) == set(final), f"sequence {sequence}"
    # every kind of run happened and some succeeded; every kind of event between runs happened
    assert all(outcomes.values()) and all(between.values()), (outcomes, between)
    assert len(spill_counts) == 3, spill_counts
    gc.collect()
    assert list(spill_dir.iterdir()) == []  # every run and sorted file deleted, failed runs' too


def _as_input(wanted: list[str], rng: random.Random, path) -> dict:
    """``wanted`` as a list, or as a file of one id per line with some repeated."""
    if rng.random() < 0.5:
        return {"user_ids": wanted}
    lines = wanted + rng.sample(wanted, min(len(wanted), 3))
    rng.shuffle(lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"user_ids_path": str(path)}


def _held_requests_answered(sandbox) -> int:
    return sum(entry.get("fault") == "delay" for entry in sandbox.requests)


def _wait_for_held_requests(sandbox, answered: int) -> None:
    """Until the sandbox has answered (and logged) ``answered`` requests a delay fault held, this
    sequence's earlier ones included (the log is cleared once per sequence, not per run)."""
    deadline = time.monotonic() + 10 * HELD
    while _held_requests_answered(sandbox) < answered:
        assert time.monotonic() < deadline, "a held request never finished"
        time.sleep(0.02)


def _between_runs(sandbox, name: str, event: str, state, some_ids: list[str], rng: random.Random) -> None:
    """Someone or something acts between two runs of the sync task."""
    listed = segments_named(sandbox, name)
    if event == "edit" and listed:  # another tool adds or removes a few members over the API
        time.sleep(0.002)  # the sandbox's update times have millisecond resolution
        action = rng.choice(["add", "remove"])
        WalkMeHook().update_segment(listed[0]["guid"], action, some_ids, max_removal_fraction=1.0)
    elif event == "delete-segment" and listed:
        WalkMeHook().delete_segment(listed[0]["guid"])
    elif event == "lose-snapshot" and state.exists():
        state.unlink()
    elif event == "lose-journal" and os.path.exists(f"{state}.journal"):
        os.unlink(f"{state}.journal")
    elif event == "tear-snapshot" and state.exists():
        data = state.read_bytes()
        state.write_bytes(data[: rng.randint(0, max(0, len(data) - 1))])
