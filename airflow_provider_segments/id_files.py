"""Where a large :class:`~airflow_provider_segments.ids.UserIds` keeps its ids: a sorted file on disk.

A Python string costs ~90 bytes for a 34-character id, a list and a set ~50 more: 10 million ids
held in memory need ~1.5 GiB. So an :class:`IdCollector` holds at most :data:`SPILL_AT_IDS` ids;
past that it sorts and dedupes what it holds into a *run* file in the temporary directory, and at
the end merges the runs (already sorted: one streaming pass) into one :class:`SortedIdFile` of
unique ids. Memory stays near one run's worth, whatever the input's size; the disk holds about
twice the ids' text while the runs merge. The files have no name in the directory (only this
process holds them), so nothing is left behind however the task ends. Inputs of up to
:data:`SPILL_AT_IDS` ids never touch the disk and keep the order they were given in.

A sorted file is what a delta wants anyway: two of them are compared window by window
(:func:`aligned_windows`) without either being held whole.

Ids reaching here are validated: no control character, so none holds a line break.
"""

from __future__ import annotations

import functools
import gc
import os
import tempfile
import weakref
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import compress
from operator import ne
from typing import BinaryIO, ParamSpec, TypeVar

from airflow_provider_segments.exceptions import SegmentsError

#: Ids an input may hold in memory before it spills to sorted files on disk (~140 MiB of strings,
#: list and set for 34-character ids). Tests lower it to run the spilling path on small inputs.
SPILL_AT_IDS = 1_000_000
#: Ids written or read per block.
BLOCK_IDS = 25_000
_ENCODING = "utf-8"
_READ_BYTES = 1 << 20

_P = ParamSpec("_P")
_R = TypeVar("_R")


def without_cyclic_gc(change: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``change`` with Python's cyclic garbage collector paused, then turn it back on (if it was).

    A change holds a million ids in lists and sets; every collection of the generation they sit in
    walks them all (about 80 ms a million) and frees nothing: ids are strings, never in a cycle. The
    few cycles a change makes (exceptions, threads) are collected once it is back on.
    """

    @functools.wraps(change)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        was_enabled = gc.isenabled()
        try:  # (disabled inside: a signal's exception landing just after still turns it back on)
            gc.disable()
            return change(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return paused


class SortedIdFile:
    """Unique ids, sorted, one a line, in an unnamed temporary file: it has no name in the directory,
    so it is gone with this object, or with the process however it ends (a killed task leaves
    nothing behind)."""

    def __init__(self, handle: BinaryIO, count: int) -> None:
        self.count = count
        self._handle = handle
        self._close = weakref.finalize(self, handle.close)

    def __iter__(self) -> Iterator[str]:
        for chunk in self.chunks(BLOCK_IDS):
            yield from chunk

    def chunks(self, size: int) -> Iterator[list[str]]:
        """Consecutive sorted lists of at most ``size`` ids."""
        return _file_chunks(self._handle, size)

    def close(self) -> None:
        """Free the file now (it is freed when this object goes, otherwise)."""
        self._close()


class IdCollector:
    """Validated ids, added in batches; :meth:`finish` gives them back in memory, or as one
    :class:`SortedIdFile` once more than :data:`SPILL_AT_IDS` were added.

    Duplicates are left to the caller while nothing spilled (the ids come back as added); a spilled
    collection comes back sorted and deduplicated.
    """

    def __init__(self) -> None:
        self.held: list[str] = []
        self._runs: list[BinaryIO] = []

    def add(self, ids: list[str]) -> None:
        self.held += ids
        if len(self.held) > SPILL_AT_IDS:
            self._spill()

    def finish(self) -> list[str] | SortedIdFile:
        if not self._runs:
            return self.held
        try:
            if self.held:
                self._spill()
            return self._merge()
        finally:
            self.discard()

    def discard(self) -> None:
        """Free the runs now (an input refused half-way holds no disk space)."""
        for run in self._runs:
            run.close()
        self._runs = []
        self.held = []

    def _spill(self) -> None:
        run = _sorted_unique(self.held)
        self.held = []
        handle = _new_file()
        self._runs.append(handle)
        with _spill_errors():
            for start in range(0, len(run), BLOCK_IDS):
                handle.write(line_bytes(run[start : start + BLOCK_IDS]))
            handle.flush()

    def _merge(self) -> SortedIdFile:
        handle = _new_file()
        count = 0
        try:
            with _spill_errors():
                # Window by window (each id in the same window of every run): the parts are sorted runs,
                # which list.sort merges at C speed.
                for parts in aligned_windows(*(_file_chunks(run, BLOCK_IDS) for run in self._runs)):
                    unique = _sorted_unique([user_id for part in parts for user_id in part])
                    if unique:
                        handle.write(line_bytes(unique))
                        count += len(unique)
                handle.flush()
        except BaseException:
            handle.close()
            raise
        return SortedIdFile(handle, count)


def _sorted_unique(ids: list[str]) -> list[str]:
    """``ids`` sorted (in place) without repeats: a repeat is next to its twin once sorted, so it is
    found by comparing neighbours at C speed (4x cheaper than hashing a million new strings)."""
    ids.sort()
    return [ids[0], *compress(ids[1:], map(ne, ids[1:], ids))] if ids else ids


def collect(batches: Iterable[list[str]]) -> list[str] | SortedIdFile:
    """The ids of ``batches`` through one :class:`IdCollector`."""
    collector = IdCollector()
    try:
        for batch in batches:
            collector.add(batch)
    except BaseException:
        collector.discard()
        raise
    return collector.finish()


def aligned_windows(*streams: Iterable[list[str]]) -> Iterator[tuple[list[str], ...]]:
    """Walk several sorted streams of unique ids (each given as consecutive sorted lists) in step:
    each window holds, for every stream, its ids within one key range, so an id present in several
    streams is in the same window of each. Memory: about one list of each stream."""
    sources: list[Iterator[list[str]] | None] = [iter(stream) for stream in streams]
    buffers: list[list[str]] = [[] for _ in sources]
    starts = [0] * len(sources)
    while True:
        for index, source in enumerate(sources):
            while source is not None and starts[index] >= len(buffers[index]):  # (an empty list: read on)
                chunk = next(source, None)
                if chunk is None:
                    source = sources[index] = None
                else:
                    buffers[index], starts[index] = chunk, 0
        live = [index for index in range(len(sources)) if starts[index] < len(buffers[index])]
        if not live:
            return
        cut = min(buffers[index][-1] for index in live)  # no stream goes past this key in this window
        window = []
        for index in range(len(sources)):
            end = bisect_right(buffers[index], cut, starts[index])
            window.append(buffers[index][starts[index] : end])
            starts[index] = end
        yield tuple(window)


def _file_chunks(handle: BinaryIO, size: int) -> Iterator[list[str]]:
    """The ids of a file we wrote (one a line, each ended by ``\n``), in lists of at most ``size``;
    read in large blocks at offsets of this reader's own (``pread``), split at C speed."""
    descriptor = handle.fileno()
    pending: list[str] = []
    carry = b""
    offset = 0
    while block := os.pread(descriptor, _READ_BYTES, offset):
        offset += len(block)
        data = carry + block
        cut = data.rfind(b"\n") + 1
        carry = data[cut:]
        if cut:
            pending += data[: cut - 1].decode(_ENCODING).split("\n")
        while len(pending) >= size:
            yield pending[:size]
            del pending[:size]
    if pending:
        yield pending


def _new_file() -> BinaryIO:
    """An unnamed file in the temporary directory (``O_TMPFILE`` where the system has it, else created
    and unlinked at once), readable by this user only."""
    try:
        return tempfile.TemporaryFile(prefix="segments-ids-")
    except OSError as err:
        raise _spill_error(tempfile.gettempdir(), err) from None


def line_bytes(ids: list[str]) -> bytes:
    """``ids`` one a line, each ended by ``\n``, as UTF-8: how spilled runs and snapshots hold them."""
    return ("\n".join(ids) + "\n").encode(_ENCODING)


@contextmanager
def _spill_errors() -> Iterator[None]:
    """Turn a full disk (or any write failure) into an error naming the folder and what to do."""
    try:
        yield
    except OSError as err:
        raise _spill_error(tempfile.gettempdir(), err) from None


def _spill_error(folder: str, err: OSError) -> SegmentsError:
    return SegmentsError(
        f"More than {SPILL_AT_IDS:,} ids are sorted on disk, and writing to {folder} failed "
        f"({type(err).__name__}: {err.strerror or err}). Free space there (about 80 bytes per id) or "
        "point TMPDIR at a folder with room. Nothing was sent."
    )
