"""The lease on a ``state_path`` (``state_path + ".lease"``): one sync at a time, however long it runs.

It is taken before anything is sent, so two syncs of one ``state_path`` at the same time are
detected: the second fails saying who holds it. A retry of the same task takes its own lease over,
and so does any sync when the holder was a process on this machine that is gone (this machine: its
host name, boot and PID namespace, see :func:`_holder_is_gone`); a lease not renewed
for :data:`LEASE_SECONDS` is taken over with a warning. A live sync renews its lease every
:data:`LEASE_RENEW_SECONDS` (:meth:`Lease.kept`), so it never expires under it, and confirms it
still holds the very lease it took before recording anything (:meth:`Lease.confirm`): a sync whose
lease was taken over anyway fails. A lease read that fails is "unknown", never "another's".

On local disk syncs take turns (a lock on the folder) to read, take over, renew, create and remove
the lease, and it is written aside and hard-linked into place, so it appears whole or not at all
(an unreadable one younger than :data:`LEASE_WRITE_SECONDS` is never taken over); object stores get
a write-then-read-back check, which narrows the race but cannot close it: give such syncs a
one-slot pool (see Deploying).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, TypeVar

from airflow_provider_segments.exceptions import SegmentsBusyError
from airflow_provider_segments.locations import shown_location
from airflow_provider_segments.membership.state_file import StateFile

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: A lease not renewed for this long belongs to a sync that was killed (a live one renews it): it is
#: taken over (with a warning), so a killed run holds later ones up for this long at most.
LEASE_SECONDS = 900
#: How often a live sync renews its lease (several times within :data:`LEASE_SECONDS`).
LEASE_RENEW_SECONDS = 120
#: How long the end of a sync waits for a renewal in progress before it goes on (the release then
#: waits for that renewal's write, so none lands after it).
LEASE_KEEPER_JOIN_SECONDS = 10
#: Reads of the lease before one that fails counts (a storage hiccup is not another sync's lease),
#: and the wait between two.
LEASE_READS = 3
LEASE_READ_INTERVAL = 0.5
#: An unreadable lease younger than this may be one another sync is writing (where it cannot appear
#: whole): it is not taken over.
LEASE_WRITE_SECONDS = 30


class Lease:
    """The lease of one ``state_path``, as one sync takes, keeps and gives it back."""

    def __init__(self, file: StateFile, state_path: Any) -> None:
        self.file = file
        self.state_path = state_path
        self.shown_path = shown_location(state_path)  # in messages: no user info or query
        self._record: dict[str, Any] | None = None  # the record this sync wrote (see confirm)
        self._guard = threading.Lock()  # a renewal and the release, one at a time

    def acquire(self, holder: str, log: Any) -> None:
        """Take the lease for ``holder`` or fail saying who holds it (see the module docstring)."""
        now = time.time()
        record = json.dumps(
            {
                "holder": holder,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                **_process_identity(os.getpid()),
                "acquired_at": now,
                "expires_at": now + LEASE_SECONDS,
            }
        )
        with self.file.folder_locked():  # one sync at a time decides who holds it
            for _attempt in range(2):
                if self.file.create_exclusive(record):
                    break
                current = _parse_lease(self._read_text())
                age = self.file.seconds_since_modified()
                if current is None and age is not None and age < LEASE_WRITE_SECONDS:
                    raise SegmentsBusyError(
                        f"The lease on state_path {self.shown_path!r} was written {age:.0f} s ago and "
                        "cannot be read yet: another sync may be taking it, so nothing was sent. Retry; "
                        f"delete {self.file} if it stays unreadable and no other sync is running."
                    )
                if current is None or current["holder"] == holder:
                    reason = "an unreadable lease" if current is None else "its own lease (an earlier try)"
                    log.info("Sync of %s takes over %s.", self.shown_path, reason)
                elif _holder_is_gone(current):
                    log.warning(
                        "Sync of %s takes over the lease of %s: its process (%s on this machine) is gone.",
                        self.shown_path,
                        current["holder"],
                        current["pid"],
                    )
                elif current["expires_at"] <= now:
                    log.warning(
                        "Sync of %s takes over a lease of %s that expired at %s: that sync was killed.",
                        self.shown_path,
                        current["holder"],
                        _iso(current["expires_at"]),
                    )
                else:
                    raise SegmentsBusyError(
                        f"Another sync ({current['holder']}) holds the lease on state_path "
                        f"{self.shown_path!r} since {_iso(current['acquired_at'])}: two syncs of one "
                        "segment at the same time could leave it holding neither input, so nothing was sent. "
                        f"Let the other run finish (max_active_runs=1, or a pool of one slot); a lease of a "
                        f"killed run expires at {_iso(current['expires_at'])}, or delete "
                        f"{self.file} if no other sync is running."
                    )
                self.file.remove()
            else:  # pragma: no cover - lost the race twice: another sync took it in between
                raise SegmentsBusyError(
                    f"Another sync took the lease on {self.shown_path!r} at the same moment."
                )
            if not self.file.local:  # no conditional write: read it back to see who won
                current = _parse_lease(self._read_text())
                if current is None or current["holder"] != holder:
                    raise SegmentsBusyError(
                        f"Another sync took the lease on state_path {self.shown_path!r} at the same "
                        "moment; nothing was sent."
                    )
        self._record = _parse_lease(record)

    def _read_text(self) -> str | None:
        """The lease's text (``None``: there is none, or it is not text), read up to
        :data:`LEASE_READS` times when a read fails: a lease that cannot be read may be a live
        sync's, so it is never taken for free, unless its file was not written for
        :data:`LEASE_SECONDS` (a live sync renews it; local disk tells the age): then ``None``.

        :raises SegmentsBusyError: every read failed (nothing was sent)."""
        try:
            return self._retried(lambda: self.file.read_small_text(strict=True), (OSError,))
        except OSError as err:
            age = self.file.seconds_since_modified()
            if age is not None and age >= LEASE_SECONDS:
                logger.warning(
                    "The lease %s cannot be read (%s), and no sync renewed it for %d s.", self.file, err, age
                )
                return None  # taken over as an unreadable lease
            raise SegmentsBusyError(
                f"The lease on state_path {self.shown_path!r} could not be read ({err}): whether "
                "another sync holds it is not known, so nothing was sent. Retry; if it stays "
                f"unreadable and no other sync is running, delete {self.file}."
            ) from err

    def _holds(self) -> bool:
        """Whether the lease file is still the one this store took (not a later sync's, nor a retry's
        of the same task: the same holder, another take). The caller holds the folder lock.

        :raises OSError: the lease could not be read: unknown, which is not "another's"."""
        current = _parse_lease(self.file.read_small_text(strict=True))
        return (
            current is not None
            and self._record is not None
            and all(current[key] == self._record[key] for key in ("holder", "host", "pid", "acquired_at"))
        )

    def _on_own(self, action: Callable[[], None] | None = None) -> bool:
        """Whether this store still holds the lease (and then ``action``, under the same folder
        lock), reading it up to :data:`LEASE_READS` times when a read fails.

        :raises OSError: every read failed."""

        def check() -> bool:
            with self.file.folder_locked():
                held = self._holds()
                if held and action is not None:
                    action()
                return held

        return self._retried(check, (OSError, SegmentsBusyError))  # a failed read, or a busy folder

    @staticmethod
    def _retried(attempt: Callable[[], T], errors: tuple[type[Exception], ...]) -> T:
        """``attempt()``, tried up to :data:`LEASE_READS` times while it raises one of ``errors`` (a
        storage hiccup is not another sync's lease); the last failure is raised."""
        for tries in range(1, LEASE_READS + 1):
            try:
                return attempt()
            except errors:
                if tries == LEASE_READS:
                    raise
                time.sleep(LEASE_READ_INTERVAL)
        raise AssertionError("unreachable")  # pragma: no cover

    def confirm(self) -> None:
        """Fail when another sync took this store's lease over while it ran: its writes and this
        sync's may both have landed, so nothing of this sync may be recorded or reported done."""
        if self._record is None:
            return
        try:
            held = self._on_own()
        except (OSError, SegmentsBusyError) as err:
            why = f"reading it failed: {err}" if isinstance(err, OSError) else "its folder stayed locked"
            raise SegmentsBusyError(
                f"The lease on state_path {self.shown_path!r} could not be checked ({why}), so "
                "whether another sync took it over while this one ran is not known: what this sync sent "
                "(if anything) stands, but its result was not recorded. Rerun the task."
            ) from err
        if not held:
            current = _parse_lease(self.file.read_small_text())
            raise SegmentsBusyError(
                f"Another sync ({current['holder'] if current else 'unknown'}) took over the lease on "
                f"state_path {self.shown_path!r} while this sync ran (a clock far ahead of this "
                "machine's, a retry of this task beside it, or renewals that failed for "
                f"{LEASE_SECONDS // 60} minutes, the state's storage down): the segment may hold writes "
                "of both, so this sync's result was not recorded. Rerun the task once the other sync has "
                "finished."
            )

    def renew(self) -> bool:
        """Push the lease's expiry :data:`LEASE_SECONDS` on; ``False`` once it is not this store's
        (or was released). Raises when the lease cannot be read or written: the next round retries."""
        with self._guard:  # never after the release: a renewal in flight finishes first
            if self._record is None:
                return False
            renewed = {**self._record, "expires_at": time.time() + LEASE_SECONDS}
            if not self._on_own(lambda: self.file.replace(json.dumps(renewed))):
                return False
            self._record = renewed
        return True

    @contextmanager
    def kept(self) -> Iterator[None]:
        """Renew the lease in a background thread while the body runs (a sync may run for hours)."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(LEASE_RENEW_SECONDS):
                try:
                    if not self.renew():
                        return
                except Exception as err:  # a storage hiccup, a busy folder: the next round tries again
                    logger.warning(
                        "Renewing the lease on %s failed (%s); trying again.", self.shown_path, err
                    )

        keeper = threading.Thread(target=renew, name=f"lease of {self.shown_path}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join(timeout=LEASE_KEEPER_JOIN_SECONDS)

    def release(self) -> None:
        """Give the lease back: only the very lease this store took (a retry of the same task may
        have taken it over since), never one it cannot read (that one expires)."""
        if self._record is None:
            return
        with self._guard:
            try:
                self._on_own(self.file.remove)
            except Exception as err:  # the sync's outcome stands; this lease expires on its own
                logger.warning("The lease on %s was not given back (%s): it expires.", self.shown_path, err)
            self._record = None


def _parse_lease(text: str | None) -> dict[str, Any] | None:
    try:
        record = json.loads(text or "")
        holder, acquired, expires = (
            record["holder"],
            float(record["acquired_at"]),
            float(record["expires_at"]),
        )
    except (ValueError, TypeError, KeyError):
        return None
    pid, started = record.get("pid"), record.get("started")
    return {
        "holder": str(holder),
        "host": str(record.get("host", "")),
        "pid": pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        "boot_id": record.get("boot_id") if isinstance(record.get("boot_id"), str) else None,
        "pid_namespace": record.get("pid_namespace")
        if isinstance(record.get("pid_namespace"), str)
        else None,
        "started": started if isinstance(started, int) and not isinstance(started, bool) else None,
        "acquired_at": acquired,
        "expires_at": expires,
    }


def _holder_is_gone(lease: dict[str, Any]) -> bool:
    """True when the lease was taken by a process of this machine that no longer runs.

    The same host name is not the same process table: containers with host networking share the
    name, each with its own PID namespace, and a reboot starts the pids again. So the holder is
    looked up only when it recorded this boot and this PID namespace (where ``/proc`` tells them: a
    lease that does not say, read where ``/proc`` does, waits for its expiry; without ``/proc`` on
    either side, the host name and pid decide), and a pid running again is another process when it
    started at another time.
    """
    if lease["host"] != socket.gethostname() or lease["pid"] is None:
        return False
    mine = _process_identity(os.getpid())
    if (lease["boot_id"], lease["pid_namespace"]) != (mine["boot_id"], mine["pid_namespace"]):
        return False
    try:
        os.kill(lease["pid"], 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists but is not ours to signal
        pass
    started = _process_identity(lease["pid"])["started"]
    return lease["started"] is not None and started is not None and started != lease["started"]


def _process_identity(pid: int) -> dict[str, Any]:
    """What tells a process apart beyond its host name and pid (Linux; ``None`` where ``/proc`` does
    not say): the boot, the PID namespace, and the start time (clock ticks since the boot)."""
    identity: dict[str, Any] = {"boot_id": None, "pid_namespace": None, "started": None}
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot:
            identity["boot_id"] = boot.read().strip()
        identity["pid_namespace"] = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat:
            identity["started"] = int(stat.read().rpartition(")")[2].split()[19])  # field 22
    except (OSError, ValueError, IndexError):
        pass
    return identity


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")
