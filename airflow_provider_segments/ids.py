"""The one id collection: :class:`UserIds`, validated and deduplicated, whatever the input path.

Every way a DAG hands over user ids ends here: a list (or an XCom rendered to one, or a JSON list
in a string), a file of one id per line, a CSV column, on local disk or in object storage. Each
produces the same :class:`UserIds`: strings of 1 to ``max_length`` characters, without surrounding
whitespace and without any invisible or control character (Unicode general categories ``Cc``,
``Cf``, ``Cs``, ``Zl``, ``Zp``: controls, zero-width and bidi characters, soft hyphens, byte-order
marks, lone surrogates, line and paragraph separators), each once, in the order first seen. A bad id
fails the whole input before anything is sent, naming its position and the code point.

No Airflow import at module level: object-storage URIs are opened through Airflow's
``ObjectStoragePath`` on first use only.
"""

from __future__ import annotations

import ast
import csv
import json
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.id_rules import find_invisible, free_of_invisible, id_problem
from airflow_provider_segments.locations import (
    not_utf8,
    open_text,
    read_blocks,
)
from airflow_provider_segments.text import preview  # re-exported: every module quotes values so

#: In a file of one id per line, a first line holding one of these is a CSV header (or row): the
#: file is refused, pointing at ``user_ids_column``, rather than sent as ids, header included.
CSV_DELIMITERS = (",", ";", "\t")
#: The longest line of a CSV of ids (a record is one line); each field is also held to Python's
#: ``csv.field_size_limit()`` (128 KiB unless the process changed it).
MAX_CSV_LINE_CHARS = 1024 * 1024


class UserIds:
    """Validated user ids, each once, in the order first seen.

    Membership tests are O(1) and iteration follows the input's order. Build one with
    :meth:`from_values` (a list, tuple, set, an XCom or a JSON list in a string) or :meth:`from_file`
    (lines or a CSV column, local or object storage); a :class:`UserIds` passed to either is kept.
    """

    __slots__ = ("_ids", "_lookup")

    def __init__(self, ids: list[str] | None = None, lookup: set[str] | dict[str, Any] | None = None) -> None:
        # ``_ids``: the unique ids in order; ``_lookup``: the same ids for O(1) membership (built on
        # first use). A collection read to be shared (a snapshot) looks up through a dict mapping each
        # id to itself, so another reader can reuse the very same string (``from_file(share=...)``).
        self._ids: list[str] = ids if ids is not None else []
        self._lookup = lookup

    @classmethod
    def _unique(cls, ids: list[str], *, self_mapped: bool = False) -> UserIds:
        """``ids`` without repeats, in first order: one set when there are none (the common case, and
        the cheapest check CPython offers), an ordered dict otherwise."""
        if self_mapped:
            strings = dict(zip(ids, ids, strict=True))
            return cls(ids if len(strings) == len(ids) else list(strings), strings)
        seen = set(ids)
        if len(seen) == len(ids):
            return cls(ids, seen)
        ordered = dict.fromkeys(ids)
        return cls(list(ordered), ordered)

    @property
    def lookup(self) -> set[str] | dict[str, Any]:
        """The ids as a set-like collection: what plans use for O(1) ``in`` at C speed."""
        if self._lookup is None:
            self._lookup = set(self._ids)
        return self._lookup

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self.lookup

    def __eq__(self, other: object) -> bool:
        if isinstance(other, UserIds):
            return self._ids == other._ids
        if isinstance(other, list):
            return self._ids == other
        return NotImplemented

    def __repr__(self) -> str:
        return f"UserIds({len(self):,} ids)"

    def chunks(self, size: int) -> Iterator[list[str]]:
        """Consecutive lists of at most ``size`` ids, in order (none for no ids)."""
        if size < 1:
            raise ValueError(f"chunk size must be positive, got {size}")
        for start in range(0, len(self._ids), size):
            yield self._ids[start : start + size]

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def from_values(cls, values: Any, *, max_length: int, field: str = "user_ids") -> UserIds:
        """Validate and dedupe ids given as values; an ``int`` becomes its decimal string.

        A string is the usual sign of a templated XCom pull rendered without native rendering: one
        holding a JSON or Python list literal is parsed, any other string is refused (iterating it
        would send one id per character). Errors name the position: ``user_ids[4711] = ...``.
        """
        if isinstance(values, UserIds):
            return values
        values = as_list(values, field)
        if not values:
            return cls()
        # C-speed checks of the whole list; the slow walk below only runs to name a bad id.
        if set(map(type, values)) == {str} and (
            max(map(len, values)) <= max_length
            and min(map(len, values)) > 0
            and free_of_invisible("".join(values))
            and list(map(str.strip, values)) == values
        ):
            return cls._unique(list(values))  # a copy: the caller keeps its list
        ids: dict[str, Any] = {}
        for position, raw in enumerate(values):
            if isinstance(raw, int) and not isinstance(raw, bool):
                try:
                    raw = str(raw)
                except ValueError:  # more digits than Python converts (4,300 by default)
                    raise SegmentsValidationError(
                        f"{field}[{position}] is an integer of thousands of digits, not a valid user id: "
                        f"ids have at most {max_length} characters."
                    ) from None
            if not isinstance(raw, str):
                raise SegmentsValidationError(
                    f"{field}[{position}] = {preview(raw)} is not a valid user id: expected a string, "
                    f"got {type(raw).__name__}."
                )
            _add_one(ids, raw, max_length, f"{field}[{position}]")
        return cls(list(ids), ids)

    @classmethod
    def from_file(
        cls,
        path: Any,
        *,
        max_length: int,
        column: str | None = None,
        share: UserIds | None = None,
    ) -> UserIds:
        """Validate and dedupe the ids of a file in one streaming pass; errors name the line.

        ``path`` is a local path or an object-storage URI (``s3://``, ``gs://``, ``file://``...). The
        file is UTF-8 (a leading byte-order mark is dropped) with one id per line (blank lines are
        skipped; ``\\r\\n`` endings are fine), or a CSV with a header row when ``column`` names the
        id column. ``share``: ids already in memory (e.g. the last snapshot); an id both hold uses
        the same string, so two large, mostly equal collections cost little more than one.

        A file of one id per line whose first non-blank line holds a comma, semicolon or tab is
        refused: it is a CSV given without ``column`` (its header would be sent as an id, then every
        row). Later lines may hold them; a first id that does must come as a CSV with ``column``.
        A line longer than ``max_length`` is refused as soon as a block shows it.

        A CSV is read strictly (Python's ``csv`` with ``strict=True``, comma-separated, ``"`` quotes):
        each record is one line (a quote left open or a line break inside quotes is refused where
        it starts: read loosely, it would swallow the rest of the file), has as many fields as the
        header (blank lines are skipped), lines hold at most :data:`MAX_CSV_LINE_CHARS` characters
        and fields at most ``csv.field_size_limit()``; the header must name ``column`` exactly once.

        Raises :class:`SegmentsValidationError` (naming the file and line) for anything wrong with
        the file, including a directory or bytes that are not UTF-8, and
        :class:`SegmentsInputMissingError` when it does not exist.
        """
        source = str(path)

        def where(line: int) -> str:
            return f"{source} line {line:,}"

        try:
            with open_text(path) as handle:
                if column:
                    return cls._from_csv(handle, column, source, max_length, where)
                ids = cls._from_blocks(read_blocks(handle), max_length, where, share, first_line_check=True)
        except UnicodeDecodeError as err:
            raise SegmentsValidationError(not_utf8(path, source, err)) from None
        return ids

    @classmethod
    def from_lines_text(cls, blocks: Iterable[str], *, max_length: int, source: str) -> UserIds:
        """Ids of a text given as consecutive blocks, one id per line (a snapshot's body); the result
        can be passed as ``share`` to :meth:`from_file`."""
        where = lambda line: f"{source} line {line:,}"  # noqa: E731
        return cls._from_blocks(blocks, max_length, where, None, self_mapped=True)

    @classmethod
    def _from_blocks(
        cls,
        blocks: Iterable[str],
        max_length: int,
        where: Callable[[int], str],
        share: UserIds | None,
        *,
        self_mapped: bool = False,
        first_line_check: bool = False,
    ) -> UserIds:
        collected: list[str] = []
        carry = ""
        first_line = 1
        for block in blocks:
            text = carry + block if carry else block
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            lines = text.split("\n")
            carry = lines.pop()  # the last line may continue in the next block
            if first_line_check:
                first_line_check = _refuse_a_header(lines, first_line, where)
            collected += _checked_lines(lines, text, first_line, max_length, where)
            first_line += len(lines)
            if len(carry) > max_length + 1:  # (+1: a "\r" whose "\n" opens the next block)
                carry = _cut_long_line(carry, max_length, where(first_line))
        if carry:
            carry = carry.removesuffix("\r")
            if first_line_check:
                _refuse_a_header([carry], first_line, where)
            collected += _checked_lines([carry], carry, first_line, max_length, where)
        strings = share.lookup if share is not None else None
        if isinstance(strings, dict) and next(iter(strings.values()), None) is not None:
            collected = list(map(strings.get, collected, collected))  # the string already held, if any
        return cls._unique(collected, self_mapped=self_mapped)

    @classmethod
    def _from_csv(
        cls, handle: IO[str], column: str, source: str, max_length: int, where: Callable[[int], str]
    ) -> UserIds:
        lines = _CsvLines(handle, where)
        reader = csv.reader(lines, strict=True)
        try:
            header = next(reader, None)
            lines.record_ended = True
            if header is None:
                raise SegmentsValidationError(
                    f"{source} is empty: a CSV needs a header row naming the column {column!r}."
                )
            names = [name.strip() for name in header]
            if column not in names:
                raise SegmentsValidationError(
                    f"{source} has no column {column!r}; its header has: {', '.join(map(preview, names))}."
                )
            if names.count(column) > 1:
                positions = ", ".join(str(i + 1) for i, name in enumerate(names) if name == column)
                raise SegmentsValidationError(
                    f"{where(1)} names the column {column!r} {names.count(column)} times (columns "
                    f"{positions}): rename the others so that the ids' column is unambiguous."
                )
            index = names.index(column)
            ids: dict[str, Any] = {}
            for row in reader:
                lines.record_ended = True
                if not row or not any(cell.strip() for cell in row):
                    continue  # blank line
                if len(row) != len(names):
                    plural = "s" if len(row) != 1 else ""
                    raise SegmentsValidationError(
                        f"{where(lines.number)} has {len(row)} field{plural}, the header {len(names)}: "
                        "quote a field holding a comma, or fix the export."
                    )
                _add_one(ids, row[index], max_length, where(lines.number))
        except csv.Error as err:
            raise SegmentsValidationError(
                f"{where(lines.number)} is not valid CSV: {err}. Quote a field holding a comma, a quote "
                "or a line break, and double the quotes inside it."
            ) from None
        return cls(list(ids), ids)


class _CsvLines:
    """The lines of a CSV for :func:`csv.reader`, one record each, read one at a time.

    A record that asks for a second line (a quoted field holding a line break, or a quote left
    open, which would swallow the rest of the file) is refused at once, naming the line where it
    starts; so is a line over :data:`MAX_CSV_LINE_CHARS`, before it is held whole. The caller sets
    ``record_ended`` each time the reader has given a record.
    """

    __slots__ = ("_handle", "_where", "number", "record_ended")

    def __init__(self, handle: IO[str], where: Callable[[int], str]) -> None:
        self._handle = handle
        self._where = where
        #: The line read last: the line of the record the reader gave or failed on (1: the header).
        self.number = 0
        self.record_ended = True

    def __iter__(self) -> Iterator[str]:
        readline = self._handle.readline
        while line := readline(MAX_CSV_LINE_CHARS + 2):  # + the line break, "\r\n" at most
            self.number += 1
            if len(line) > MAX_CSV_LINE_CHARS and len(line.rstrip("\r\n")) > MAX_CSV_LINE_CHARS:
                raise SegmentsValidationError(
                    f"{self._where(self.number)} is longer than {MAX_CSV_LINE_CHARS:,} characters: "
                    "not a CSV of ids."
                )
            self.record_ended = False
            yield line
            if not self.record_ended:  # the reader wants the next line to finish this record
                raise SegmentsValidationError(
                    f"{self._where(self.number)}: a quoted field goes on past the end of the line (a "
                    "quote left open, or a line break inside quotes); each record of a CSV of ids "
                    "must be one line."
                )


def as_list(value: Any, field: str, what: str = "user ids") -> list[Any]:
    """``value`` as a list of ``what``, refusing shapes that would be silently wrong (see
    :meth:`UserIds.from_values`); a string holding a JSON or Python list literal is parsed."""
    if value is None:
        raise SegmentsValidationError(f"{field} is required: pass a list of {what} (it was None).")
    if isinstance(value, (str, bytes)):
        try:
            text = value.decode() if isinstance(value, bytes) else value
        except UnicodeDecodeError as err:
            raise SegmentsValidationError(
                f"{field} must be a list of {what}, got bytes that are not UTF-8 (byte "
                f"0x{value[err.start]:02X} at offset {err.start:,}): {preview(value)}."
            ) from None
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                parsed = json.loads(stripped)
            except (ValueError, RecursionError):  # RecursionError: brackets nested too deep
                try:
                    parsed = ast.literal_eval(stripped)
                except (ValueError, SyntaxError, RecursionError, MemoryError):
                    parsed = None
            if isinstance(parsed, list):
                return parsed
        raise SegmentsValidationError(
            f"{field} must be a list of {what}, got the string {preview(text)}. If it comes from a "
            "template, set render_template_as_native_obj=True on the DAG or pass a list."
        )
    if isinstance(value, dict):
        raise SegmentsValidationError(f"{field} must be a list of {what}, got a dict: {preview(value)}.")
    if not isinstance(value, Iterable):
        raise SegmentsValidationError(
            f"{field} must be a list of {what}, got {type(value).__name__}: {preview(value)}."
        )
    return value if isinstance(value, list) else list(value)


def _checked_lines(
    lines: list[str], text: str, first_line: int, max_length: int, where: Callable[[int], str]
) -> list[str]:
    """The ids of ``lines`` (blank lines skipped; ``text`` holds them joined by ``\n``), or raise
    naming the first bad line."""
    present = list(filter(None, lines))
    if not present:
        return present
    # C-speed checks of the whole block first; the slow walk below only runs to name the bad line.
    if (
        max(map(len, present)) <= max_length
        and free_of_invisible(text, newline_ok=True)
        and list(map(str.strip, present)) == present
    ):
        return present
    checked: dict[str, Any] = {}
    for offset, line in enumerate(lines):
        if not line.strip() and not find_invisible(line):
            continue  # a blank (or whitespace-only) line
        _add_one(checked, line, max_length, where(first_line + offset))
    return list(checked)


def _refuse_a_header(lines: list[str], first_line: int, where: Callable[[int], str]) -> bool:
    """Refuse a file of one id per line whose first non-blank line holds a CSV delimiter (see
    :data:`CSV_DELIMITERS`); ``True`` while ``lines`` were all blank (look again in the next ones)."""
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        delimiter = next((d for d in CSV_DELIMITERS if d in line), None)
        if delimiter is not None:
            raise SegmentsValidationError(
                f"{where(first_line + offset)} = {preview(line)} looks like a CSV header or row (it holds "
                f"{delimiter!r}), but the file is read as one id per line. If it is a CSV, set "
                "user_ids_column to the name of the column holding the ids. (Only the first line is "
                "checked: if the first id really holds a comma, semicolon or tab, give the ids as a "
                "CSV with a header and user_ids_column.)"
            )
        return False
    return True


def _cut_long_line(start: str, max_length: int, label: str) -> str:
    """What to keep of a line whose ``start`` (it goes on in the next block) is already too long:
    refuse it now, naming it, rather than hold a line of any length; a blank start stays blank."""
    if start.strip():
        raise SegmentsValidationError(
            f"{label} = {preview(start)} is not a valid user id: it has more than {max_length} "
            f"characters ({len(start):,} before the end of the block read; the rest was not read)."
        )
    return " "  # whitespace so far: the line is blank, or refused for its leading whitespace


def _add_one(ids: dict[str, Any], raw: str, max_length: int, label: str) -> None:
    """Add one id, or raise naming it by ``label`` (``user_ids[4]``, ``ids.txt line 4,000,001``)."""
    reason = id_problem(raw, max_length)
    if reason:
        raise SegmentsValidationError(f"{label} = {preview(raw)} is not a valid user id: {reason}.")
    ids[raw] = None


class IdSource:
    """Where a task's ids come from: values (a list, an XCom) or a file (lines, or a CSV column).

    Operators describe their input with one and hand it on; it is read only when the change that
    needs it runs, so a sync can read its snapshot first and let the input share its strings.
    """

    __slots__ = ("column", "path", "values")

    def __init__(self, *, values: Any = None, path: Any = None, column: str | None = None) -> None:
        if (values is None) == (path is None):
            raise SegmentsValidationError(
                "Give exactly one of user_ids (a list) or user_ids_path (a file of ids)."
            )
        self.values = values
        self.path = path
        self.column = column

    def describe(self) -> str:
        """Where the ids come from, for logs: ``column 'email' of s3://b/k.csv`` or ``an inline list``."""
        if self.path is None:
            return "an inline list"
        return f"column {self.column!r} of {self.path}" if self.column else str(self.path)

    def load(self, *, max_length: int, share: UserIds | None = None) -> UserIds:
        """Read and validate the ids (see :meth:`UserIds.from_values` and :meth:`UserIds.from_file`)."""
        if self.path is None:
            return UserIds.from_values(self.values, max_length=max_length)
        return UserIds.from_file(self.path, max_length=max_length, column=self.column, share=share)


def load_ids(user_ids: Any, *, max_length: int, share: UserIds | None = None) -> UserIds:
    """The :class:`UserIds` of any input: an :class:`IdSource`, a :class:`UserIds` or values."""
    if isinstance(user_ids, IdSource):
        return user_ids.load(max_length=max_length, share=share)
    return UserIds.from_values(user_ids, max_length=max_length)
