"""The id collection: for any ids, chunks cover the deduped input in order, none over the limit; for any
invalid id anywhere (a control character, a BOM, a separator, padding, a wrong type), nothing is sent."""

from __future__ import annotations

import json
import re
import sys
import time
import tracemalloc
import unicodedata

import pytest
import requests_mock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import WALKME_SYSTEM, WALKME_TEST_URL, walkme_conn_json

from airflow_provider_segments import locations
from airflow_provider_segments.exceptions import SegmentsInputMissingError, SegmentsValidationError
from airflow_provider_segments.hooks.walkme import MAX_ID_LENGTH, MAX_IDS_PER_REQUEST, WalkMeHook
from airflow_provider_segments.id_rules import find_invisible, free_of_invisible
from airflow_provider_segments.ids import UserIds

pytestmark = pytest.mark.slow

GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"
SEGMENTS_URL = f"{WALKME_TEST_URL}/public/v1/user/system/{WALKME_SYSTEM}/segment"

#: Unicode general categories never valid in an id: controls, format (invisible) characters,
#: surrogates, line and paragraph separators.
INVISIBLE_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")
#: ... and what Unicode calls default-ignorable although its category is another (DerivedCoreProperties).
DEFAULT_IGNORABLE = "".join(
    chr(code)
    for first, last in [
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
    ]
    for code in range(first, last + 1)
)
#: ... and what renders blank although it is no space or control: every space separator (``Zs``) but
#: U+0020 itself (U+00A0 and U+3000 look like a plain space, or like nothing at an id's end), and the
#: blank symbols and fillers (Braille pattern blank, musical null notehead, Khitan filler).
BLANK_RENDERING = "\u2800\U0001d159\U00016fe4" + "".join(
    c for c in map(chr, range(sys.maxunicode + 1)) if unicodedata.category(c) == "Zs" and c != " "
)
#: ... and Unicode's 66 noncharacters (never text): U+FDD0..U+FDEF and the last two of every plane.
NONCHARACTERS = "".join(map(chr, range(0xFDD0, 0xFDF0))) + "".join(
    chr(plane + last) for plane in range(0, 0x110000, 0x10000) for last in (0xFFFE, 0xFFFF)
)
FORBIDDEN = (
    DEFAULT_IGNORABLE
    + BLANK_RENDERING
    + NONCHARACTERS
    + "".join(
        c for c in map(chr, range(sys.maxunicode + 1)) if unicodedata.category(c) in INVISIBLE_CATEGORIES
    )
)
# The table of invisible code points is built on the first non-ASCII check (about 0.1 s, more on a
# loaded machine): build it here, not inside a property test's deadline.
find_invisible("é")
valid_char = st.characters(
    exclude_categories=INVISIBLE_CATEGORIES,
    exclude_characters=DEFAULT_IGNORABLE + BLANK_RENDERING + NONCHARACTERS,
)
# ids are in composed form (NFC): "jose" + U+0301 and "josé" are one text written two ways
valid_id = (
    st.text(alphabet=valid_char, min_size=1, max_size=MAX_ID_LENGTH)
    .map(lambda s: unicodedata.normalize("NFC", s))
    .filter(lambda s: s.strip() == s and s.strip() != "" and len(s) <= MAX_ID_LENGTH)
)
invalid_id = st.one_of(
    st.just(""),
    st.text(alphabet=" \t\n", min_size=1, max_size=5),
    st.text(min_size=MAX_ID_LENGTH + 1, max_size=MAX_ID_LENGTH + 40).filter(lambda s: s.strip() == s),
    st.none(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.builds(lambda a, c, b: a + c + b, valid_id, st.sampled_from(list(FORBIDDEN)), valid_id),
)


def _dedupe(items):
    return list(dict.fromkeys(items))


@given(pause=st.just(0.25))
def test_a_property_example_held_up_by_a_busy_machine_is_not_a_failure(pause):
    """The suite's Hypothesis profile (conftest) has no deadline: a CI machine that pauses one example
    past Hypothesis's default 200 ms must not fail a test whose results are right."""
    time.sleep(pause)


@given(ids=st.lists(valid_id, max_size=300), size=st.integers(min_value=1, max_value=40))
def test_chunks_cover_the_deduped_input_in_order_and_respect_the_size(ids, size):
    unique = UserIds.from_values(ids, max_length=MAX_ID_LENGTH)
    assert list(unique) == _dedupe(ids)
    chunks = list(unique.chunks(size))
    assert [i for chunk in chunks for i in chunk] == list(unique)
    assert all(1 <= len(chunk) <= size for chunk in chunks)
    assert len(chunks) == -(-len(unique) // size)


@given(ids=st.lists(valid_id, max_size=300).map(sorted), repeats=st.lists(st.integers(min_value=0)))
def test_a_sorted_input_with_or_without_neighbours_repeated_is_deduped_and_answers_membership(ids, repeats):
    """A strictly increasing input is unique without a set (the sorted export's fast path); one where a
    neighbour repeats (``a, a, b``) is not, and is deduped like any other."""
    for index in repeats[:5]:
        if ids:
            position = index % len(ids)
            ids.insert(position, ids[position])
    unique = UserIds.from_values(ids, max_length=MAX_ID_LENGTH)
    assert list(unique) == _dedupe(ids) and len(unique) == len(set(ids))
    assert all(user_id in unique for user_id in ids) and "not-in-the-input\u00e9" not in unique


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=0, max_value=80_000),
    repeat_every=st.integers(min_value=2, max_value=50),
    action=st.sampled_from(["add", "remove", "override"]),
)
def test_every_request_holds_at_most_25000_ids_and_together_exactly_the_input(n, repeat_every, action):
    ids = [f"user{i}" if i % repeat_every else f"user{i // 2}" for i in range(n)]  # with duplicates
    with pytest.MonkeyPatch.context() as mp, requests_mock.Mocker() as mock:
        mp.setenv("AIRFLOW_CONN_WALKME_DEFAULT", walkme_conn_json())
        mock.post(f"{WALKME_TEST_URL}/accounts/connect/token", json={"access_token": "tok-0123456789"})
        mock.put(f"{SEGMENTS_URL}/{GUID}", json={})
        mock.get(SEGMENTS_URL, json=[{"guid": GUID, "name": "n"}])
        # WalkMe lists no count here: the removal guard could not run, so it is turned off.
        WalkMeHook().update_segment(GUID, action, ids, allow_empty=True, max_removal_fraction=1.0)
        bodies = [json.loads(r.text) for r in mock.request_history if r.method == "PUT"]
    assert all(len(body["userIds"]) <= MAX_IDS_PER_REQUEST for body in bodies)
    sent = [u for body in bodies for u in body["userIds"]]
    # chunks after the first go out in parallel: they may arrive in any order
    assert sorted(sent) == sorted(_dedupe(ids)) and len(sent) == len(set(sent))
    if action == "override":
        assert [b["action"] for b in bodies] == ["override"] + ["add"] * (len(bodies) - 1)
    else:
        assert {b["action"] for b in bodies} <= {action}


@settings(max_examples=60, deadline=None)
@given(
    before=st.lists(valid_id, max_size=30),
    bad=invalid_id,
    after=st.lists(valid_id, max_size=30),
    action=st.sampled_from(["add", "remove", "override"]),
)
def test_any_invalid_id_anywhere_means_nothing_is_sent(before, bad, after, action):
    ids = [*before, bad, *after]
    with pytest.MonkeyPatch.context() as mp, requests_mock.Mocker() as mock:
        mp.setenv("AIRFLOW_CONN_WALKME_DEFAULT", walkme_conn_json())
        with pytest.raises(SegmentsValidationError, match=rf"user_ids\[{len(before)}\]"):
            WalkMeHook().update_segment(GUID, action, ids)
        assert mock.request_history == []


# -- the block reader behind user_ids_path -------------------------------------------------------
line_id = (
    st.text(alphabet=valid_char, min_size=1, max_size=MAX_ID_LENGTH)
    .map(lambda s: unicodedata.normalize("NFC", s))  # ids are in composed form
    .filter(lambda s: s.strip() == s and len(s) <= MAX_ID_LENGTH)
)


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True) if b > a]


@given(
    ids=st.lists(line_id, max_size=200),
    blanks=st.lists(st.integers(min_value=0, max_value=200), max_size=10),
    cuts=st.lists(st.integers(min_value=0), max_size=20),
)
def test_any_split_into_blocks_gives_the_deduped_ids_in_order(ids, blanks, cuts):
    lines = list(ids)
    for position in sorted(blanks, reverse=True):
        lines.insert(min(position, len(lines)), "  " if position % 2 else "")
    text = "\n".join(lines) + "\n"
    assert list(_read(_split(text, cuts))) == _dedupe(ids)


@given(
    before=st.lists(line_id, max_size=50),
    bad=st.one_of(
        st.text(alphabet="x", min_size=MAX_ID_LENGTH + 1, max_size=MAX_ID_LENGTH + 5),
        st.just(" padded"),
        st.sampled_from(["a\rb", "a\x00b", "\ufeffa", "a\u2028b", "a\x85b", "\x1c"]),
    ),
    cuts=st.lists(st.integers(min_value=0), max_size=10),
)
def test_a_bad_line_is_named_by_its_number_whatever_the_blocks(before, bad, cuts):
    text = "\n".join([*before, "", bad, "after"]) + "\n"
    with pytest.raises(SegmentsValidationError, match=rf"^ids.txt line {len(before) + 2:,} = "):
        _read(_split(text, cuts))


def _read(blocks: list[str]) -> UserIds:
    return UserIds.from_lines_text(blocks, max_length=MAX_ID_LENGTH, source="ids.txt")


def test_ids_also_in_the_snapshot_share_its_strings(tmp_path):
    snapshot = UserIds.from_lines_text(
        ["user0001@example.com\nother@", "example.com\n"], max_length=MAX_ID_LENGTH, source="s"
    )
    stored = next(iter(snapshot))
    path = tmp_path / "ids.txt"
    path.write_text("new@example.com\nuser0001@example.com\n")
    ids = UserIds.from_file(str(path), max_length=MAX_ID_LENGTH, share=snapshot)
    assert list(ids) == ["new@example.com", "user0001@example.com"]
    assert list(ids)[1] is stored  # one string for both collections, not a copy


# -- invisible characters: the whole Unicode class, named by code point and position --------------
def test_every_character_strip_removes_but_the_space_is_refused_wherever_it_stands(tmp_path):
    """The block checks skip ``str.strip`` for a block without U+0020: sound only while every other
    character ``str.strip`` removes is refused as invisible, at an id's edge as inside it."""
    stripped = [c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace() and c != " "]
    assert stripped and all(find_invisible(c) for c in stripped if c != "\n")
    for char in stripped:
        for ids in ([f"{char}alice", "bob"], ["alice", f"bob{char}"]):
            with pytest.raises(SegmentsValidationError, match="not a valid user id"):
                UserIds.from_values(ids, max_length=MAX_ID_LENGTH)
        if char not in "\n\r":  # (a file's line ends: "\r\n" is one)
            path = tmp_path / "ids.txt"
            path.write_text(f"alice\nbob{char}\n", encoding="utf-8")
            with pytest.raises(SegmentsValidationError, match="line 2"):
                UserIds.from_file(str(path), max_length=MAX_ID_LENGTH)


def test_exactly_the_characters_of_categories_cc_cf_cs_zl_zp_and_blank_ones_are_refused():
    for char in FORBIDDEN:  # every code point of the class, whatever the Unicode version
        with pytest.raises(SegmentsValidationError, match=rf"^user_ids\[1\] = .* U\+{ord(char):04X}\b"):
            UserIds.from_values(["ok", f"a{char}b"], max_length=MAX_ID_LENGTH)
    with pytest.raises(SegmentsValidationError, match=r"U\+200B ZERO WIDTH SPACE at position 2\b"):
        UserIds.from_values(["\U0001f600a\u200b"], max_length=MAX_ID_LENGTH)  # after a non-BMP character
    forbidden = set(FORBIDDEN)
    allowed = [c for c in map(chr, range(sys.maxunicode + 1)) if c not in forbidden]
    # each in composed form (NFC: at most 3 characters for 1), as ids must be
    ids = [
        "<" + unicodedata.normalize("NFC", "".join(allowed[i : i + 32])) + ">"
        for i in range(0, len(allowed), 32)
    ]
    assert len(UserIds.from_values(ids, max_length=MAX_ID_LENGTH)) == len(ids)
    assert len(UserIds.from_lines_text(["\n".join(ids)], max_length=MAX_ID_LENGTH, source="s")) == len(ids)


INVISIBLE = [
    pytest.param("\u200b", id="zero-width-space"),
    pytest.param("\u200c", id="zwnj"),
    pytest.param("\u200d", id="zwj"),
    pytest.param("\u200e", id="lrm"),
    pytest.param("\u200f", id="rlm"),
    *(pytest.param(chr(c), id=f"bidi-U+{c:04X}") for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]),
    pytest.param("\u00ad", id="soft-hyphen"),
    pytest.param("\u2060", id="word-joiner"),
    pytest.param("\ufeff", id="bom-inside"),
    pytest.param("\U000e0041", id="tag-letter"),
    *(pytest.param(c, id=f"blank-U+{ord(c):04X}") for c in "\u00a0\u2007\u202f\u3000\u2800\U0001d159\u3164"),
]


@given(text=st.text(max_size=6), newline_ok=st.booleans())
def test_the_block_check_and_the_search_agree_on_any_text(text, newline_ok):
    """``free_of_invisible`` (``bytes.translate`` for ASCII, one search otherwise) and
    ``find_invisible`` give one verdict, and it is the documented class's, on any characters."""
    found = find_invisible(text, newline_ok=newline_ok)
    assert free_of_invisible(text, newline_ok=newline_ok) == (found is None)
    refused = set(FORBIDDEN) - ({"\n"} if newline_ok else set())
    assert (found is None) == (not refused.intersection(text)), text


def test_every_ascii_character_gets_one_verdict_from_the_block_check_and_the_search():
    """The C-speed block check (``bytes.translate`` for ASCII) and the search that names a bad
    character agree on each of the 128, in a list's block and in a text of lines."""
    for char in map(chr, range(0x80)):
        for newline_ok in (False, True):
            text = f"ab{char}cd"
            found = find_invisible(text, newline_ok=newline_ok)
            assert free_of_invisible(text, newline_ok=newline_ok) == (found is None), (char, newline_ok)
            assert (found is None) == (char.isprintable() or (newline_ok and char == "\n")), char


@pytest.mark.parametrize("char", INVISIBLE)
def test_an_invisible_character_is_refused_naming_its_code_point_and_position(tmp_path, char):
    code = re.escape(f"U+{ord(char):04X}")
    with pytest.raises(SegmentsValidationError, match=rf"^user_ids\[4\] = .* {code} .*at position 3"):
        UserIds.from_values(["a", "b", "c", "d", f"abc{char}def"], max_length=MAX_ID_LENGTH)
    path = tmp_path / "ids.txt"
    path.write_text(f"a\nb\n\nabc{char}def\ne\n", encoding="utf-8")
    with pytest.raises(SegmentsValidationError, match=rf"ids.txt line 4 = .* {code} "):
        UserIds.from_file(str(path), max_length=MAX_ID_LENGTH)
    csv_path = tmp_path / "ids.csv"
    csv_path.write_text(f"n,email\n1,a@x.com\n2,abc{char}@x.com\n", encoding="utf-8")
    with pytest.raises(SegmentsValidationError, match=rf"ids.csv line 3 = .* {code} "):
        UserIds.from_file(str(csv_path), max_length=MAX_ID_LENGTH, column="email")


@pytest.mark.parametrize("surrogate", ["\ud800", "\udfff", "a\udc80b"])
def test_a_lone_surrogate_in_a_list_is_refused_naming_it(surrogate):
    with pytest.raises(SegmentsValidationError, match=r"^user_ids\[1\] = .* U\+D[89A-F][0-9A-F]{2}\b"):
        UserIds.from_values(["ok", surrogate, "later"], max_length=MAX_ID_LENGTH)


@pytest.mark.parametrize(
    ("data", "line", "offset"),
    [
        pytest.param(b"ok\nfine\n\xed\xa0\x80x\n", 3, 8, id="utf8-encoded-surrogate"),
        pytest.param(b"ok\nfine\nbad\xffid\n", 3, 11, id="invalid-byte"),
        pytest.param(b"ok\r\nb\xe9ta\r\n", 2, 5, id="latin-1"),
    ],
)
def test_undecodable_bytes_are_refused_naming_the_file_line_and_byte_offset(tmp_path, data, line, offset):
    path = tmp_path / "ids.txt"
    path.write_bytes(data)
    with pytest.raises(
        SegmentsValidationError, match=rf"ids.txt line {line} \(byte offset {offset}\) is not UTF-8"
    ):
        UserIds.from_file(str(path), max_length=MAX_ID_LENGTH)


@pytest.mark.parametrize("block", [1, 2, 3, 5, 7, 4 * 1024 * 1024])
def test_the_undecodable_byte_is_found_whatever_the_block_size_in_lines_or_csv(tmp_path, monkeypatch, block):
    monkeypatch.setattr(locations, "BLOCK_CHARS", block)
    body = "email\n" + "".join(f"é{i}€𝄞@x.com\n" for i in range(5))
    data = body.encode() + b"\xc3(bad\n"  # 0xC3 starts a 2-byte sequence; "(" cannot continue it
    path = tmp_path / "ids.csv"
    path.write_bytes(data)
    expected = rf"ids.csv line 7 \(byte offset {len(body.encode()):,}\) is not UTF-8: byte 0xC3"
    for column in (None, "email"):
        with pytest.raises(SegmentsValidationError, match=expected):
            UserIds.from_file(str(path), max_length=MAX_ID_LENGTH, column=column)


# -- paths: a directory is a mistake, a missing file may still come -------------------------------
def test_file_uris_naming_this_machine_are_local_and_another_host_is_refused(tmp_path):
    """RFC 8089: ``file://localhost/p`` and ``file:/p`` are the local file ``/p`` (they were read, and a
    snapshot written, at ``<cwd>/localhost/p`` and ``<cwd>/file:/p``); ``file://otherhost/p`` names a
    file on another machine, which no local read reaches: refused, naming the host."""
    path = tmp_path / "ids.txt"
    path.write_text("a\nb\n")
    for uri in (f"file://localhost{path}", f"file://LOCALHOST{path}", f"file:{path}", f"file://{path}"):
        assert list(UserIds.from_file(uri, max_length=MAX_ID_LENGTH)) == ["a", "b"], uri
    with pytest.raises(SegmentsValidationError, match=r"'otherhost'.*another machine"):
        UserIds.from_file(f"file://otherhost{path}", max_length=MAX_ID_LENGTH)


def test_a_state_path_given_as_file_localhost_is_written_where_it_names(sandbox, tmp_path, monkeypatch):
    from airflow_provider_segments.operators.walkme import WalkMeSyncSegmentOperator

    monkeypatch.chdir(tmp_path)
    state = tmp_path / "state" / "s.snapshot"
    WalkMeSyncSegmentOperator(
        task_id="s", name="Local", state_path=f"file://localhost{state}", user_ids=["a", "b"]
    ).execute({})
    assert state.exists() and not (tmp_path / "localhost").exists()


@pytest.mark.parametrize("uri", [False, True])
def test_a_directory_is_refused_naming_the_path(tmp_path, uri):
    folder = tmp_path / "exports"
    folder.mkdir()
    path = f"file://{folder}" if uri else str(folder)
    for column in (None, "email"):
        with pytest.raises(SegmentsValidationError, match=rf"'{re.escape(path)}' is a directory"):
            UserIds.from_file(path, max_length=MAX_ID_LENGTH, column=column)


@pytest.mark.parametrize("uri", [False, True])
def test_a_missing_file_is_not_a_validation_error_so_that_retries_apply(tmp_path, uri):
    path = f"file://{tmp_path}/nope.txt" if uri else str(tmp_path / "nope.txt")
    with pytest.raises(SegmentsInputMissingError, match=rf"'{re.escape(path)}' does not exist") as caught:
        UserIds.from_file(path, max_length=MAX_ID_LENGTH)
    assert not isinstance(caught.value, SegmentsValidationError)
    assert isinstance(caught.value, FileNotFoundError)  # what a DAG author would catch without us


# -- an over-long line is refused as soon as it is over the limit, not kept whole ------------------
def test_a_100_mb_line_is_refused_promptly_naming_its_line_without_holding_it(tmp_path):
    path = tmp_path / "ids.txt"
    with path.open("w") as handle:
        handle.write("a@x.com\n\nb@x.com\n")
        for _ in range(100):
            handle.write("x" * 1_000_000)
        handle.write("\nc@x.com\n")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(
            SegmentsValidationError, match=r"ids.txt line 4 = 'xxx.* more than 100 characters"
        ):
            UserIds.from_file(str(path), max_length=MAX_ID_LENGTH)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 1024 * 1024, f"{peak / 2**20:.0f} MiB held for a 100 MB line"
    assert time.perf_counter() - started < 5


def test_a_long_blank_line_is_still_a_blank_line(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("a\n" + " " * (5 * 1024 * 1024) + "\nb\n" + " " * (5 * 1024 * 1024) + "c\n")
    with pytest.raises(SegmentsValidationError, match=r"ids.txt line 4 = '  .* is not a valid user id"):
        UserIds.from_file(str(path), max_length=MAX_ID_LENGTH)
    path.write_text("a\n" + " " * (5 * 1024 * 1024) + "\nb\n")
    assert list(UserIds.from_file(str(path), max_length=MAX_ID_LENGTH)) == ["a", "b"]


# -- a CSV given as a file of one id per line -----------------------------------------------------
@pytest.mark.parametrize(
    ("text", "line", "holds"),
    [
        pytest.param("id,email,plan\n1,a@x.com,pro\n", 1, "','", id="comma-header"),
        pytest.param("\ufeffemail;plan\na@x.com;pro\n", 1, "';'", id="semicolon-header-after-bom"),
        pytest.param("id\temail\r\n1\ta@x.com\r\n", 1, "'\\\\t'", id="tab-header"),
        pytest.param("\n  \n1,a@x.com,pro\n", 3, "','", id="headerless-after-blank-lines"),
    ],
)
def test_a_csv_read_as_one_id_per_line_is_refused_saying_to_set_user_ids_column(tmp_path, text, line, holds):
    path = tmp_path / "audience.csv"
    path.write_text(text, encoding="utf-8", newline="")
    for where in (str(path), f"file://{path}"):
        with pytest.raises(
            SegmentsValidationError, match=rf"audience.csv line {line} = .* holds {holds}.* user_ids_column"
        ):
            UserIds.from_file(where, max_length=MAX_ID_LENGTH)


def test_only_the_first_line_of_a_file_of_ids_is_taken_for_a_header(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("a@x.com\nDoe, John\nb;c\n")  # ids with a delimiter, after a first id without one
    assert list(UserIds.from_file(str(path), max_length=MAX_ID_LENGTH)) == ["a@x.com", "Doe, John", "b;c"]
    assert list(_read(["Doe, John\n"])) == ["Doe, John"]  # a snapshot's body is not a user's file


# -- CSV: strict, one line per record, as many fields as the header --------------------------------
def _csv_ids(tmp_path, text: str, column: str = "email") -> UserIds:
    path = tmp_path / "audience.csv"
    path.write_text(text, encoding="utf-8", newline="")
    return UserIds.from_file(str(path), max_length=MAX_ID_LENGTH, column=column)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        pytest.param(
            'email,note\na@x.com,"unclosed\nb@x.com,x\nc@x.com,y\n',
            2,
            "goes on past the end of the line",
            id="unclosed-quote-in-another-column",
        ),
        pytest.param(
            'email,note\na@x.com,ok\nb@x.com,"unclosed\n' + "c@x.com,y\n" * 20_000,
            3,
            "goes on past the end of the line",
            id="unclosed-quote-then-over-128-kib",
        ),
        pytest.param(
            'email,note\na@x.com,"two\nlines"\n', 2, "goes on past the end of the line", id="quoted-newline"
        ),
        pytest.param(
            'email,note\n"a@x.com\r\n",x\n', 2, "goes on past the end of the line", id="quoted-crlf-in-id"
        ),
        pytest.param(
            '"em\nail",note\na@x.com,x\n', 1, "goes on past the end of the line", id="header-on-two-lines"
        ),
        pytest.param(
            "email,plan\na@x.com,pro\nb@x.com,pro,extra\n", 3, "has 3 fields, the header 2", id="more-fields"
        ),
        pytest.param("email,plan\na@x.com,pro\nb@x.com\n", 3, "has 1 field, the header 2", id="fewer-fields"),
        pytest.param('email,plan\n"a@x.com"x,pro\n', 2, "not valid CSV", id="text-after-closing-quote"),
        pytest.param(
            f"email,note\na@x.com,{'n' * 200_000}\n",
            2,
            "not valid CSV: field larger than field limit",
            id="field-over-128-kib",
        ),
        pytest.param(
            f"email,note\na@x.com,x\nb@x.com,{'n' * 2_000_000}\n",
            3,
            "longer than 1,048,576 characters",
            id="line-over-1-mib",
        ),
    ],
)
def test_a_malformed_csv_is_refused_naming_the_file_and_line(tmp_path, text, line, reason):
    with pytest.raises(SegmentsValidationError, match=rf"audience.csv line {line}\b.*{reason}"):
        _csv_ids(tmp_path, text)


def test_the_requested_column_named_twice_is_refused_other_repeats_and_blank_names_are_fine(tmp_path):
    with pytest.raises(
        SegmentsValidationError, match=r"audience.csv line 1 names the column 'email' 2 times"
    ):
        _csv_ids(tmp_path, "email,plan,email\na@x.com,pro,b@x.com\n")
    text = ",email,x,x\n1,a@x.com,p,q\n\n,,,\n2,b@x.com,,\n"  # blank name, repeated other column, blank rows
    assert list(_csv_ids(tmp_path, text)) == ["a@x.com", "b@x.com"]
