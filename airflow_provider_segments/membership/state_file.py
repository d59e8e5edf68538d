"""One state file, on local disk or in object storage: the one storage adapter of the state
(:mod:`.state`). Writes are atomic (a temporary sibling, flushed, moved over the old file) and a
lease appears whole or not at all."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

from airflow_provider_segments.exceptions import SegmentsBusyError
from airflow_provider_segments.locations import (
    DIRECTORY,
    local_path,
    not_a_file,
    shown_location,
    storage_path,
)

#: How long a sync waits for another to finish deciding who holds a lease (milliseconds, normally).
FOLDER_LOCK_SECONDS = 30
#: The first line of a state file (its header) is at most this long.
MAX_HEADER_BYTES = 64 * 1024
#: The room a body written ahead leaves for its header line (:class:`WrittenAhead`): a snapshot's
#: header takes a few hundred bytes, 3 KiB with the longest name WalkMe takes written in escapes.
HEADER_ROOM = 4096


class StateFile:
    """One state file, on local disk or in object storage: the one storage adapter of the state."""

    def __init__(self, location: Any) -> None:
        self.location = location
        target = storage_path(location)
        # file:// is local disk: exclusive create, folder lock, fsync
        self.target: Any = local_path(target) or target
        self.local = isinstance(self.target, str)

    def __str__(self) -> str:  # as messages show it: a URI's user info and query (a signature) left out
        return shown_location(self.location)

    @property
    def folder(self) -> str:
        """The folder holding this file (local disk)."""
        return os.path.dirname(os.path.abspath(self.target))

    def exists(self) -> bool:
        return os.path.lexists(self.target) if self.local else self.target.exists()

    def is_dir(self) -> bool:
        return os.path.isdir(self.target) if self.local else self.target.is_dir()

    def is_special(self) -> bool:
        """True for a local file that is neither a regular file nor a directory (a FIFO, a device,
        a socket): reading it could block for good."""
        return self.local and not_a_file(self.target) not in (None, DIRECTORY)

    @contextmanager
    def open_binary(self) -> Iterator[IO[bytes]]:
        handle = open(self.target, "rb") if self.local else self.target.open("rb")  # noqa: SIM115
        with handle:
            yield handle

    def replace(self, header_line: str, body: Iterable[bytes] = ()) -> None:
        """Write ``header_line`` and the ``body`` blocks to a temporary sibling, flush it to disk and
        move it over this file: a reader sees the old file or the new one."""
        temporary = StateFile(f"{self.location}.tmp-{uuid.uuid4().hex}")
        if self.local:
            os.makedirs(self.folder, exist_ok=True)
        else:
            temporary.target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(temporary.target, "wb") if self.local else temporary.target.open("wb") as handle:
                handle.write(f"{header_line}\n".encode())
                handle.writelines(body)
                if self.local:
                    handle.flush()
                    os.fsync(handle.fileno())
            if self.local:
                os.replace(temporary.target, self.target)  # atomic on one filesystem
                _fsync_directory(self.folder)
            else:
                temporary.target.rename(self.target)  # a move within one store
        except BaseException:
            temporary.remove()
            raise

    def temporary_sibling(self) -> str:
        """A new name beside this local file, for a copy to move over it."""
        return f"{self.target}.tmp-{uuid.uuid4().hex}"

    def remove_leftover_copies(self) -> int:
        """Remove the temporary siblings of this local file (``<name>.tmp-<32 hex digits>``) that a
        sync killed while writing it left; return how many. Only for a caller holding the lease: no
        other sync is writing them."""
        if not self.local:
            return 0
        folder, name = os.path.split(os.path.abspath(self.target))
        copy = re.compile(rf"{re.escape(name)}\.tmp-[0-9a-f]{{32}}")
        removed = 0
        with suppress(OSError):
            for entry in os.listdir(folder):
                if copy.fullmatch(entry):
                    with suppress(FileNotFoundError):
                        os.unlink(os.path.join(folder, entry))
                        removed += 1
        return removed

    def create_exclusive(self, text: str) -> bool:
        """Create the file holding ``text`` unless it exists; ``False`` when it did.

        On local disk the text is written to a temporary sibling first and hard-linked into place,
        so the file appears whole or not at all: a second sync never reads one half-written (and
        takes it for a damaged lease). Where hard links are not supported, ``O_EXCL`` creates it.
        """
        if not self.local:
            if self.target.exists():
                return False
            self.replace(text)
            return True
        os.makedirs(self.folder, exist_ok=True)
        temporary = self.temporary_sibling()
        try:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, self.target)
            except FileExistsError:
                return False
            except OSError:  # no hard links on this filesystem
                return self._create_with_o_excl(text)
        finally:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
        _fsync_directory(self.folder)
        return True

    def _create_with_o_excl(self, text: str) -> bool:
        try:
            descriptor = os.open(self.target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return True

    @contextmanager
    def folder_locked(self) -> Iterator[None]:
        """Hold an exclusive lock (``flock``) on this file's folder, on local disk: two syncs deciding
        at once whether a lease may be taken over take turns, so neither removes a lease the other
        has just taken. Best effort where the filesystem has no locks; nothing in object storage."""
        descriptor = self._open_folder() if self.local else None
        try:
            if descriptor is not None:
                self._lock(descriptor)
            yield
        finally:
            if descriptor is not None:
                os.close(descriptor)  # (closing releases the lock)

    def _lock(self, descriptor: int) -> None:
        """Lock the folder, waiting at most :data:`FOLDER_LOCK_SECONDS` (a sync holds it for
        milliseconds: a longer hold is another program, or a hung process)."""
        import fcntl  # POSIX only, like Airflow's workers

        deadline = time.monotonic() + FOLDER_LOCK_SECONDS
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SegmentsBusyError(
                        f"The folder of {self} has been locked by another process for "
                        f"{FOLDER_LOCK_SECONDS} s, so the sync's lease cannot be taken: nothing was sent. A "
                        "sync holds that lock for milliseconds; look for another program locking the "
                        "folder (flock), or a hung sync."
                    ) from None
                time.sleep(0.02)
            except OSError:  # a filesystem without locks: the race stays as narrow as it was
                return

    def _open_folder(self) -> int | None:
        os.makedirs(self.folder, exist_ok=True)
        try:
            return os.open(self.folder, os.O_RDONLY)
        except OSError:  # pragma: no cover - platforms that cannot open a folder
            return None

    def seconds_since_modified(self) -> float | None:
        """How long ago the file was last written (local disk only; ``None`` elsewhere or absent)."""
        if not self.local:
            return None
        try:
            return time.time() - os.stat(self.target).st_mtime
        except OSError:
            return None

    def read_small_text(self, *, strict: bool = False) -> str | None:
        """The whole file as text (a lease), ``None`` when absent or not text; when it cannot be read
        ``None`` too, or with ``strict`` the ``OSError`` (unknown is not absent)."""
        try:
            with self.open_binary() as handle:
                return handle.read(MAX_HEADER_BYTES).decode("utf-8")
        except FileNotFoundError:
            return None
        except OSError:
            if strict:
                raise
            return None
        except UnicodeDecodeError:
            return None

    def remove(self) -> None:
        try:
            if self.local:
                os.unlink(self.target)
            elif self.target.exists():
                self.target.unlink()
        except FileNotFoundError:
            pass


class WrittenAhead:
    """A state file's body written before its header, so that the header can wait for what only
    comes last (the platform's evidence) and the file still appears whole or not at all.

    On local disk the body goes to a temporary sibling after a blank first line of
    :data:`HEADER_ROOM` bytes, and is flushed to disk; :meth:`commit` writes the header line over the
    blanks (padded with spaces, which JSON allows) and moves the file into place. A longer header,
    and object storage (no writes in place), get the body written whole after the header instead.
    Either way :meth:`discard` removes what a change that failed left.
    """

    def __init__(self, state_file: StateFile, body: Iterable[bytes]) -> None:
        self._file = state_file
        self._temporary: str | None = None
        self._blocks: list[bytes] = []
        self._finished = False  # committed or discarded: a second commit would have no body
        if not state_file.local:
            self._blocks = list(body)
            return
        os.makedirs(state_file.folder, exist_ok=True)
        self._temporary = state_file.temporary_sibling()
        try:
            with open(self._temporary, "wb") as handle:
                handle.write(b" " * (HEADER_ROOM - 1) + b"\n")
                handle.writelines(body)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            self.discard()
            raise

    def commit(self, header_line: str) -> None:
        """Write ``header_line`` before the body and move the whole over the state file (once)."""
        if self._finished:
            raise RuntimeError(f"the body written ahead for {self._file} commits once, and it was used")
        line = f"{header_line}\n".encode()
        if self._temporary is None:
            self._finished = True
            self._file.replace(header_line, self._blocks)
            return
        try:
            if len(line) > HEADER_ROOM:
                self._file.replace(header_line, self._body_read_back())
                return
            with open(self._temporary, "r+b") as handle:
                handle.write(line[:-1].ljust(HEADER_ROOM - 1) + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(self._temporary, self._file.target)  # atomic on one filesystem
            self._temporary = None
            _fsync_directory(self._file.folder)
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove the body written ahead, if it was not moved into place."""
        self._finished = True
        if self._temporary is not None:
            with suppress(FileNotFoundError):
                os.unlink(self._temporary)
            self._temporary = None
        self._blocks = []

    def _body_read_back(self) -> Iterator[bytes]:
        assert self._temporary is not None
        with open(self._temporary, "rb") as handle:
            handle.seek(HEADER_ROOM)
            while block := handle.read(1 << 20):
                yield block


def _fsync_directory(directory: str) -> None:
    """Make a rename durable (POSIX): fsync the folder that holds the file."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms that cannot open a folder
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(descriptor)
