"""Hostile review 36: "Credentials go only to the host the connection names, and no secret survives
in any text." Each test below failed on the code as reviewed; each asserts what a real local server
received or what a text (error, log, file) holds."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import pytest
from local_servers import Answer, LocalServer
from support import walkme_conn_json, zendesk_conn_json

from airflow_provider_segments.exceptions import SegmentsError
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeSyncSegmentOperator,
)

ZENDESK_ENV = "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT"
WALKME_ENV = "AIRFLOW_CONN_WALKME_DEFAULT"
EMAIL = "agent@acme.example.com"
GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"
#: A mixed-case OAuth token (Zendesk OAuth tokens, like most bearer tokens, are mixed-case).
MIXED_TOKEN = "ZdOAuthToken7F3a9C2e5B8d1F4a6C0e9B2d7A5f3C1e"


def _oauth_zendesk(monkeypatch, url: str, token: str) -> None:
    monkeypatch.setenv(
        ZENDESK_ENV,
        zendesk_conn_json(host=url, login=None, password=token, auth_type="oauth_token", max_attempts=1),
    )


def _password_zendesk(monkeypatch, url: str, password: str) -> None:
    monkeypatch.setenv(
        ZENDESK_ENV,
        zendesk_conn_json(host=url, login=EMAIL, password=password, auth_type="password", max_attempts=1),
    )


# -- 1. the provider lower-cases a host before quoting it, so the redactor no longer knows the token --
def test_a_mixed_case_token_in_a_redirect_host_is_not_quoted_lower_cased(monkeypatch):
    redirect = Answer(302, b"", {"Location": f"https://{MIXED_TOKEN}.collector.example/next"})
    with LocalServer(lambda request: redirect) as server:
        _oauth_zendesk(monkeypatch, server.url, MIXED_TOKEN)
        with pytest.raises(SegmentsError) as caught:
            ZendeskHelpCenterHook().get_user_segment(7)
    message = str(caught.value)
    assert "redirect" in message
    assert MIXED_TOKEN.lower() not in message.lower(), message


def test_a_mixed_case_token_in_a_next_link_host_is_not_quoted_lower_cased(monkeypatch):
    page = {
        "user_segments": [{"id": 5, "name": "A", "built_in": False}],
        "meta": {"has_more": True},
        "links": {"next": f"https://{MIXED_TOKEN}.collector.example/api/v2/help_center/user_segments.json"},
    }
    with LocalServer(lambda request: Answer(200, json.dumps(page))) as server:
        _oauth_zendesk(monkeypatch, server.url, MIXED_TOKEN)
        with pytest.raises(SegmentsError) as caught:
            ZendeskHelpCenterHook().list_user_segments()
        assert len(server.received) == 1
    message = str(caught.value)
    assert "another origin" in message
    # the preview cuts the host at 60 characters: any 12 characters of the token are too many
    pieces = {MIXED_TOKEN.lower()[i : i + 12] for i in range(len(MIXED_TOKEN) - 11)}
    assert not [p for p in pieces if p in message.lower()], message


# -- 2. an access token WalkMe echoes as a segment's update time is written to the snapshot file -----
ECHOED_WALKME_TOKEN = "wmaccesstoken4b7e1d9c3a6f0e2b8d5c7a1f9e3b6d0c"


def test_an_access_token_echoed_as_the_update_time_stays_out_of_the_snapshot_and_the_log(
    monkeypatch, tmp_path, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    state = {"members": 2, "updated": "2026-01-01T00:00:00.000Z", "n": 0}

    def answer(request):
        if request.path.startswith("/accounts/connect/token"):
            return Answer(200, json.dumps({"access_token": ECHOED_WALKME_TOKEN, "expires_in": 3600}))
        if request.method == "PUT":
            state["n"] += 1
            state["members"] = 3
            # a gateway that stamps the caller's bearer token into the record it updated
            state["updated"] = f"2026-01-01T00:00:0{state['n']}.000Z {ECHOED_WALKME_TOKEN}"
            return Answer(200, json.dumps({}))
        segment = {
            "guid": GUID,
            "name": "VIP",
            "usersCount": state["members"],
            "updatedAt": state["updated"],
            "createdAt": "2025-01-01T00:00:00.000Z",
        }
        return Answer(200, json.dumps([segment]))

    with LocalServer(answer) as server:
        monkeypatch.setenv(WALKME_ENV, walkme_conn_json(host=server.url))
        sync = dict(segment_guid=GUID, state_path=str(tmp_path / "s"), max_removal_fraction=1.0)
        WalkMeSyncSegmentOperator(task_id="s1", user_ids=["a", "b", "c"], **sync).execute({})
        snapshot = (tmp_path / "s").read_text()
        state["updated"] = "2026-02-01T00:00:00.000Z"  # changed elsewhere: the next run says so
        WalkMeSyncSegmentOperator(task_id="s2", user_ids=["a", "b", "c"], **sync).execute({})
    captured = capsys.readouterr()
    texts = {"snapshot file": snapshot, "log": caplog.text + captured.out + captured.err}
    leaks = [where for where, text in texts.items() if ECHOED_WALKME_TOKEN in text]
    assert not leaks, f"the access token is in: {leaks}"


# -- 3. repr() escapes an apostrophe when the value holds both quotes: that form is not known --------
APOSTROPHE_PASSWORD = "don't-tell-anyone-4242"


def test_a_password_with_an_apostrophe_quoted_through_repr_is_redacted(monkeypatch):
    body = {"debug": f'login "{EMAIL}" with {APOSTROPHE_PASSWORD}'}  # a login page's 200, not a listing
    with LocalServer(lambda request: Answer(200, json.dumps(body))) as server:
        _password_zendesk(monkeypatch, server.url, APOSTROPHE_PASSWORD)
        with pytest.raises(SegmentsError) as caught:
            ZendeskHelpCenterHook().list_user_segments()
    message = str(caught.value)
    assert "without a 'user_segments' list" in message
    assert "tell-anyone-4242" not in message, message


# -- 4. a hex token the server echoes in upper case (same token, other case) -------------------------
HEX_TOKEN = "4b7e1d9c3a6f0e2b8d5c7a1f9e3b6d0c4b7e1d9c"


def test_a_hex_token_echoed_in_upper_case_is_redacted(monkeypatch):
    refused = {"error": "InvalidToken", "description": f"Bearer credential {HEX_TOKEN.upper()} is revoked"}
    with LocalServer(lambda request: Answer(401, json.dumps(refused))) as server:
        _oauth_zendesk(monkeypatch, server.url, HEX_TOKEN)
        with pytest.raises(SegmentsError) as caught:
            ZendeskHelpCenterHook().get_user_segment(7)
    message = str(caught.value)
    assert "revoked" in message
    assert HEX_TOKEN not in message.lower(), message


# -- 5. a password echoed percent-encoded the way JavaScript (encodeURIComponent) writes it ----------
JS_PASSWORD = "Tr0ub4dor&3!xyz"


def _encode_uri_component(text: str) -> str:
    return quote(text, safe="!*'()~-_.")


def test_a_password_echoed_percent_encoded_by_javascript_is_redacted(monkeypatch):
    echoed = _encode_uri_component(JS_PASSWORD)
    assert echoed == "Tr0ub4dor%263!xyz"
    refused = {"error": "Couldn't authenticate you", "description": f"rejected login {quote(EMAIL)}:{echoed}"}
    with LocalServer(lambda request: Answer(401, json.dumps(refused))) as server:
        _password_zendesk(monkeypatch, server.url, JS_PASSWORD)
        with pytest.raises(SegmentsError) as caught:
            ZendeskHelpCenterHook().get_user_segment(7)
    message = str(caught.value)
    assert "rejected login" in message
    assert echoed not in message, message


# -- 7. a secret pasted into the schema field is echoed (the host field is protected, schema is not) --
SCHEMA_SECRET = "zd-api-token-0123456789abcdef"


def test_a_secret_pasted_into_the_schema_field_is_not_echoed(monkeypatch):
    conn = json.loads(zendesk_conn_json(host="acme", password=SCHEMA_SECRET))
    conn["schema"] = SCHEMA_SECRET  # pasted into the wrong field (or a URI's path)
    monkeypatch.setenv(ZENDESK_ENV, json.dumps(conn))
    hook = ZendeskHelpCenterHook()
    with pytest.raises(SegmentsError) as caught:
        hook.list_user_segments()
    ok, shown = ZendeskHelpCenterHook().test_connection()
    assert "schema" in str(caught.value) and not ok
    assert SCHEMA_SECRET not in str(caught.value), str(caught.value)
    assert SCHEMA_SECRET not in shown, shown


# -- 8. a state_path / user_ids_path URI's user info or query is quoted in a refusal ------------------
@pytest.mark.parametrize(
    ("location", "secret"),
    [
        pytest.param("https://u:pw-secret-98765@files.example/s\t", "pw-secret-98765", id="userinfo-tab"),
        pytest.param("s3://b/s?X-Amz-Signature=sig0123456789\n", "sig0123456789", id="query-newline"),
        pytest.param("file://u:pw-secret-98765@otherhost/s", "pw-secret-98765", id="file-other-host"),
    ],
)
@pytest.mark.parametrize("field", ["state_path", "user_ids_path"])
def test_a_uri_credential_in_a_refused_path_is_not_quoted(monkeypatch, location, secret, field):
    monkeypatch.setenv(WALKME_ENV, walkme_conn_json(host="http://127.0.0.1:9"))
    if field == "state_path":
        task = WalkMeSyncSegmentOperator(task_id="s", segment_guid=GUID, user_ids=["a"], state_path=location)
    else:
        task = WalkMeCreateSegmentOperator(task_id="c", name="VIP", user_ids_path=location)
    with pytest.raises(Exception) as caught:
        task.execute({})
    message = str(caught.value)
    assert "path" in message
    assert secret not in message, message
