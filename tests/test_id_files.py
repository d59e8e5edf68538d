"""Inputs past ``SPILL_AT_IDS`` are kept sorted on disk: same ids, same errors, nothing left behind;
a sync from them (full, then a delta against a spilled snapshot) leaves exactly the input on the
sandbox. The threshold is lowered so that a few ids take the path of millions."""

from __future__ import annotations

import gc
import logging
import random
import signal
import subprocess
import sys
import tempfile

import pytest

from airflow_provider_segments import id_files
from airflow_provider_segments.exceptions import SegmentsError, SegmentsValidationError
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.id_files import aligned_windows
from airflow_provider_segments.ids import UserIds
from airflow_provider_segments.operators.walkme import WalkMeSyncSegmentOperator
from airflow_provider_segments.testing import TEST_SYSTEM_GUID


@pytest.fixture
def spill_dir(tmp_path, monkeypatch):
    """A temporary directory of its own, and spilling past 4 ids."""
    folder = tmp_path / "spill"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setattr(id_files, "SPILL_AT_IDS", 4)
    return folder


def test_a_file_past_the_threshold_is_sorted_deduped_and_leaves_no_file(spill_dir, tmp_path):
    wanted = [f"id{i:02d}" for i in range(11)]
    given = [*wanted, "id03", "id10", "id00"]
    random.Random(1).shuffle(given)
    path = tmp_path / "ids.txt"
    path.write_bytes(("\r\n".join(given) + "\r\n\r\n").encode())
    ids = UserIds.from_file(str(path), max_length=100)
    assert ids.spilled and len(ids) == 11 and list(ids) == sorted(wanted)
    assert [len(chunk) for chunk in ids.chunks(5)] == [5, 5, 1]
    first, second = ids.chunks(3), ids.chunks(4)  # two readers at once keep their own places
    assert (next(first), next(second), next(first)) == (
        sorted(wanted)[:3],
        sorted(wanted)[:4],
        sorted(wanted)[3:6],
    )
    assert list(spill_dir.iterdir()) == []  # unnamed files: nothing to delete, even after a kill


def test_a_task_killed_while_holding_spilled_ids_leaves_nothing_in_the_temporary_directory(tmp_path):
    script = f"""
import os, signal, tempfile
from airflow_provider_segments import id_files
from airflow_provider_segments.ids import UserIds
tempfile.tempdir = {str(tmp_path)!r}
id_files.SPILL_AT_IDS = 1000
ids = UserIds.from_values([f"user{{i}}" for i in range(5000)], max_length=100)
assert ids.spilled and len(ids) == 5000
print("spilled", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL and done.stdout == "spilled\n", done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_bad_id_after_a_spill_is_named_and_nothing_stays_on_disk(spill_dir, tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("\n".join([f"id{i}" for i in range(9)] + ["bad\u200bid", "id9"]) + "\n")
    with pytest.raises(SegmentsValidationError, match=r"line 10 = .*U\+200B"):
        UserIds.from_file(str(path), max_length=100)
    with pytest.raises(SegmentsValidationError, match=r"user_ids\[9\]"):
        UserIds.from_values([f"id{i}" for i in range(9)] + [" padded"], max_length=100)
    gc.collect()
    assert list(spill_dir.iterdir()) == []


def test_a_csv_column_and_a_list_spill_the_same_way(spill_dir, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("email,plan\n" + "".join(f"u{i % 7}@x.com,p{i}\n" for i in range(20)))
    from_csv = UserIds.from_file(str(path), max_length=100, column="email")
    from_list = UserIds.from_values([f"u{i % 7}@x.com" for i in range(20)] + [12], max_length=100)
    assert from_csv.spilled and list(from_csv) == sorted(f"u{i}@x.com" for i in range(7))
    assert from_list.spilled and set(from_list) == {*from_csv, "12"}


def test_an_unwritable_temporary_directory_is_named_and_nothing_is_sent(spill_dir, sandbox, tmp_path):
    tempfile.tempdir = str(tmp_path / "missing")
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(f"id{i}" for i in range(9)) + "\n")
    with pytest.raises(SegmentsError, match=r"missing.*TMPDIR"):
        WalkMeSyncSegmentOperator(
            task_id="s", name="Spill", user_ids_path=str(path), state_path=str(tmp_path / "state")
        ).execute({})
    assert [r for r in sandbox.requests if r["method"] != "GET" and "segment" in r["path"]] == []


def test_a_spilled_sync_then_a_delta_against_its_spilled_snapshot_is_exact(spill_dir, sandbox, tmp_path):
    """The snapshot of a spilled input reads back as ours (its checksum covers the lines as written),
    so the second run is a delta of two writes, not a full sync."""
    state, path = tmp_path / "state", tmp_path / "ids.txt"
    first = [f"user{i:03d}" for i in range(30)]
    path.write_text("\n".join(reversed(first)) + "\n")

    def sync() -> dict:
        return WalkMeSyncSegmentOperator(
            task_id="s", name="Spill", user_ids_path=str(path), state_path=str(state)
        ).execute({})

    created = sync()
    second = [*first[3:], "user900", "user901"]
    path.write_text("\n".join(second) + "\n")
    before = len(sandbox.requests)
    result = sync()
    assert (result["mode"], result["added"], result["removed"], result["requests"]) == ("delta", 2, 3, 2)
    members = sandbox.walkme.members(TEST_SYSTEM_GUID, created["segment_guid"])
    assert sorted(members) == sorted(second)
    writes = [(r["action"], r["ids"]) for r in sandbox.requests[before:] if r.get("action")]
    assert sorted(writes) == [("add", 2), ("remove", 3)]


@pytest.mark.parametrize("seed", range(30))
def test_aligned_windows_put_each_id_in_the_same_window_of_every_stream(seed):
    rng = random.Random(seed)
    universe = [f"{rng.randrange(10**6):06d}" for _ in range(200)]
    streams = [sorted(set(rng.sample(universe, rng.randint(0, 60)))) for _ in range(3)]
    sizes = [rng.randint(1, 9) for _ in streams]
    chunked = [[s[i : i + n] for i in range(0, len(s), n)] for s, n in zip(streams, sizes, strict=True)]
    for chunks in chunked:  # an empty list anywhere in a stream is not its end
        chunks.insert(rng.randint(0, len(chunks)), [])
    windows = list(aligned_windows(*chunked))
    for index, stream in enumerate(streams):  # each stream whole, in order
        assert [i for window in windows for i in window[index]] == stream
    where = {}
    for number, window in enumerate(windows):
        for part in window:
            for user_id in part:
                assert where.setdefault(user_id, number) == number


# -- the cyclic garbage collector -------------------------------------------------------------------
#: The membership functions that hold a change's ids (the hooks' create, update and sync call them).
CHANGES = {"create_segment", "update_segment", "sync_segment"}


def _inside_a_change() -> bool:
    """Whether some thread is running a membership change right now."""
    for frame in sys._current_frames().values():
        while frame is not None:
            if frame.f_code.co_name in CHANGES and "membership" in frame.f_code.co_filename:
                return True
            frame = frame.f_back
    return False


@pytest.fixture
def collections_during_changes():
    """The garbage collections that start while a change runs in any thread (gc callbacks); GC is on
    at the start. (Not all collections: the in-process sandbox's store holds the ids too, and a
    collection after the change may walk it.)"""
    started: list[int] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start" and _inside_a_change():
            started.append(info["generation"])

    was_enabled = gc.isenabled()
    gc.enable()
    gc.callbacks.append(record)
    yield started
    gc.callbacks.remove(record)
    if not was_enabled:
        gc.disable()


def test_a_change_walks_no_garbage_collection_over_its_ids_and_turns_it_back_on(
    collections_during_changes, sandbox, tmp_path
):
    """Millions of ids are acyclic strings: a collection walking the lists and sets holding them costs
    about 80 ms a million and frees nothing. The sync, create and update pause it, and turn it back on
    after, also after a failure; one that was off stays off."""
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(f"user{i}" for i in range(60_000)) + "\n")
    result = WalkMeSyncSegmentOperator(
        task_id="s", name="No GC", user_ids_path=str(path), state_path=str(tmp_path / "state")
    ).execute({})
    assert len(sandbox.walkme.members(TEST_SYSTEM_GUID, result["segment_guid"])) == 60_000
    assert collections_during_changes == [] and gc.isenabled()

    hook = WalkMeHook()
    hook.update_segment(result["segment_guid"], "add", [f"new{i}" for i in range(30_000)])
    hook.create_segment("No GC 2", [f"other{i}" for i in range(30_000)])
    assert collections_during_changes == [] and gc.isenabled()

    with pytest.raises(SegmentsValidationError):
        hook.update_segment(result["segment_guid"], "add", ["fine", " bad"])
    assert gc.isenabled()
    gc.disable()
    hook.update_segment(result["segment_guid"], "add", ["one more"])
    assert not gc.isenabled()
    assert len(sandbox.walkme.members(TEST_SYSTEM_GUID, result["segment_guid"])) == 90_001


@pytest.mark.parametrize("seed", range(20))
def test_runs_and_merged_windows_are_sorted_without_repeats(seed):
    rng = random.Random(seed)
    ids = [f"u{rng.randrange(rng.choice([1, 3, 50, 10_000]))}" for _ in range(rng.randrange(0, 400))]
    assert id_files._sorted_unique(list(ids)) == sorted(set(ids))


def test_an_interrupt_landing_just_after_the_pause_still_turns_the_collector_back_on():
    """A signal handler's exception (Ctrl-C, Airflow's SIGTERM) can land between any two bytecodes:
    here it lands at the first one after ``gc.disable()``."""
    paused = id_files.without_cyclic_gc(lambda: 1)
    fired: list[int] = []

    def on_opcode(frame, event, arg):
        if event == "opcode" and not gc.isenabled() and not fired:
            fired.append(1)
            raise KeyboardInterrupt
        return on_opcode

    def tracer(frame, event, arg):
        if frame.f_code is paused.__code__:
            frame.f_trace_opcodes = True
            return on_opcode
        return None

    gc.enable()
    sys.settrace(tracer)
    try:
        with pytest.raises(KeyboardInterrupt):
            paused()
    finally:
        sys.settrace(None)
    enabled = gc.isenabled()
    gc.enable()
    assert fired and enabled


def test_a_spilled_snapshot_is_written_the_same_every_time(spill_dir, tmp_path):
    """A spilled body is read from the sorted file each time, not a one-shot generator that would
    leave a second write with no ids and the full checksum."""
    from airflow_provider_segments.membership.state import Snapshot, StateStore

    ids = UserIds.from_values([f"user{i}" for i in range(9)], max_length=100)
    store = StateStore(str(tmp_path / "state"))
    written = []
    for _ in range(2):
        store.write_snapshot(
            Snapshot("g", "s", "n", ids, "2026-12-06T00:00:00+00:00"), store.snapshot_body(ids)
        )
        written.append((tmp_path / "state").read_bytes())
        assert list(store.read_snapshot(logging.getLogger("test")).ids) == sorted(ids)
    assert ids.spilled and written[0] == written[1] and written[0].count(b"\n") == 10
