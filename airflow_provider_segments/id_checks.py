"""Checking ids as they are read: values, lines of text, CSV records; a bad one is named by its
position (``user_ids[4]``, ``ids.txt line 4,000,001``) and the reason, before anything is sent.

Checks run at C speed over whole blocks; the slow walk over single ids only runs to name the bad
one. Each reader gives checked ids in batches, for :class:`~.ids.UserIds` to collect.
"""

from __future__ import annotations

import ast
import io
import json
import operator
import tokenize
from collections.abc import Callable, Iterable, Iterator
from itertools import repeat
from typing import IO, Any

from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.id_files import BLOCK_IDS
from airflow_provider_segments.id_rules import (
    decomposed,
    find_invisible,
    free_of_invisible,
    id_problem,
    is_blank,
)
from airflow_provider_segments.text import preview

#: In a file of one id per line, a first line holding one of these is a CSV header (or row): the
#: file is refused, pointing at ``user_ids_column``, rather than sent as ids, header included.
CSV_DELIMITERS = (",", ";", "\t", "|")
#: The longest line of a CSV of ids (a record is one line); each field is also held to Python's
#: ``csv.field_size_limit()`` (128 KiB unless the process changed it).
MAX_CSV_LINE_CHARS = 1024 * 1024


class CsvLines:
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
            if line.endswith("\r"):  # (newline="": a "\r\n" ends in "\n")
                raise SegmentsValidationError(
                    f"{self._where(self.number)} ends in a carriage return (U+000D) with no line feed "
                    "after it: a stray \\r would split a record in two; fix the export's line endings."
                )
            self.record_ended = False
            yield line
            if not self.record_ended:  # the reader wants the next line to finish this record
                raise SegmentsValidationError(
                    f"{self._where(self.number)}: a quoted field goes on past the end of the line (a "
                    "quote left open, or a line break inside quotes); each record of a CSV of ids "
                    "must be one line."
                )


def checked_value_batches(
    values: list[Any], max_length: int, field: str, *, start: int = 0
) -> Iterator[list[str]]:
    """The ids of ``values``, a checked list per block (a copy: the caller keeps its list); errors
    name positions from ``start`` (``values`` is a part of a longer input)."""
    for offset in range(0, len(values), BLOCK_IDS):
        batch = values[offset : offset + BLOCK_IDS]
        # C-speed checks of the block; the slow walk below only runs to name a bad id (or convert ints).
        # Exact str only (a subclass, an enum, goes through the walk), by identity: an equality test
        # (a set of types, list.count) is answered by the class's metaclass, which may say "str".
        # One set of the lengths answers both "none too long" and "none empty".
        if all(map(operator.is_, map(type, batch), repeat(str))) and (
            _lengths_within(batch, max_length)
            and _visible_and_unpadded("".join(batch), batch, newline_ok=False)
        ):
            yield batch
            continue
        ids: dict[str, Any] = {}
        for position, raw in enumerate(batch, start + offset):
            if isinstance(raw, int) and not isinstance(raw, bool):
                try:  # its decimal digits, whatever a subclass (an enum) says its str() is
                    raw = int.__repr__(raw)
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
            raw = str.__str__(raw)  # a subclass's (an enum's) own characters, as a plain str
            add_checked(ids, raw, max_length, f"{field}[{position}]")
        yield list(ids)


def checked_line_batches(
    blocks: Iterable[str], max_length: int, where: Callable[[int], str], first_line_check: bool
) -> Iterator[list[str]]:
    """The ids of a text given as consecutive blocks, one id per line, a checked list per block."""
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
        yield _checked_lines(lines, text, first_line, max_length, where)
        first_line += len(lines)
        if len(carry) > max_length + 1:  # (+1: a "\r" whose "\n" opens the next block)
            carry = _cut_long_line(carry, max_length, where(first_line))
    if carry:  # the last line (a "\r" ending it has no "\n" after it: it is refused as stray)
        if first_line_check:
            _refuse_a_header([carry], first_line, where)
        yield _checked_lines([carry], carry, first_line, max_length, where)


def _checked_lines(
    lines: list[str], text: str, first_line: int, max_length: int, where: Callable[[int], str]
) -> list[str]:
    """The ids of ``lines`` (blank lines skipped; ``text`` holds them joined by ``\n``), or raise
    naming the first bad line."""
    lengths = set(map(len, lines))
    present = list(filter(None, lines)) if 0 in lengths else lines  # (a search costs less than a copy)
    if not present:
        return present
    # C-speed checks of the whole block first; the slow walk below only runs to name the bad line.
    if max(lengths) <= max_length and _visible_and_unpadded(text, present, newline_ok=True):
        return present
    checked: dict[str, Any] = {}
    for offset, line in enumerate(lines):
        if is_blank(line):
            continue
        add_checked(checked, line, max_length, where(first_line + offset))
    return list(checked)


def _lengths_within(ids: list[str], max_length: int) -> bool:
    """Whether every id of ``ids`` (exact str) has 1 to ``max_length`` characters."""
    lengths = set(map(len, ids))
    return max(lengths) <= max_length and 0 not in lengths


def _visible_and_unpadded(text: str, ids: list[str], *, newline_ok: bool) -> bool:
    """Whether ``ids`` (``text`` holds them, joined) hold no invisible character and no surrounding
    whitespace, and are in composed form. Once no character is invisible, the only one ``str.strip``
    removes is U+0020, so a text without a space needs no strip (a 50th of its cost). A text in
    composed form holds ids in it (joining may compose across ids, never decompose one: a text that
    is not goes through the walk, which checks each id on its own)."""
    return (
        free_of_invisible(text, newline_ok=newline_ok)
        and (" " not in text or list(map(str.strip, ids)) == ids)
        and decomposed(text) is None
    )


def _refuse_a_header(lines: list[str], first_line: int, where: Callable[[int], str]) -> bool:
    """Refuse a file of one id per line whose first non-blank line holds a CSV delimiter (see
    :data:`CSV_DELIMITERS`); ``True`` while ``lines`` were all blank (look again in the next ones)."""
    for offset, line in enumerate(lines):
        if is_blank(line):
            continue
        delimiter = next((d for d in CSV_DELIMITERS if d in line), None)
        if delimiter is not None:
            raise SegmentsValidationError(
                f"{where(first_line + offset)} = {preview(line)} looks like a CSV header or row (it holds "
                f"{delimiter!r}), but the file is read as one id per line. If it is a CSV, set "
                "user_ids_column to the name of the column holding the ids. (Only the first line is "
                "checked: if the first id really holds a comma, semicolon, tab or pipe, give the ids as a "
                "CSV with a header and user_ids_column.)"
            )
        return False
    return True


def _cut_long_line(start: str, max_length: int, label: str) -> str:
    """What to keep of a line whose ``start`` (it goes on in the next block) is already too long:
    refuse it now, naming it, rather than hold a line of any length; a blank start stays blank."""
    if not is_blank(start):
        if find_invisible(start):
            add_checked({}, start, max_length, label)  # refused naming the character, as a short line is
        raise SegmentsValidationError(
            f"{label} = {preview(start)} is not a valid user id: it has more than {max_length} "
            f"characters ({len(start):,} before the end of the block read; the rest was not read)."
        )
    return " "  # whitespace so far: the line is blank, or refused for its leading whitespace


def add_checked(ids: dict[str, Any], raw: str, max_length: int, label: str) -> None:
    """Add one id, or raise naming it by ``label`` (``user_ids[4]``, ``ids.txt line 4,000,001``)."""
    reason = id_problem(raw, max_length)
    if reason:
        raise SegmentsValidationError(f"{label} = {preview(raw)} is not a valid user id: {reason}.")
    ids[raw] = None


class _RespelledInt(int):
    """A JSON integer not written as ``repr()`` writes it (``-0``): kept to be named by position."""

    spelling = ""


def json_list_literal(text: str, field: str) -> Any:
    """What ``text``, JSON, holds (raises ``ValueError`` when it is not JSON); an integer element not
    in plain decimal digits (``-0``: it would be sent as ``0``) is refused, naming the element, as
    :func:`python_list_literal` refuses it."""
    respelled: list[str] = []

    def parse_int(digits: str) -> int:
        value = int(digits)
        if digits == repr(value):
            return value
        respelled.append(digits)
        marked = _RespelledInt(value)
        marked.spelling = digits
        return marked

    parsed = json.loads(text, parse_int=parse_int)
    if respelled and isinstance(parsed, list):
        for position, value in enumerate(parsed):
            if isinstance(value, _RespelledInt):
                raise SegmentsValidationError(
                    f"{field}[{position}] = {value.spelling} is not an integer in plain decimal digits (it "
                    f"would be sent as {int(value)!r}): write it as its digits, or as a string."
                )
    return parsed


def python_list_literal(text: str, field: str) -> list[Any] | None:
    """The list that ``text``, a Python list literal, writes; ``None`` when it is none.

    Only what ``repr()`` of a list of strings and integers writes is read as it looks: two string
    literals with no comma between them (Python joins them: ``['alice' 'bob']`` is ``['alicebob']``)
    and an integer not in plain decimal digits (``0x10``, ``1_000``, ``+1``: it would be sent as
    other digits) are refused, naming the element. Other elements (``None``, a float, a nested list)
    are left to the caller's checks, which refuse them.
    """
    try:
        tree = ast.parse(text, mode="eval")
        parsed = ast.literal_eval(tree)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return None
    if not isinstance(parsed, list) or not isinstance(tree.body, ast.List):
        return None
    for position, (node, value) in enumerate(zip(tree.body.elts, parsed, strict=True)):
        source = ast.get_source_segment(text, node) or ""
        if isinstance(value, str) and _string_literals(source) != 1:
            raise SegmentsValidationError(
                f"{field}[{position}] = {preview(source)} is string literals with no comma between them, "
                f"which Python joins into one: {preview(value)}. Put a comma between the items."
            )
        if type(value) is int and source != repr(value):
            raise SegmentsValidationError(
                f"{field}[{position}] = {preview(source)} is not an integer in plain decimal digits (it "
                f"would be sent as {value!r}): write it as its digits, or as a string."
            )
    return parsed


def _string_literals(source: str) -> int:
    """How many string literals the Python ``source`` of one expression holds."""
    try:
        tokens = tokenize.generate_tokens(io.StringIO(f"({source})").readline)
        return sum(token.type == tokenize.STRING for token in tokens)
    except (tokenize.TokenError, SyntaxError):
        return 0
