"""One sync per state_path at a time, however long it runs (hostile review 18): a live sync renews
its lease, so another never takes it over as a killed one's; and a sync whose lease another took
over anyway (a clock an hour ahead, a retry beside a zombie) never records its result or reports
success. Each test asserts what the sandbox holds."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
from support import impatient_sandbox

from airflow_provider_segments.exceptions import SegmentsBusyError
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.membership import read_back
from airflow_provider_segments.membership import state as state_module
from airflow_provider_segments.operators.walkme import WalkMeSyncSegmentOperator
from airflow_provider_segments.testing import TEST_SYSTEM_GUID


@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setattr(read_back, "VERIFY_INTERVAL", 0.01)
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.05)


def sync(state, run_id: str, user_ids: list[str], **kwargs):
    ti = SimpleNamespace(dag_id="d", task_id="sync", map_index=-1, xcom_push=lambda **kw: None)
    return WalkMeSyncSegmentOperator(
        task_id="sync",
        name="Audience",
        state_path=str(state),
        user_ids=user_ids,
        max_removal_fraction=1.0,
        max_parallel_requests=1,
        **kwargs,
    ).execute({"ti": ti, "run_id": run_id})


def members(sandbox) -> set[str]:
    (segment,) = [s for s in sandbox.walkme.segments(TEST_SYSTEM_GUID) if s["name"] == "Audience"]
    return set(sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]))


def test_a_sync_whose_lease_was_taken_over_never_reports_success_and_the_next_run_converges(
    sandbox, tmp_path, monkeypatch
):
    state = tmp_path / "audience.snapshot"
    sync(state, "run-0", ["p", "q", "r", "s"])
    original, real_time, fired = WalkMeHook.put_users, time.time, []

    def put_then_b_takes_over(self, system, guid, action, user_ids, **kwargs):
        if action == "add" and not fired:  # sync A is between its override and its add
            fired.append(True)
            # B's clock is an hour ahead: A's lease looks expired to it, and B takes it over
            monkeypatch.setattr(state_module.time, "time", lambda: real_time() + 3601)
            assert sync(state, "run-2", ["y1", "y2"], full_refresh=True)["user_count"] == 2
            monkeypatch.setattr(state_module.time, "time", real_time)
        original(self, system, guid, action, user_ids, **kwargs)

    monkeypatch.setattr(WalkMeHook, "put_users", put_then_b_takes_over)
    with pytest.raises(SegmentsBusyError, match="took over the lease"):
        sync(state, "run-1", ["x1", "x2", "x3", "x4"], full_refresh=True)
    monkeypatch.setattr(WalkMeHook, "put_users", original)
    assert members(sandbox) == {"x3", "x4", "y1", "y2"}  # what two syncs at once left
    again = sync(state, "run-3", ["x1", "x2", "x3", "x4"])  # B's snapshot is not trusted now
    assert members(sandbox) == {"x1", "x2", "x3", "x4"} and again["verified"] is True


def test_a_live_sync_renews_its_lease_however_long_it_runs(sandbox, tmp_path, monkeypatch):
    monkeypatch.setattr(state_module, "LEASE_SECONDS", 1)
    monkeypatch.setattr(state_module, "LEASE_RENEW_SECONDS", 0.1, raising=False)
    state = tmp_path / "audience.snapshot"
    original, outcome = WalkMeHook.put_users, []

    def slow_put(self, system, guid, action, user_ids, **kwargs):
        time.sleep(2)  # twice the lease's life: without renewal it expires under the sync
        original(self, system, guid, action, user_ids, **kwargs)

    monkeypatch.setattr(WalkMeHook, "put_users", slow_put)

    def second_sync() -> None:
        time.sleep(1.5)
        try:
            outcome.append(sync(state, "run-2", ["y1", "y2"]))
        except SegmentsBusyError as err:
            outcome.append(err)

    other = threading.Thread(target=second_sync)
    other.start()
    try:
        result = sync(state, "run-1", ["x1", "x2", "x3", "x4"])
    finally:
        other.join()
    assert isinstance(outcome[0], SegmentsBusyError), outcome
    assert result["verified"] is True and members(sandbox) == {"x1", "x2", "x3", "x4"}
