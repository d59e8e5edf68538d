"""What a WalkMe answer must show before it is used (found by a hostile review): a listing is trusted
only when it is the whole list (a name lookup on part of it creates a duplicate), and a segment GUID
from any answer reaches a URL only when it is a GUID (else a write goes to another segment, even one
of another system). Each test asserts what the sandbox holds and which requests it received."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import impatient_sandbox

from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.exceptions import SegmentsError, SegmentsValidationError
from airflow_provider_segments.membership import read_back
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeListSegmentsOperator,
    WalkMeSyncSegmentOperator,
    WalkMeUpdateSegmentOperator,
)
from airflow_provider_segments.testing import TEST_SYSTEM_GUID

SEGMENTS = f"/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"
OTHER_SYSTEM = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setattr(read_back, "VERIFY_INTERVAL", 0.01)
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.05)


def named(sandbox: Any, name: str) -> list[dict[str, Any]]:
    return [s for s in sandbox.walkme.segments(TEST_SYSTEM_GUID) if s["name"] == name]


def writes(sandbox: Any) -> list[tuple[str, str]]:
    """The segment writes the sandbox received (any system)."""
    return [
        (r["method"], r["path"])
        for r in sandbox.requests
        if r["method"] in ("PUT", "POST", "DELETE") and "/segment" in r["path"]
    ]


def sync(tmp_path: Any, user_ids: list[str], name: str = "Audience") -> dict[str, Any]:
    return WalkMeSyncSegmentOperator(
        task_id="sync",
        name=name,
        user_ids=user_ids,
        state_path=str(tmp_path / "s"),
        max_removal_fraction=1.0,
    ).execute({})


def refused_as_an_api_answer(caught: pytest.ExceptionInfo[BaseException]) -> None:
    """The answer's fault, not the DAG author's input: the task's retries apply (no fail-fast)."""
    assert isinstance(caught.value, SegmentsError), repr(caught.value)
    assert not isinstance(caught.value, SegmentsValidationError | AirflowFailException), repr(caught.value)


# -- Bug A: a listing that says more pages follow ----------------------------------------------------
MORE_PAGES = {
    "hasMore": {"segments": [], "hasMore": True, "next": "?page=2"},
    "has_more": {"segments": [], "has_more": True},
    "next": {"items": [], "next": "https://api.walkme.com/...?page=2"},
    "nextPage": {"data": [], "nextPage": 2},
    "next_page": {"results": [], "next_page": "/segment?page=2"},
    "nextCursor": {"segments": [], "nextCursor": "abc"},
    "cursor": {"segments": [], "cursor": "abc"},
    "total": {"segments": [], "total": 1},
    "totalCount": {"data": [], "totalCount": 3},
    "total_count-as-text": {"data": [], "total_count": "2"},
    "pagination.next": {"data": [], "pagination": {"next": "/page/2", "total": 1}},
    "paging.hasMore": {"segments": [], "paging": {"hasMore": True}},
    "meta.has_more": {"items": [], "meta": {"has_more": True}},
    "meta.total": {"items": [], "meta": {"total_count": 5}},
    "meta.pagination.nextCursor": {"items": [], "meta": {"pagination": {"nextCursor": "x"}}},
    "hasMore-as-text": {"segments": [], "hasMore": "true"},
}


@pytest.mark.parametrize("body", MORE_PAGES.values(), ids=MORE_PAGES.keys())
def test_a_wrapped_listing_that_says_more_follow_never_duplicates_the_segment(sandbox, tmp_path, body):
    existing = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Audience", ["a", "b"])
    # the first listing page, which does not hold the segment, says more pages follow
    sandbox.inject_fault(SEGMENTS, 200, method="GET", body=json.dumps(body), count=1)
    with pytest.raises(SegmentsError) as caught:
        sync(tmp_path, ["x", "y"])
    refused_as_an_api_answer(caught)
    message = str(caught.value)
    assert "only part of the list" in message and "this answer is not used" in message, message
    assert [s["guid"] for s in named(sandbox, "Audience")] == [existing["guid"]]
    assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, existing["guid"])) == {"a", "b"}
    assert writes(sandbox) == []


def test_the_list_operator_refuses_part_of_a_list_too(sandbox):
    sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Audience", ["a"])
    sandbox.inject_fault(SEGMENTS, 200, method="GET", body=json.dumps({"data": [], "hasMore": True}))
    with pytest.raises(SegmentsError, match="only part of the list") as caught:
        WalkMeListSegmentsOperator(task_id="ls").execute({})
    refused_as_an_api_answer(caught)


# Page counts and "last page" flags, in any paging object: we never ask for a page, so a listing
# that counts more than one page, or says it is not the last, is part of the list.
MORE_PAGES_BY_COUNT = {
    "totalPages": {"segments": [], "totalPages": 2, "page": 1},
    "total_pages-as-text": {"data": [], "total_pages": "3"},
    "pageCount": {"items": [], "pageCount": 2},
    "pages": {"results": [], "page": 1, "pages": 4},
    "last-false": {"segments": [], "last": False},
    "isLastPage-false": {"segments": [], "isLastPage": False},
    "lastPage-number": {"data": [], "currentPage": 1, "lastPage": 2},
    "meta.page.totalPages": {"data": [], "meta": {"page": {"totalPages": 2}}},
    "next_page_url": {"data": [], "next_page_url": "https://x/s?page=2"},
    "nextPageUrl": {"data": [], "nextPageUrl": "https://x/s?page=2"},
    "next_offset": {"items": [], "next_offset": 100},
    "total_items": {"items": [], "total_items": 5},
    "totalResults": {"items": [], "totalResults": 5},
    "done-false": {"segments": [], "done": False},
    "last-no": {"segments": [], "last": "no"},
    "last-0": {"segments": [], "last": 0},
    "links.last-another-page": {
        "data": [],
        "links": {"first": "https://x/s?page=1", "last": "https://x/s?page=3", "next": None},
    },
    "_links.last-without-self": {"data": [], "_links": {"last": {"href": "/s?page=3"}}},
    # the last of three pages: it is the last page, not the whole list (hostile review 24)
    "links.last-is-self-of-page-3": {
        "data": [],
        "links": {
            "first": "https://x/s?page=1",
            "prev": "https://x/s?page=2",
            "self": "https://x/s?page=3",
            "last": "https://x/s?page=3",
            "next": None,
        },
    },
    "_links.prev": {
        "data": [],
        "_links": {
            "self": {"href": "/s?page=3"},
            "prev": {"href": "/s?page=2"},
            "last": {"href": "/s?page=3"},
        },
    },
    "_links.last-is-self-first-differs": {
        "data": [],
        "_links": {
            "first": {"href": "/s?page=1"},
            "self": {"href": "/s?page=3"},
            "last": {"href": "/s?page=3"},
        },
    },
    "prev_page_url": {"data": [], "prev_page_url": "https://x/s?page=1", "next_page_url": None},
    "previousPageToken": {"items": [], "previousPageToken": "abc"},
    "links-list-rel-prev": {
        "data": [],
        "links": [{"rel": "prev", "href": "x"}, {"rel": "self", "href": "y"}],
    },
    "links-list-rel-next": {
        "data": [],
        "links": [{"rel": "self", "href": "x"}, {"rel": "next", "href": "y"}],
    },
}
#: The same signs in the HTTP headers of the answer (``Link: <...>; rel="next"``, RFC 8288).
MORE_PAGES_IN_HEADERS = {
    "Link-next": {"Link": '<https://api.walkme.com/segment?page=2>; rel="next"'},
    "Link-several": {"Link": '<https://x/s?page=1>; rel="first", <https://x/s?page=2>; REL=Next'},
    "Link-prev": {"Link": '<https://x/s?page=1>; rel="first", <https://x/s?page=2>; rel="prev"'},
    "X-Total-Count": {"X-Total-Count": "5"},
    "X-Next-Page": {"X-Next-Page": "2"},
    "X-Has-More": {"X-Has-More": "true"},
    "X-Total-Pages": {"X-Total-Pages": "2"},
    "Content-Range": {"Content-Range": "items 0-0/5"},
    "X-Pagination-Total-Count": {"X-Pagination-Total-Count": "5"},
    "X-Pagination-Page-Count": {"X-Pagination-Page-Count": "2"},
}


def _answer_listing(monkeypatch: Any, body: Any, headers: dict[str, str]) -> None:
    """The sandbox answers the next WalkMe listing with ``body`` and ``headers``."""
    from airflow_provider_segments.testing import walkme as fake_walkme
    from airflow_provider_segments.testing.base import Response

    original, used = fake_walkme.WalkMeApp._segment_call, []

    def answer(self, request, system, segment):
        if request.method != "GET" or used:
            return original(self, request, system, segment)
        used.append(request)
        listed = json.dumps(body if body is not None else self.segments(system.lower())).encode()
        return Response(200, listed, {"Content-Type": "application/json", **headers})

    monkeypatch.setattr(fake_walkme.WalkMeApp, "_segment_call", answer)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        *((body, {}) for body in MORE_PAGES_BY_COUNT.values()),
        *((None, h) for h in MORE_PAGES_IN_HEADERS.values()),
    ],
    ids=[*MORE_PAGES_BY_COUNT, *MORE_PAGES_IN_HEADERS],
)
def test_a_listing_counting_more_pages_or_paging_in_its_headers_never_duplicates(
    sandbox, tmp_path, monkeypatch, body, headers
):
    existing = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Other", ["a", "b"])
    _answer_listing(monkeypatch, body, headers)  # "Audience" would be on the next page
    with pytest.raises(SegmentsError) as caught:
        sync(tmp_path, ["x", "y"])
    refused_as_an_api_answer(caught)
    assert "only part of the list" in str(caught.value), str(caught.value)
    assert named(sandbox, "Audience") == [] and writes(sandbox) == []
    assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, existing["guid"])) == {"a", "b"}


COMPLETE_BY_COUNT = {
    "totalPages-1": ({"totalPages": 1, "page": 1}, {}),
    "last-true": ({"last": True, "isLastPage": True, "done": True}, {}),
    "lastPage-1": ({"lastPage": 1, "last_page": "1"}, {}),
    "links.last-is-first": (  # the JSON:API / Laravel paginator's one page (hostile review 23)
        {
            "links": {
                "first": "https://x/s?page=1",
                "last": "https://x/s?page=1",
                "prev": None,
                "next": None,
            },
            "meta": {"current_page": 1, "last_page": 1, "per_page": 100, "total": 1},
        },
        {},
    ),
    "_links.last-is-self": ({"_links": {"self": {"href": "/s?page=1"}, "last": {"href": "/s?page=1"}}}, {}),
    "Content-Range-whole": (None, {"Content-Range": "items 0-0/1"}),
    "Link-without-next": (
        None,
        {"Link": '<https://x/s?page=1>; rel="first", <https://x/s?page=1>; rel="last"'},
    ),
    "X-Total-Count-equal": (None, {"X-Total-Count": "1"}),
}


@pytest.mark.parametrize(("extra", "headers"), COMPLETE_BY_COUNT.values(), ids=COMPLETE_BY_COUNT.keys())
def test_a_listing_of_one_page_is_still_trusted(sandbox, tmp_path, monkeypatch, extra, headers):
    existing = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Audience", ["a", "b"])
    body = None if extra is None else {"segments": sandbox.walkme.segments(TEST_SYSTEM_GUID), **extra}
    _answer_listing(monkeypatch, body, headers)
    result = sync(tmp_path, ["x", "y"])
    assert result["segment_guid"] == existing["guid"]
    assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, existing["guid"])) == {"x", "y"}


COMPLETE = {
    "hasMore-false": lambda seg: {"segments": [seg], "hasMore": False},
    "total-equal": lambda seg: {"data": [seg], "total": 1},
    "empty-signs": lambda seg: {
        "items": [seg],
        "next": None,
        "nextCursor": "",
        "pagination": {"has_more": False, "totalCount": 1, "next": None},
    },
}


@pytest.mark.parametrize("wrap", COMPLETE.values(), ids=COMPLETE.keys())
def test_a_wrapped_listing_that_says_it_is_complete_is_still_trusted(sandbox, tmp_path, wrap):
    existing = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Audience", ["a", "b"])
    sandbox.inject_fault(
        SEGMENTS, 200, method="GET", body=json.dumps(wrap(named(sandbox, "Audience")[0])), count=1
    )
    result = sync(tmp_path, ["x", "y"])
    assert result["segment_guid"] == existing["guid"]
    assert [s["guid"] for s in named(sandbox, "Audience")] == [existing["guid"]]
    assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, existing["guid"])) == {"x", "y"}
    assert [m for m, _ in writes(sandbox)] == ["PUT"]


# -- Bug B: a GUID from an answer that is not a GUID ----------------------------------------------------
def _listed(guid: Any, name: str = "Audience") -> list[dict[str, Any]]:
    when = "2024-05-01T10:00:00.000Z"
    return [{"guid": guid, "name": name, "usersCount": 2, "updatedAt": when, "createdAt": when}]


@pytest.fixture
def victim(sandbox):
    """A segment of another system the same credentials may write to."""
    sandbox.walkme.add_system(OTHER_SYSTEM)
    return sandbox.walkme.create_segment(OTHER_SYSTEM, "Payroll admins", ["boss1", "boss2"])


def bent_guids(victim_guid: str) -> dict[str, Any]:
    return {
        "path-up": f"../../{OTHER_SYSTEM}/segment/{victim_guid}",
        "guid-then-path": f"{victim_guid}/../../../{OTHER_SYSTEM}/segment/{victim_guid}",
        "encoded-path": f"..%2F..%2F{OTHER_SYSTEM}%2Fsegment%2F{victim_guid}",
        "query": f"{victim_guid}?system={OTHER_SYSTEM}",
        "number": 12345,
    }


@pytest.mark.parametrize("kind", ["path-up", "guid-then-path", "encoded-path", "query", "number"])
def test_a_listed_guid_that_is_not_a_guid_never_reaches_a_write_url(sandbox, tmp_path, victim, kind):
    bent = bent_guids(victim["guid"])[kind]
    sandbox.inject_fault(SEGMENTS, 200, method="GET", body=json.dumps(_listed(bent)), count=1)
    with pytest.raises(SegmentsError) as caught:
        sync(tmp_path, ["x", "y"])
    refused_as_an_api_answer(caught)
    message = str(caught.value)
    assert str(bent)[:20] in message and "nothing was written" in message, message
    assert set(sandbox.walkme.members(OTHER_SYSTEM, victim["guid"])) == {"boss1", "boss2"}
    assert writes(sandbox) == []


def test_an_update_refuses_a_listing_holding_a_bent_guid_before_writing(sandbox, victim):
    """The guard reads the listing before the first write (get_segment): one bent GUID in it stops
    the update, although the task names its own segment correctly."""
    own = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Own", ["a", "b"])
    bent = f"../../{OTHER_SYSTEM}/segment/{victim['guid']}"
    listing = [*_listed(bent), named(sandbox, "Own")[0]]
    sandbox.inject_fault(SEGMENTS, 200, method="GET", body=json.dumps(listing), count=1)
    with pytest.raises(SegmentsError, match="nothing was written") as caught:
        WalkMeUpdateSegmentOperator(
            task_id="u",
            segment_guid=own["guid"],
            action="override",
            user_ids=["x", "y"],
            max_removal_fraction=None,
        ).execute({})
    refused_as_an_api_answer(caught)
    assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, own["guid"])) == {"a", "b"}
    assert set(sandbox.walkme.members(OTHER_SYSTEM, victim["guid"])) == {"boss1", "boss2"}
    assert writes(sandbox) == []


def test_a_create_answered_with_a_bent_guid_sends_nothing_to_it_and_is_retried(sandbox, victim, monkeypatch):
    """The create answer's GUID is where the next chunks go: a bent one is never used. The answer
    is not read (hostile review 27: the create landed, so an error about its answer would report it
    as refused): the name is looked up instead, and a create not found there is of unknown outcome,
    the answer's fault (the task's retries apply), not a mistake in the task's arguments."""
    from airflow_provider_segments.hooks.walkme import WalkMeHook

    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)  # add chunks follow the create
    bent = f"../../{OTHER_SYSTEM}/segment/{victim['guid']}"
    answer = {"guid": bent, "name": "Big", "usersCount": 2}
    sandbox.inject_fault(SEGMENTS, 201, method="POST", body=json.dumps(answer), count=1)
    with pytest.raises(SegmentsError, match=r"create of WalkMe segment 'Big'.*unknown outcome") as caught:
        WalkMeCreateSegmentOperator(task_id="c", name="Big", user_ids=["a", "b", "c", "d"]).execute({})
    refused_as_an_api_answer(caught)
    assert set(sandbox.walkme.members(OTHER_SYSTEM, victim["guid"])) == {"boss1", "boss2"}
    assert [m for m, _ in writes(sandbox)] == ["POST"]  # the (answered-for) create, no chunk after it


def test_a_listed_guid_in_upper_case_is_still_used(sandbox, tmp_path):
    existing = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Audience", ["a", "b"])
    listed = {**named(sandbox, "Audience")[0], "guid": existing["guid"].upper()}
    sandbox.inject_fault(SEGMENTS, 200, method="GET", body=json.dumps([listed]), count=1)
    sync(tmp_path, ["x", "y"])
    assert [s["guid"] for s in named(sandbox, "Audience")] == [existing["guid"]]
    assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, existing["guid"])) == {"x", "y"}


def test_a_listed_guid_of_32_bare_hex_digits_is_written_to_in_its_hyphenated_form(sandbox, tmp_path):
    """The validator's form reaches the URL (WalkMe's document puts hyphenated GUIDs there; the
    sandbox, like it, does not find a bare one)."""
    existing = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Audience", ["a", "b"])
    listed = {**named(sandbox, "Audience")[0], "guid": existing["guid"].replace("-", "")}
    sandbox.inject_fault(SEGMENTS, 200, method="GET", body=json.dumps([listed]), count=1)
    sync(tmp_path, ["x", "y"])
    assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, existing["guid"])) == {"x", "y"}
    assert [p.rsplit("/", 1)[-1] for m, p in writes(sandbox)] == [existing["guid"]]


def test_a_listed_segment_without_a_guid_never_sends_to_segment_none(sandbox, tmp_path):
    existing = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Audience", ["a", "b"])
    sandbox.inject_fault(SEGMENTS, 200, method="GET", body=json.dumps(_listed(None)), count=1)
    with pytest.raises(SegmentsError, match=r"without a GUID.*this answer is not used") as caught:
        sync(tmp_path, ["x", "y"])
    refused_as_an_api_answer(caught)
    assert [s["guid"] for s in named(sandbox, "Audience")] == [existing["guid"]]
    assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, existing["guid"])) == {"a", "b"}
    assert writes(sandbox) == []
