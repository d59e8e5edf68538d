"""The snapshot, its journal and the lease: what a sync remembers between runs, and what it promises.

**The snapshot** (at ``state_path``) records the membership the last successful sync left, a checksum
of its ids, and the platform's evidence read back after it: the member count and update time the
platform listed. It is a cache, never the truth: a sync uses it for a delta only while the platform
still lists that count and that update time (see :mod:`.sync`). Any other version reads as "no snapshot".

**The journal** (``state_path + ".journal"``) is written, atomically, before the first write of a
change: the segment and every id whose membership the change may alter (or that the whole
membership is in play). It is removed after the change was verified. A run that finds one treats its
ids as unknown.

**The lease** (``state_path + ".lease"``): one sync at a time (:mod:`.lease`).

Every file is written to a temporary sibling, flushed to disk (``fsync``) and moved over the old
one, so a reader sees the old version or the new one, never half a file; a torn or undecodable file
of ours reads as absent (a full sync then makes the segment exact), a file that is not ours is
refused before anything is sent.
"""

from __future__ import annotations

import hashlib
import io
import json
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any

from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.ids import UserIds
from airflow_provider_segments.locations import read_blocks, shown_location, unreadable
from airflow_provider_segments.membership.checksum import SnapshotBody, hashed_blocks, line_blocks
from airflow_provider_segments.membership.lease import Lease
from airflow_provider_segments.membership.state_file import MAX_HEADER_BYTES, StateFile
from airflow_provider_segments.redaction import redact_known_in
from airflow_provider_segments.text import preview

SNAPSHOT_MAGIC = "#segments-snapshot"
JOURNAL_MAGIC = "#segments-journal"
#: Version 3 records the platform's evidence (listed count and update time). Older snapshots lack it,
#: so they read as "no snapshot": one full sync, then this format.
STATE_VERSION = 3
JOURNAL_SUFFIX = ".journal"
LEASE_SUFFIX = ".lease"


@dataclass
class Snapshot:
    """The membership a sync left and the platform's evidence read back after it.

    ``listed_count`` / ``listed_updated_at``: the member count and update time the platform listed
    for the segment once the change was done (``None`` where it lists none).
    """

    segment_guid: str
    system_guid: str
    name: str | None
    ids: UserIds
    changed_at: str | None = None
    listed_count: int | None = None
    listed_updated_at: str | None = None


@dataclass
class Journal:
    """A change in flight on ``segment_guid``: the ``ids`` it may alter (``mode="full"``: all of them)."""

    segment_guid: str | None
    system_guid: str
    mode: str
    ids: UserIds

    def __str__(self) -> str:
        return f"{self.mode} change of segment {self.segment_guid or '(being created)'}"


class StateStore:
    """The snapshot at ``state_path``, its journal and its lease (local path or object-storage URI)."""

    def __init__(self, state_path: Any) -> None:
        self.state_path = state_path
        self.shown_path = shown_location(state_path)  # in messages: no user info or query
        self.snapshot_file = StateFile(state_path)
        self.journal_file = StateFile(f"{state_path}{JOURNAL_SUFFIX}")
        self.lease_file = StateFile(f"{state_path}{LEASE_SUFFIX}")
        self.lease = Lease(self.lease_file, state_path)

    # -- checks and lease ------------------------------------------------------------------------
    def check_usable(self) -> None:
        """Refuse a ``state_path`` that cannot hold a snapshot (a directory), before anything is sent."""
        for state_file in (self.snapshot_file, self.journal_file, self.lease_file):
            kind = (
                "a directory"
                if state_file.is_dir()
                else "not a regular file"
                if state_file.is_special()
                else ""
            )
            if kind:
                raise SegmentsValidationError(
                    f"state_path {self.shown_path!r}: {state_file} is {kind}; point state_path at a "
                    "file of its own, e.g. <folder>/<segment>.snapshot. Nothing was sent."
                )

    def acquire_lease(self, holder: str, log: Any) -> None:
        """Take the lease for ``holder`` or fail saying who holds it (see :class:`~.lease.Lease`);
        then remove what syncs killed while writing the snapshot or journal left beside them (a
        snapshot's body is written beside it while the writes are out)."""
        self.lease.acquire(holder, log)
        removed = self.snapshot_file.remove_leftover_copies() + self.journal_file.remove_leftover_copies()
        if removed:
            log.info(
                "Removed %s temporary file(s) that killed syncs left beside %s.", removed, self.shown_path
            )

    def confirm_lease(self) -> None:
        """Fail when another sync took this store's lease over (see :meth:`~.lease.Lease.confirm`)."""
        self.lease.confirm()

    def lease_kept(self) -> AbstractContextManager[None]:
        """Renew the lease in the background while the body runs (see :meth:`~.lease.Lease.kept`)."""
        return self.lease.kept()

    def release_lease(self) -> None:
        """Give the lease back (see :meth:`~.lease.Lease.release`)."""
        self.lease.release()

    # -- snapshot ----------------------------------------------------------------------------------
    def read_snapshot(self, log: Any) -> Snapshot | None:
        """The last snapshot, or ``None`` (none yet, damaged, or of another version: a full sync then
        makes the segment exact and writes a new one)."""
        read = self._read(self.snapshot_file, SNAPSHOT_MAGIC, log)
        if read is None:
            return None
        header, ids, body_sha256 = read
        if header.get("version") != STATE_VERSION:
            log.warning(
                "The snapshot at %s is of format version %s, not %s: it lacks the platform's evidence, "
                "so it is not used; syncing in full once, then writing the new format.",
                self.shown_path,
                preview(header.get("version")),
                STATE_VERSION,
            )
            return None
        edited = header.get("ids_sha256") != body_sha256  # or older than checksums
        if ids is None or edited or len(ids) != header.get("count") or not header.get("segment_guid"):
            log.warning(
                "The snapshot at %s is incomplete, damaged or edited; syncing in full to make the segment "
                "exact.",
                self.shown_path,
            )
            return None
        return Snapshot(
            segment_guid=str(header["segment_guid"]),
            system_guid=str(header.get("system_guid", "")),
            name=header.get("name"),
            ids=ids,
            changed_at=header.get("changed_at"),
            listed_count=_int_or_none(header.get("listed_count")),
            listed_updated_at=header.get("listed_updated_at"),
        )

    def snapshot_body(self, ids: UserIds) -> SnapshotBody:
        """Start writing the next snapshot's ids on a thread (see :class:`.checksum.SnapshotBody`);
        :meth:`write_snapshot` adds the header."""
        return SnapshotBody(self.snapshot_file, ids, in_background=True)

    def write_snapshot(self, snapshot: Snapshot, body: SnapshotBody | None = None) -> None:
        """Write ``snapshot``; ``body``: its ids written ahead (:meth:`snapshot_body`)."""
        ids = snapshot.ids
        body = body or SnapshotBody(self.snapshot_file, ids)
        if body.count != len(ids):
            body.discard()
            raise ValueError(f"the snapshot body holds {body.count:,} ids, the snapshot {len(ids):,}")
        header = {
            "version": STATE_VERSION,
            "segment_guid": snapshot.segment_guid,
            "system_guid": snapshot.system_guid,
            "name": redact_known_in(snapshot.name),  # (informational: a secret WalkMe echoed stays out)
            "count": len(ids),
            "ids_sha256": body.sha256(),
            "changed_at": snapshot.changed_at,
            "listed_count": snapshot.listed_count,
            "listed_updated_at": snapshot.listed_updated_at,
        }
        body.commit(f"{SNAPSHOT_MAGIC} {json.dumps(header)}")

    # -- journal -----------------------------------------------------------------------------------
    def read_journal(self, log: Any) -> Journal | None:
        """The journal of a change that did not finish, or ``None``; a damaged one means "all unknown"."""
        if not self.journal_file.exists():
            return None
        read = self._read(self.journal_file, JOURNAL_MAGIC, log)
        header, ids, _ = read if read is not None else ({}, None, None)
        mode = header.get("mode")
        if ids is None or len(ids) != header.get("count") or mode not in ("full", "delta"):
            log.warning("Unreadable journal %s: the whole membership counts as unknown.", self.journal_file)
            return Journal(None, str(header.get("system_guid", "")), "full", UserIds())
        return Journal(header.get("segment_guid"), str(header.get("system_guid", "")), mode, ids)

    def write_journal(self, journal: Journal) -> None:
        header = {
            "version": STATE_VERSION,
            "segment_guid": journal.segment_guid,
            "system_guid": journal.system_guid,
            "mode": journal.mode,
            "count": len(journal.ids),
            "started_at": datetime.now(timezone.utc).isoformat(),
        }
        self.journal_file.replace(f"{JOURNAL_MAGIC} {json.dumps(header)}", line_blocks(journal.ids))

    def clear_journal(self) -> None:
        self.journal_file.remove()

    # -- reading -----------------------------------------------------------------------------------
    def _read(
        self, state_file: StateFile, magic: str, log: Any
    ) -> tuple[dict[str, Any], UserIds | None, str | None] | None:
        """``(header, ids, SHA-256 of the ids' lines as read)`` of a state file of ours; ``None`` when
        absent or damaged past reading.

        A file that does not start with ``magic`` is not ours: refused, so that a mistyped
        ``state_path`` never overwrites someone's file. An empty file, or one cut short inside the
        magic, is a torn copy of ours (or nobody's): damaged, not refused.
        """
        if not state_file.exists():
            return None
        kind = magic.removeprefix("#segments-")
        try:
            with state_file.open_binary() as handle:
                first = _header_line(handle)
                if magic.encode().startswith(first.rstrip(b"\r\n")):  # empty, or cut inside the magic
                    log.warning("The %s at %s is empty or cut short: it is not used.", kind, state_file)
                    return {}, None, None
                if not first.startswith(magic.encode()):
                    raise SegmentsValidationError(
                        f"state_path {self.shown_path!r}: {state_file} is not a segments {kind} (it "
                        f"does not start with {magic!r}); point state_path at a file of its own. Nothing "
                        "was sent."
                    )
                try:
                    header = json.loads(first[len(magic) :].decode("utf-8"))
                except ValueError:
                    log.warning("The %s at %s has a damaged header.", kind, state_file)
                    return {}, None, None
                text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
                digest = hashlib.sha256()
                try:
                    # Written by us from validated ids; re-validated so a damaged file is caught, and
                    # hashed as read (a large one comes back sorted, not in the order written).
                    blocks = hashed_blocks(read_blocks(text), digest)
                    ids = UserIds.from_lines_text(blocks, max_length=10**6, source=str(state_file))
                except (SegmentsValidationError, UnicodeDecodeError) as err:
                    log.warning("The %s at %s is damaged (%s).", kind, state_file, preview(str(err), 160))
                    ids = None
                finally:
                    text.detach()
        except OSError as err:
            raise unreadable(f"state_path {self.shown_path!r}: {state_file} cannot be read", err) from None
        return (header if isinstance(header, dict) else {}), ids, digest.hexdigest()


def _header_line(handle: IO[bytes]) -> bytes:
    try:
        return handle.readline(MAX_HEADER_BYTES)
    except TypeError:  # fsspec's buffered files take no size
        return handle.readline()


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
