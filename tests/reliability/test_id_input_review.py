"""Id input a hostile review found accepted or mishandled, by class: each is refused by name before
anything is sent (or read as meant), never sent as other ids."""

from __future__ import annotations

import os
import socket
import threading

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_segments import locations
from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.hooks.walkme import MAX_ID_LENGTH
from airflow_provider_segments.hooks.zendesk_payloads import build_user_segment_payload
from airflow_provider_segments.ids import IdSource, UserIds
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeSyncSegmentOperator,
    WalkMeUpdateSegmentOperator,
)
from airflow_provider_segments.testing import TEST_SYSTEM_GUID
from airflow_provider_segments.vocabulary import validate_segment_name

GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"


def _sync(tmp_path, **kwargs):
    operator = WalkMeSyncSegmentOperator(
        task_id="s", name="Audience", state_path=str(tmp_path / "audience.snapshot"), **kwargs
    )
    return operator.execute({})


def _csv(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("email\na@x.com\nb@x.com\n")  # one column: no delimiter to give the header away
    return path


# -- user_ids_column: a column name, or not given at all ---------------------------------------------
MAKERS = [
    lambda **kw: WalkMeCreateSegmentOperator(task_id="c", name="A", **kw),
    lambda **kw: WalkMeUpdateSegmentOperator(task_id="u", segment_guid=GUID, action="add", **kw),
    lambda **kw: WalkMeSyncSegmentOperator(task_id="s", name="A", state_path="/tmp/s", **kw),
]
NOT_A_COLUMN = ["", "  ", "\t", 0, False, ["email"], ("email",), b"email", 1.5]


@pytest.mark.parametrize("column", NOT_A_COLUMN, ids=repr)
@pytest.mark.parametrize("make", MAKERS, ids=["create", "update", "sync"])
def test_a_literal_user_ids_column_that_is_not_a_name_fails_when_the_dag_is_parsed(tmp_path, make, column):
    with pytest.raises(SegmentsValidationError, match=r"^user_ids_column .* not a column name"):
        make(user_ids_path=str(_csv(tmp_path)), user_ids_column=column)


@pytest.mark.parametrize("column", NOT_A_COLUMN, ids=repr)
def test_a_user_ids_column_that_is_not_a_name_never_reads_the_csv_as_lines(sandbox, tmp_path, column):
    # Set after construction: what a template rendering to it leaves (the header was sent as an id).
    operator = WalkMeSyncSegmentOperator(
        task_id="s", name="A", state_path=str(tmp_path / "s"), user_ids_path=str(_csv(tmp_path))
    )
    operator.user_ids_column = column
    with pytest.raises(AirflowFailException, match=r"^user_ids_column .* not a column name"):
        operator.execute({})
    assert sandbox.requests == []
    with pytest.raises(SegmentsValidationError, match=r"^user_ids_column .* not a column name"):
        UserIds.from_file(str(_csv(tmp_path)), max_length=MAX_ID_LENGTH, column=column)
    with pytest.raises(SegmentsValidationError, match=r"^user_ids_column .* not a column name"):
        IdSource(path=str(_csv(tmp_path)), column=column)


@pytest.mark.parametrize(
    ("native", "rendered"),
    [(False, ""), (False, " "), (True, ""), (True, " "), (True, None)],  # (plain rendering: None is "None")
)
def test_a_templated_user_ids_column_rendering_to_no_name_fails_at_run_time(
    sandbox, tmp_path, native, rendered
):
    with DAG(
        "col", schedule=None, start_date=pendulum.datetime(2026, 1, 1), render_template_as_native_obj=native
    ):
        operator = WalkMeSyncSegmentOperator(
            task_id="s",
            name="A",
            state_path=str(tmp_path / "s"),
            user_ids_path=str(_csv(tmp_path)),
            user_ids_column="{{ params.column }}",
        )
    operator.render_template_fields({"params": {"column": rendered}})
    with pytest.raises(AirflowFailException, match=r"^user_ids_column was given as the template"):
        operator.execute({})
    assert sandbox.requests == []
    operator.user_ids_column = "email"  # the column named: read as the CSV it is
    result = operator.execute({})
    assert sorted(sandbox.walkme.members(TEST_SYSTEM_GUID, result["segment_guid"])) == ["a@x.com", "b@x.com"]


# -- user_ids_column beside an inline list: contradictory, not ignored ------------------------------
@pytest.mark.parametrize("column", ["email", "{{ params.column }}", ""])
@pytest.mark.parametrize("make", MAKERS, ids=["create", "update", "sync"])
def test_user_ids_column_beside_an_inline_list_fails_when_the_dag_is_parsed(make, column):
    with pytest.raises(SegmentsValidationError, match=r"user_ids_column .*user_ids"):
        make(user_ids=["a@x.com"], user_ids_column=column)


def test_user_ids_column_beside_an_inline_list_fails_at_run_time_before_anything_is_sent(sandbox, tmp_path):
    operator = WalkMeSyncSegmentOperator(
        task_id="s", name="A", state_path=str(tmp_path / "s"), user_ids=["a"]
    )
    operator.user_ids_column = "email"  # what a template field set later would leave
    with pytest.raises(AirflowFailException, match=r"user_ids_column .*user_ids"):
        operator.execute({})
    assert sandbox.requests == []
    with pytest.raises(SegmentsValidationError, match=r"user_ids_column .*user_ids"):
        IdSource(values=["a"], column="email")


# -- a Python list literal in a string: only what repr() of a list of strings and integers writes -----
@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("['alice' 'bob']", 0),  # Python joins adjacent string literals: one id 'alicebob'
        ("['a', 'b' 'c', 'd']", 1),
        ("['a',\n 'b'\n 'c']", 1),
        ("['a', 'b'  \"c\"]", 1),
        ("[r'a' 'b']", 0),
        ('[\'a\', """b""" \'c\']', 1),
        ("[0x10]", 0),  # sent as '16'
        ("['a', 1_000]", 1),  # sent as '1000'
        ("[+1]", 0),
        ("[00]", 0),  # (not JSON: leading zeros)
        ("[0o17]", 0),
        ("[- 1]", 0),
        ("[-0]", 0),  # JSON: read as 0, sent as '0'
        ('["a", -0, 0]', 1),
        ("[1, -0]", 1),
    ],
)
def test_a_python_list_literal_beyond_what_repr_writes_is_refused_naming_the_element(text, position):
    with pytest.raises(SegmentsValidationError, match=rf"^user_ids\[{position}\] = "):
        ids = UserIds.from_values(text, max_length=MAX_ID_LENGTH)
        raise AssertionError(f"accepted as {list(ids)}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("['alice', 'bob']", ["alice", "bob"]),
        ("['alice', 'bob',]", ["alice", "bob"]),
        (repr(["it's", 'say "hi"', "a\\b"]), ["it's", 'say "hi"', "a\\b"]),
        (repr(["x", 7, -7]), ["x", "7", "-7"]),
        ('["x", 7, -7, 0]', ["x", "7", "-7", "0"]),  # JSON
        ("[\n  'a',\n  'b',\n]", ["a", "b"]),
    ],
)
def test_a_python_list_literal_as_repr_writes_it_is_read_exactly(text, expected):
    assert list(UserIds.from_values(text, max_length=MAX_ID_LENGTH)) == expected


def test_two_ids_without_a_comma_fail_before_anything_is_sent(sandbox, tmp_path):
    with pytest.raises(AirflowFailException, match=r"user_ids\[0\] = .*'alicebob'"):
        _sync(tmp_path, user_ids="['alice' 'bob']")
    assert sandbox.requests == []
    result = _sync(tmp_path, user_ids="['alice', 'bob']")
    assert sorted(sandbox.walkme.members(TEST_SYSTEM_GUID, result["segment_guid"])) == ["alice", "bob"]


@pytest.mark.parametrize(
    ("field", "text"), [("tags", "['vip' 'beta']"), ("group_ids", "[0x10]"), ("group_ids", "[-0]")]
)
def test_zendesk_lists_given_as_python_literals_are_held_to_the_same_rule(field, text):
    with pytest.raises(SegmentsValidationError, match=rf"^{field}\[0\] = "):
        build_user_segment_payload({"name": "n", "user_type": "signed_in_users", field: text}, creating=True)


# -- user_ids_path: a regular file, or refused naming it (a FIFO hung the task in open()) --------------
def _special_files(tmp_path):
    fifo = tmp_path / "ids.fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link-to-fifo.txt"
    link.symlink_to(fifo)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "ids.sock"))
    device = tmp_path / "link-to-null.txt"
    device.symlink_to("/dev/null")
    return server, [
        (str(fifo), "FIFO"),
        (f"file://{fifo}", "FIFO"),
        (str(link), "FIFO"),
        (str(tmp_path / "ids.sock"), "socket"),
        (str(device), "character device"),
        ("/dev/zero", "character device"),
    ]


def _promptly(call, fifo):
    """What ``call`` returns or raises, failing the test (not hanging it) when it blocks in ``fifo``."""
    outcome: list[object] = []

    def run():
        try:
            outcome.append(call())
        except BaseException as err:  # handed to the test
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # let the blocked reader go, so that the process can end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert not thread.is_alive(), "blocked instead of refusing a file that is not a regular file"
    return outcome[0]


def test_a_path_that_is_not_a_regular_file_is_refused_naming_it(tmp_path):
    server, cases = _special_files(tmp_path)
    fifo = tmp_path / "ids.fifo"
    with server:
        for path, kind in cases:
            err = _promptly(lambda path=path: UserIds.from_file(path, max_length=MAX_ID_LENGTH), fifo)
            assert isinstance(err, SegmentsValidationError), (path, err)
            assert f"{path!r} is a {kind}" in str(err), (path, str(err))


def test_a_fifo_as_user_ids_path_fails_before_anything_is_sent(sandbox, tmp_path):
    fifo = tmp_path / "ids.fifo"
    os.mkfifo(fifo)
    err = _promptly(lambda: _sync(tmp_path, user_ids_path=str(fifo)), fifo)
    assert isinstance(err, AirflowFailException) and "is a FIFO" in str(err), err
    assert sandbox.requests == []
    with pytest.raises(AirflowFailException, match=rf"'{tmp_path}' is a directory"):  # as before
        _sync(tmp_path, user_ids_path=str(tmp_path))


# -- a blank line: one verdict, wherever a block of the file ends -------------------------------------
STRIP_SPACE_CONTROLS = ["\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\x0b", "\x0c", "\u2028", "\u2029"]


@pytest.mark.parametrize("control", STRIP_SPACE_CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_a_line_of_controls_strip_takes_for_space_is_refused_wherever_a_block_ends(
    tmp_path, monkeypatch, control
):
    path = tmp_path / "ids.txt"
    for line in (control * 150 + " " * 150, " " * 150 + control * 150, control * 300):
        path.write_text(f"a\n{line}\nb\n", encoding="utf-8")
        for block in (4096, 400, 250, 160, 103, 50, 7):  # the block ends before, inside or after it
            monkeypatch.setattr(locations, "BLOCK_CHARS", block)
            with pytest.raises(SegmentsValidationError, match=rf"ids.txt line 2 = .*U\+{ord(control):04X}"):
                ids = UserIds.from_file(str(path), max_length=MAX_ID_LENGTH)
                raise AssertionError(f"block of {block}: accepted as {list(ids)}, line 2 skipped as blank")


def test_a_long_blank_line_is_skipped_wherever_a_block_ends(tmp_path, monkeypatch):
    path = tmp_path / "ids.txt"
    path.write_text("a\n" + " " * 600 + "\nb\n", encoding="utf-8")
    for block in (4096, 250, 103, 7):
        monkeypatch.setattr(locations, "BLOCK_CHARS", block)
        assert list(UserIds.from_file(str(path), max_length=MAX_ID_LENGTH)) == ["a", "b"]


# -- what renders blank is refused in an id: every space separator but U+0020, blank symbols ---------
BLANK = [
    *"\u00a0\u1680\u2000\u2007\u200a\u202f\u205f\u3000",
    *"\u2800\U0001d159\U00016fe4",
    *"\u115f\u1160\u3164\uffa0\u180e",
]


@pytest.mark.parametrize("blank", BLANK, ids=lambda c: f"U+{ord(c):04X}")
def test_a_blank_rendering_character_in_an_id_is_refused_naming_it(tmp_path, blank):
    code = rf"U\+{ord(blank):04X}"
    for value in (f"alice{blank}", f"{blank}alice", f"al{blank}ice", blank):
        with pytest.raises(SegmentsValidationError, match=rf"^user_ids\[1\] = .* {code}\b"):
            UserIds.from_values(["ok", value], max_length=MAX_ID_LENGTH)
        (tmp_path / "ids.txt").write_text(f"ok\n{value}\n", encoding="utf-8")
        with pytest.raises(SegmentsValidationError, match=rf"ids.txt line 2 = .* {code}\b"):
            UserIds.from_file(str(tmp_path / "ids.txt"), max_length=MAX_ID_LENGTH)
        (tmp_path / "ids.csv").write_text(f"email,n\nok,1\n{value},2\n", encoding="utf-8")
        with pytest.raises(SegmentsValidationError, match=rf"ids.csv line 3 = .* {code}\b"):
            UserIds.from_file(str(tmp_path / "ids.csv"), max_length=MAX_ID_LENGTH, column="email")


def test_an_id_with_a_no_break_space_fails_before_anything_is_sent(sandbox, tmp_path):
    with pytest.raises(AirflowFailException, match=r"user_ids\[1\] = .* U\+00A0 NO-BREAK SPACE"):
        _sync(tmp_path, user_ids=["alice", "bob\u00a0smith"])
    assert sandbox.requests == []


def test_names_and_tags_keep_a_plain_space_and_refuse_the_blank_look_alikes():
    assert validate_segment_name("Audience 2026 (EU)") == "Audience 2026 (EU)"
    body = build_user_segment_payload(
        {"name": "VIP users", "user_type": "signed_in_users", "tags": ["vip_tier"]}, creating=True
    )  # (a Zendesk tag is one word: "vip tier" is refused, tests/hooks/test_names_and_tags.py)
    assert (body["name"], body["tags"]) == ("VIP users", ["vip_tier"])
    for blank in BLANK:
        with pytest.raises(SegmentsValidationError, match=rf"^name .* U\+{ord(blank):04X}\b"):
            validate_segment_name(f"Audience{blank}2026")
        with pytest.raises(SegmentsValidationError, match=rf"^tags\[0\] = .* U\+{ord(blank):04X}\b"):
            build_user_segment_payload(
                {"name": "n", "user_type": "signed_in_users", "tags": [f"vip{blank}"]}, creating=True
            )


def test_a_path_holding_a_no_break_space_is_still_read(tmp_path):
    path = tmp_path / "audience\u00a02026\u3000.txt"  # a file's name may hold any space: not an id
    path.write_text("a\nb\n", encoding="utf-8")
    assert list(UserIds.from_file(str(path), max_length=MAX_ID_LENGTH)) == ["a", "b"]


# -- hostile review 31: one string to a reader, two to WalkMe; code points that are not characters --
NFC_ID, NFD_ID = "jos\u00e9@acme.example", "jose\u0301@acme.example"


def _members(sandbox) -> set[str]:
    (segment,) = [s for s in sandbox.walkme.segments(TEST_SYSTEM_GUID) if s["name"] == "Audience"]
    return set(sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]))


def test_two_spellings_of_one_id_are_refused_before_anything_is_sent(sandbox, tmp_path):
    """'josé' precomposed (NFC) and 'jose' + U+0301 (NFD) render alike and are one text to Unicode;
    names and tags not in NFC were refused, ids were sent as two members."""
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{NFC_ID}\n{NFD_ID}\n", encoding="utf-8")
    written = r"composed form \(Unicode NFC\): written 'jose\\u0301@acme.example', it looks like 'jos\\xe9@"
    with pytest.raises(AirflowFailException, match=rf"line 2 = .*{written}"):
        _sync(tmp_path, user_ids_path=str(ids))
    with pytest.raises(AirflowFailException, match=r"user_ids\[1\] = .*composed form"):
        _sync(tmp_path, user_ids=["a", NFD_ID])
    assert sandbox.requests == []


def test_a_delta_given_the_decomposed_spelling_of_a_member_changes_nothing(sandbox, tmp_path):
    """Today's export writes yesterday's id decomposed: the delta removed the member WalkMe knows
    and added a look-alike nobody matches."""
    _sync(tmp_path, user_ids=[NFC_ID, "b"])
    with pytest.raises(AirflowFailException, match=r"user_ids\[0\] = .*write it in composed form"):
        _sync(tmp_path, user_ids=[NFD_ID, "b"])
    assert _members(sandbox) == {NFC_ID, "b"}


def test_composed_ids_beside_combining_marks_that_compose_with_nothing_are_accepted(tmp_path):
    """The composed-form check runs over whole blocks: an id that starts with a combining mark is
    composed on its own, whatever id comes before it (a list is checked joined without separators)."""
    ids = ["e", "\u0301x", NFC_ID, "\u1100", "\u1161"]  # e + U+0301, Hangul L + V: compose only joined
    assert list(UserIds.from_values(ids, max_length=MAX_ID_LENGTH)) == ids
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(ids) + "\n", encoding="utf-8")
    assert list(UserIds.from_file(str(path), max_length=MAX_ID_LENGTH)) == ids


#: Unicode's 66 noncharacters: U+FDD0..U+FDEF and the last two code points of every plane.
NONCHARACTERS = [chr(c) for c in range(0xFDD0, 0xFDF0)] + [
    chr(plane * 0x10000 + last) for plane in range(17) for last in (0xFFFE, 0xFFFF)
]


def test_every_noncharacter_is_refused_in_an_id_a_list_or_a_name():
    assert len(NONCHARACTERS) == 66
    for char in NONCHARACTERS:
        code = f"U\\+{ord(char):04X}"
        with pytest.raises(SegmentsValidationError, match=rf"user_ids\[1\] = .*{code}"):
            UserIds.from_values(["alice", f"bob{char}"], max_length=MAX_ID_LENGTH)
        with pytest.raises(SegmentsValidationError, match=code):
            validate_segment_name(f"Audience{char}")


@pytest.mark.parametrize("char", ["\ufffe", "\U0010ffff"], ids=["U+FFFE", "U+10FFFF"])
def test_a_file_id_holding_a_noncharacter_fails_before_anything_is_sent(sandbox, tmp_path, char):
    """U+FFFE is what a byte-swapped BOM decodes to; noncharacters are never interchanged text."""
    ids = tmp_path / "ids.txt"
    ids.write_text(f"alice\nbob{char}\n", encoding="utf-8")
    with pytest.raises(AirflowFailException, match=rf"line 2 = .*U\+{ord(char):04X} \(a noncharacter"):
        _sync(tmp_path, user_ids_path=str(ids))
    assert sandbox.requests == []


def test_a_decomposed_id_that_fits_once_composed_is_told_to_compose_not_that_it_is_too_long():
    """05d2f8d moved the NFC check after the length check. An id written decomposed ("e" + U+0301,
    two characters for one) that is over the 100-character limit only because of that is now told
    "it has 120 characters, the limit is 100": the user shortens (changes) the id, where writing it
    in composed form (60 characters, a valid id) was the fix the earlier order named."""
    from airflow_provider_segments.hooks.walkme import MAX_ID_LENGTH
    from airflow_provider_segments.id_rules import id_problem

    user_id = "e\u0301" * 60  # NFC: 60 characters
    assert len(__import__("unicodedata").normalize("NFC", user_id)) <= MAX_ID_LENGTH
    problem = id_problem(user_id, MAX_ID_LENGTH)
    assert "composed" in problem, f"a decomposed id that fits once composed is told: {problem}"


# -- 4. id_problem tells to compose an id whose composed form is itself too long -------------------
def test_an_id_whose_composed_form_is_too_long_is_not_told_only_to_compose():
    import unicodedata

    from airflow_provider_segments.id_rules import id_problem

    written = "ab\u0958"  # DEVANAGARI QA: a composition exclusion, its NFC is two characters
    composed = unicodedata.normalize("NFC", written)
    assert len(written) == 3 and len(composed) == 4
    problem = id_problem(written, 3)
    assert "limit is 3" in problem or "4 characters" in problem, (
        f"the error asks for the composed form ({composed!a}), which is refused in turn as too long "
        f"({id_problem(composed, 3)!r}): {problem}"
    )
