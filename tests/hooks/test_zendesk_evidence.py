"""Zendesk: what the hook takes from Zendesk's answers is checked before it is used (review 8).

A listed id goes into a write's URL only as a positive 64-bit integer; a list that makes no progress
stops; a guard input Zendesk does not list counts as unknown (never as "none"); a lost create adopts
only a segment that can be this task's; a delete is confirmed by Zendesk no longer showing it; the
hook's own flags and ids are checked like the operators'.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
import requests
from support import ZENDESK_TEST_URL, ZendeskSegmentStore

from airflow_provider_segments.exceptions import SegmentsError, SegmentsValidationError
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook

BASE = f"{ZENDESK_TEST_URL}/api/v2/help_center"
LIST_URL = f"{BASE}/user_segments.json"
API = "/api/v2/help_center/"


def segment(id_: object, name: str = "VIP", **fields: object) -> dict:
    return {"id": id_, "name": name, "user_type": "staff", "built_in": False, **fields}


def one_page(*items: object) -> dict:
    return {"user_segments": list(items), "meta": {"has_more": False}}


@pytest.fixture
def hook(zendesk_conn) -> ZendeskHelpCenterHook:
    hook = ZendeskHelpCenterHook()
    hook.client.sleep = lambda seconds: None
    return hook


def sent_writes(requests_mock) -> list[str]:
    return [f"{r.method} {r.path}" for r in requests_mock.request_history if r.method != "GET"]


# -- listed ids --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "listed_id", ["7/../../../users/7", "7.json?x=1#", "7", True, -7, 0, 2**63, 7.0, None]
)
def test_a_listed_id_that_is_not_a_positive_64_bit_integer_never_reaches_a_write(
    hook, requests_mock, listed_id
):
    listed = segment(listed_id, added_user_ids=[])
    requests_mock.get(LIST_URL, json=one_page(listed))
    requests_mock.put(re.compile(re.escape(BASE)), json={"user_segment": listed})
    requests_mock.get(re.compile(re.escape(BASE) + "/user_segments/.+"), json={"user_segment": listed})
    with pytest.raises(SegmentsError) as caught:
        hook.create_user_segment("VIP", "staff")
    assert sent_writes(requests_mock) == []
    assert "id" in str(caught.value)


@pytest.mark.parametrize("item", ["VIP", 7, None, ["VIP"]])
def test_a_listed_item_that_is_not_an_object_is_a_clear_error(hook, requests_mock, item):
    requests_mock.get(LIST_URL, json=one_page(item))
    with pytest.raises(SegmentsError, match=r"user_segments\.json"):
        hook.create_user_segment("VIP", "staff")
    assert sent_writes(requests_mock) == []


def test_pages_that_claim_more_but_hold_nothing_stop_soon(hook, requests_mock):
    calls = []

    def empty(request, context):
        calls.append(request.url)
        return {
            "user_segments": [],
            "meta": {"has_more": True},
            "links": {"next": f"{LIST_URL}?page[after]=c{len(calls)}"},
        }

    requests_mock.get(re.compile(re.escape(LIST_URL)), json=empty)
    with pytest.raises(SegmentsError, match="no items"):
        hook.list_user_segments()
    assert len(calls) <= 5


def test_an_empty_page_between_full_ones_is_followed(hook, requests_mock):
    requests_mock.get(
        LIST_URL,
        json={
            "user_segments": [],
            "meta": {"has_more": True},
            "links": {"next": f"{LIST_URL}?page[after]=a"},
        },
    )
    requests_mock.get(f"{LIST_URL}?page[after]=a", json=one_page(segment(5)))
    assert [s["id"] for s in hook.list_user_segments()] == [5]


# -- ids and flags given to the hook -----------------------------------------------------------------
@pytest.mark.parametrize("field", ["group_ids", "organization_ids", "added_user_ids"])
@pytest.mark.parametrize("too_big", [2**63, 10**30, str(10**25)])
def test_ids_beyond_64_bits_are_refused_before_any_request(hook, requests_mock, field, too_big):
    with pytest.raises(SegmentsValidationError, match=field):
        hook.create_user_segment("VIP", "staff", **{field: [too_big]})
    assert requests_mock.request_history == []


@pytest.mark.parametrize("call", ["update", "delete", "get", "sections"])
def test_a_segment_id_beyond_64_bits_is_refused_before_any_request(hook, requests_mock, call):
    too_big = 2**63
    with pytest.raises(SegmentsValidationError, match=str(too_big)):
        if call == "update":
            hook.update_user_segment(too_big, name="x")
        elif call == "delete":
            hook.delete_user_segment(too_big)
        elif call == "get":
            hook.get_user_segment(too_big)
        else:
            hook.list_sections(too_big)
    assert requests_mock.request_history == []


def test_the_largest_64_bit_id_is_accepted(hook, requests_mock):
    largest = 2**63 - 1
    requests_mock.get(f"{BASE}/user_segments/{largest}.json", json={"user_segment": segment(largest)})
    assert hook.get_user_segment(largest)["id"] == largest


@pytest.mark.parametrize("flag", ["built_in", "applicable"])
@pytest.mark.parametrize("value", ["false", "true", 0, 1, "no", []])
def test_the_hooks_list_flags_take_only_booleans(hook, requests_mock, flag, value):
    with pytest.raises(SegmentsValidationError, match=flag):
        hook.list_user_segments(**{flag: value})
    assert requests_mock.request_history == []


# -- the added-users guard, when Zendesk does not list them --------------------------------------------
def test_a_create_over_a_segment_the_list_shows_without_added_users_reads_its_show(hook, requests_mock):
    held = segment(7, added_user_ids=list(range(1, 11)))
    store = ZendeskSegmentStore(requests_mock, BASE, held)
    requests_mock.get(LIST_URL, json=one_page({k: v for k, v in held.items() if k != "added_user_ids"}))
    with pytest.raises(SegmentsValidationError, match="added_user_ids"):
        hook.create_user_segment("VIP", "staff", tags=["vip"])
    assert sent_writes(requests_mock) == []
    assert store.segments[7]["added_user_ids"] == list(range(1, 11))


@pytest.mark.parametrize("call", ["create", "update"])
def test_added_users_zendesk_does_not_list_are_unknown_not_none(hook, requests_mock, call):
    held = segment(7)  # neither the list nor the show says who was added
    ZendeskSegmentStore(requests_mock, BASE, held)
    requests_mock.get(LIST_URL, json=one_page(held))
    with pytest.raises(SegmentsValidationError, match="does not list"):
        if call == "create":
            hook.create_user_segment("VIP", "staff", tags=["vip"])
        else:
            hook.update_user_segment(7, added_user_ids=[])
    assert sent_writes(requests_mock) == []


def test_added_users_zendesk_does_not_list_can_be_replaced_when_the_guard_is_off(hook, requests_mock):
    held = segment(7)
    store = ZendeskSegmentStore(requests_mock, BASE, held)
    hook.update_user_segment(7, added_user_ids=[3], max_removal_fraction=1.0)
    assert store.segments[7]["added_user_ids"] == [3]


# -- a create whose answer was lost ----------------------------------------------------------------------
@pytest.mark.parametrize("if_exists", ["error", "update"])
def test_a_lost_create_never_adopts_a_segment_older_than_the_run(hook, requests_mock, if_exists):
    foreign = segment(
        9,
        user_type="signed_in_users",
        tags=["partner"],
        group_ids=[],
        organization_ids=[],
        or_tags=[],
        added_user_ids=[],
        created_at="2017-01-01T00:00:00Z",
    )
    store = ZendeskSegmentStore(requests_mock, BASE, foreign)
    requests_mock.get(LIST_URL, [{"json": one_page()}, {"json": one_page(foreign)}])
    requests_mock.post(LIST_URL, exc=requests.exceptions.ConnectionError("reset by peer"))
    with pytest.raises(SegmentsError, match="before this run"):
        hook.create_user_segment(
            "VIP", "staff", tags=["vip"], if_exists=if_exists, created_after=datetime.now(timezone.utc)
        )
    assert [r.method for r in requests_mock.request_history].count("PUT") == 0
    assert store.segments[9]["tags"] == ["partner"]


# -- delete ----------------------------------------------------------------------------------------------
def test_a_delete_answered_but_not_applied_fails(hook, requests_mock):
    ZendeskSegmentStore(requests_mock, BASE, segment(7))
    requests_mock.delete(f"{BASE}/user_segments/7.json", status_code=204)
    with pytest.raises(SegmentsError, match="still"):
        hook.delete_user_segment(7)


def test_a_delete_that_applied_is_confirmed_by_a_404(sandbox):
    created = sandbox.zendesk.create_segment(name="Gone soon", user_type="staff")
    assert ZendeskHelpCenterHook().delete_user_segment(created["id"]) == created["id"]
    paths = [f"{r['method']} {r['path']}" for r in sandbox.request_log() if r["path"].startswith(API)]
    assert paths[-3:] == [
        f"DELETE {API}user_segments/{created['id']}.json",
        f"GET {API}user_segments/{created['id']}.json",
        f"GET {API}user_segments.json",  # the 404 counts once the listing answers without it
    ]


def test_a_lost_create_is_adopted_when_zendesks_clock_is_a_few_seconds_behind(sandbox, monkeypatch):
    """The run started 2 s ago by the scheduler's clock, Zendesk's clock is 5 s behind; the name was
    free and the lost create landed holding what was sent: it is this task's (review 9)."""
    from datetime import timedelta

    from airflow_provider_segments.testing import zendesk as zendesk_app

    def behind() -> str:
        return (datetime.now(timezone.utc) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")

    monkeypatch.setattr(zendesk_app, "now_iso", behind)
    sandbox.inject_fault(f"{API}user_segments", lose_response=True, method="POST")
    hook = ZendeskHelpCenterHook()
    hook.client.sleep = lambda seconds: None
    run_start = datetime.now(timezone.utc) - timedelta(seconds=2)
    assert hook.create_user_segment("VIP", "staff", tags=["vip"], created_after=run_start)["name"] == "VIP"
    assert [s["name"] for s in sandbox.zendesk.segments()].count("VIP") == 1


def test_a_delete_whose_show_lags_one_read_is_confirmed_by_the_next(hook, requests_mock):
    """A listing may lag a moment behind a write (the count read-back allows for it): the delete's
    read-back reads again before failing (review 9)."""
    url = f"{BASE}/user_segments/7.json"
    shown = {"json": {"user_segment": segment(7)}}
    gone = {"status_code": 404, "json": {"error": "RecordNotFound"}}
    requests_mock.get(url, [shown, shown, gone])  # read before the delete, one stale read, then gone
    requests_mock.get(f"{BASE}/user_segments.json", json={"user_segments": [], "meta": {"has_more": False}})
    requests_mock.delete(url, status_code=204)
    assert hook.delete_user_segment(7) == 7
