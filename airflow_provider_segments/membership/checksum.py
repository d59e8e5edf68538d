"""A snapshot's body: its ids one a line, and the SHA-256 of those lines, which the snapshot records
so that one edited by hand (an id swapped, the count kept) reads as damaged instead of being trusted
for a delta."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from airflow_provider_segments.id_files import line_bytes
from airflow_provider_segments.ids import UserIds
from airflow_provider_segments.membership.state_file import StateFile, WrittenAhead

#: Ids encoded per block.
BLOCK_IDS = 10_000


def line_blocks(ids: UserIds) -> Iterator[bytes]:
    """The ids one a line, as UTF-8 blocks made one at a time (a spilled collection stays on disk)."""
    return map(line_bytes, ids.chunks(BLOCK_IDS))


def hashed_blocks(blocks: Iterable[str], digest: Any) -> Iterator[str]:
    """``blocks`` unchanged, each added to ``digest`` on the way: the checksum of a snapshot's lines
    as read, which :class:`SnapshotBody` gives for the lines as written."""
    for block in blocks:
        digest.update(block.encode("utf-8", "surrogatepass"))
        yield block


def _hashed(blocks: Iterable[bytes], digest: Any) -> Iterator[bytes]:
    for block in blocks:
        digest.update(block)
        yield block


class SnapshotBody:
    """The lines of a snapshot's ids, written ahead of its header (:class:`~.state_file.WrittenAhead`)
    and hashed in the same pass, spilled ids read once from disk.

    With ``in_background`` the work runs on a thread of its own: a sync starts it before its writes,
    while its threads mostly wait on the platform, so that once the change is verified only the
    header, with the platform's evidence, is left to write. :meth:`discard` (always call it: it is a
    no-op after :meth:`commit`) removes the body of a change that failed.
    """

    def __init__(self, target: StateFile, ids: UserIds, *, in_background: bool = False) -> None:
        self.count = len(ids)
        self._digest = hashlib.sha256()
        blocks = _hashed(line_blocks(ids), self._digest)
        self._written: Future[WrittenAhead] = Future()
        if in_background:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot-body")
            self._written = executor.submit(WrittenAhead, target, blocks)
            executor.shutdown(wait=False)  # the thread ends with its one task
        else:
            self._written.set_result(WrittenAhead(target, blocks))

    def sha256(self) -> str:
        """The hex SHA-256 of the lines (waits until they are written)."""
        self._written.result()
        return self._digest.hexdigest()

    def commit(self, header_line: str) -> None:
        """Put ``header_line`` before the body and the whole in place of the state file."""
        self._written.result().commit(header_line)

    def discard(self) -> None:
        """Remove the body if it was not committed (waits for the thread first: nothing is left behind)."""
        with suppress(Exception):
            self._written.result().discard()
