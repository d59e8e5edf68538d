"""Where ids and state live: a local path, or an object-storage URI read through Airflow's
``ObjectStoragePath`` (imported on first use only, so importing this module imports no Airflow).

Text is UTF-8, read in blocks; a file that is not says where its first bad byte is.
"""

from __future__ import annotations

import errno
import os
import re
import ssl
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_segments.exceptions import (
    SegmentsError,
    SegmentsInputMissingError,
    SegmentsValidationError,
)
from airflow_provider_segments.id_rules import describe_char, find_invisible
from airflow_provider_segments.text import preview

#: fsspec protocols that are this machine's own disk (``file:///tmp/ids.txt``).
LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
#: What a retry cannot fix when opening or reading a file: the path is wrong, or not ours to read.
#: Any other OSError (a timeout, a reset connection, EIO from object storage) keeps the retry policy.
PERMANENT_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.EINVAL}
)
#: Characters read at a time from an id file.
BLOCK_CHARS = 4 * 1024 * 1024


def is_uri(path: Any) -> bool:
    """True for an object-storage URI (``s3://...``), false for a local path."""
    return not isinstance(path, (str, os.PathLike)) or "://" in os.fspath(path)


_PASSWORD_COLON = re.compile(r":(?!\d+(?:/|$))")
_IPV6_LITERAL = re.compile(r"\[[^\]]*\]")


def shown_location(path: Any) -> str:
    """``path`` as messages and lineage show it: a URI without its user info (``s3://conn_id@...``),
    query or fragment (a pre-signed URL's signature is a credential); a local path as it is."""
    text = str(os.fspath(path) if isinstance(path, os.PathLike) else path)
    if "://" not in text:
        return text
    scheme, _, rest = text.partition("://")
    before, at, after = rest.rpartition("@")
    # A ":" before the last "@" that is no port (nor in an IPv6 literal) is a "user:password", whose
    # password may hold "/", "?", "#" or "@" (an AWS secret key, Zendesk's "email/token:..."), where
    # urlsplit would end the host: everything up to that "@" goes. An "@" in an object key stays.
    if at and _PASSWORD_COLON.search(_IPV6_LITERAL.sub("", before)):
        rest = after
    parts = urlsplit(f"{scheme}://{rest}")
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def storage_path(path: Any) -> Any:
    """A local path as a string, or an object-storage URI as Airflow's ``ObjectStoragePath``."""
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if isinstance(text, str):
        if not text.strip():
            raise SegmentsValidationError(f"path {text!r} is not a path or URI.")
        bad = find_invisible(text, spaces_ok=True)  # a file's name may hold U+00A0
        if bad:  # a templated path's line break, a NUL: no file has this name, and no retry makes one
            raise SegmentsValidationError(  # (shown without a URI's user info and query: credentials)
                f"path {preview(shown_location(text))} holds the control or invisible character "
                f"{describe_char(bad.group())} at position {bad.start()} of the path as given: no file "
                "can be found by it."
            )
        text = _file_uri_of_this_machine(text)
        if "://" not in text:
            return text
    from airflow_provider_segments._compat import ObjectStoragePath  # Airflow, on first use only

    if isinstance(text, ObjectStoragePath):
        return text
    if not isinstance(text, str):
        raise SegmentsValidationError(f"path {preview(text)} is not a path or URI.")
    return ObjectStoragePath(text)


def _file_uri_of_this_machine(text: str) -> str:
    """``text``, with a ``file:`` URI spelled as RFC 8089 allows (``file://localhost/p``, ``file:/p``)
    written ``file:///p``; a ``file://`` URI naming another host is refused (no read reaches it: it
    was taken for a path relative to the working directory)."""
    scheme, colon, rest = text.partition(":")
    if not colon or scheme.lower() != "file":
        return text
    if not rest.startswith("//"):
        return f"file://{rest}" if rest.startswith("/") else text  # file:/p
    host, slash, path = rest[2:].partition("/")
    if host.lower() in ("", "localhost"):
        return f"file:///{path}" if slash else text
    shown = urlsplit(shown_location(text))  # (no user info or query: they may be credentials)
    raise SegmentsValidationError(
        f"path {preview(shown.geturl())} names a file on the host {shown.netloc!r}, another machine: a "
        f"file:// URI reads this machine's disk only (file://{shown.path} or file://localhost{shown.path}); "
        "copy the file here, or give an object-storage URI."
    )


def local_path(target: Any) -> str | None:
    """Where a :func:`storage_path` result is on this machine's disk (a ``file://`` URI is local disk
    too), or ``None`` for object storage."""
    if isinstance(target, str):
        return target
    return str(target.path) if (getattr(target, "protocol", "") or "") in LOCAL_PROTOCOLS else None


@contextmanager
def open_text(path: Any, mode: str = "r") -> Iterator[IO[str]]:
    """Open a local path or an object-storage URI as UTF-8 text, lines kept as they are.

    Reading drops a leading byte-order mark (spreadsheet exports start with one); ``newline=""``
    keeps ``\\r`` visible so that a stray one is refused instead of silently splitting an id. A path
    that does not exist raises :class:`SegmentsInputMissingError` (the task's retries apply: it may
    still arrive); a directory raises :class:`SegmentsValidationError` (a retry cannot fix it).
    """
    target = storage_path(path)
    encoding = "utf-8-sig" if mode == "r" else "utf-8"
    local = local_path(target)
    if local is not None:
        _refuse_unless_regular(path, local)
    try:
        if isinstance(target, str):
            handle = open(target, mode, encoding=encoding, newline="")  # noqa: SIM115 - closed below
        else:
            handle = target.open(mode, encoding=encoding, newline="")
    except IsADirectoryError:
        raise SegmentsValidationError(_not_a_file(path, DIRECTORY)) from None
    except FileNotFoundError:
        if mode != "r":
            raise  # a state file's folder vanished while writing: an OSError, retried
        raise SegmentsInputMissingError(
            f"{shown_location(path)!r} does not exist (yet): if another task or machine writes it, give this "
            "task retries (and a retry_delay) long enough for it to arrive."
        ) from None
    except OSError as err:
        if mode != "r":
            raise
        raise unreadable(f"{preview(shown_location(path))} cannot be opened", err) from None
    with handle:
        yield handle


def unreadable(what: str, err: OSError) -> SegmentsError:
    """The error for a file that could not be opened or read: a validation error (no retry) when a
    retry cannot fix it (:data:`PERMANENT_ERRNOS`), else one that keeps the task's retry policy."""
    transient = isinstance(err, TimeoutError | ConnectionError | ssl.SSLError)  # (SSL_ERROR_SSL is 1: EPERM)
    permanent = isinstance(err, PermissionError | NotADirectoryError | IsADirectoryError)  # errno or not
    if not transient and (permanent or err.errno in PERMANENT_ERRNOS):
        return SegmentsValidationError(f"{what}: {err.strerror or type(err).__name__}. Nothing was sent.")
    return SegmentsError(
        f"{what}: {type(err).__name__}: {err.strerror or err}. Nothing was sent; a storage or network "
        "error, so the task's retries apply."
    )


def _refuse_unless_regular(path: Any, local: str) -> None:
    """Refuse a local ``path`` (``local`` on disk) that exists but, symlinks followed, is not a regular
    file: opening a FIFO waits forever for a writer, a device or socket is no file of ids."""
    kind = not_a_file(local)
    if kind is not None:
        raise SegmentsValidationError(_not_a_file(path, kind))


def not_a_file(local: str) -> str | None:
    """What a local path is when it exists, symlinks followed, and is not a regular file
    (:data:`DIRECTORY`, "a FIFO (named pipe)"...); ``None`` for a regular file or nothing there (or
    nothing readable: ``open()`` says which)."""
    try:
        mode = os.stat(local).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


DIRECTORY = "a directory"
#: What a local path that is not a regular file is, for the message refusing it.
_KINDS = (
    (stat.S_ISDIR, DIRECTORY),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _not_a_file(path: Any, kind: str) -> str:
    return f"{shown_location(path)!r} is {kind}: give the path of a file (one id per line, or a CSV)."


def not_utf8(path: Any, source: str, err: UnicodeDecodeError) -> str:
    """The message for a file that is not UTF-8: where the first bad byte is (file line and byte
    offset, found by reading the bytes again) and what to do."""
    place = _first_undecodable_byte(path)
    if place is None:  # the file changed since: say what the decoder said
        return f"{source} is not UTF-8 text ({err.reason}); save it as UTF-8."
    line, offset, value, reason = place
    return (
        f"{source} line {line:,} (byte offset {offset:,}) is not UTF-8: byte 0x{value:02X}, {reason}. "
        "Save the file as UTF-8 (a spreadsheet's 'CSV UTF-8' export, iconv -t UTF-8)."
    )


def _first_undecodable_byte(path: Any) -> tuple[int, int, int, str] | None:
    """``(line, byte offset, byte, reason)`` of the first byte of ``path`` that strict UTF-8 refuses
    (an invalid byte, a truncated sequence, an encoded surrogate), or ``None``; read in blocks."""
    target = storage_path(path)
    with open(target, "rb") if isinstance(target, str) else target.open("rb") as handle:
        offset = lines = 0  # bytes and line breaks before ``pending``
        pending = b""
        while True:
            block = handle.read(BLOCK_CHARS)
            data = pending + block
            try:
                data.decode("utf-8")
                good = len(data)
            except UnicodeDecodeError as err:
                if not (block and err.end == len(data) and err.reason == "unexpected end of data"):
                    line = lines + data.count(b"\n", 0, err.start) + 1
                    return line, offset + err.start, data[err.start], err.reason
                good = err.start  # a character cut by the block's end: decode it with the next block
            if not block:
                return None
            offset += good
            lines += data.count(b"\n", 0, good)
            pending = data[good:]


def read_blocks(handle: IO[str]) -> Iterator[str]:
    """The text of ``handle`` in blocks of :data:`BLOCK_CHARS` characters."""
    return iter(lambda: handle.read(BLOCK_CHARS), "")
