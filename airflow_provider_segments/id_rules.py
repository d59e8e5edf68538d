"""What a valid user id is: 1 to ``max_length`` characters, no surrounding whitespace, no
invisible, blank-rendering or control character and no noncharacter (whole Unicode classes, not a
list; U+0020 SPACE is the one space allowed inside), in composed form (NFC), checked at C speed."""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

from airflow_provider_segments.text import PREVIEW_CHARS

#: Unicode general categories never valid in an id: controls (``Cc``: C0, C1, DEL), format characters
#: (``Cf``: zero-width space and joiners, bidi controls, soft hyphen, byte-order mark, tags...),
#: surrogates (``Cs``: a lone half of a UTF-16 pair is not text and cannot be written as UTF-8) and the
#: line and paragraph separators (``Zl``, ``Zp``) and the space separators (``Zs``) but U+0020 SPACE
#: itself (:data:`ALLOWED_SPACE`): U+00A0 NO-BREAK SPACE, U+3000 IDEOGRAPHIC SPACE, U+2000-U+200A...
#: look like a plain space inside an id and like nothing at its end. Each would split, hide or
#: disguise an id in a file, a log or the admin UI. The set follows the running Python's Unicode database.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Zs"})
#: The one character of :data:`INVISIBLE_CATEGORIES` allowed: the plain space (inside an id or a name).
ALLOWED_SPACE = " "
#: Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt) outside those categories:
#: what renders as nothing although its category says otherwise (the combining grapheme joiner,
#: Hangul fillers, Khmer inherent vowels, Mongolian and emoji variation selectors, and the reserved
#: code points the standard sets aside as ignorable). ``alice`` and ``alice\ufe0f`` look the same.
DEFAULT_IGNORABLE_RANGES = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2065, 0x2065),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0FFF),
)
#: Symbols and fillers that render blank although Unicode calls them neither space nor ignorable:
#: U+2800 BRAILLE PATTERN BLANK, U+16FE4 KHITAN SMALL SCRIPT FILLER, U+1D159 MUSICAL SYMBOL NULL
#: NOTEHEAD. ``alice\u2800`` looks like ``alice``.
BLANK_RENDERING_RANGES = ((0x2800, 0x2800), (0x16FE4, 0x16FE4), (0x1D159, 0x1D159))
#: Unicode's 66 noncharacters, reserved for good and never interchanged as text (category ``Cn``, as
#: unassigned code points are, which may be assigned later): U+FDD0..U+FDEF and the last two code
#: points of every plane. U+FFFE is what a byte-order mark read with the wrong byte order gives.
NONCHARACTER_RANGES = (
    (0xFDD0, 0xFDEF),
    *((plane + 0xFFFE, plane + 0xFFFF) for plane in range(0, 0x110000, 0x10000)),
)


def _is_invisible(char: str) -> bool:
    """Whether ``char``'s category makes it invisible (see :data:`INVISIBLE_CATEGORIES`)."""
    return unicodedata.category(char) in INVISIBLE_CATEGORIES and char != ALLOWED_SPACE


_ASCII_INVISIBLE = "".join(filter(_is_invisible, map(chr, range(0x80))))
#: The ASCII characters allowed in an id, and in a text of lines (``\n`` separates ids; ``\r\n`` was
#: folded first): what ``bytes.translate`` deletes to check an ASCII text at C speed.
_PRINTABLE_ASCII = {
    newline_ok: bytes(c for c in range(0x80) if chr(c) not in _ASCII_INVISIBLE or (newline_ok and c == 0x0A))
    for newline_ok in (False, True)
}
#: The same characters as a search, with and without ``\n`` (which separates the ids of a text of lines).
_ASCII_INVISIBLE_SEARCH = {
    False: re.compile(f"[{re.escape(_ASCII_INVISIBLE)}]"),
    True: re.compile(f"[{re.escape(_ASCII_INVISIBLE.replace(chr(0x0A), ''))}]"),
}


@functools.cache
def _invisible_code_points() -> tuple[tuple[int, int], ...]:
    """The ranges of code points whose general category is in :data:`INVISIBLE_CATEGORIES` (but
    :data:`ALLOWED_SPACE`), that Unicode calls default-ignorable (:data:`DEFAULT_IGNORABLE_RANGES`),
    that render blank (:data:`BLANK_RENDERING_RANGES`) or are noncharacters (:data:`NONCHARACTER_RANGES`).

    Built on first use from the whole Unicode database (about 0.1 s, once per process, and only when
    a non-ASCII text is checked), not at import: DAG parsing imports this module.
    """
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if _is_invisible(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    merged: list[tuple[int, int]] = []
    for first, last in sorted(
        [*ranges, *DEFAULT_IGNORABLE_RANGES, *BLANK_RENDERING_RANGES, *NONCHARACTER_RANGES]
    ):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    ranges = merged
    return tuple(ranges)


@functools.cache
def _invisible_searches(newline_ok: bool) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Two character classes of the invisible code points (``\\n`` left out when ``newline_ok``).

    The first holds those below U+10000 plus every code point above: ``re`` checks it as one table
    lookup a character, as fast as the old short list. The second is exact: only used from the first
    character above U+FFFF, since ``re`` tests the ranges above U+FFFF one by one (5 times slower).
    """
    below: list[str] = []
    above: list[str] = []
    for first, last in _invisible_code_points():
        pieces = [(first, 0x09), (0x0B, last)] if newline_ok and first <= 0x0A <= last else [(first, last)]
        for start, end in pieces:
            for low, high, into in ((start, min(end, 0xFFFF), below), (max(start, 0x10000), end, above)):
                if low <= high:
                    into.append(f"\\U{low:08x}-\\U{high:08x}")
    gate = re.compile(f"[{''.join(below)}\\U00010000-\\U{sys.maxunicode:08x}]")
    exact = re.compile(f"[{''.join(below + above)}]")
    return gate, exact


@functools.cache
def _space_separators() -> dict[int, str]:
    """Each space separator (``Zs``) read as U+0020 SPACE, for ``str.translate``."""
    return {
        code: ALLOWED_SPACE for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code)) == "Zs"
    }


def find_invisible(text: str, *, newline_ok: bool = False, spaces_ok: bool = False) -> re.Match[str] | None:
    """The first invisible, blank-rendering or control character of ``text`` (see
    :data:`INVISIBLE_CATEGORIES`, :data:`DEFAULT_IGNORABLE_RANGES`, :data:`BLANK_RENDERING_RANGES`);
    U+0020 SPACE is not one. ``spaces_ok``: no space separator is either (a credential or a path may
    hold U+00A0; an id or a name may not)."""
    if spaces_ok and not text.isascii():
        text = text.translate(_space_separators())  # one character for one: positions hold
    if text.isascii():
        return _ASCII_INVISIBLE_SEARCH[newline_ok].search(text)
    gate, exact = _invisible_searches(newline_ok)
    found = gate.search(text)
    if found is None or found.group() < "\U00010000":
        return found
    return exact.search(text, found.start())  # the text holds characters above U+FFFF


def describe_char(char: str) -> str:
    """``U+200B ZERO WIDTH SPACE``: a character named so that a reader can find it."""
    code = f"U+{ord(char):04X}"
    if unicodedata.category(char) == "Cs":
        return f"{code} (a lone surrogate: half of a UTF-16 pair, not text; it cannot be stored as UTF-8)"
    if any(first <= ord(char) <= last for first, last in NONCHARACTER_RANGES):
        return f"{code} (a noncharacter: reserved by Unicode, never text; U+FFFE: a byte-swapped BOM)"
    name = unicodedata.name(char, "")
    return f"{code} {name}" if name else code


def fix_hint(text: str, at: int) -> str:
    """What to do about the refused character at ``at``: between two words, a space separator or a
    line break stands for a space (use a plain one); anything else, or one at either end, goes."""
    inside = 0 < at < len(text) - 1 and not text[at - 1].isspace() and not text[at + 1].isspace()
    if inside and text[at].isspace():
        return "replace it with a plain space (U+0020)"
    return "remove it"


def decomposed(text: str) -> str | None:
    """``text`` in composed form (Unicode NFC) when it is not in that form, else ``None``: "Cafe" + a
    combining accent looks like "Café" but is another string. The one copy of the rule, for ids,
    names and tags."""
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return None
    return unicodedata.normalize("NFC", text)


def id_problem(user_id: str, max_length: int) -> str:
    """Why ``user_id`` (a string) is not a valid id; ``""`` when it is."""
    bad = find_invisible(user_id)
    if bad:
        hint = fix_hint(user_id, bad.start())
        return (
            f"it holds the invisible, blank or control character {describe_char(bad.group())} at position "
            f"{bad.start()} ({hint + ', or ' if hint != 'remove it' else ''}clean it at the source: such "
            "characters split, hide or disguise ids)"
        )
    if not user_id.strip():
        return "it is empty"
    composed = decomposed(user_id)  # too long as written, it may fit once composed: say that instead
    if len(user_id) > max_length and (composed is None or len(composed) > max_length):
        return f"it has {len(user_id)} characters, the limit is {max_length}"
    if user_id != user_id.strip():
        return "it has leading or trailing whitespace (strip it at the source if it is not part of the id)"
    if composed is not None and len(composed) > max_length:  # (NFC lengthens a few characters)
        return (
            f"in composed form (Unicode NFC), as ids must be, it has {len(composed)} characters, "
            f"the limit is {max_length}"
        )
    if composed is not None:
        return (  # escaped (ascii): the two spellings look alike on screen
            f"it is not in composed form (Unicode NFC): written {user_id[:PREVIEW_CHARS]!a}, it looks "
            f"like {composed[:PREVIEW_CHARS]!a} but is another string, so one user written two ways "
            f"would be two members; write it in composed form"
        )
    return ""


def is_blank(line: str) -> bool:
    """True for a blank line of a file of ids, or a blank CSV cell: nothing but whitespace that is not
    itself refused (``str.strip()`` also takes controls such as U+001C and U+2028 for space: a line of
    them is refused, not skipped). The one verdict, wherever a block of the file ends."""
    return not line.strip() and find_invisible(line) is None


def free_of_invisible(text: str, *, newline_ok: bool = False) -> bool:
    """True when ``text`` holds no invisible, blank or control character (``\\n`` allowed when
    ``newline_ok``), at C speed: an ASCII text through ``bytes.translate``, any other through one
    regex search."""
    if text.isascii():  # most ids; bytes.translate is the fastest check there is (4x a regex search)
        return not text.encode("ascii").translate(None, _PRINTABLE_ASCII[newline_ok])
    return find_invisible(text, newline_ok=newline_ok) is None
