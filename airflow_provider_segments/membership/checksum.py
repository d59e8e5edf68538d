"""The checksum a snapshot records of its ids, so that one edited by hand (an id swapped, the count
kept) reads as damaged instead of being trusted for a delta."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

from airflow_provider_segments.ids import UserIds

#: Ids hashed per update.
BLOCK_IDS = 10_000


def ids_digest(ids: UserIds) -> str:
    """SHA-256 of the ids one a line, in order, as a snapshot lists them."""
    digest = hashlib.sha256()
    for chunk in ids.chunks(BLOCK_IDS):
        digest.update(("\n".join(chunk) + "\n").encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def hashed_blocks(blocks: Iterable[str], digest: Any) -> Iterator[str]:
    """``blocks`` unchanged, each added to ``digest`` on the way: the checksum of a snapshot's lines
    as read, which :func:`ids_digest` gives for the lines as written."""
    for block in blocks:
        digest.update(block.encode("utf-8", "surrogatepass"))
        yield block
