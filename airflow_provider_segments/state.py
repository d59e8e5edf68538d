"""The snapshot of a segment's last successfully synced membership, for delta syncs.

A snapshot is a text file (local path or object-storage URI): a first line ``#segments-snapshot``
followed by a JSON header (segment, system, name, count, time), then one id per line. It is written
to a temporary sibling and then moved over the old one, and only after every chunk succeeded, so a
failed sync leaves the previous snapshot, which never runs ahead of what the API has.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_segments._compat import ObjectStoragePath
from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.sources import as_storage_path, open_text, read_blocks
from airflow_provider_segments.user_ids import unique_ids_from_text

MAGIC = "#segments-snapshot"
VERSION = 1


@dataclass
class Snapshot:
    """What a previous sync left: the segment it synced and the ids it holds."""

    segment_guid: str
    system_guid: str
    name: str | None
    ids: Sequence[str] | dict[str, str]  #: in sync order (a dict of id -> id when read back)
    synced_at: str | None = None


def _exists(target: ObjectStoragePath | str) -> bool:
    return target.exists() if isinstance(target, ObjectStoragePath) else os.path.exists(target)


def read_snapshot(state_path: Any) -> Snapshot | None:
    """Load the snapshot at ``state_path``; ``None`` when there is none yet."""
    target = as_storage_path(state_path)
    if not _exists(target):
        return None
    with open_text(state_path) as handle:
        first = handle.readline().rstrip("\r\n")
        if not first.startswith(MAGIC):
            raise SegmentsValidationError(
                f"state_path {str(state_path)!r} is not a segments snapshot (it does not start with "
                f"{MAGIC!r}); point state_path at a file of its own."
            )
        header = json.loads(first[len(MAGIC) :])
        # A dict mapping each id to itself: the delta plan looks ids up in it without a set of its
        # own, and the input file's reader reuses its strings for the ids both hold.
        ids = unique_ids_from_text(read_blocks(handle), max_length=10**6, as_dict=True)
    if header.get("version") != VERSION or len(ids) != header.get("count"):
        raise SegmentsValidationError(
            f"Snapshot {str(state_path)!r} is incomplete or of another version; delete it or sync with "
            "full_refresh=True."
        )
    return Snapshot(
        segment_guid=header["segment_guid"],
        system_guid=header["system_guid"],
        name=header.get("name"),
        ids=ids,
        synced_at=header.get("synced_at"),
    )


def write_snapshot(state_path: Any, snapshot: Snapshot) -> None:
    """Write the snapshot to a temporary sibling, then move it over ``state_path``."""
    target = as_storage_path(state_path)
    header = {
        "version": VERSION,
        "segment_guid": snapshot.segment_guid,
        "system_guid": snapshot.system_guid,
        "name": snapshot.name,
        "count": len(snapshot.ids),
        "synced_at": snapshot.synced_at,
    }
    suffix = f".tmp-{uuid.uuid4().hex}"
    if isinstance(target, ObjectStoragePath):
        temporary = ObjectStoragePath(f"{target}{suffix}")
        temporary.parent.mkdir(parents=True, exist_ok=True)
        handle = temporary.open("w", encoding="utf-8")
    else:
        temporary = f"{target}{suffix}"
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        handle = open(temporary, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed below
    try:
        with handle:
            handle.write(f"{MAGIC} {json.dumps(header)}\n")
            ids = list(snapshot.ids) if isinstance(snapshot.ids, dict) else snapshot.ids
            for start in range(0, len(ids), 10_000):
                handle.write("\n".join(ids[start : start + 10_000]))
                handle.write("\n")
        if isinstance(temporary, ObjectStoragePath):
            temporary.rename(target)  # a move within one store; the old snapshot stays until then
        else:
            os.replace(temporary, target)  # atomic on one filesystem
    except BaseException:
        if isinstance(temporary, ObjectStoragePath):
            if temporary.exists():
                temporary.unlink()
        elif os.path.exists(temporary):
            os.unlink(temporary)
        raise
