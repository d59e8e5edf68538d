"""A worker killed (SIGKILL) half-way through a chunked update, then the task rerun: the segment ends
up exactly as asked, for override, add and remove."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from support import sandbox_conn_env

from airflow_provider_segments.testing import TEST_SYSTEM_GUID, SegmentsTestServer

pytestmark = pytest.mark.slow

SEGMENTS = f"/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"
TARGET = [f"user{i:06d}@example.com" for i in range(100_000)]  # 4 chunks of at most 25,000
BEFORE = [f"old{i:04d}@example.com" for i in range(1_000)] + TARGET[::100]  # overlaps every chunk

UPDATE_TASK = textwrap.dedent(
    """
    import sys
    from airflow_provider_segments.operators.walkme import WalkMeUpdateSegmentOperator

    ids = [f"user{i:06d}@example.com" for i in range(100_000)]
    WalkMeUpdateSegmentOperator(
        task_id="update", segment_guid=sys.argv[1], action=sys.argv[2], user_ids=ids,
        max_removal_fraction=1.0,  # a remove of 100,000 ids may remove every listed member
    ).execute({})
    """
)


def _run_update(sandbox: SegmentsTestServer, guid: str, action: str, tmp_path) -> subprocess.Popen:
    env = {**os.environ, **sandbox_conn_env(sandbox.url), "AIRFLOW_HOME": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-c", UPDATE_TASK, guid, action],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _applied_puts(sandbox: SegmentsTestServer) -> int:
    return sum(1 for r in sandbox.requests if r["method"] == "PUT" and r["status"] == 200)


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("override", set(TARGET)),
        ("add", set(BEFORE) | set(TARGET)),
        ("remove", set(BEFORE) - set(TARGET)),
    ],
)
def test_sigkill_after_chunk_2_of_4_then_rerun_converges(tmp_path, action, expected):
    with SegmentsTestServer() as sandbox:
        guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Churned", BEFORE)["guid"]
        # Chunks 1 and 2 go through; chunk 3 is held (and never applied) while we kill the worker.
        sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", skip=2, delay=5, drop_connection=True)
        worker = _run_update(sandbox, guid, action, tmp_path)
        deadline = time.monotonic() + 60
        while _applied_puts(sandbox) < 2:
            assert worker.poll() is None, worker.stdout.read()
            assert time.monotonic() < deadline, "the worker never applied two chunks"
            time.sleep(0.02)
        time.sleep(0.3)  # chunk 3 is on the wire, held by the fault
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL

        half_way = set(sandbox.walkme.members(TEST_SYSTEM_GUID, guid))
        assert half_way != expected  # the kill really left the segment half-updated

        sandbox.clear_faults()
        rerun = _run_update(sandbox, guid, action, tmp_path)
        output, _ = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, output
        assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) == expected
        assert "chunk 4/4" in output


SYNC_TASK = textwrap.dedent(
    """
    import sys
    from airflow_provider_segments.operators.walkme import WalkMeSyncSegmentOperator

    WalkMeSyncSegmentOperator(
        task_id="sync", name="Synced", user_ids_path=sys.argv[1], state_path=sys.argv[2],
        max_removal_fraction=1.0,
    ).execute({})
    """
)


def test_sigkill_mid_delta_sync_keeps_the_snapshot_behind_and_rerun_converges(tmp_path, monkeypatch):
    first = [f"first{i:06d}" for i in range(30_000)]
    target = first[20_000:] + [f"next{i:06d}" for i in range(70_000)]  # 70,000 adds + 20,000 removes
    (tmp_path / "first.txt").write_text("\n".join(first) + "\n")
    (tmp_path / "target.txt").write_text("\n".join(target) + "\n")
    state = tmp_path / "synced.snapshot"
    with SegmentsTestServer() as sandbox:
        env = {**os.environ, **sandbox_conn_env(sandbox.url), "AIRFLOW_HOME": str(tmp_path)}

        def run_sync(path: str) -> subprocess.Popen:
            return subprocess.Popen(
                [sys.executable, "-c", SYNC_TASK, path, str(state)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )

        assert run_sync(str(tmp_path / "first.txt")).wait(timeout=120) == 0
        snapshot_before = state.read_bytes()
        sandbox.clear_request_log()
        sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", skip=2, delay=5, drop_connection=True)
        worker = run_sync(str(tmp_path / "target.txt"))
        deadline = time.monotonic() + 60
        while _applied_puts(sandbox) < 2:
            assert worker.poll() is None, worker.stdout.read()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.3)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        guid = sandbox.walkme.segments(TEST_SYSTEM_GUID)[0]["guid"]
        assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) != set(target)
        assert state.read_bytes() == snapshot_before  # the snapshot never runs ahead of the API

        sandbox.clear_faults()
        rerun = run_sync(str(tmp_path / "target.txt"))
        output, _ = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, output
        # The killed delta changed the segment after the snapshot (its update time says so): the
        # evidence no longer matches the snapshot, so the rerun sends the whole membership.
        assert "Sync plan (full)" in output
        assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) == set(target)
        assert len(sandbox.walkme.segments(TEST_SYSTEM_GUID)) == 1
        assert state.read_text().count("\n") == len(target) + 1
