"""Issue 17's reproduced cases: membership is verified against the platform, the snapshot is only a
cache, and both platforms share one create/delete core. Against the sandbox over HTTP; every
assertion is on what the sandbox holds or received. Each test failed on the main before the
membership/ package."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from support import sandbox_conn_env

from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.exceptions import PartialUpdateError, SegmentsBusyError
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.membership import writes
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeSyncSegmentOperator,
    WalkMeUpdateSegmentOperator,
)
from airflow_provider_segments.sandbox import SANDBOX_SYSTEM_GUID, SandboxServer

SEGMENTS = f"/public/v1/user/system/{SANDBOX_SYSTEM_GUID}/segment"


@pytest.fixture
def sandbox(monkeypatch):
    with SandboxServer() as server:
        for name, value in sandbox_conn_env(server.url, timeout=1, max_attempts=2).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(writes, "CREATE_LOOKUP_INTERVAL", 0.5)
        yield server


def members_of(sandbox, name: str) -> set[str]:
    (segment,) = [s for s in sandbox.walkme.segments(SANDBOX_SYSTEM_GUID) if s["name"] == name]
    return set(sandbox.walkme.members(SANDBOX_SYSTEM_GUID, segment["guid"]))


def writes_sent(sandbox) -> list[dict]:
    return [
        r for r in sandbox.requests if r["method"] in ("POST", "PUT", "DELETE") and "segment" in r["path"]
    ]


def sync(state, name="Audience", **kwargs):
    kwargs.setdefault("max_removal_fraction", 1.0)
    return WalkMeSyncSegmentOperator(task_id="sync", name=name, state_path=str(state), **kwargs).execute({})


# -- 1. an override overtaken by its own retry -------------------------------------------------------
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
    from airflow_provider_segments.membership import engine

    monkeypatch.setattr(engine, "VERIFY_INTERVAL", 0.0)
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


# -- 2. two workers, each with its own local state ---------------------------------------------------
def test_two_workers_with_their_own_snapshot_alternate_and_membership_stays_exact(sandbox, tmp_path):
    worker_a, worker_b = tmp_path / "a.snapshot", tmp_path / "b.snapshot"
    sync(worker_a, user_ids=["a", "b"])
    sync(worker_b, user_ids=["c", "d"])
    result = sync(
        worker_a, user_ids=["a", "b"]
    )  # same count as the segment holds: only the update time tells
    assert result["mode"] == "full" and result["requests"] == 1
    assert members_of(sandbox, "Audience") == {"a", "b"}


# -- 3. an old-format snapshot ---------------------------------------------------------------------------
def test_a_version_1_snapshot_reads_as_no_snapshot(sandbox, tmp_path):
    guid = sandbox.walkme.create_segment(SANDBOX_SYSTEM_GUID, "Audience", ["a", "x"])["guid"]
    state = tmp_path / "s"
    header = {"version": 1, "segment_guid": guid, "system_guid": SANDBOX_SYSTEM_GUID, "count": 2}
    state.write_text(f"#segments-snapshot {json.dumps(header)}\na\nb\n")
    result = sync(state, user_ids=["a", "b"])
    assert result["mode"] == "full"
    assert members_of(sandbox, "Audience") == {"a", "b"}
    assert json.loads(state.read_text().splitlines()[0].split(" ", 1)[1])["version"] == 3


# -- 4. a slow Zendesk create ----------------------------------------------------------------------------
def test_a_zendesk_create_slower_than_the_read_timeout_is_found_not_sent_again(sandbox):
    sandbox.inject_fault("/api/v2/help_center/user_segments.json", method="POST", delay=2.5)
    created = ZendeskHelpCenterHook().create_user_segment("Slow", "staff", tags=["vip"])
    time.sleep(1.0)  # past the held create
    named = [s for s in sandbox.zendesk.segments() if s["name"] == "Slow"]
    assert len(named) == 1 and created["id"] == named[0]["id"]
    posts = [r for r in sandbox.requests if r["method"] == "POST" and "user_segments" in r["path"]]
    assert len(posts) == 1


# -- 5. if_exists="error" with the task's own external id -------------------------------------------------
def test_a_retry_of_a_partial_create_with_an_external_id_and_if_exists_error_converges(sandbox):
    ids = [f"user{i:05d}" for i in range(30_000)]
    run = SimpleNamespace(start_date=datetime.now(timezone.utc) - timedelta(seconds=5))
    context = {"ti": SimpleNamespace(dag_id="d", task_id="c", map_index=-1), "run_id": "r1", "dag_run": run}
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


# -- 8. state files ----------------------------------------------------------------------------------
def test_a_directory_as_state_path_fails_before_anything_is_sent(sandbox, tmp_path):
    with pytest.raises(AirflowFailException, match="is a directory"):
        sync(tmp_path, user_ids=["a"])
    assert writes_sent(sandbox) == []


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda text: text.encode()[: len(text) // 2], id="torn"),
        pytest.param(lambda text: text.encode() + b"\xff\xfe\n", id="not-utf-8"),
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
    assert writes_sent(sandbox) == []


# -- 9. no listed member count ----------------------------------------------------------------------------
def test_an_override_whose_removal_cannot_be_checked_is_refused(sandbox, monkeypatch):
    guid = sandbox.walkme.create_segment(SANDBOX_SYSTEM_GUID, "Counted", [f"u{i}" for i in range(40)])["guid"]
    original = WalkMeHook.list_segments

    def without_counts(self, system_guid=None):
        return [{**segment, "user_count": None} for segment in original(self, system_guid)]

    monkeypatch.setattr(WalkMeHook, "list_segments", without_counts)
    with pytest.raises(AirflowFailException, match="lists no member count"):
        WalkMeUpdateSegmentOperator(
            task_id="u", segment_guid=guid, action="override", user_ids=["u1"]
        ).execute({})
    assert writes_sent(sandbox) == []
    result = WalkMeUpdateSegmentOperator(
        task_id="u", segment_guid=guid, action="override", user_ids=["u1"], max_removal_fraction=1.0
    ).execute({})
    assert result["verified"] is False and set(sandbox.walkme.members(SANDBOX_SYSTEM_GUID, guid)) == {"u1"}
