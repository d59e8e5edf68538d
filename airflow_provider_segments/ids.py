"""The one id collection: :class:`UserIds`, validated and deduplicated, whatever the input path.

Every way a DAG hands over user ids ends here: a list (or an XCom rendered to one, or a JSON list
in a string), a file of one id per line, a CSV column, on local disk or in object storage. Each
produces the same :class:`UserIds`: strings of 1 to ``max_length`` characters, without surrounding
whitespace and without any invisible, blank or control character (Unicode general categories ``Cc``,
``Cf``, ``Cs``, ``Zl``, ``Zp``, and ``Zs`` but U+0020: controls, zero-width and bidi characters, soft
hyphens, byte-order marks, lone surrogates, line, paragraph and non-ASCII space separators; and the
default-ignorable and blank-rendering characters of :mod:`.id_rules`), each once, in the order
first seen. A bad id fails the whole input before anything is sent, naming its position and the code point.

No Airflow import at module level: object-storage URIs are opened through Airflow's
``ObjectStoragePath`` on first use only.
"""

from __future__ import annotations

import csv
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from typing import IO, Any

from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.id_checks import (  # noqa: F401  (CSV_DELIMITERS, MAX_CSV_LINE_CHARS: re-exported)
    CSV_DELIMITERS,
    MAX_CSV_LINE_CHARS,
    CsvLines,
    add_checked,
    checked_line_batches,
    checked_value_batches,
    json_list_literal,
    python_list_literal,
)
from airflow_provider_segments.id_files import BLOCK_IDS, IdCollector, SortedIdFile, collect
from airflow_provider_segments.id_rules import is_blank
from airflow_provider_segments.locations import (
    not_utf8,
    open_text,
    read_blocks,
    shown_location,
)
from airflow_provider_segments.text import preview  # re-exported: every module quotes values so


class UserIds:
    """Validated user ids, each once.

    Up to :data:`~.id_files.SPILL_AT_IDS` ids are held in memory, in the order first seen, with
    O(1) membership tests; a larger input is kept sorted in a temporary file
    (:class:`~.id_files.SortedIdFile`), so memory stays flat whatever its size. Build one with
    :meth:`from_values` (a list, tuple, set, an XCom or a JSON list in a string) or :meth:`from_file`
    (lines or a CSV column, local or object storage); a :class:`UserIds` passed to :meth:`from_values`
    is kept when it was checked here against the same or a stricter length limit, else checked again.
    """

    __slots__ = ("_checked_max_length", "_file", "_ids", "_lookup")

    def __init__(
        self,
        ids: list[str] | None = None,
        lookup: set[str] | dict[str, Any] | None = None,
        *,
        file: SortedIdFile | None = None,
    ) -> None:
        # ``_ids``: the unique ids in order; ``_lookup``: the same ids for O(1) membership (built on
        # first use). A collection read to be shared (a snapshot) looks up through a dict mapping each
        # id to itself, so another reader can reuse the very same string (``from_file(share=...)``).
        # ``_file``: the ids of a spilled collection instead (``_ids`` stays empty).
        self._ids: list[str] = ids if ids is not None else []
        self._lookup = lookup
        self._file = file
        #: The ``max_length`` the builders checked every id against (:meth:`from_values`,
        #: :meth:`from_file`); ``None`` for a collection made otherwise, whose ids nobody checked here.
        self._checked_max_length: int | None = None

    def _checked_against(self, max_length: int) -> UserIds:
        self._checked_max_length = max_length
        return self

    @classmethod
    def _unique(cls, ids: list[str] | SortedIdFile, *, self_mapped: bool = False) -> UserIds:
        """``ids`` without repeats, in first order. A strictly increasing list (a sorted export) is
        unique as it is: one comparison per id, a seventh of the cost of a set, which membership tests
        build on first use. Otherwise one set when there are no repeats (the common case, and the
        cheapest check CPython offers), an ordered dict when there are. A spilled file is unique."""
        if isinstance(ids, SortedIdFile):
            return cls(file=ids)
        if self_mapped:
            strings = dict(zip(ids, ids, strict=True))
            return cls(ids if len(strings) == len(ids) else list(strings), strings)
        if all(map(operator.lt, ids, islice(ids, 1, None))):  # (stops at the first id out of order)
            return cls(ids)
        seen = set(ids)
        if len(seen) == len(ids):
            return cls(ids, seen)
        ordered = dict.fromkeys(ids)
        return cls(list(ordered), ordered)

    @classmethod
    def from_validated(cls, batches: Iterable[list[str]]) -> UserIds:
        """Ids that were validated already (another collection's chunks), collected and deduped."""
        return cls._unique(collect(batches))

    @classmethod
    def collected(cls, collector: IdCollector) -> UserIds:
        """The validated ids an :class:`~.id_files.IdCollector` was given, deduped."""
        return cls._unique(collector.finish())

    @property
    def spilled(self) -> bool:
        """Whether the ids are kept sorted on disk rather than in memory."""
        return self._file is not None

    @property
    def lookup(self) -> set[str] | dict[str, Any]:
        """The ids as a set-like collection: O(1) ``in`` at C speed (a spilled collection builds it
        whole: the package's own code never asks a spilled one)."""
        if self._lookup is None:
            self._lookup = set(self)
        return self._lookup

    def __len__(self) -> int:
        return self._file.count if self._file is not None else len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._file) if self._file is not None else iter(self._ids)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self.lookup

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (UserIds, list)):
            return len(self) == len(other) and all(map(operator.eq, self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"UserIds({len(self):,} ids{', on disk' if self.spilled else ''})"

    def chunks(self, size: int) -> Iterator[list[str]]:
        """Consecutive lists of at most ``size`` ids, in order (none for no ids)."""
        if size < 1:
            raise ValueError(f"chunk size must be positive, got {size}")
        if self._file is not None:
            yield from self._file.chunks(size)
            return
        for start in range(0, len(self._ids), size):
            yield self._ids[start : start + size]

    def sorted_chunks(self, size: int) -> Iterator[list[str]]:
        """Consecutive lists of at most ``size`` ids in sorted order (what a delta compares)."""
        if self._file is not None:
            yield from self._file.chunks(size)
            return
        ordered = sorted(self._ids)
        for start in range(0, len(ordered), size):
            yield ordered[start : start + size]

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def from_values(cls, values: Any, *, max_length: int, field: str = "user_ids") -> UserIds:
        """Validate and dedupe ids given as values; an ``int`` becomes its decimal string.

        A string is the usual sign of a templated XCom pull rendered without native rendering: one
        holding a JSON or Python list literal is parsed, any other string is refused (iterating it
        would send one id per character). Errors name the position: ``user_ids[4711] = ...``. A
        :class:`UserIds` is kept when it was built here against at most ``max_length``; any other
        (made directly, or checked against a longer limit) is checked again.
        """
        if isinstance(values, UserIds):
            checked = values._checked_max_length
            if not len(values) or (checked is not None and checked <= max_length):
                return values  # checked already, against these limits or stricter ones
            batches = _rechecked(values, max_length, field)
        else:
            values = as_list(values, field)
            if not values:
                return cls()
            batches = checked_value_batches(values, max_length, field)
        return cls._unique(collect(batches))._checked_against(max_length)

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

        A file of one id per line whose first non-blank line holds a comma, semicolon, tab or pipe is
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
        column = checked_column(column)
        source = shown_location(path)

        def where(line: int) -> str:
            return f"{source} line {line:,}"

        try:
            with open_text(path) as handle:
                if column is not None:
                    ids = cls._from_csv(handle, column, source, max_length, where)
                else:
                    ids = cls._from_blocks(
                        read_blocks(handle), max_length, where, share, first_line_check=True
                    )
        except UnicodeDecodeError as err:
            raise SegmentsValidationError(not_utf8(path, source, err)) from None
        return ids._checked_against(max_length)

    @classmethod
    def from_lines_text(cls, blocks: Iterable[str], *, max_length: int, source: str) -> UserIds:
        """Ids of a text given as consecutive blocks, one id per line (a snapshot's body); the result
        can be passed as ``share`` to :meth:`from_file`."""
        where = lambda line: f"{source} line {line:,}"  # noqa: E731
        return cls._from_blocks(blocks, max_length, where, None, self_mapped=True)._checked_against(
            max_length
        )

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
        collected = collect(checked_line_batches(blocks, max_length, where, first_line_check))
        strings = share.lookup if share is not None and not share.spilled else None
        if isinstance(collected, list) and isinstance(strings, dict) and next(iter(strings.values()), None):
            collected = list(map(strings.get, collected, collected))  # the string already held, if any
        return cls._unique(collected, self_mapped=self_mapped)

    @classmethod
    def _from_csv(
        cls, handle: IO[str], column: str, source: str, max_length: int, where: Callable[[int], str]
    ) -> UserIds:
        lines = CsvLines(handle, where)
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

            def batches() -> Iterator[list[str]]:
                batch: dict[str, Any] = {}
                for row in reader:
                    lines.record_ended = True
                    if all(map(is_blank, row)):
                        continue
                    if len(row) != len(names):
                        plural = "s" if len(row) != 1 else ""
                        raise SegmentsValidationError(
                            f"{where(lines.number)} has {len(row)} field{plural}, the header {len(names)}: "
                            "quote a field holding a comma, or fix the export."
                        )
                    add_checked(batch, row[index], max_length, where(lines.number))
                    if len(batch) >= BLOCK_IDS:
                        yield list(batch)
                        batch = {}
                yield list(batch)

            ids = collect(batches())
        except csv.Error as err:
            raise SegmentsValidationError(
                f"{where(lines.number)} is not valid CSV: {err}. Quote a field holding a comma, a quote "
                "or a line break, and double the quotes inside it."
            ) from None
        return cls._unique(ids)


def checked_column(column: Any) -> str | None:
    """``user_ids_column`` as given: ``None`` (a file of one id per line) or a column name, a
    non-blank string; anything else is refused by name: read as "no column", a CSV's header would be
    sent as an id."""
    if (isinstance(column, str) and column.strip()) or column is None:
        return column
    raise SegmentsValidationError(
        f"user_ids_column {preview(column)} is not a column name: give the name of the CSV column "
        "holding the ids (a non-blank string), or leave user_ids_column out for a file of one id per line."
    )


def contradictory_column(column: Any) -> str:
    """The message for a ``user_ids_column`` given beside an inline ``user_ids`` list."""
    return (
        f"user_ids_column {preview(column)} is given with user_ids (an inline list), which has no "
        "columns: it names the CSV column of user_ids_path. Leave it out, or give the file as user_ids_path."
    )


def _rechecked(ids: UserIds, max_length: int, field: str) -> Iterator[list[str]]:
    """The ids of a collection nobody checked against ``max_length``, checked as values are."""
    start = 0
    for chunk in ids.chunks(BLOCK_IDS):
        yield from checked_value_batches(chunk, max_length, field, start=start)
        start += len(chunk)


def as_list(value: Any, field: str, what: str = "user ids") -> list[Any]:
    """``value`` as a list of ``what``, refusing shapes that would be silently wrong (see
    :meth:`UserIds.from_values`); a string holding a JSON or Python list literal is parsed."""
    if value is None:
        raise SegmentsValidationError(f"{field} is required: pass a list of {what} (it was None).")
    if isinstance(value, (bytearray, memoryview)):  # iterated, each would be one id per byte
        value = bytes(value)
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
                parsed = json_list_literal(stripped, field)
            except (ValueError, RecursionError):  # RecursionError: brackets nested too deep
                parsed = python_list_literal(stripped, field)
            if isinstance(parsed, list):
                return parsed
        raise SegmentsValidationError(
            f"{field} must be a list of {what}, got the string {preview(text)}. If it comes from a "
            "template, set render_template_as_native_obj=True on the DAG or pass a list."
        )
    if isinstance(value, Mapping) or hasattr(value, "columns"):  # iterated: its keys, or column names
        table = "" if isinstance(value, Mapping) else " (a table: pass one column, e.g. df['id'].tolist())"
        raise SegmentsValidationError(
            f"{field} must be a list of {what}, got a {type(value).__name__}{table}: {preview(value)}."
        )
    if not isinstance(value, Iterable):
        raise SegmentsValidationError(
            f"{field} must be a list of {what}, got {type(value).__name__}: {preview(value)}."
        )
    return value if isinstance(value, list) else list(value)


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
        if values is not None and column is not None:
            raise SegmentsValidationError(contradictory_column(column))
        self.values = values
        self.path = path
        self.column = checked_column(column)

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
