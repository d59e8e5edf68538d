"""Behaviour of the Zendesk Help Center sandbox over real HTTP: auth, CRUD, validation, pagination, limits."""

from __future__ import annotations

import base64
import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from airflow_provider_segments.testing import (
    TEST_CLIENT_ID,
    TEST_CLIENT_SECRET,
    TEST_SYSTEM_GUID,
    TEST_ZENDESK_API_TOKEN,
    TEST_ZENDESK_EMAIL,
    TEST_ZENDESK_OAUTH_TOKEN,
    TEST_ZENDESK_PASSWORD,
    SegmentsTestServer,
)
from airflow_provider_segments.testing.base import Request
from airflow_provider_segments.testing.zendesk import FIRST_CUSTOM_SEGMENT_ID, ZendeskApp

REPO_ROOT = Path(__file__).resolve().parents[2]
HC = "/api/v2/help_center"
SEGMENTS_PATH = f"{HC}/user_segments.json"
ISO_UTC_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
SEGMENT_KEYS = {
    "id",
    "name",
    "user_type",
    "group_ids",
    "organization_ids",
    "tags",
    "or_tags",
    "added_user_ids",
    "created_at",
    "updated_at",
    "built_in",
}
TOKEN_AUTH = (f"{TEST_ZENDESK_EMAIL}/token", TEST_ZENDESK_API_TOKEN)
NOT_AUTHENTICATED = {"error": "Couldn't authenticate you"}
NOT_FOUND = {"error": "RecordNotFound", "description": "Not found"}
BUILT_IN_REFUSED = {"error": "Forbidden", "description": "Built-in user segments cannot be modified"}


@pytest.fixture
def sandbox() -> Iterator[SegmentsTestServer]:
    with SegmentsTestServer(port=0) as server:
        yield server


@pytest.fixture
def api() -> Iterator[requests.Session]:
    """A keep-alive session authenticating with the sandbox API token."""
    with requests.Session() as session:
        session.auth = TOKEN_AUTH
        yield session


def url(sandbox: SegmentsTestServer, path: str) -> str:
    return f"{sandbox.url}{HC}/{path}"


def segment_url(sandbox: SegmentsTestServer, segment_id: int, tail: str = ".json") -> str:
    return url(sandbox, f"user_segments/{segment_id}{tail}")


def create(api: requests.Session, sandbox: SegmentsTestServer, **fields: object) -> dict:
    body = {"name": "VIP agents", "user_type": "staff", **fields}
    response = api.post(url(sandbox, "user_segments.json"), json={"user_segment": body}, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()["user_segment"]


def basic_get(user: str, password: str, path: str = SEGMENTS_PATH) -> Request:
    """An in-process GET with HTTP Basic auth, for calling ``ZendeskApp.handle`` directly."""
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    return Request("GET", path, headers={"authorization": f"Basic {credentials}", "host": "sandbox.test"})


def follow(api: requests.Session, first_url: str, key: str = "user_segments", limit: int = 20) -> list[dict]:
    """GET ``first_url`` and every ``links.next`` after it; return the page bodies."""
    pages, next_url = [], first_url
    while next_url:
        assert len(pages) < limit, "pagination did not end"
        response = api.get(next_url, timeout=5)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        next_url = pages[-1]["links"]["next"]
    return pages


# -- authentication ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "headers", "style"),
    [
        (None, {"Authorization": f"Bearer {TEST_ZENDESK_OAUTH_TOKEN}"}, "oauth_token"),
        (TOKEN_AUTH, {}, "api_token"),
        ((TEST_ZENDESK_EMAIL.upper(), TEST_ZENDESK_PASSWORD), {}, "password"),
    ],
    ids=["oauth-bearer", "email-token-api-token", "email-password"],
)
def test_each_auth_style_is_accepted_and_logged(
    sandbox: SegmentsTestServer, auth: tuple[str, str] | None, headers: dict[str, str], style: str
) -> None:
    listed = requests.get(url(sandbox, "user_segments.json"), auth=auth, headers=headers, timeout=5)
    created = requests.post(
        url(sandbox, "user_segments.json"),
        json={"user_segment": {"name": "x", "user_type": "staff"}},
        auth=auth,
        headers=headers,
        timeout=5,
    )

    assert listed.status_code == 200
    assert created.status_code == 201
    assert [e["auth"] for e in sandbox.request_log()] == [style, style]


@pytest.mark.parametrize(
    ("auth", "headers"),
    [
        (None, {}),
        (None, {"Authorization": "Bearer not-the-oauth-token"}),
        (None, {"Authorization": f"Bearer {TEST_ZENDESK_API_TOKEN}"}),
        ((f"{TEST_ZENDESK_EMAIL}/token", "wrong-token"), {}),
        ((f"{TEST_ZENDESK_EMAIL}/token", TEST_ZENDESK_PASSWORD), {}),
        ((TEST_ZENDESK_EMAIL, TEST_ZENDESK_API_TOKEN), {}),
        ((TEST_ZENDESK_EMAIL, "wrong-password"), {}),
        (("someone@else.example.com/token", TEST_ZENDESK_API_TOKEN), {}),
        (("someone@else.example.com", TEST_ZENDESK_PASSWORD), {}),
    ],
    ids=[
        "none",
        "unknown-bearer",
        "api-token-as-bearer",
        "wrong-api-token",
        "password-as-api-token",
        "api-token-without-/token",
        "wrong-password",
        "other-email-token",
        "other-email-password",
    ],
)
def test_wrong_credentials_get_401_and_change_nothing(
    sandbox: SegmentsTestServer, auth: tuple[str, str] | None, headers: dict[str, str]
) -> None:
    for method, target, body in [
        ("GET", url(sandbox, "user_segments.json"), None),
        ("POST", url(sandbox, "user_segments.json"), {"user_segment": {"name": "x", "user_type": "staff"}}),
        ("GET", segment_url(sandbox, 1), None),
        ("DELETE", segment_url(sandbox, 1), None),
    ]:
        response = requests.request(method, target, json=body, auth=auth, headers=headers, timeout=5)
        assert response.status_code == 401, (method, target, response.text)
        assert response.json() == NOT_AUTHENTICATED
    assert [s["id"] for s in sandbox.zendesk.segments()] == [1, 2]


def test_an_auth_style_set_to_none_is_refused() -> None:
    app = ZendeskApp(password=None)

    by_password = app.handle(basic_get(TEST_ZENDESK_EMAIL, TEST_ZENDESK_PASSWORD))
    by_token = app.handle(basic_get(*TOKEN_AUTH))

    assert by_password is not None and by_password.status == 401
    assert by_token is not None and by_token.status == 200


# -- segments ---------------------------------------------------------------------------------------


def test_built_in_segments_exist_from_the_start(sandbox: SegmentsTestServer, api: requests.Session) -> None:
    response = api.get(url(sandbox, "user_segments.json"), timeout=5)

    assert response.status_code == 200
    segments = response.json()["user_segments"]
    assert [(s["id"], s["user_type"], s["built_in"]) for s in segments] == [
        (1, "signed_in_users", True),
        (2, "staff", True),
    ]
    assert all(set(s) == SEGMENT_KEYS for s in segments)


def test_create_show_update_list_and_delete_round_trip(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    created = api.post(
        url(sandbox, "user_segments.json"),
        json={
            "user_segment": {
                "name": "VIP agents",
                "user_type": "staff",
                "group_ids": [12, 13],
                "organization_ids": [42],
                "tags": ["vip"],
                "added_user_ids": [1001, 1002],
                "built_in": True,  # read-only: ignored
                "id": 5,  # read-only: ignored
            }
        },
        timeout=5,
    )
    assert created.status_code == 201
    segment = created.json()["user_segment"]
    assert segment["id"] == FIRST_CUSTOM_SEGMENT_ID
    assert set(segment) == SEGMENT_KEYS
    assert segment | {"created_at": "", "updated_at": ""} == {
        "id": FIRST_CUSTOM_SEGMENT_ID,
        "name": "VIP agents",
        "user_type": "staff",
        "group_ids": [12, 13],
        "organization_ids": [42],
        "tags": ["vip"],
        "or_tags": [],
        "added_user_ids": [1001, 1002],
        "created_at": "",
        "updated_at": "",
        "built_in": False,
    }
    assert ISO_UTC_SECONDS.match(segment["created_at"]) and segment["updated_at"] == segment["created_at"]

    shown = api.get(segment_url(sandbox, segment["id"]), timeout=5)
    assert shown.status_code == 200
    assert shown.json() == {"user_segment": segment}

    updated = api.put(
        segment_url(sandbox, segment["id"]),
        json={"user_segment": {"name": "Gold agents", "user_type": "signed_in_users"}},
        timeout=5,
    )
    assert updated.status_code == 200
    assert updated.json()["user_segment"] == segment | {
        "name": "Gold agents",
        "user_type": "signed_in_users",
        "updated_at": updated.json()["user_segment"]["updated_at"],
    }
    assert sandbox.zendesk.segment(segment["id"]) == updated.json()["user_segment"]

    listing = api.get(url(sandbox, "user_segments.json"), timeout=5).json()["user_segments"]
    assert [s["id"] for s in listing] == [1, 2, segment["id"]]
    second = create(api, sandbox, name="Second")
    assert second["id"] == FIRST_CUSTOM_SEGMENT_ID + 1

    deleted = api.delete(segment_url(sandbox, segment["id"]), timeout=5)
    assert deleted.status_code == 204
    assert deleted.content == b""
    gone = api.get(segment_url(sandbox, segment["id"]), timeout=5)
    assert gone.status_code == 404
    assert gone.json() == NOT_FOUND
    assert [s["id"] for s in sandbox.zendesk.segments()] == [1, 2, second["id"]]


def test_paths_without_the_json_suffix_work_too(sandbox: SegmentsTestServer, api: requests.Session) -> None:
    segment = create(api, sandbox)

    assert api.get(url(sandbox, "user_segments"), timeout=5).status_code == 200
    assert api.get(segment_url(sandbox, segment["id"], ""), timeout=5).json()["user_segment"] == segment


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize("segment_id", [1, 2])
def test_built_in_segments_cannot_be_updated_or_deleted(
    sandbox: SegmentsTestServer, api: requests.Session, method: str, segment_id: int
) -> None:
    before = sandbox.zendesk.segment(segment_id)

    response = api.request(
        method, segment_url(sandbox, segment_id), json={"user_segment": {"name": "Mine now"}}, timeout=5
    )

    assert response.status_code == 403
    assert response.json() == BUILT_IN_REFUSED
    assert sandbox.zendesk.segment(segment_id) == before


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("segment_id", ["360000000999", "abc"], ids=["unknown", "not-a-number"])
def test_unknown_segment_ids_get_404_record_not_found(
    sandbox: SegmentsTestServer, api: requests.Session, method: str, segment_id: str
) -> None:
    create(api, sandbox)

    response = api.request(
        method, url(sandbox, f"user_segments/{segment_id}.json"), json={"user_segment": {}}, timeout=5
    )
    children = api.get(url(sandbox, f"user_segments/{segment_id}/sections.json"), timeout=5)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert children.status_code == 404
    assert len(sandbox.zendesk.segments()) == 3


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "x"}, "user_type", "is required"),
        ({"name": "x", "user_type": "foo"}, "user_type", "value `foo` invalid; must be either `staff` or"),
        ({"name": "x", "user_type": 3}, "user_type", "value `3` invalid"),
        ({"user_type": "staff"}, "name", "is required"),
        ({"name": "", "user_type": "staff"}, "name", "non-empty string"),
        ({"name": "  ", "user_type": "staff"}, "name", "non-empty string"),
        ({"name": 7, "user_type": "staff"}, "name", "non-empty string"),
        ({"name": "x", "user_type": "staff", "group_ids": 12}, "group_ids", "list of integers"),
        ({"name": "x", "user_type": "staff", "group_ids": [1, "2"]}, "group_ids", "item 1"),
        ({"name": "x", "user_type": "staff", "organization_ids": [True]}, "organization_ids", "item 0"),
        ({"name": "x", "user_type": "staff", "added_user_ids": [1.5]}, "added_user_ids", "item 0"),
        ({"name": "x", "user_type": "staff", "added_user_ids": None}, "added_user_ids", "list of integers"),
        ({"name": "x", "user_type": "staff", "tags": "vip"}, "tags", "list of non-empty strings"),
        ({"name": "x", "user_type": "staff", "tags": ["vip", ""]}, "tags", "item 1"),
        ({"name": "x", "user_type": "staff", "or_tags": [5]}, "or_tags", "item 0"),
    ],
    ids=[
        "no-user-type",
        "bad-user-type",
        "number-user-type",
        "no-name",
        "empty-name",
        "blank-name",
        "number-name",
        "group-ids-not-list",
        "group-id-string",
        "organization-id-bool",
        "added-user-id-float",
        "added-user-ids-null",
        "tags-string",
        "empty-tag",
        "or-tag-number",
    ],
)
def test_create_rejects_invalid_fields_with_400_naming_the_field(
    sandbox: SegmentsTestServer, api: requests.Session, fields: dict, field: str, message: str
) -> None:
    response = api.post(url(sandbox, "user_segments.json"), json={"user_segment": fields}, timeout=5)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert [s["id"] for s in sandbox.zendesk.segments()] == [1, 2]


def test_every_invalid_field_is_reported_at_once(sandbox: SegmentsTestServer, api: requests.Session) -> None:
    response = api.post(
        url(sandbox, "user_segments.json"),
        json={"user_segment": {"user_type": "foo", "tags": [1]}},
        timeout=5,
    )

    assert response.status_code == 400
    assert response.json() == {
        "errors": {
            "name": ["is required"],
            "user_type": ["value `foo` invalid; must be either `staff` or `signed_in_users`"],
            "tags": ["item 0 must be a non-empty string, got 1"],
        }
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"name": "x", "user_type": "staff"}', "user_segment"),
        ('{"user_segment": "x"}', "user_segment"),
        ("[1]", "user_segment"),
        ('{"user_segment": {', "base"),
        ("", "base"),
    ],
    ids=["unwrapped", "not-an-object", "array", "truncated", "empty"],
)
def test_bodies_without_a_user_segment_object_get_400(
    sandbox: SegmentsTestServer, api: requests.Session, body: str, field: str
) -> None:
    headers = {"Content-Type": "application/json"}
    created = api.post(url(sandbox, "user_segments.json"), data=body, headers=headers, timeout=5)
    segment = create(api, sandbox)
    updated = api.put(segment_url(sandbox, segment["id"]), data=body, headers=headers, timeout=5)

    for response in (created, updated):
        assert response.status_code == 400
        assert list(response.json()["errors"]) == [field]
    assert sandbox.zendesk.segment(segment["id"]) == segment


def test_writes_need_a_json_content_type(sandbox: SegmentsTestServer, api: requests.Session) -> None:
    segment = create(api, sandbox)
    body = '{"user_segment": {"name": "x", "user_type": "staff"}}'

    created = api.post(
        url(sandbox, "user_segments.json"), data=body, headers={"Content-Type": "text/plain"}, timeout=5
    )
    updated = api.put(segment_url(sandbox, segment["id"]), data={"name": "x"}, timeout=5)

    assert created.status_code == 415
    assert updated.status_code == 415
    assert created.json()["error"] == "UnsupportedMediaType"
    assert len(sandbox.zendesk.segments()) == 3


def test_update_rejects_invalid_values_and_keeps_the_segment(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    segment = create(api, sandbox, tags=["vip"])

    response = api.put(
        segment_url(sandbox, segment["id"]),
        json={"user_segment": {"name": "", "user_type": "admins", "tags": ["gold"]}},
        timeout=5,
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"name", "user_type"}
    assert sandbox.zendesk.segment(segment["id"]) == segment


def test_partial_update_changes_only_the_given_fields_and_an_empty_list_clears(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    segment = create(
        api,
        sandbox,
        group_ids=[12],
        organization_ids=[42],
        tags=["vip"],
        or_tags=["gold", "silver"],
        added_user_ids=[7, 8],
    )

    response = api.put(
        segment_url(sandbox, segment["id"]),
        json={"user_segment": {"added_user_ids": [9], "or_tags": []}},
        timeout=5,
    )

    assert response.status_code == 200
    expected = segment | {"added_user_ids": [9], "or_tags": [], "updated_at": segment["updated_at"]}
    assert response.json()["user_segment"] | {"updated_at": segment["updated_at"]} == expected
    assert sandbox.zendesk.segment(segment["id"])["name"] == "VIP agents"
    assert sandbox.request_log()[-1]["action"] == "update"
    assert sandbox.request_log()[-1]["ids"] == 1


# -- lists and filters ------------------------------------------------------------------------------


def test_built_in_filter_selects_built_in_or_custom_segments(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    custom = create(api, sandbox)

    def ids(path: str, built_in: str) -> list[int]:
        response = api.get(url(sandbox, path), params={"built_in": built_in}, timeout=5)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["user_segments"]]

    for path in ("user_segments.json", "user_segments/applicable.json"):
        assert ids(path, "true") == [1, 2]
        assert ids(path, "false") == [custom["id"]]
        assert ids(path, "TRUE") == [1, 2]
    bad = api.get(url(sandbox, "user_segments.json"), params={"built_in": "yes"}, timeout=5)
    assert bad.status_code == 400
    assert list(bad.json()["errors"]) == ["built_in"]


def test_applicable_lists_every_segment(sandbox: SegmentsTestServer, api: requests.Session) -> None:
    staff = create(api, sandbox, user_type="staff")
    signed_in = create(api, sandbox, user_type="signed_in_users")

    response = api.get(url(sandbox, "user_segments/applicable.json"), timeout=5)

    assert response.status_code == 200
    assert [s["id"] for s in response.json()["user_segments"]] == [1, 2, staff["id"], signed_in["id"]]


def test_user_segments_of_a_user_are_signed_in_users_plus_segments_that_added_the_user(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    with_user = create(api, sandbox, name="A", added_user_ids=[500, 501])
    create(api, sandbox, name="B", added_user_ids=[502])
    also_with_user = create(api, sandbox, name="C", user_type="signed_in_users", added_user_ids=[501])

    def ids(user_id: object, **params: str) -> list[int]:
        response = api.get(url(sandbox, f"users/{user_id}/user_segments.json"), params=params, timeout=5)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["user_segments"]]

    assert ids(501) == [1, with_user["id"], also_with_user["id"]]
    assert ids(500) == [1, with_user["id"]]
    assert ids(999) == [1]
    assert ids(501, built_in="false") == [with_user["id"], also_with_user["id"]]
    assert api.get(url(sandbox, "users/me-or-you/user_segments.json"), timeout=5).status_code == 404


# -- cursor pagination ------------------------------------------------------------------------------


def test_cursor_pagination_walks_250_segments_in_three_pages_keeping_the_filter(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    seeded = [sandbox.zendesk.create_segment(name=f"Segment {i}")["id"] for i in range(250)]

    pages = follow(api, url(sandbox, "user_segments.json") + "?built_in=false&page[size]=100")

    assert [len(page["user_segments"]) for page in pages] == [100, 100, 50]
    listed = [s["id"] for page in pages for s in page["user_segments"]]
    assert listed == seeded  # in order, no duplicates, no built-ins
    assert [page["meta"]["has_more"] for page in pages] == [True, True, False]
    assert pages[-1]["links"]["next"] is None
    for page in pages[:-1]:
        next_url = urlsplit(page["links"]["next"])
        assert f"{next_url.scheme}://{next_url.netloc}" == sandbox.url
        assert next_url.path == f"{HC}/user_segments.json"
        query = parse_qs(next_url.query)
        assert query["built_in"] == ["false"]
        assert query["page[size]"] == ["100"]
        assert query["page[after]"] == [page["meta"]["after_cursor"]]
    assert [e["pagination"] for e in sandbox.request_log()] == ["cursor"] * 3


def test_cursor_pagination_defaults_to_100_and_prev_links_go_back(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    for i in range(150):
        sandbox.zendesk.create_segment(name=f"Segment {i}")

    first = api.get(url(sandbox, "user_segments.json"), timeout=5).json()
    second = api.get(first["links"]["next"], timeout=5).json()
    back = api.get(second["links"]["prev"], timeout=5).json()

    assert len(first["user_segments"]) == 100
    assert first["links"]["prev"] is None
    assert len(second["user_segments"]) == 52
    assert back["user_segments"] == first["user_segments"]
    assert back["meta"]["has_more"] is False
    assert back["links"]["prev"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"page[size]": "101"},
        {"page[size]": "0"},
        {"page[size]": "ten"},
        {"page[after]": "not-a-cursor"},
        {"per_page": "101"},
        {"page": "0"},
    ],
    ids=["size-over-100", "size-zero", "size-not-a-number", "bad-cursor", "per-page-over-100", "page-zero"],
)
def test_bad_pagination_parameters_get_400(
    sandbox: SegmentsTestServer, api: requests.Session, params: dict[str, str]
) -> None:
    response = api.get(url(sandbox, "user_segments.json"), params=params, timeout=5)

    assert response.status_code == 400
    assert response.json()["error"] == "InvalidPaginationParameter"
    [name] = params
    assert name in response.json()["description"]


def test_an_empty_list_has_no_cursors_or_links(sandbox: SegmentsTestServer, api: requests.Session) -> None:
    response = api.get(url(sandbox, "user_segments.json"), params={"built_in": "false"}, timeout=5)

    assert response.json() == {
        "user_segments": [],
        "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
        "links": {"next": None, "prev": None},
    }


# -- offset pagination and the endless fault --------------------------------------------------------


def test_offset_pagination_when_switched_over_http(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    seeded = [sandbox.zendesk.create_segment()["id"] for _ in range(250)]
    switched = requests.post(
        sandbox.url + "/_sandbox/zendesk/pagination", json={"style": "offset"}, timeout=5
    )
    assert switched.json() == {"style": "offset"}
    assert sandbox.zendesk.pagination == "offset"

    pages, next_url = [], url(sandbox, "user_segments.json?built_in=false")
    while next_url:
        body = api.get(next_url, timeout=5).json()
        assert "meta" not in body and "links" not in body
        pages.append(body)
        next_url = body["next_page"]

    assert [len(page["user_segments"]) for page in pages] == [100, 100, 50]
    assert [s["id"] for page in pages for s in page["user_segments"]] == seeded
    assert {page["count"] for page in pages} == {250}
    assert pages[0]["previous_page"] is None
    assert parse_qs(urlsplit(pages[2]["previous_page"]).query)["page"] == ["2"]
    second = urlsplit(pages[0]["next_page"])
    assert f"{second.scheme}://{second.netloc}" == sandbox.url
    assert parse_qs(second.query) == {"built_in": ["false"], "page": ["2"], "per_page": ["100"]}


def test_page_or_per_page_in_the_request_gets_offset_pagination(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    for _ in range(5):
        sandbox.zendesk.create_segment()

    page_two = api.get(
        url(sandbox, "user_segments.json"), params={"per_page": 3, "page": 2}, timeout=5
    ).json()

    assert [s["id"] for s in page_two["user_segments"]] == [
        FIRST_CUSTOM_SEGMENT_ID + 1,
        FIRST_CUSTOM_SEGMENT_ID + 2,
        FIRST_CUSTOM_SEGMENT_ID + 3,
    ]
    assert page_two["count"] == 7
    assert parse_qs(urlsplit(page_two["next_page"]).query) == {"page": ["3"], "per_page": ["3"]}
    assert parse_qs(urlsplit(page_two["previous_page"]).query) == {"page": ["1"], "per_page": ["3"]}
    assert sandbox.zendesk.pagination == "cursor"
    assert sandbox.request_log()[-1]["pagination"] == "offset"


def test_endless_pagination_fault_always_offers_a_next_page(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    sandbox.zendesk.create_segment()
    sandbox.zendesk.pagination = "endless"

    next_url, bodies = url(sandbox, "user_segments.json?page[size]=2"), []
    for _ in range(5):
        bodies.append(api.get(next_url, timeout=5).json())
        next_url = bodies[-1]["links"]["next"]
        assert next_url is not None
    offset = api.get(url(sandbox, "user_segments.json"), params={"page": 7}, timeout=5).json()

    assert all(body["meta"]["has_more"] for body in bodies)
    assert all(body["user_segments"] == bodies[0]["user_segments"] for body in bodies)
    assert [s["id"] for s in bodies[0]["user_segments"]] == [1, 2]
    assert parse_qs(urlsplit(offset["next_page"]).query)["page"] == ["8"]


def test_pagination_style_is_validated_and_reset(sandbox: SegmentsTestServer) -> None:
    with pytest.raises(ValueError, match="pagination"):
        sandbox.zendesk.pagination = "pages"
    refused = requests.post(sandbox.url + "/_sandbox/zendesk/pagination", json={"style": "pages"}, timeout=5)
    assert refused.status_code == 400

    sandbox.zendesk.pagination = "endless"
    requests.post(sandbox.url + "/_sandbox/reset", timeout=5)

    assert requests.get(sandbox.url + "/_sandbox/zendesk/pagination", timeout=5).json() == {"style": "cursor"}


# -- sections and topics ----------------------------------------------------------------------------


def test_sections_and_topics_of_a_segment_are_listed_with_urls_on_the_sandbox_host(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    segment = create(api, sandbox)
    other = create(api, sandbox, name="Other")
    section = sandbox.zendesk.add_section(segment["id"], "A section")
    sandbox.zendesk.add_section(other["id"], "Not this one")
    over_http = requests.post(
        sandbox.url + "/_sandbox/zendesk/sections",
        json={"user_segment_id": segment["id"], "name": "Une section", "locale": "fr"},
        timeout=5,
    )
    topic = sandbox.zendesk.add_topic(segment["id"], "A topic")
    requests.post(
        sandbox.url + "/_sandbox/zendesk/topics", json={"user_segment_id": 1, "name": "Elsewhere"}, timeout=5
    )

    sections = api.get(segment_url(sandbox, segment["id"], "/sections.json"), timeout=5)
    topics = api.get(segment_url(sandbox, segment["id"], "/topics.json"), timeout=5)

    assert over_http.status_code == 201
    assert sections.status_code == 200
    second = over_http.json()["id"]
    assert sections.json()["sections"] == [
        {
            "id": section["id"],
            "name": "A section",
            "locale": "en",
            "url": f"{sandbox.url}{HC}/en/sections/{section['id']}-A-section.json",
            "html_url": f"{sandbox.url}/hc/en/sections/{section['id']}-A-section",
        },
        {
            "id": second,
            "name": "Une section",
            "locale": "fr",
            "url": f"{sandbox.url}{HC}/fr/sections/{second}-Une-section.json",
            "html_url": f"{sandbox.url}/hc/fr/sections/{second}-Une-section",
        },
    ]
    assert sections.json()["meta"]["has_more"] is False
    assert topics.json()["topics"] == [
        {
            "id": topic["id"],
            "name": "A topic",
            "url": f"{sandbox.url}/api/v2/community/topics/{topic['id']}.json",
            "html_url": f"{sandbox.url}/hc/en/community/topics/{topic['id']}-A-topic",
        }
    ]
    empty = api.get(segment_url(sandbox, other["id"], "/topics.json"), timeout=5)
    assert empty.json()["topics"] == []


def test_sections_are_paginated_like_other_lists(sandbox: SegmentsTestServer, api: requests.Session) -> None:
    added = [sandbox.zendesk.add_section(2, f"Section {i}")["id"] for i in range(5)]

    pages = follow(api, segment_url(sandbox, 2, "/sections.json?page[size]=2"))

    assert [[s["id"] for s in page["sections"]] for page in pages] == [added[:2], added[2:4], added[4:]]


def test_sections_and_topics_need_a_known_segment(sandbox: SegmentsTestServer) -> None:
    with pytest.raises(KeyError):
        sandbox.zendesk.add_section(404, "Nowhere")
    response = requests.post(
        sandbox.url + "/_sandbox/zendesk/topics", json={"user_segment_id": 404, "name": "x"}, timeout=5
    )

    assert response.status_code == 404


# -- rate limit, faults, log ------------------------------------------------------------------------


def test_rate_limit_headers_count_down_on_every_answer(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    answers = [
        api.get(url(sandbox, "user_segments.json"), timeout=5),
        api.get(segment_url(sandbox, 999), timeout=5),  # 404
        requests.get(url(sandbox, "user_segments.json"), timeout=5),  # 401
        api.patch(url(sandbox, "user_segments.json"), timeout=5),  # 405
    ]

    assert [a.status_code for a in answers] == [200, 404, 401, 405]
    assert {a.headers["X-Rate-Limit"] for a in answers} == {"700"}
    assert [int(a.headers["X-Rate-Limit-Remaining"]) for a in answers] == [699, 698, 697, 696]


def test_a_low_rate_limit_runs_down_to_zero_and_reset_refills_it(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    sandbox.zendesk.rate_limit = 2

    remaining = [
        api.get(url(sandbox, "user_segments.json"), timeout=5).headers["X-Rate-Limit-Remaining"]
        for _ in range(4)
    ]
    sandbox.reset()
    after_reset = api.get(url(sandbox, "user_segments.json"), timeout=5)

    assert remaining == ["1", "0", "0", "0"]
    assert after_reset.status_code == 200
    assert after_reset.headers["X-Rate-Limit-Remaining"] == "1"


def test_rate_limit_window_refills_after_a_minute() -> None:
    now = [1000.0]
    app = ZendeskApp(rate_limit=5, clock=lambda: now[0])

    def remaining() -> str:
        response = app.handle(basic_get(*TOKEN_AUTH))
        assert response is not None
        return response.headers["X-Rate-Limit-Remaining"]

    first = [remaining(), remaining()]
    now[0] += 59.0
    same_window = remaining()
    now[0] += 1.0
    next_window = remaining()

    assert first == ["4", "3"]
    assert same_window == "2"
    assert next_window == "4"


def test_injected_429_with_retry_after_hits_a_zendesk_path(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    sandbox.inject_fault(f"{HC}/user_segments", 429, retry_after="7")

    throttled = api.post(
        url(sandbox, "user_segments.json"),
        json={"user_segment": {"name": "x", "user_type": "staff"}},
        timeout=5,
    )
    retried = api.post(
        url(sandbox, "user_segments.json"),
        json={"user_segment": {"name": "x", "user_type": "staff"}},
        timeout=5,
    )

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"
    assert retried.status_code == 201
    assert [s["id"] for s in sandbox.zendesk.segments()] == [1, 2, FIRST_CUSTOM_SEGMENT_ID]
    assert [e.get("fault") for e in sandbox.request_log()] == ["status", None]


def test_request_log_records_auth_action_and_added_user_count(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    segment = create(api, sandbox, added_user_ids=[1, 2, 3])
    api.delete(segment_url(sandbox, segment["id"]), timeout=5)
    requests.get(url(sandbox, "user_segments.json"), timeout=5)

    log = sandbox.request_log()

    assert [(e["method"], e["status"], e.get("auth"), e.get("action"), e.get("ids")) for e in log] == [
        ("POST", 201, "api_token", "create", 3),
        ("DELETE", 204, "api_token", "delete", None),
        ("GET", 401, None, None, None),
    ]
    assert log[1]["path"] == f"{HC}/user_segments/{segment['id']}.json"


def test_reset_restores_the_built_in_segments_and_id_counter(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    create(api, sandbox)
    sandbox.zendesk.add_section(1, "Kept?")

    assert requests.post(sandbox.url + "/_sandbox/reset", timeout=5).status_code == 204

    assert [s["id"] for s in sandbox.zendesk.segments()] == [1, 2]
    assert api.get(segment_url(sandbox, 1, "/sections.json"), timeout=5).json()["sections"] == []
    assert create(api, sandbox)["id"] == FIRST_CUSTOM_SEGMENT_ID


# -- in-process API ---------------------------------------------------------------------------------


def test_create_segment_seeds_without_validation_and_rejects_unknown_fields() -> None:
    app = ZendeskApp()

    seeded = app.create_segment(name="", user_type="nobody", tags=("a",), added_user_ids=[5])
    pinned = app.create_segment(id=900_000_000_000, built_in=True)

    assert seeded["id"] == FIRST_CUSTOM_SEGMENT_ID
    assert (seeded["name"], seeded["user_type"], seeded["tags"], seeded["added_user_ids"]) == (
        "",
        "nobody",
        ["a"],
        [5],
    )
    assert app.segment(pinned["id"])["built_in"] is True
    assert app.create_segment()["id"] == 900_000_000_001
    assert app.segment(12345) is None
    with pytest.raises(TypeError, match="colour"):
        app.create_segment(colour="red")
    with pytest.raises(ValueError, match="already exists"):
        app.create_segment(id=1)


# -- beside WalkMe ----------------------------------------------------------------------------------


def test_walkme_still_works_beside_zendesk_on_the_same_port(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    token = requests.post(
        sandbox.url + "/accounts/connect/token",
        data={"grant_type": "client_credentials"},
        auth=(TEST_CLIENT_ID, TEST_CLIENT_SECRET),
        timeout=5,
    ).json()["access_token"]
    walkme_url = f"{sandbox.url}/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"

    walkme = requests.post(
        walkme_url,
        json={"name": "Trial users", "userIds": ["a"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    zendesk = create(api, sandbox)
    basic_on_walkme = requests.get(walkme_url, auth=TOKEN_AUTH, timeout=5)

    assert walkme.status_code == 201
    assert "X-Rate-Limit" not in walkme.headers
    assert [s["name"] for s in sandbox.walkme.segments(TEST_SYSTEM_GUID)] == ["Trial users"]
    assert sandbox.zendesk.segment(zendesk["id"]) == zendesk
    assert basic_on_walkme.status_code == 401


def test_cli_start_up_line_names_the_zendesk_email_but_no_secret() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_segments.testing", "--port", "0"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 15)
        assert ready, "the sandbox printed nothing within 15 s"
        line = process.stdout.readline()
        base = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        assert TEST_ZENDESK_EMAIL in line and "TEST_ZENDESK_API_TOKEN" in line
        for secret in (TEST_ZENDESK_API_TOKEN, TEST_ZENDESK_PASSWORD, TEST_ZENDESK_OAUTH_TOKEN):
            assert secret not in line

        response = requests.get(base + SEGMENTS_PATH, auth=TOKEN_AUTH, timeout=5)
        assert response.status_code == 200

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


@pytest.mark.parametrize("field", ["group_ids", "organization_ids", "added_user_ids"])
@pytest.mark.parametrize("bad", [-5, 0, 2**63, 2**70])
def test_ids_zendesk_cannot_hold_get_400(
    sandbox: SegmentsTestServer, api: requests.Session, field, bad
) -> None:
    """Zendesk's ids are positive 64-bit integers: the test server refuses others like the API, so a
    client that sends one is caught by the tests (review 8)."""
    body = {"user_segment": {"name": "X", "user_type": "staff", field: [bad]}}
    response = api.post(url(sandbox, "user_segments.json"), json=body, timeout=5)
    assert response.status_code == 400
    assert "positive 64-bit integer" in response.json()["errors"][field][0]
    assert [s["id"] for s in sandbox.zendesk.segments()] == [1, 2]
