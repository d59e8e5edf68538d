"""Behaviour of the WalkMe sandbox over real HTTP: auth, segment calls, limits, faults, log, CLI."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from airflow_provider_segments.testing import (
    TEST_CLIENT_ID,
    TEST_CLIENT_SECRET,
    TEST_SYSTEM_GUID,
    SegmentsTestServer,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN_PATH = "/accounts/connect/token"
SEGMENTS_PATH = f"/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


@pytest.fixture
def sandbox() -> Iterator[SegmentsTestServer]:
    with SegmentsTestServer(port=0) as server:
        yield server


def get_token(sandbox: SegmentsTestServer) -> str:
    response = requests.post(
        sandbox.url + TOKEN_PATH,
        data={"grant_type": "client_credentials"},
        auth=(TEST_CLIENT_ID, TEST_CLIENT_SECRET),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture
def api(sandbox: SegmentsTestServer) -> Iterator[requests.Session]:
    """A keep-alive session already holding a valid bearer token."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {get_token(sandbox)}"
        yield session


def segments_url(sandbox: SegmentsTestServer, segment_guid: str | None = None) -> str:
    url = sandbox.url + SEGMENTS_PATH
    return f"{url}/{segment_guid}" if segment_guid else url


def create(api: requests.Session, sandbox: SegmentsTestServer, name: str = "Heap users", user_ids=()) -> dict:
    response = api.post(segments_url(sandbox), json={"name": name, "userIds": list(user_ids)}, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()


# -- token endpoint ---------------------------------------------------------------------------------


def test_token_endpoint_issues_a_bearer_token_that_opens_the_segment_calls(
    sandbox: SegmentsTestServer,
) -> None:
    response = requests.post(
        sandbox.url + TOKEN_PATH,
        data="grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(TEST_CLIENT_ID, TEST_CLIENT_SECRET),
        timeout=5,
    )

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type", "scope"}
    assert body["expires_in"] == 86400
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "segments:write segments:read"
    assert len(body["access_token"]) >= 32
    assert response.headers["Cache-Control"] == "no-store"
    listing = requests.get(
        segments_url(sandbox), headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=5
    )
    assert listing.status_code == 200
    assert listing.json() == []


def test_each_token_request_gets_a_different_token(sandbox: SegmentsTestServer) -> None:
    assert get_token(sandbox) != get_token(sandbox)


@pytest.mark.parametrize(
    "auth",
    [(TEST_CLIENT_ID, "wrong-secret"), ("someone-else", TEST_CLIENT_SECRET), None],
    ids=["bad-secret", "bad-client-id", "no-basic-auth"],
)
def test_token_endpoint_rejects_bad_client_credentials_with_401_invalid_client(
    sandbox: SegmentsTestServer, auth: tuple[str, str] | None
) -> None:
    response = requests.post(
        sandbox.url + TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=auth, timeout=5
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "access_token" not in response.text


@pytest.mark.parametrize(
    "form", [{"grant_type": "password"}, {"scope": "segments:read"}], ids=["password-grant", "no-grant"]
)
def test_token_endpoint_rejects_other_grants_with_400_unsupported_grant_type(
    sandbox: SegmentsTestServer, form: dict[str, str]
) -> None:
    response = requests.post(
        sandbox.url + TOKEN_PATH, data=form, auth=(TEST_CLIENT_ID, TEST_CLIENT_SECRET), timeout=5
    )

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_token_endpoint_requires_a_form_body_and_answers_415_to_json(sandbox: SegmentsTestServer) -> None:
    response = requests.post(
        sandbox.url + TOKEN_PATH,
        json={"grant_type": "client_credentials"},
        auth=(TEST_CLIENT_ID, TEST_CLIENT_SECRET),
        timeout=5,
    )

    assert response.status_code == 415
    assert response.headers["Content-Type"].startswith("application/json")
    assert "x-www-form-urlencoded" in response.json()["error_description"]


def test_token_endpoint_answers_405_to_get(sandbox: SegmentsTestServer) -> None:
    response = requests.get(sandbox.url + TOKEN_PATH, auth=(TEST_CLIENT_ID, TEST_CLIENT_SECRET), timeout=5)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


# -- bearer token checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-real-token"}, {"Authorization": "Basic c2FuZGJveDpzYW5kYm94"}],
    ids=["no-header", "unknown-token", "basic-instead-of-bearer"],
)
def test_segment_calls_without_a_valid_bearer_token_get_401_invalid_token(
    sandbox: SegmentsTestServer, headers: dict[str, str]
) -> None:
    for method, url, body in [
        ("GET", segments_url(sandbox), None),
        ("POST", segments_url(sandbox), {"name": "x", "userIds": ["a"]}),
        ("PUT", segments_url(sandbox, str(uuid.uuid4())), {"action": "add", "userIds": ["a"]}),
        ("DELETE", segments_url(sandbox, str(uuid.uuid4())), None),
    ]:
        response = requests.request(method, url, json=body, headers=headers, timeout=5)
        assert response.status_code == 401, (method, response.text)
        assert response.json()["error"] == "invalid_token"
        assert response.json()["message"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert sandbox.walkme.segments(TEST_SYSTEM_GUID) == []


def test_tokens_expire_after_token_ttl() -> None:
    with SegmentsTestServer(port=0, token_ttl=0.3) as sandbox:
        response = requests.post(
            sandbox.url + TOKEN_PATH,
            data={"grant_type": "client_credentials"},
            auth=(TEST_CLIENT_ID, TEST_CLIENT_SECRET),
            timeout=5,
        )
        assert response.json()["expires_in"] == 0.3
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        assert requests.get(segments_url(sandbox), headers=headers, timeout=5).status_code == 200

        time.sleep(0.4)

        expired = requests.get(segments_url(sandbox), headers=headers, timeout=5)
        assert expired.status_code == 401
        assert expired.json()["error"] == "invalid_token"
        assert "expired" in expired.json()["message"]


def test_revoked_tokens_get_401_and_a_new_token_works(sandbox: SegmentsTestServer) -> None:
    first = {"Authorization": f"Bearer {get_token(sandbox)}"}
    assert requests.get(segments_url(sandbox), headers=first, timeout=5).status_code == 200

    assert sandbox.walkme.revoke_tokens() == 1
    assert requests.get(segments_url(sandbox), headers=first, timeout=5).status_code == 401

    second = {"Authorization": f"Bearer {get_token(sandbox)}"}
    assert requests.get(segments_url(sandbox), headers=second, timeout=5).status_code == 200
    revoked = requests.post(sandbox.url + "/_sandbox/walkme/revoke-tokens", timeout=5)
    assert revoked.json() == {"revoked": 1}
    assert requests.get(segments_url(sandbox), headers=second, timeout=5).status_code == 401


def test_tokens_endpoint_lists_every_token_issued_even_after_a_revoke(sandbox: SegmentsTestServer) -> None:
    # A test whose Airflow runs in other processes reads them here, to search its logs for them.
    first, second = get_token(sandbox), get_token(sandbox)
    sandbox.walkme.revoke_tokens()

    listed = requests.get(sandbox.url + "/_sandbox/walkme/tokens", timeout=5)

    assert listed.status_code == 200
    assert listed.json() == {"tokens": [first, second]}
    assert requests.post(sandbox.url + "/_sandbox/walkme/tokens", timeout=5).status_code == 405
    assert {entry["path"] for entry in sandbox.requests} == {TOKEN_PATH}  # control calls are not logged


# -- segment calls ------------------------------------------------------------------------------------


def test_unknown_system_gets_404_until_added(sandbox: SegmentsTestServer, api: requests.Session) -> None:
    other = "0123456789abcdef0123456789abcdef"
    url = f"{sandbox.url}/public/v1/user/system/{other}/segment"

    missing = api.get(url, timeout=5)
    assert missing.status_code == 404
    assert missing.json() == {"message": "System not found"}
    assert api.post(url, json={"name": "x", "userIds": []}, timeout=5).status_code == 404

    sandbox.walkme.add_system(other)
    assert api.get(url, timeout=5).status_code == 200
    assert api.post(url, json={"name": "x", "userIds": ["a"]}, timeout=5).status_code == 201
    assert [s["name"] for s in sandbox.walkme.segments(other)] == ["x"]
    assert sandbox.walkme.segments(TEST_SYSTEM_GUID) == []


def test_create_answers_201_with_the_segment_and_stores_each_id_once(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    response = api.post(
        segments_url(sandbox),
        json={"id": "heap-42", "name": "Trial users", "userIds": ["b@x.com", "a@x.com", "b@x.com"]},
        timeout=5,
    )

    assert response.status_code == 201
    segment = response.json()
    assert set(segment) == {"guid", "id", "name", "usersCount", "createdAt", "updatedAt"}
    assert str(uuid.UUID(segment["guid"])) == segment["guid"]  # hyphenated, lower-case
    assert uuid.UUID(segment["guid"]).version == 4
    assert segment["id"] == "heap-42"
    assert segment["name"] == "Trial users"
    assert segment["usersCount"] == 2
    assert ISO_UTC.match(segment["createdAt"]) and ISO_UTC.match(segment["updatedAt"])
    assert sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]) == ["b@x.com", "a@x.com"]


def test_create_without_external_id_returns_null_id(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    assert create(api, sandbox)["id"] is None


def test_duplicate_segment_names_are_allowed(sandbox: SegmentsTestServer, api: requests.Session) -> None:
    first = create(api, sandbox, name="Same")
    second = create(api, sandbox, name="Same")

    assert first["guid"] != second["guid"]
    assert [s["name"] for s in sandbox.walkme.segments(TEST_SYSTEM_GUID)] == ["Same", "Same"]


@pytest.mark.parametrize(
    ("action", "user_ids", "expected"),
    [
        ("add", ["c", "a", "d"], ["a", "b", "c", "d"]),
        ("remove", ["a", "zzz", "c"], ["b"]),
        ("override", ["x", "y", "x"], ["x", "y"]),
        ("override", [], []),
    ],
    ids=["add", "remove", "override", "override-empty"],
)
def test_update_applies_the_action_to_the_membership(
    sandbox: SegmentsTestServer, api: requests.Session, action: str, user_ids: list[str], expected: list[str]
) -> None:
    segment = create(api, sandbox, user_ids=["a", "b", "c"])

    response = api.put(
        segments_url(sandbox, segment["guid"]), json={"action": action, "userIds": user_ids}, timeout=5
    )

    assert response.status_code == 200
    body = response.json()
    assert body["guid"] == segment["guid"]
    assert body["usersCount"] == len(expected)
    assert body["createdAt"] == segment["createdAt"]
    assert ISO_UTC.match(body["updatedAt"])
    assert sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]) == expected
    users = requests.get(
        f"{sandbox.url}/_sandbox/walkme/systems/{TEST_SYSTEM_GUID}/segments/{segment['guid']}/users",
        timeout=5,
    )
    assert users.json() == {"userIds": expected}


def test_every_update_moves_the_update_time_even_within_one_millisecond(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    segment = create(api, sandbox, user_ids=["a"])
    times = [segment["updatedAt"]]
    for _ in range(20):  # faster than a millisecond apart, some of them
        url = segments_url(sandbox, segment["guid"])
        times.append(api.put(url, json={"action": "add", "userIds": ["a"]}, timeout=5).json()["updatedAt"])
    assert times == sorted(set(times)) and all(ISO_UTC.match(t) for t in times)


def test_update_rejects_unknown_action_with_400(sandbox: SegmentsTestServer, api: requests.Session) -> None:
    segment = create(api, sandbox, user_ids=["a"])

    response = api.put(segments_url(sandbox, segment["guid"]), json={"action": "append", "userIds": ["b"]})

    assert response.status_code == 400
    assert "action" in response.json()["message"]
    assert sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]) == ["a"]


def test_update_and_delete_of_unknown_segment_get_404(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    segment = create(api, sandbox, user_ids=["a"])
    unhyphenated = segment["guid"].replace("-", "")

    for guid in [str(uuid.uuid4()), unhyphenated]:
        updated = api.put(segments_url(sandbox, guid), json={"action": "add", "userIds": ["b"]}, timeout=5)
        assert updated.status_code == 404
        assert updated.json() == {"message": "Segment not found"}
        assert api.delete(segments_url(sandbox, guid), timeout=5).status_code == 404
    assert sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]) == ["a"]


def test_list_returns_segments_in_creation_order_without_user_ids(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    first = create(api, sandbox, name="one", user_ids=["a", "b"])
    second = create(api, sandbox, name="two", user_ids=["c"])

    response = api.get(segments_url(sandbox), timeout=5)

    assert response.status_code == 200
    assert response.json() == [first, second]
    assert "userIds" not in response.text


def test_delete_answers_204_and_removes_the_segment(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    keep = create(api, sandbox, name="keep")
    gone = create(api, sandbox, name="gone", user_ids=["a"])

    response = api.delete(segments_url(sandbox, gone["guid"]), timeout=5)

    assert response.status_code == 204
    assert response.content == b""
    assert api.get(segments_url(sandbox), timeout=5).json() == [keep]
    assert api.delete(segments_url(sandbox, gone["guid"]), timeout=5).status_code == 404


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"userIds": ["a"]}, "name"),
        ({"name": "", "userIds": ["a"]}, "name"),
        ({"name": "   ", "userIds": ["a"]}, "name"),
        ({"name": 7, "userIds": ["a"]}, "name"),
        ({"name": "x"}, "userIds"),
        ({"name": "x", "userIds": "a,b"}, "userIds"),
        ({"name": "x", "userIds": ["a", 5]}, "userIds[1]"),
        ({"name": "x", "userIds": ["a", ""]}, "userIds[1]"),
        ({"name": "x", "userIds": ["a", "b", "u" * 101]}, "userIds[2]"),
        ({"name": "x", "id": 12, "userIds": ["a"]}, "id"),
    ],
    ids=[
        "no-name",
        "empty-name",
        "blank-name",
        "number-name",
        "no-userIds",
        "userIds-string",
        "non-string-id",
        "empty-id",
        "101-char-id",
        "numeric-external-id",
    ],
)
def test_create_rejects_invalid_payloads_with_400_naming_the_problem(
    sandbox: SegmentsTestServer, api: requests.Session, payload: dict, named: str
) -> None:
    response = api.post(segments_url(sandbox), json=payload, timeout=5)

    assert response.status_code == 400
    assert named in response.json()["message"]
    assert sandbox.walkme.segments(TEST_SYSTEM_GUID) == []


def test_ids_of_exactly_100_characters_are_accepted(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    long_id = "u" * 100

    segment = create(api, sandbox, user_ids=[long_id])

    assert sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]) == [long_id]
    too_long = api.put(segments_url(sandbox, segment["guid"]), json={"action": "add", "userIds": ["v" * 101]})
    assert too_long.status_code == 400


def test_25000_ids_per_request_are_accepted_and_25001_rejected(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    ids = [f"user-{i}@example.com" for i in range(25_001)]

    segment = create(api, sandbox, user_ids=ids[:25_000])
    too_many_create = api.post(segments_url(sandbox), json={"name": "big", "userIds": ids}, timeout=10)
    too_many_update = api.put(
        segments_url(sandbox, segment["guid"]), json={"action": "override", "userIds": ids}, timeout=10
    )
    full_update = api.put(
        segments_url(sandbox, segment["guid"]), json={"action": "override", "userIds": ids[1:]}, timeout=10
    )

    assert segment["usersCount"] == 25_000
    assert too_many_create.status_code == 400
    assert "25,000" in too_many_create.json()["message"]
    assert too_many_update.status_code == 400
    assert full_update.status_code == 200
    assert sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]) == ids[1:]
    assert len(sandbox.walkme.segments(TEST_SYSTEM_GUID)) == 1


def test_create_and_update_require_json_content_type(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    segment = create(api, sandbox, user_ids=["a"])
    form = {"name": "x", "userIds": "a"}

    created = api.post(segments_url(sandbox), data=form, timeout=5)
    updated = api.put(
        segments_url(sandbox, segment["guid"]),
        data='{"action": "add", "userIds": ["b"]}',
        headers={"Content-Type": "text/plain"},
        timeout=5,
    )

    assert created.status_code == 415
    assert updated.status_code == 415
    assert sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]) == ["a"]


@pytest.mark.parametrize(
    "body", ['{"name": "x", "userIds": [', "", "[1, 2]"], ids=["truncated", "empty", "array"]
)
def test_malformed_json_bodies_get_400(sandbox: SegmentsTestServer, api: requests.Session, body: str) -> None:
    response = api.post(
        segments_url(sandbox), data=body, headers={"Content-Type": "application/json"}, timeout=5
    )

    assert response.status_code == 400
    assert response.json()["message"]


def test_chunked_request_bodies_are_read_whole(sandbox: SegmentsTestServer, api: requests.Session) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "chunked", '
        yield b'"userIds": ["a", "b"]}'

    response = api.post(
        segments_url(sandbox), data=chunks(), headers={"Content-Type": "application/json"}, timeout=5
    )

    assert response.status_code == 201
    assert sandbox.walkme.members(TEST_SYSTEM_GUID, response.json()["guid"]) == ["a", "b"]


def test_wrong_method_on_a_known_path_gets_405(sandbox: SegmentsTestServer, api: requests.Session) -> None:
    segment = create(api, sandbox)

    on_item = api.get(segments_url(sandbox, segment["guid"]), timeout=5)
    on_collection = api.patch(segments_url(sandbox), json={}, timeout=5)

    assert on_item.status_code == 405
    assert on_item.headers["Allow"] == "PUT, DELETE"
    assert on_collection.status_code == 405
    assert on_collection.headers["Allow"] == "GET, POST"


def test_unknown_paths_get_404(sandbox: SegmentsTestServer, api: requests.Session) -> None:
    assert api.get(sandbox.url + SEGMENTS_PATH + "s", timeout=5).status_code == 404
    assert api.get(sandbox.url + "/public/v2/whatever", timeout=5).status_code == 404


def test_a_session_keeps_one_connection_alive_across_calls(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    segment = create(api, sandbox, user_ids=["a"])
    api.put(segments_url(sandbox, segment["guid"]), json={"action": "add", "userIds": ["b"]}, timeout=5)
    api.delete(segments_url(sandbox, segment["guid"]), timeout=5)  # 204: no body, no Content-Length
    api.get(segments_url(sandbox), timeout=5)

    log = sandbox.request_log()[1:]  # the fixture fetched the token on its own connection
    assert [e["status"] for e in log] == [201, 200, 204, 200]
    assert {e["connection"] for e in log} == {log[0]["connection"]}


# -- fault injection ----------------------------------------------------------------------------------


def test_injected_429_carries_retry_after_and_only_hits_count_requests(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    sandbox.inject_fault(SEGMENTS_PATH, 429, count=2, retry_after="3")

    first = api.get(segments_url(sandbox), timeout=5)
    second = api.get(segments_url(sandbox), timeout=5)
    third = api.get(segments_url(sandbox), timeout=5)

    assert [first.status_code, second.status_code, third.status_code] == [429, 429, 200]
    assert first.headers["Retry-After"] == "3"
    assert first.json() == {"message": "Too Many Requests"}
    assert "Retry-After" not in third.headers


def test_faults_can_be_limited_to_one_method_and_carry_a_custom_body(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    segment = create(api, sandbox, user_ids=["a"])
    sandbox.inject_fault("/public/", 503, method="PUT", body='{"message": "maintenance"}')

    listing = api.get(segments_url(sandbox), timeout=5)
    failed = api.put(segments_url(sandbox, segment["guid"]), json={"action": "add", "userIds": ["b"]})
    retried = api.put(segments_url(sandbox, segment["guid"]), json={"action": "add", "userIds": ["b"]})

    assert listing.status_code == 200
    assert failed.status_code == 503
    assert failed.json() == {"message": "maintenance"}
    assert retried.status_code == 200
    assert sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]) == ["a", "b"]


def test_injected_delay_trips_a_client_read_timeout(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    sandbox.inject_fault(SEGMENTS_PATH, delay=1.0)

    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        api.get(segments_url(sandbox), timeout=(2, 0.2))
    assert time.monotonic() - started < 0.9

    assert api.get(segments_url(sandbox), timeout=5).status_code == 200


def test_injected_delay_then_normal_handling(sandbox: SegmentsTestServer, api: requests.Session) -> None:
    sandbox.inject_fault(SEGMENTS_PATH, delay=0.3)

    started = time.monotonic()
    response = api.post(segments_url(sandbox), json={"name": "slow", "userIds": ["a"]}, timeout=5)

    assert time.monotonic() - started >= 0.3
    assert response.status_code == 201
    assert [s["name"] for s in sandbox.walkme.segments(TEST_SYSTEM_GUID)] == ["slow"]


def test_dropped_connection_raises_connection_error_then_serves_again(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    sandbox.inject_fault(SEGMENTS_PATH, drop_connection=True, method="POST")

    with pytest.raises(requests.ConnectionError):
        api.post(segments_url(sandbox), json={"name": "lost", "userIds": ["a"]}, timeout=5)

    assert sandbox.walkme.segments(TEST_SYSTEM_GUID) == []
    assert (
        api.post(segments_url(sandbox), json={"name": "kept", "userIds": ["a"]}, timeout=5).status_code == 201
    )


def test_faults_can_be_injected_listed_and_cleared_over_http(sandbox: SegmentsTestServer) -> None:
    fault = {"path_prefix": TOKEN_PATH, "status": 500, "count": 1, "retry_after": "1"}

    created = requests.post(sandbox.url + "/_sandbox/faults", json=fault, timeout=5)
    assert created.status_code == 201
    assert created.json()["status"] == 500
    assert requests.get(sandbox.url + "/_sandbox/faults", timeout=5).json()[0]["path_prefix"] == TOKEN_PATH

    token = requests.post(
        sandbox.url + TOKEN_PATH,
        data={"grant_type": "client_credentials"},
        auth=(TEST_CLIENT_ID, TEST_CLIENT_SECRET),
        timeout=5,
    )
    assert token.status_code == 500
    assert token.headers["Retry-After"] == "1"
    assert requests.get(sandbox.url + "/_sandbox/faults", timeout=5).json() == []

    requests.post(sandbox.url + "/_sandbox/faults", json={**fault, "count": 5}, timeout=5)
    assert requests.delete(sandbox.url + "/_sandbox/faults", timeout=5).status_code == 204
    assert get_token(sandbox)


@pytest.mark.parametrize(
    "fault",
    [{"status": 429}, {"path_prefix": "/x"}, {"path_prefix": "/x", "status": 429, "colour": "red"}],
    ids=["no-prefix", "nothing-to-do", "unknown-field"],
)
def test_invalid_faults_are_rejected_with_400(sandbox: SegmentsTestServer, fault: dict) -> None:
    response = requests.post(sandbox.url + "/_sandbox/faults", json=fault, timeout=5)

    assert response.status_code == 400
    assert requests.get(sandbox.url + "/_sandbox/faults", timeout=5).json() == []


def test_control_paths_are_never_faulted(sandbox: SegmentsTestServer) -> None:
    sandbox.inject_fault("/", 500, count=10)

    assert requests.get(sandbox.url + "/_sandbox/requests", timeout=5).status_code == 200
    assert requests.post(sandbox.url + "/_sandbox/reset", timeout=5).status_code == 204
    assert get_token(sandbox)  # the reset dropped the fault


# -- request log and reset ----------------------------------------------------------------------------


def test_request_log_records_calls_with_id_counts_and_actions(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    segment = create(api, sandbox, user_ids=["a", "b", "a"])
    api.put(segments_url(sandbox, segment["guid"]), json={"action": "remove", "userIds": ["a"]}, timeout=5)
    sandbox.inject_fault(SEGMENTS_PATH, 429)
    api.get(segments_url(sandbox), timeout=5)
    requests.get(sandbox.url + "/_sandbox/faults", timeout=5)  # control calls are not logged

    log = sandbox.request_log()

    assert [(e["method"], e["status"], e.get("action"), e.get("ids")) for e in log] == [
        ("POST", 200, None, None),
        ("POST", 201, "create", 3),
        ("PUT", 200, "remove", 1),
        ("GET", 429, None, None),
    ]
    assert log[0]["path"] == TOKEN_PATH
    assert log[2]["path"] == f"{SEGMENTS_PATH}/{segment['guid']}"
    assert log[3]["fault"] == "status"
    assert all(isinstance(e["time"], float) for e in log)
    assert requests.get(sandbox.url + "/_sandbox/requests", timeout=5).json() == log
    assert sandbox.requests == log


def test_rejected_writes_are_logged_with_their_id_count(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    api.post(segments_url(sandbox), json={"name": "x", "userIds": ["a"] * 25_001}, timeout=10)

    assert sandbox.request_log()[-1] | {"time": 0, "connection": 0} == {
        "method": "POST",
        "path": SEGMENTS_PATH,
        "status": 400,
        "time": 0,
        "connection": 0,
        "in_flight": 1,
        "action": "create",
        "ids": 25_001,
    }


def test_reset_clears_segments_tokens_faults_and_log(
    sandbox: SegmentsTestServer, api: requests.Session
) -> None:
    create(api, sandbox, user_ids=["a"])
    sandbox.walkme.add_system("0123456789abcdef0123456789abcdef")
    sandbox.inject_fault("/public/", 500)

    assert requests.post(sandbox.url + "/_sandbox/reset", timeout=5).status_code == 204

    assert sandbox.request_log() == []
    assert sandbox.walkme.systems() == [TEST_SYSTEM_GUID]
    assert api.get(segments_url(sandbox), timeout=5).status_code == 401  # old token forgotten
    fresh = {"Authorization": f"Bearer {get_token(sandbox)}"}
    assert requests.get(segments_url(sandbox), headers=fresh, timeout=5).json() == []  # no fault, no segment


def test_stop_closes_the_port_and_idle_connections() -> None:
    sandbox = SegmentsTestServer(port=0).start()
    session = requests.Session()
    assert session.post(
        sandbox.url + TOKEN_PATH,
        data={"grant_type": "client_credentials"},
        auth=(TEST_CLIENT_ID, TEST_CLIENT_SECRET),
        timeout=5,
    ).ok

    sandbox.stop()

    with pytest.raises(requests.ConnectionError):
        session.get(segments_url(sandbox), timeout=2)
    session.close()


def test_non_loopback_hosts_are_refused_unless_allowed() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SegmentsTestServer(host="0.0.0.0", port=0)


# -- command line -------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_segments.testing", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_cli_serves_tokens_on_the_printed_url_and_stops_cleanly(stop_signal: signal.Signals) -> None:
    process = _cli("--port", "0")
    try:
        ready, _, _ = select.select([process.stdout], [], [], 15)
        assert ready, "the sandbox printed nothing within 15 s"
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        assert TEST_CLIENT_ID in line and TEST_SYSTEM_GUID in line and "test-only" in line
        assert TEST_CLIENT_SECRET not in line

        response = requests.post(
            match.group(0) + TOKEN_PATH,
            data={"grant_type": "client_credentials"},
            auth=(TEST_CLIENT_ID, TEST_CLIENT_SECRET),
            timeout=5,
        )
        assert response.status_code == 200
        assert response.json()["token_type"] == "Bearer"

        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def test_cli_refuses_a_non_loopback_host_without_allow_remote() -> None:
    process = _cli("--host", "0.0.0.0", "--port", "0")
    _, stderr = process.communicate(timeout=15)

    assert process.returncode == 2
    assert "loopback" in stderr


# -- faults used by the reliability suite -------------------------------------------------------
def test_lose_response_applies_the_request_then_hangs_up():
    with SegmentsTestServer() as sandbox:
        token = sandbox.walkme.issue_token()
        sandbox.inject_fault("/public/", lose_response=True, method="POST")
        url = f"{sandbox.url}/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"
        with pytest.raises(requests.ConnectionError):
            requests.post(
                url, json={"name": "lost", "userIds": ["a"]}, headers={"Authorization": f"Bearer {token}"}
            )
        assert [s["name"] for s in sandbox.walkme.segments(TEST_SYSTEM_GUID)] == ["lost"]
        assert sandbox.requests[-1]["fault"] == "lose_response"


def test_truncate_body_sends_half_the_promised_body():
    with SegmentsTestServer() as sandbox:
        token = sandbox.walkme.issue_token()
        sandbox.inject_fault("/public/", truncate_body=True)
        url = f"{sandbox.url}/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"
        sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "x" * 50)
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(url, headers={"Authorization": f"Bearer {token}"})
        assert requests.get(url, headers={"Authorization": f"Bearer {token}"}).json()[0]["name"] == "x" * 50


def test_skip_lets_the_first_matching_requests_through():
    with SegmentsTestServer() as sandbox:
        sandbox.inject_fault("/accounts/", 503, skip=2)
        url = f"{sandbox.url}/accounts/connect/token"
        auth = (TEST_CLIENT_ID, TEST_CLIENT_SECRET)
        statuses = [
            requests.post(url, data={"grant_type": "client_credentials"}, auth=auth).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 503, 200]
