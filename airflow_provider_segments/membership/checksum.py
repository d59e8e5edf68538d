"""The checksum a snapshot records of its ids, so that one edited by hand (an id swapped, the count
kept) reads as damaged instead of being trusted for a delta."""

from __future__ import annotations

import hashlib

from airflow_provider_segments.ids import UserIds

#: Ids hashed per update.
BLOCK_IDS = 10_000


def ids_digest(ids: UserIds) -> str:
    """SHA-256 of the ids one a line, in order, as a snapshot lists them."""
    digest = hashlib.sha256()
    for chunk in ids.chunks(BLOCK_IDS):
        digest.update(("\n".join(chunk) + "\n").encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
