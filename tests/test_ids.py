"""The id collection: for any ids, chunks cover the deduped input in order, none over the limit; for any
invalid id anywhere (a control character, a BOM, a separator, padding, a wrong type), nothing is sent."""

from __future__ import annotations

import json

import pytest
import requests_mock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import WALKME_SYSTEM, WALKME_TEST_URL, walkme_conn_json

from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.hooks.walkme import MAX_ID_LENGTH, MAX_IDS_PER_REQUEST, WalkMeHook
from airflow_provider_segments.ids import UserIds

pytestmark = pytest.mark.slow

GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"
SEGMENTS_URL = f"{WALKME_TEST_URL}/public/v1/user/system/{WALKME_SYSTEM}/segment"

FORBIDDEN = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0), 0xFEFF, 0x2028, 0x2029]))
valid_id = st.text(
    alphabet=st.characters(blacklist_characters=FORBIDDEN), min_size=1, max_size=MAX_ID_LENGTH
).filter(lambda s: s.strip() == s and s.strip() != "")
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


@given(ids=st.lists(valid_id, max_size=300), size=st.integers(min_value=1, max_value=40))
def test_chunks_cover_the_deduped_input_in_order_and_respect_the_size(ids, size):
    unique = UserIds.from_values(ids, max_length=MAX_ID_LENGTH)
    assert list(unique) == _dedupe(ids)
    chunks = list(unique.chunks(size))
    assert [i for chunk in chunks for i in chunk] == list(unique)
    assert all(1 <= len(chunk) <= size for chunk in chunks)
    assert len(chunks) == -(-len(unique) // size)


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
    assert [u for body in bodies for u in body["userIds"]] == _dedupe(ids)
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
line_id = st.text(
    alphabet=st.characters(blacklist_characters=FORBIDDEN),
    min_size=1,
    max_size=MAX_ID_LENGTH,
).filter(lambda s: s.strip() == s)


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
