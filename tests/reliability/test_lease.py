"""One sync per state_path at a time, however long it runs (hostile review 18): a live sync renews
its lease, so another never takes it over as a killed one's; and a sync whose lease another took
over anyway (a clock an hour ahead, a retry beside a zombie) never records its result or reports
success. Each test asserts what the sandbox holds."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from support import impatient_sandbox

from airflow_provider_segments.exceptions import SegmentsBusyError
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.membership import lease as lease_module
from airflow_provider_segments.membership import read_back
from airflow_provider_segments.membership import state_file as state_file_module
from airflow_provider_segments.membership.state import StateStore
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
            monkeypatch.setattr(lease_module.time, "time", lambda: real_time() + 3601)
            assert sync(state, "run-2", ["y1", "y2"], full_refresh=True)["user_count"] == 2
            monkeypatch.setattr(lease_module.time, "time", real_time)
        original(self, system, guid, action, user_ids, **kwargs)

    monkeypatch.setattr(WalkMeHook, "put_users", put_then_b_takes_over)
    # (every cause is named: a clock ahead, a retry beside it, renewals failing with the storage down)
    with pytest.raises(SegmentsBusyError, match=r"took over the lease.*clock.*retry.*renewals that failed"):
        sync(state, "run-1", ["x1", "x2", "x3", "x4"], full_refresh=True)
    monkeypatch.setattr(WalkMeHook, "put_users", original)
    assert members(sandbox) == {"x3", "x4", "y1", "y2"}  # what two syncs at once left
    again = sync(state, "run-3", ["x1", "x2", "x3", "x4"])  # B's snapshot is not trusted now
    assert members(sandbox) == {"x1", "x2", "x3", "x4"} and again["verified"] is True


def test_a_live_sync_renews_its_lease_however_long_it_runs(sandbox, tmp_path, monkeypatch):
    monkeypatch.setattr(lease_module, "LEASE_SECONDS", 1)
    monkeypatch.setattr(lease_module, "LEASE_RENEW_SECONDS", 0.1)
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


# -- hostile review 19: the lease's own failures never fail a correct sync nor outlive it ----------------
class Log:
    def info(self, *args):
        pass

    def warning(self, *args):
        pass


def test_a_zombie_try_that_ends_leaves_its_live_retrys_lease_alone(tmp_path):
    """A zombie try and its retry share the task's holder token: the retry took the lease over; the
    zombie, failing at its confirmation, must not remove the retry's lease as it ends."""
    state = tmp_path / "a.snapshot"
    zombie, retry, other = StateStore(str(state)), StateStore(str(state)), StateStore(str(state))
    zombie.acquire_lease("airflow-token-of-the-task", Log())
    time.sleep(0.01)
    retry.acquire_lease("airflow-token-of-the-task", Log())  # its own lease, an earlier try: taken over
    with pytest.raises(SegmentsBusyError):
        zombie.confirm_lease()
    zombie.release_lease()
    with pytest.raises(SegmentsBusyError, match="holds the lease"):
        other.acquire_lease("airflow-token-of-another-run", Log())
    retry.confirm_lease()  # still the retry's


def test_a_busy_folder_lock_skips_one_renewal_and_the_next_renews(tmp_path, monkeypatch):
    import fcntl

    monkeypatch.setattr(lease_module, "LEASE_SECONDS", 1)
    monkeypatch.setattr(lease_module, "LEASE_RENEW_SECONDS", 0.1)
    monkeypatch.setattr(state_file_module, "FOLDER_LOCK_SECONDS", 0.05)
    died: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(args.exc_value))
    state = tmp_path / "a.snapshot"
    live = StateStore(str(state))
    live.acquire_lease("airflow-live", Log())
    with live.lease_kept():
        folder = os.open(str(tmp_path), os.O_RDONLY)
        fcntl.flock(folder, fcntl.LOCK_EX)  # another program holds the folder for a moment
        time.sleep(0.3)
        os.close(folder)
        time.sleep(1.5)  # the live sync goes on; its keeper renews meanwhile
        with pytest.raises(SegmentsBusyError, match="holds the lease"):
            StateStore(str(state)).acquire_lease("airflow-other-run", Log())
    assert not died


@pytest.fixture
def memory_storage(monkeypatch):
    """``memory://`` object storage whose next reads of a file ending in a given name fail."""
    from airflow.sdk.io import fs as airflow_fs
    from fsspec.implementations.memory import MemoryFileSystem

    monkeypatch.setitem(airflow_fs._register_filesystems(), "memory", lambda conn_id: MemoryFileSystem())
    MemoryFileSystem.store.clear()
    failing: dict[str, int] = {}
    real_open = MemoryFileSystem._open

    def flaky_open(self, path, mode="rb", *args, **kwargs):
        for name, left in list(failing.items()):
            if str(path).endswith(name) and "r" in mode and left > 0:
                failing[name] = left - 1
                raise TimeoutError(110, "Connection timed out")
        return real_open(self, path, mode, *args, **kwargs)

    monkeypatch.setattr(MemoryFileSystem, "_open", flaky_open)
    yield failing
    MemoryFileSystem.store.clear()


def test_a_lease_read_that_fails_once_neither_stops_its_renewal_nor_fails_the_sync(
    memory_storage, monkeypatch
):
    monkeypatch.setattr(lease_module, "LEASE_SECONDS", 1)
    monkeypatch.setattr(lease_module, "LEASE_RENEW_SECONDS", 0.1)
    state = "memory://bucket/lease/b.snapshot"
    live = StateStore(state)
    live.acquire_lease("airflow-live", Log())
    with live.lease_kept():
        memory_storage["b.snapshot.lease"] = 1  # one read of the lease times out
        time.sleep(1.6)  # later rounds renew
        with pytest.raises(SegmentsBusyError, match="holds the lease"):
            StateStore(state).acquire_lease("airflow-other-run", Log())
        memory_storage["b.snapshot.lease"] = 1
        live.confirm_lease()  # nobody else touched it: one failed read is not a takeover


def test_a_renewal_in_flight_never_recreates_a_released_lease(memory_storage, monkeypatch):
    from airflow_provider_segments.locations import storage_path
    from airflow_provider_segments.membership.state_file import StateFile

    monkeypatch.setattr(lease_module, "LEASE_RENEW_SECONDS", 0.1)
    monkeypatch.setattr(lease_module, "LEASE_KEEPER_JOIN_SECONDS", 0.05)
    real_replace = StateFile.replace

    def slow_replace(self, header_line, body=()):
        if threading.current_thread().name.startswith("lease of"):
            time.sleep(0.8)  # the upload of the renewed lease is slow
        return real_replace(self, header_line, body)

    monkeypatch.setattr(StateFile, "replace", slow_replace)
    state = "memory://bucket/lease/a.snapshot"
    live = StateStore(state)
    live.acquire_lease("airflow-live", Log())
    with live.lease_kept():
        time.sleep(0.3)  # the sync's work; a renewal is uploading as it ends
    live.release_lease()
    time.sleep(1.0)  # the upload lands
    assert not storage_path(state + ".lease").exists()
    StateStore(state).acquire_lease("airflow-next-run", Log())  # not refused for an hour


# -- hostile review 20: a lease read or lock that fails is never "free", never fails a finished sync ---
def test_a_live_lease_whose_read_fails_once_is_never_taken_over(tmp_path, monkeypatch, memory_storage):
    state = tmp_path / "a.snapshot"
    StateStore(str(state)).acquire_lease("airflow-live-run", Log())
    renewed = time.time() - 60  # the live sync renewed it a minute ago
    os.utime(f"{state}.lease", (renewed, renewed))
    real_open, failures = open, [1]

    def flaky_open(path, mode="r", *args, **kwargs):
        if str(path).endswith(".lease") and "r" in mode and failures[0] > 0:
            failures[0] -= 1
            raise OSError(5, "Input/output error")  # one storage hiccup (NFS, EIO)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(state_file_module, "open", flaky_open, raising=False)
    with pytest.raises(SegmentsBusyError, match="holds the lease"):
        StateStore(str(state)).acquire_lease("airflow-another-run", Log())
    bucket = "memory://bucket/lease/c.snapshot"
    StateStore(bucket).acquire_lease("airflow-live-run", Log())
    memory_storage["c.snapshot.lease"] = 1  # one read times out
    with pytest.raises(SegmentsBusyError, match="holds the lease"):
        StateStore(bucket).acquire_lease("airflow-another-run", Log())


def _hold_folder(folder, seconds: float) -> None:
    import fcntl

    descriptor = os.open(str(folder), os.O_RDONLY)
    fcntl.flock(descriptor, fcntl.LOCK_EX)  # another program holds the folder a moment
    threading.Timer(seconds, os.close, args=(descriptor,)).start()


def test_a_busy_folder_at_the_end_never_fails_a_finished_sync_nor_says_nothing_was_sent(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(state_file_module, "FOLDER_LOCK_SECONDS", 0.1)
    monkeypatch.setattr(lease_module, "LEASE_READ_INTERVAL", 0.01)
    store = StateStore(str(tmp_path / "a.snapshot"))
    store.acquire_lease("airflow-live", Log())
    _hold_folder(tmp_path, 0.5)
    with pytest.raises(SegmentsBusyError) as caught:
        store.confirm_lease()
    assert "nothing was sent" not in str(caught.value) and "could not be checked" in str(caught.value)
    store.release_lease()  # (the sync sent, verified and recorded: its release must not fail it)


# -- hostile review 21: an unreadable lease never blocks for good; messages say what was sent ----------
def test_a_stale_lease_that_cannot_be_read_is_taken_over_or_named_for_deletion(
    tmp_path, monkeypatch, memory_storage
):
    monkeypatch.setattr(lease_module, "LEASE_READ_INTERVAL", 0.01)
    state = tmp_path / "a.snapshot"
    lease = f"{state}.lease"
    Path(lease).write_text(
        '{"holder": "killed", "host": "elsewhere", "pid": 1, "acquired_at": 0, "expires_at": 1}'
    )
    written = time.time() - 7200  # a killed sync's, not renewed for two hours
    os.utime(lease, (written, written))
    real_open = open

    def unreadable(path, mode="r", *args, **kwargs):
        if str(path).endswith(".lease") and "r" in mode:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(state_file_module, "open", unreadable, raising=False)
    StateStore(str(state)).acquire_lease("airflow-later-run", Log())  # local disk: its age tells
    bucket = "memory://bucket/lease/z.snapshot"
    StateStore(bucket).acquire_lease("airflow-killed", Log())  # killed: never released
    memory_storage["z.snapshot.lease"] = 10**6  # every read fails; object storage tells no age
    with pytest.raises(SegmentsBusyError, match=r"delete .*z\.snapshot\.lease"):
        StateStore(bucket).acquire_lease("airflow-later-run", Log())


def test_a_lease_not_confirmed_never_claims_writes_were_sent(sandbox, tmp_path, monkeypatch):
    monkeypatch.setattr(state_file_module, "FOLDER_LOCK_SECONDS", 0.1)
    monkeypatch.setattr(lease_module, "LEASE_READ_INTERVAL", 0.01)
    state = tmp_path / "audience.snapshot"
    sync(state, "run-0", ["p", "q", "r"])
    real_confirm = lease_module.Lease.confirm

    def confirm_with_a_busy_folder(self):
        _hold_folder(tmp_path, 0.5)
        return real_confirm(self)

    monkeypatch.setattr(lease_module.Lease, "confirm", confirm_with_a_busy_folder)
    with pytest.raises(SegmentsBusyError) as caught:
        sync(state, "run-1", ["p", "q", "r"])  # the segment holds them already: nothing is sent
    time.sleep(0.6)
    assert "writes were sent" not in str(caught.value), str(caught.value)


# -- who is "this machine": host name, boot, PID namespace, start time (hostile review 23) ----------
def _live_lease(tmp_path, **record):
    from airflow_provider_segments.membership.lease import _process_identity

    now = time.time()
    lease = {
        "holder": "airflow-other-run",
        "host": socket.gethostname(),
        "pid": _unused_pid(),
        **_process_identity(os.getpid()),
        "acquired_at": now,
        "expires_at": now + 600,
        **record,
    }
    (tmp_path / "a.snapshot.lease").write_text(json.dumps(lease))
    return StateStore(str(tmp_path / "a.snapshot"))


def _unused_pid() -> int:
    return next(pid for pid in range(300_000, 30_000, -1) if not os.path.exists(f"/proc/{pid}"))


@pytest.mark.skipif(not os.path.exists("/proc/self/ns/pid"), reason="needs Linux's /proc")
def test_a_lease_from_another_pid_namespace_or_boot_with_this_host_name_is_not_taken_over(tmp_path):
    """Containers with host networking share the host name, not the pids: a live sync's pid there
    is absent here. Its lease waits for its expiry; so does one from before a reboot."""
    for record in ({"pid_namespace": "pid:[1]"}, {"boot_id": "another-boot"}, {"pid_namespace": None}):
        with pytest.raises(SegmentsBusyError, match="holds the lease"):
            _live_lease(tmp_path, **record).acquire_lease("airflow-this-run", Log())
    store = _live_lease(tmp_path)  # this namespace and boot, and the pid is gone: taken over
    store.acquire_lease("airflow-this-run", Log())
    store.release_lease()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux's /proc")
def test_a_pid_running_again_with_another_start_time_is_another_process(tmp_path):
    from airflow_provider_segments.membership.lease import _process_identity

    started = _process_identity(os.getpid())["started"]
    with pytest.raises(SegmentsBusyError, match="holds the lease"):  # the holder itself, alive
        _live_lease(tmp_path, pid=os.getpid(), started=started).acquire_lease("airflow-this-run", Log())
    store = _live_lease(tmp_path, pid=os.getpid(), started=started - 1)  # the pid, reused since
    store.acquire_lease("airflow-this-run", Log())
    store.release_lease()


LEASE_HOLDER = """
import os, subprocess, sys, time, logging
state_path, target = sys.argv[1], int(sys.argv[2])
if len(sys.argv) > 3:  # the live sync, in the new namespace
    from airflow_provider_segments.membership.lease import Lease
    from airflow_provider_segments.membership.state_file import StateFile
    Lease(StateFile(state_path + ".lease"), state_path).acquire("airflow-other-task", logging.getLogger("x"))
    print("held", os.getpid(), flush=True)
    time.sleep(120)
    sys.exit(0)
while True:  # pids in a fresh namespace are handed out in order: reach one absent outside
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    if child.pid >= target - 1:
        break
subprocess.run([sys.executable, __file__, state_path, str(target), "child"])
"""


@pytest.mark.skipif(
    shutil.which("unshare") is None or os.geteuid() != 0 or not os.path.exists("/proc/self/ns/pid"),
    reason="needs unshare, as root",
)
def test_a_live_lease_held_in_another_pid_namespace_of_this_host_is_not_taken_over(sandbox, tmp_path):
    state = tmp_path / "audience.snapshot"
    script = tmp_path / "holder.py"
    script.write_text(LEASE_HOLDER)
    target = next(pid for pid in range(60, 30_000) if not os.path.exists(f"/proc/{pid}"))
    holder = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, str(script), str(state), str(target)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        line = holder.stdout.readline()
        assert line.startswith("held"), line
        record = json.loads(Path(f"{state}.lease").read_text())
        if os.path.exists(f"/proc/{record['pid']}"):
            pytest.skip("the holder's pid happens to run in this namespace too")
        sandbox.clear_request_log()
        with pytest.raises(SegmentsBusyError, match="airflow-other-task"):
            sync(state, "run-1", ["a", "b"])
        assert [r for r in sandbox.requests if r["method"] in ("POST", "PUT", "DELETE")] == []
    finally:
        holder.kill()
        holder.wait()
