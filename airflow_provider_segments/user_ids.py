"""Pure helpers for lists of user ids: coerce, validate, dedupe and chunk.

No I/O and no Airflow here; the platform limits are passed in by the hook that owns them.
"""

from __future__ import annotations

import ast
import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from airflow_provider_segments.exceptions import SegmentsValidationError

PREVIEW_CHARS = 60


def preview(value: Any, limit: int = PREVIEW_CHARS) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters, for error messages and logs."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def coerce_id_list(value: Any, *, field: str = "user_ids") -> Iterable[Any]:
    """Return ``value`` as an iterable of ids, refusing shapes that would be silently wrong.

    A string is the usual sign of a templated XCom pull rendered without
    ``render_template_as_native_obj=True``: a string that holds a JSON or Python list literal is
    parsed; any other string is refused (iterating it would send one id per character).
    """
    if value is None:
        raise SegmentsValidationError(f"{field} is required: pass a list of user ids (it was None).")
    if isinstance(value, (str, bytes)):
        text = value.decode() if isinstance(value, bytes) else value
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                parsed = json.loads(stripped)
            except ValueError:
                try:
                    parsed = ast.literal_eval(stripped)
                except (ValueError, SyntaxError):
                    parsed = None
            if isinstance(parsed, list):
                return parsed
        raise SegmentsValidationError(
            f"{field} must be a list of user ids, got the string {preview(text)}. If it comes from a "
            "template, set render_template_as_native_obj=True on the DAG or pass a list."
        )
    if isinstance(value, dict):
        raise SegmentsValidationError(f"{field} must be a list of user ids, got a dict: {preview(value)}.")
    if not isinstance(value, Iterable):
        raise SegmentsValidationError(
            f"{field} must be a list of user ids, got {type(value).__name__}: {preview(value)}."
        )
    return value


class UniqueIds(list):
    """A list of ids already validated and deduplicated (validation is not repeated on it).

    ``index`` is the insertion-ordered dict of the same ids when the reader was asked to keep it
    (a delta sync looks ids up in it instead of building a set of its own), else ``None``.
    """

    index: dict[str, None] | None = None

    @classmethod
    def from_dict(cls, seen: dict[str, None], *, keep_index: bool = False) -> UniqueIds:
        """The ids of ``seen`` in order, keeping ``seen`` as :attr:`index` when asked."""
        ids = cls(seen)
        if keep_index:
            ids.index = seen
        return ids


def _problem(raw: Any, max_length: int) -> tuple[str | None, str]:
    """Return ``(id, "")`` for a valid raw id, or ``(None, reason)``."""
    if isinstance(raw, str):
        user_id = raw
    elif isinstance(raw, int) and not isinstance(raw, bool):
        user_id = str(raw)
    else:
        return None, f"expected a string, got {type(raw).__name__}"
    if not user_id.strip():
        return None, "it is empty"
    if len(user_id) > max_length:
        return None, f"it has {len(user_id)} characters, the limit is {max_length}"
    if user_id != user_id.strip():
        return (
            None,
            "it has leading or trailing whitespace (strip it at the source if it is not part of the id)",
        )
    return user_id, ""


def normalize_user_ids(user_ids: Any, *, max_length: int, field: str = "user_ids") -> UniqueIds:
    """Validate every id and drop duplicates, keeping the first occurrence's order.

    An id is a non-empty string (an ``int`` is accepted and turned into its decimal string) of at
    most ``max_length`` characters with no surrounding whitespace. The error names the position
    and the (truncated) value of the first bad id, so a DAG author can find it in the source data.
    A :class:`UniqueIds` is returned as it is.
    """
    if isinstance(user_ids, UniqueIds):
        return user_ids
    return collect_unique_ids(
        enumerate(coerce_id_list(user_ids, field=field)),
        max_length=max_length,
        where=lambda position: f"{field}[{position}]",
    )


def collect_unique_ids(
    records: Iterable[tuple[int, Any]], *, max_length: int, where: Any = None
) -> UniqueIds:
    """Validate ``(position, raw id)`` records in one pass and keep each id once, in first order.

    ``where(position)`` names a record in the error (``user_ids[4]``, ``ids.txt line 4,000,001``).
    """
    seen: dict[str, None] = {}
    for position, raw in records:
        user_id, reason = _problem(raw, max_length)
        if user_id is None:
            label = where(position) if where else f"id #{position}"
            raise SegmentsValidationError(f"{label} = {preview(raw)} is not a valid user id: {reason}.")
        seen[user_id] = None
    return UniqueIds(seen)


def unique_ids_from_text(
    blocks: Iterable[str],
    *,
    max_length: int,
    where: Any = None,
    as_dict: bool = False,
    keep_index: bool = False,
    canonical: dict[str, Any] | None = None,
) -> Any:
    """Validate and dedupe a text of one id per line, given as consecutive blocks (e.g. 4 MiB reads).

    Blank lines are skipped; line numbers in errors count every line. Each block is checked with
    built-in operations first (lengths, surrounding whitespace) and only a block that fails them is
    walked line by line to name the offending line, which keeps a million ids well under a second.
    Returns a :class:`UniqueIds` (with its :attr:`~UniqueIds.index` if ``keep_index``), or with
    ``as_dict`` an insertion-ordered dict mapping each id to itself. Given such a dict as
    ``canonical`` (ids already in memory, e.g. the last snapshot), an id equal to one of them shares
    that string instead of a copy: two million-id sets that mostly overlap cost little more than one.
    """
    seen: dict[str, Any] = {}
    carry = ""
    first_line = 1
    for block in blocks:
        lines = (carry + block if carry else block).split("\n")
        carry = lines.pop()  # the last line may continue in the next block
        _add_lines(seen, lines, first_line, max_length, where, canonical, as_dict)
        first_line += len(lines)
    if carry:
        _add_lines(seen, [carry], first_line, max_length, where, canonical, as_dict)
    return seen if as_dict else UniqueIds.from_dict(seen, keep_index=keep_index)


def _add_lines(
    seen: dict[str, None],
    lines: list[str],
    first_line: int,
    max_length: int,
    where: Any,
    canonical: dict[str, str] | None = None,
    self_mapped: bool = False,
) -> None:
    ids = [line for line in lines if line]
    if not ids:
        return
    if max(map(len, ids)) <= max_length and list(map(str.strip, ids)) == ids:
        if canonical is not None:
            ids = [canonical.get(i, i) for i in ids]  # the string already held, when there is one
        seen.update(zip(ids, ids, strict=True) if self_mapped else dict.fromkeys(ids))
        return
    for offset, line in enumerate(lines):  # slow path: find and name the bad line
        if not line.strip():
            continue  # a blank (or whitespace-only) line
        user_id, reason = _problem(line, max_length)
        if user_id is None:
            label = where(first_line + offset) if where else f"line {first_line + offset:,}"
            raise SegmentsValidationError(f"{label} = {preview(line)} is not a valid user id: {reason}.")
        if canonical is not None:
            user_id = canonical.get(user_id, user_id)
        seen[user_id] = user_id if self_mapped else None


def ids_from_csv(lines: Iterable[str], column: str, *, source: str = "the CSV") -> Iterator[tuple[int, str]]:
    """Yield ``(line number, value)`` of ``column`` for every data row of a CSV with a header row."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        return
    names = [name.strip() for name in header]
    if column not in names:
        raise SegmentsValidationError(
            f"{source} has no column {column!r}; its header has: {', '.join(map(repr, names))}."
        )
    index = names.index(column)
    for row in reader:
        if not row or not any(cell.strip() for cell in row):
            continue  # blank line
        yield reader.line_num, row[index] if index < len(row) else ""


def chunked(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Yield consecutive slices of ``items`` of at most ``size`` elements (nothing for no items)."""
    if size < 1:
        raise ValueError(f"chunk size must be positive, got {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def chunk_count(total: int, size: int) -> int:
    """Number of chunks :func:`chunked` yields for ``total`` items."""
    return -(-total // size)
