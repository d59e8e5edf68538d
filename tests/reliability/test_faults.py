"""Fault matrix against the sandbox over real HTTP: every fault ends in success after bounded retries,
or in a clear failure naming platform, endpoint, status and the API's message. Never a hang."""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from support import sandbox_conn_env

from airflow_provider_segments.exceptions import SegmentsApiError, SegmentsAuthError, SegmentsNotFoundError
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.testing import TEST_SYSTEM_GUID, SegmentsTestServer

SEGMENTS = f"/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"
TOKEN = "/accounts/connect/token"
ZD_LIST = "/api/v2/help_center/user_segments.json"


@pytest.fixture
def sandbox(monkeypatch):
    with SegmentsTestServer() as server:
        for name, value in sandbox_conn_env(server.url, timeout=1).items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.fixture
def walkme(sandbox):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Enterprise", ["a"])["guid"]
    return WalkMeHook(), guid


def _attempts(sandbox, method: str, path: str) -> int:
    return sum(1 for r in sandbox.requests if r["method"] == method and r["path"] == path)


# -- WalkMe: faults that end in success ---------------------------------------------------------
@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"status": 429, "retry_after": "1"}, id="429-retry-after-seconds"),
        pytest.param({"status": 500}, id="500"),
        pytest.param({"status": 502}, id="502"),
        pytest.param({"status": 503}, id="503"),
        pytest.param({"status": 504}, id="504"),
        pytest.param({"drop_connection": True}, id="connection-closed-before-answer"),
        pytest.param({"truncate_body": True}, id="connection-reset-mid-response"),
        pytest.param({"delay": 2.0}, id="stall-past-read-timeout"),
        pytest.param({"status": 200, "body": '{"guid": "12345aeb-1'}, id="200-truncated-json"),
        pytest.param({"status": 200, "body": "<html>proxy error</html>"}, id="200-not-json"),
    ],
)
def test_walkme_update_survives_a_transient_fault(sandbox, walkme, fault):
    hook, guid = walkme
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", **fault)
    result = hook.update_segment(guid, "override", ["x", "y"])
    assert result["requests"] == 1
    if "delay" in fault:  # the stalled request is logged (and applied) once its delay is over
        time.sleep(fault["delay"])
    assert sandbox.walkme.members(TEST_SYSTEM_GUID, guid) == ["x", "y"]
    assert _attempts(sandbox, "PUT", f"{SEGMENTS}/{guid}") == 2


def test_429_with_an_http_date_retry_after_is_honoured(sandbox, walkme):
    hook, _ = walkme
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=2), usegmt=True)
    sandbox.inject_fault(SEGMENTS, 429, retry_after=when, method="GET")
    started = time.monotonic()
    assert [s["name"] for s in hook.list_segments()] == ["Enterprise"]
    assert time.monotonic() - started >= 0.9  # waited for the date (second resolution), not the 10 ms backoff


def test_token_revoked_between_two_chunks_is_replaced_once(sandbox, walkme):
    hook, guid = walkme
    ids = [f"user{i}" for i in range(60_000)]
    session = hook.client.session
    real_request = session.request
    puts = []

    def revoke_after_first_chunk(method, url, **kwargs):
        response = real_request(method, url, **kwargs)
        if method == "PUT":
            puts.append(response.status_code)
            if len(puts) == 1:
                sandbox.walkme.revoke_tokens()  # as WalkMe would when a key is rotated
        return response

    session.request = revoke_after_first_chunk
    hook.update_segment(guid, "override", ids)
    # The override lands; what comes next meets the revoked token: the read-back after the override
    # chunk, or the two adds sent at once (they share one new token, fetched once, and each is sent
    # again).
    assert puts[0] == 200 and puts.count(200) == 3 and puts.count(401) in (0, 1, 2)
    assert sorted(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) == sorted(ids)
    assert _attempts(sandbox, "POST", TOKEN) == 2


# -- WalkMe: faults that end in a clear failure -------------------------------------------------
def test_token_endpoint_down_fails_after_bounded_attempts_with_a_clear_message(sandbox, monkeypatch):
    sandbox.inject_fault(TOKEN, 503, count=100, body='{"message": "token service unavailable"}')
    started = time.monotonic()
    with pytest.raises(SegmentsApiError) as err:
        WalkMeHook().list_segments()
    message = str(err.value)
    assert "WalkMe API POST /accounts/connect/token failed with HTTP 503" in message
    assert "token service unavailable" in message and "after 5 attempts" in message
    assert _attempts(sandbox, "POST", TOKEN) == 5
    assert time.monotonic() - started < 5


def test_connection_refused_fails_after_bounded_attempts(monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in sandbox_conn_env(f"http://127.0.0.1:{port}", max_attempts=3).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(
        SegmentsApiError, match=r"POST /accounts/connect/token failed: connection refused.*after 3"
    ):
        WalkMeHook().get_access_token()


def test_a_server_that_always_stalls_fails_instead_of_hanging(sandbox, walkme, monkeypatch):
    for name, value in sandbox_conn_env(sandbox.url, timeout=0.3, max_attempts=2).items():
        monkeypatch.setenv(name, value)
    sandbox.inject_fault(SEGMENTS, delay=1.0, count=2, method="GET")
    started = time.monotonic()
    with pytest.raises(
        SegmentsApiError, match=r"GET /public/.*did not answer within the read timeout.*2 attempts"
    ):
        WalkMeHook().list_segments()
    assert time.monotonic() - started < 3


def test_wrong_credentials_fail_fast_naming_the_connection(sandbox, monkeypatch):
    env = sandbox_conn_env(sandbox.url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_WALKME_DEFAULT",
        env["AIRFLOW_CONN_WALKME_DEFAULT"].replace("sandbox-client-secret", "wrong-secret"),
    )
    with pytest.raises(SegmentsAuthError) as err:
        WalkMeHook().list_segments()
    assert "HTTP 401" in str(err.value) and "invalid_client" in str(err.value)
    assert "connection 'walkme_default'" in str(err.value)
    assert _attempts(sandbox, "POST", TOKEN) == 1  # no retry storm


def test_create_whose_response_is_lost_does_not_duplicate(sandbox):
    sandbox.inject_fault(SEGMENTS, lose_response=True, method="POST")
    result = WalkMeHook().create_segment("Churned last week", ["a", "b"])
    (segment,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    assert segment["guid"] == result["segment_guid"] and segment["name"] == "Churned last week"
    assert sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]) == ["a", "b"]


# -- Zendesk -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"status": 429, "retry_after": "1"}, id="429"),
        pytest.param({"status": 503}, id="503"),
        pytest.param({"truncate_body": True}, id="reset-mid-response"),
        pytest.param({"status": 200, "body": '{"user_segments": ['}, id="200-truncated-json"),
    ],
)
def test_zendesk_list_survives_a_transient_fault(sandbox, fault):
    sandbox.inject_fault(ZD_LIST, method="GET", **fault)
    names = [s["name"] for s in ZendeskHelpCenterHook().list_user_segments()]
    assert len(names) == 2  # the two built-in segments
    assert _attempts(sandbox, "GET", ZD_LIST) == 2


def test_zendesk_create_retried_after_a_lost_response_does_not_duplicate(sandbox):
    sandbox.inject_fault(ZD_LIST, lose_response=True, method="POST")
    created = ZendeskHelpCenterHook().create_user_segment("VIP", "staff", tags=["vip"])
    customs = [s for s in sandbox.zendesk.segments() if not s["built_in"]]
    assert [(s["id"], s["name"], s["tags"]) for s in customs] == [(created["id"], "VIP", ["vip"])]


def test_zendesk_delete_with_missing_ok_false_survives_a_lost_response(sandbox, capsys, caplog):
    segment_id = sandbox.zendesk.create_segment(name="VIP", user_type="staff")["id"]
    path = f"/api/v2/help_center/user_segments/{segment_id}.json"
    sandbox.inject_fault(path, method="DELETE", lose_response=True)  # applied, then the answer is lost
    assert ZendeskHelpCenterHook().delete_user_segment(segment_id, missing_ok=False) == segment_id
    assert sandbox.zendesk.segment(segment_id) is None
    # Not resent blindly: the segment was looked up, and it is gone, so the delete had landed.
    assert _attempts(sandbox, "DELETE", path) == 1
    assert "the delete landed" in capsys.readouterr().out + caplog.text


def test_zendesk_delete_with_missing_ok_false_still_fails_for_a_segment_that_never_existed(sandbox):
    with pytest.raises(SegmentsNotFoundError, match="404"):
        ZendeskHelpCenterHook().delete_user_segment(999_999, missing_ok=False)
    assert _attempts(sandbox, "DELETE", "/api/v2/help_center/user_segments/999999.json") == 1


def test_zendesk_create_over_an_existing_name_leaves_it_as_a_fresh_create_would(sandbox):
    zendesk = sandbox.zendesk
    old = zendesk.create_segment(
        name="VIP",
        user_type="signed_in_users",
        group_ids=[12],
        organization_ids=[42],
        tags=["old"],
        or_tags=["gold"],
        added_user_ids=[7],
    )
    ZendeskHelpCenterHook().create_user_segment(
        "VIP",
        "staff",
        tags=["vip"],
        allow_empty=True,
        max_removal_fraction=1.0,  # drops user 7
    )
    fresh = ZendeskHelpCenterHook().create_user_segment("VIP fresh", "staff", tags=["vip"])
    criteria = ("user_type", "group_ids", "organization_ids", "tags", "or_tags", "added_user_ids")
    updated = zendesk.segment(old["id"])
    assert {k: updated[k] for k in criteria} == {k: zendesk.segment(fresh["id"])[k] for k in criteria}


def test_zendesk_persistent_5xx_names_platform_endpoint_status_and_message(sandbox):
    sandbox.inject_fault(
        ZD_LIST, 502, count=100, body='{"error": "BadGateway", "description": "upstream down"}'
    )
    with pytest.raises(SegmentsApiError) as err:
        ZendeskHelpCenterHook().list_user_segments()
    message = str(err.value)
    assert f"Zendesk API GET {ZD_LIST} failed with HTTP 502" in message
    assert "BadGateway - upstream down" in message and "after 5 attempts" in message


def test_zendesk_endless_pagination_is_cut_off(sandbox):
    sandbox.zendesk.pagination = "endless"
    with pytest.raises(Exception, match=r"loops back|already sent"):
        ZendeskHelpCenterHook().list_user_segments()
    assert _attempts(sandbox, "GET", ZD_LIST) <= 3
