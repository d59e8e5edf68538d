"""The checksum a snapshot records of its ids, so that one edited by hand (an id swapped, the count
kept) reads as damaged instead of being trusted for a delta."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airflow_provider_segments.id_files import line_bytes
from airflow_provider_segments.ids import UserIds

#: Ids hashed per update.
BLOCK_IDS = 10_000


def ids_digest(ids: UserIds) -> str:
    """SHA-256 of the ids one a line, in order, as a snapshot lists them."""
    return _digest(line_blocks(ids))


def line_blocks(ids: UserIds) -> Iterator[bytes]:
    """The ids one a line, as UTF-8 blocks made one at a time (a spilled collection stays on disk)."""
    return map(line_bytes, ids.chunks(BLOCK_IDS))


def _digest(blocks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for block in blocks:
        digest.update(block)
    return digest.hexdigest()


#: A snapshot's body ready to write: its lines as UTF-8 blocks, and their SHA-256 (hex).
EncodedLines = tuple[Iterable[bytes], str]


def encoded_lines(ids: UserIds) -> EncodedLines:
    """The ids one a line as UTF-8 blocks, and the digest of them: in one pass for ids held in
    memory; a spilled collection is read twice from disk instead of held encoded."""
    if ids.spilled:  # each use reads the sorted file again (a generator would be empty the second time)
        return _LineBlocks(ids), ids_digest(ids)
    blocks = list(line_blocks(ids))
    return blocks, _digest(blocks)


class _LineBlocks:
    """:func:`line_blocks` of a spilled collection, as often as it is iterated."""

    def __init__(self, ids: UserIds) -> None:
        self._ids = ids

    def __iter__(self) -> Iterator[bytes]:
        return line_blocks(self._ids)


def encoding_in_background(ids: UserIds) -> Callable[[], EncodedLines]:
    """Start :func:`encoded_lines` on a thread of its own; return what waits for its result.

    A sync starts it before its writes, while its threads mostly wait on the platform: by the time
    the change is verified, the snapshot's body is encoded (ids held in memory: their text is held
    once more meanwhile) or its checksum is known (spilled ids: the body is then written straight
    from the sorted file, which each reader reads at its own offset).
    """
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot-body")
    future = executor.submit(encoded_lines, ids)
    executor.shutdown(wait=False)  # the thread ends with its one task
    return future.result


def hashed_blocks(blocks: Iterable[str], digest: Any) -> Iterator[str]:
    """``blocks`` unchanged, each added to ``digest`` on the way: the checksum of a snapshot's lines
    as read, which :func:`ids_digest` gives for the lines as written."""
    for block in blocks:
        digest.update(block.encode("utf-8", "surrogatepass"))
        yield block
