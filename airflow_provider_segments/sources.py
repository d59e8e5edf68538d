"""Where user ids come from when they are too many for XCom: a local file or object storage.

Files hold one id per line (blank lines ignored) or are CSV with a header row and a named column.
They are read as a stream in one pass that validates and deduplicates, so a bad id on line
4,000,001 fails the task before the first request, naming the line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from airflow_provider_segments._compat import ObjectStoragePath
from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.user_ids import (
    UniqueIds,
    collect_unique_ids,
    ids_from_csv,
    unique_ids_from_text,
)


def as_storage_path(path: Any) -> ObjectStoragePath | str:
    """A local path stays a string; a URI (``s3://``, ``gs://``, ``file://``, ``memory://``...) becomes an
    :class:`ObjectStoragePath`, which resolves it (and its ``conn_id@`` prefix) through Airflow."""
    if isinstance(path, ObjectStoragePath):
        return path
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(text, str) or not text.strip():
        raise SegmentsValidationError(f"user_ids_path {text!r} is not a path or URI.")
    return ObjectStoragePath(text) if "://" in text else text


#: Characters read at a time from an id file.
BLOCK_CHARS = 4 * 1024 * 1024


@contextmanager
def open_text(path: Any, *, newline: str | None = None) -> Iterator[IO[str]]:
    """Open a local path or an object-storage URI for streaming text (UTF-8).

    ``newline=None`` turns ``\\r\\n`` into ``\\n``; the csv module wants ``newline=""``.
    """
    target = as_storage_path(path)
    try:
        if isinstance(target, ObjectStoragePath):
            handle = target.open("r", encoding="utf-8", newline=newline)
        else:
            handle = open(target, encoding="utf-8", newline=newline)  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise SegmentsValidationError(f"user_ids_path {str(path)!r} does not exist.") from None
    with handle:
        yield handle


def read_blocks(handle: IO[str]) -> Iterator[str]:
    """The text of ``handle`` in blocks of :data:`BLOCK_CHARS` characters."""
    return iter(lambda: handle.read(BLOCK_CHARS), "")


def read_unique_ids(
    path: Any,
    *,
    max_length: int,
    column: str | None = None,
    keep_index: bool = False,
    canonical: dict[str, str] | None = None,
) -> UniqueIds:
    """Validate and deduplicate the ids of a file in one streaming pass; errors name the line.

    ``keep_index`` and ``canonical``: see :func:`~airflow_provider_segments.user_ids.unique_ids_from_text`
    (a delta sync uses them to hold its input and its snapshot at little more than the cost of one).
    """
    source = str(path)

    def where(line: int) -> str:
        return f"{source} line {line:,}"

    try:
        if column:
            with open_text(path, newline="") as handle:
                records = ids_from_csv(handle, column, source=source)
                ids = collect_unique_ids(records, max_length=max_length, where=where)
                if keep_index:
                    ids.index = dict.fromkeys(ids)
                return ids
        with open_text(path) as handle:
            return unique_ids_from_text(
                read_blocks(handle),
                max_length=max_length,
                where=where,
                keep_index=keep_index,
                canonical=canonical,
            )
    except UnicodeDecodeError as err:
        raise SegmentsValidationError(f"{source} is not UTF-8 text: {err}") from None
