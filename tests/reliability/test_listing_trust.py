"""What a WalkMe answer must show before it is used (found by a hostile review): a listing is trusted
only when it is the whole list (a name lookup on part of it creates a duplicate). Each test asserts
what the sandbox holds and which requests it received."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import impatient_sandbox

from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.exceptions import SegmentsError, SegmentsValidationError
from airflow_provider_segments.membership import engine
from airflow_provider_segments.operators.walkme import (
    WalkMeListSegmentsOperator,
    WalkMeSyncSegmentOperator,
)
from airflow_provider_segments.testing import TEST_SYSTEM_GUID

SEGMENTS = f"/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"


@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setattr(engine, "VERIFY_INTERVAL", 0.01)
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
    assert "only part of the list" in message and "nothing was written" in message, message
    assert [s["guid"] for s in named(sandbox, "Audience")] == [existing["guid"]]
    assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, existing["guid"])) == {"a", "b"}
    assert writes(sandbox) == []


def test_the_list_operator_refuses_part_of_a_list_too(sandbox):
    sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Audience", ["a"])
    sandbox.inject_fault(SEGMENTS, 200, method="GET", body=json.dumps({"data": [], "hasMore": True}))
    with pytest.raises(SegmentsError, match="only part of the list") as caught:
        WalkMeListSegmentsOperator(task_id="ls").execute({})
    refused_as_an_api_answer(caught)


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
