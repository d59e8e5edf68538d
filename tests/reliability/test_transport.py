"""The HTTP core on the wire: what a real local server receives when a connection, a server or the
network misbehaves. Credentials go to the validated host only, redirects are not followed, a
trickling answer is cut at the per-attempt deadline, and nothing an error body echoes leaks a secret."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import time
from urllib.parse import quote, quote_plus

import pytest
from local_servers import Answer, LocalServer, TrickleServer, elapsed, free_port, http_answer
from support import sandbox_conn_env, walkme_conn_json, zendesk_conn_json

from airflow_provider_segments.exceptions import (
    SegmentsApiError,
    SegmentsConfigError,
    SegmentsConnectionError,
    SegmentsError,
    SegmentsTimeoutError,
    SegmentsUnknownOutcomeError,
)
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.http import ApiClient, without_userinfo
from airflow_provider_segments.testing import SegmentsTestServer

WALKME_ENV = "AIRFLOW_CONN_WALKME_DEFAULT"
ZENDESK_ENV = "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT"
GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"
TOKEN_ANSWER = Answer(200, json.dumps({"access_token": "tok-abcdef0123456789", "expires_in": 3600}))
FAST = {"backoff_initial": 0.01, "backoff_max": 0.05}


def _client(base_url: str, **extra: object) -> ApiClient:
    return ApiClient.from_extra(
        platform="Test", base_url=base_url, extra={**FAST, **extra}, conn_id="test_conn"
    )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def resolve_to_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every name resolves to 127.0.0.1 (so a non-loopback host name reaches a local server)."""
    import urllib3.util.connection

    real = urllib3.util.connection.create_connection

    def to_localhost(address, *args, **kwargs):
        return real(("127.0.0.1", address[1]), *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", to_localhost)


# -- 1. the host validated is the host that receives the request --------------------------------
@pytest.mark.parametrize(
    ("env", "make_hook", "tail"),
    [
        pytest.param(ZENDESK_ENV, ZendeskHelpCenterHook, "\\acme.zendesk.com", id="zendesk-backslash"),
        pytest.param(ZENDESK_ENV, ZendeskHelpCenterHook, "\\@acme.zendesk.com", id="zendesk-backslash-at"),
        pytest.param(WALKME_ENV, WalkMeHook, "\\api.walkme.com", id="walkme-backslash"),
        pytest.param(WALKME_ENV, WalkMeHook, "%5C.api.walkme.com", id="walkme-encoded-backslash"),
        pytest.param(WALKME_ENV, WalkMeHook, "/x\\y", id="walkme-backslash-in-path"),
    ],
)
def test_a_host_that_the_http_stack_reads_differently_is_refused_and_nothing_is_sent(
    monkeypatch, env, make_hook, tail
):
    with LocalServer() as server:
        host = f"http://127.0.0.1:{server.port}{tail}"
        conn = zendesk_conn_json(host=host) if env == ZENDESK_ENV else walkme_conn_json(host=host)
        monkeypatch.setenv(env, conn)
        hook = make_hook()
        with pytest.raises(SegmentsConfigError) as err:
            hook.list_user_segments() if env == ZENDESK_ENV else hook.list_segments()
        assert hook.default_conn_name in str(err.value) and repr(without_userinfo(host)) in str(err.value)
        assert server.received == []  # no Authorization reached the server on localhost


# -- 2. plain http only to loopback, unless the connection says so ------------------------------
def test_plain_http_to_another_host_is_refused_before_anything_is_sent(monkeypatch, resolve_to_localhost):
    with LocalServer(lambda r: Answer(200, '{"user_segments": []}')) as server:
        monkeypatch.setenv(ZENDESK_ENV, zendesk_conn_json(host=f"http://help.corp.test:{server.port}"))
        with pytest.raises(SegmentsConfigError) as err:
            ZendeskHelpCenterHook().list_user_segments()
        message = str(err.value)
        assert "zendesk_help_center_default" in message and "https" in message
        assert "allow_insecure_http" in message
        assert server.received == []


def test_allow_insecure_http_sends_over_plain_http_and_warns(
    monkeypatch, resolve_to_localhost, caplog, capsys
):
    with LocalServer(lambda r: Answer(200, '{"user_segments": []}')) as server:
        host = f"http://help.corp.test:{server.port}"
        monkeypatch.setenv(ZENDESK_ENV, zendesk_conn_json(host=host, allow_insecure_http=True))
        assert ZendeskHelpCenterHook().list_user_segments() == []
        assert [r.method for r in server.received] == ["GET"]
    output = capsys.readouterr().out + caplog.text
    assert "allow_insecure_http" in output and "plain http" in output and "help.corp.test" in output


# -- 3. redirects are not followed ---------------------------------------------------------------
def test_a_redirected_walkme_chunk_is_an_error_and_the_target_gets_nothing(monkeypatch):
    with LocalServer() as target:
        landing = f"http://localhost:{target.port}/landing"

        def api(request):
            if request.path.endswith("/connect/token"):
                return TOKEN_ANSWER
            if request.method == "GET":  # the segment is listed; its write is redirected
                listed = json.dumps([{"guid": GUID, "name": "A", "usersCount": 0}]).encode()
                return Answer(200, listed, {"Content-Type": "application/json"})
            return Answer(302, b"", {"Location": landing})

        with LocalServer(api) as server:
            monkeypatch.setenv(WALKME_ENV, walkme_conn_json(host=server.url))
            with pytest.raises(SegmentsError) as err:
                WalkMeHook().update_segment(GUID, "add", ["a", "b"])
            assert f"localhost:{target.port}" in str(err.value) and "HTTP 302" in str(err.value)
            assert [r.method for r in server.received] == ["POST", "GET", "PUT"]  # not retried
        assert target.received == []  # not followed: no request, no credential, no "applied" 200


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirected_create_is_a_plain_error_naming_the_target_and_is_not_followed(status):
    with LocalServer() as target:
        answer = Answer(status, b"", {"Location": f"http://localhost:{target.port}/elsewhere?token=x"})
        with LocalServer(lambda r: answer) as server:
            client = _client(server.url)
            with pytest.raises(SegmentsApiError) as err:
                client.request_json(
                    "POST", "/things", json_body={"a": 1}, auth=("user", "pw-123456"), idempotent=False
                )
            assert not isinstance(err.value, SegmentsUnknownOutcomeError)  # the target applied nothing
            assert err.value.status == status
            assert f"localhost:{target.port}" in str(err.value) and "token=x" not in str(err.value)
            assert len(server.received) == 1
        assert target.received == []


def test_a_same_host_redirect_is_not_followed_either():
    with LocalServer(lambda r: Answer(301, b"", {"Location": "/v2/things"})) as server:
        with pytest.raises(SegmentsApiError, match=r"HTTP 301.*127\.0\.0\.1"):
            _client(server.url).request_json("GET", "/things", auth=("user", "pw-123456"))
        assert [r.path for r in server.received] == ["/things"]


# -- 4. redaction covers every form of a secret, before any cut ----------------------------------
def _echo(status: int = 401):
    """An error body that echoes the request, Authorization first (as some proxies do)."""

    def handler(request):
        text = f"Denied. Authorization: {request.header('authorization')} | {request.raw_head}"
        return Answer(status, text, {"Content-Type": "text/plain"})

    return handler


def test_walkme_basic_credentials_echoed_in_an_error_body_are_redacted(monkeypatch, caplog):
    with LocalServer(_echo()) as server:
        monkeypatch.setenv(
            WALKME_ENV, walkme_conn_json(host=server.url, login="cid-42", password="sec-0987654321")
        )
        with pytest.raises(SegmentsError) as err:
            WalkMeHook().get_access_token()
        header = server.received[0].header("authorization")
    assert header == f"Basic {_b64('cid-42:sec-0987654321')}"  # the echo really holds it
    message = str(err.value)
    assert "Authorization: Basic ***" in message
    for leaked in (_b64("cid-42:sec-0987654321"), "sec-0987654321", _b64("sec-0987654321")):
        assert leaked not in message and leaked not in caplog.text


def test_zendesk_api_token_basic_header_echoed_in_an_error_body_is_redacted(monkeypatch, caplog):
    email, token = "agent@acme.example.com", "zd-token-0123456789"
    with LocalServer(_echo()) as server:
        monkeypatch.setenv(ZENDESK_ENV, zendesk_conn_json(host=server.url, login=email, password=token))
        with pytest.raises(SegmentsError) as err:
            ZendeskHelpCenterHook().list_user_segments()
        header = server.received[0].header("authorization")
    encoded = _b64(f"{email}/token:{token}")
    assert header == f"Basic {encoded}"
    assert "Authorization: Basic ***" in str(err.value)
    assert encoded not in str(err.value) and token not in str(err.value) and encoded not in caplog.text


def test_a_url_encoded_secret_echoed_in_an_error_body_is_redacted():
    secret = "p@ss w/rd+plus&more=1234"
    with LocalServer(_echo(400)) as server:
        client = _client(server.url)
        client.add_secret(secret)
        with pytest.raises(SegmentsApiError) as by_query:
            client.request("GET", "/search", params={"q": secret})
        with pytest.raises(SegmentsApiError) as by_path:
            client.request("GET", f"/keys/{quote(secret, safe='')}")
        assert (
            quote_plus(secret) in server.received[0].path
            and quote(secret, safe="") in server.received[1].path
        )
    for err in (by_query, by_path):
        for form in (secret, quote(secret, safe=""), quote_plus(secret), quote(secret)):
            assert form not in str(err.value)
        assert "***" in str(err.value)


@pytest.mark.parametrize(
    ("status", "body", "cut"),
    [
        pytest.param(400, "x" * 470 + "{secret} tail", 500, id="text-error-body"),
        pytest.param(400, json.dumps({"message": "y" * 470 + "{secret}"}), 500, id="json-error-body"),
        pytest.param(200, "z" * 100 + "{secret}", 120, id="non-json-200-snippet"),
    ],
)
def test_a_long_secret_across_the_truncation_point_leaks_no_prefix(status, body, cut):
    secret = "LONGSECRET-" + "0123456789abcdef" * 12
    payload = body.replace("{secret}", secret)
    with LocalServer(lambda r: Answer(status, payload, {"Content-Type": "text/plain"})) as server:
        client = _client(server.url, max_attempts=1)
        client.add_secret(secret)
        with pytest.raises(SegmentsApiError) as err:
            client.request_json("POST", "/things", json_body={}, idempotent=False)
    assert "***" in str(err.value) or len(payload) - len(secret) > cut  # the cut may fall before it
    assert "LONGSECRET" not in str(err.value) and secret[:8] not in str(err.value)


# -- 5. a deadline for the whole answer, per attempt ---------------------------------------------
BODY = json.dumps({"user_segments": [], "padding": "." * 20}).encode()


@pytest.mark.parametrize("trickled", ["body", "status-and-headers"])
def test_a_trickling_answer_is_cut_at_the_per_attempt_deadline(trickled):
    answer = http_answer(200, BODY)
    fast = len(answer) - len(BODY) if trickled == "body" else 0
    with TrickleServer(answer, fast_bytes=fast, interval=0.15) as server:
        client = _client(server.url, timeout=1, max_attempts=1)
        started = time.monotonic()
        expected = r"GET /list failed: .*whole answer within the 1 s timeout"
        with pytest.raises(SegmentsApiError, match=expected) as err:
            client.request_json("GET", "/list")
        took = elapsed(started)
    assert not isinstance(err.value, SegmentsUnknownOutcomeError)
    assert took < 2.5, f"held {took:.1f} s with timeout=1 s"
    assert len(server.requests) == 1


def test_a_trickling_answer_to_a_write_is_an_unknown_outcome():
    with TrickleServer(http_answer(201, BODY), fast_bytes=40, interval=0.15) as server:
        client = _client(server.url, timeout=1, max_attempts=3)
        started = time.monotonic()
        with pytest.raises(SegmentsUnknownOutcomeError, match="may or may not have applied"):
            client.request_json("POST", "/things", json_body={"name": "VIP"}, idempotent=False)
        assert elapsed(started) < 2.5
        assert len(server.requests) == 1  # a write is not resent blindly


def test_a_trickling_answer_to_a_read_is_retried_within_the_budget():
    with TrickleServer(http_answer(200, BODY), fast_bytes=40, interval=0.15, slow_requests=1) as server:
        client = _client(server.url, timeout=1, max_attempts=2)
        started = time.monotonic()
        assert client.request_json("GET", "/list")["user_segments"] == []
        assert elapsed(started) < 3
        assert len(server.requests) == 2


# -- 6. numeric extras are finite and in range ---------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("max_total_wait", "inf", "0 to 3600"),
        ("max_total_wait", 3601, "0 to 3600"),
        ("timeout", "inf", "0 (excluded) to 600"),
        ("timeout", 0, "0 (excluded) to 600"),
        ("connect_timeout", "nan", "0 (excluded) to 120"),
        ("max_attempts", "nan", "whole number from 1 to 20"),
        ("max_attempts", "inf", "whole number from 1 to 20"),
        ("max_attempts", 2.5, "whole number from 1 to 20"),
        ("max_attempts", 21, "whole number from 1 to 20"),
        ("max_attempts", True, "whole number from 1 to 20"),
        ("backoff_initial", "1e400", "0 to 60"),
        ("backoff_max", -1, "0 to 600"),
    ],
)
def test_a_non_finite_or_out_of_range_extra_is_refused_before_anything_is_sent(
    monkeypatch, key, value, allowed
):
    asks_for_a_year = Answer(429, b"{}", {"Retry-After": "31536000"})
    with LocalServer(lambda r: asks_for_a_year) as server:
        monkeypatch.setenv(WALKME_ENV, walkme_conn_json(host=server.url, **{key: value}))
        hook = WalkMeHook()
        with pytest.raises(SegmentsConfigError) as err:
            hook.client  # noqa: B018
        with pytest.raises(SegmentsConfigError):
            hook.list_segments()
        assert server.received == []
    message = str(err.value)
    assert "'walkme_default'" in message and f"'{key}'" in message and allowed in message


def test_a_retry_after_beyond_the_largest_budget_ends_the_call_at_once(monkeypatch):
    asks_for_a_year = Answer(429, b'{"message": "slow down"}', {"Retry-After": "31536000"})
    with LocalServer(lambda r: asks_for_a_year) as server:
        monkeypatch.setenv(WALKME_ENV, walkme_conn_json(host=server.url, max_total_wait=3600))
        started = time.monotonic()
        with pytest.raises(SegmentsApiError, match="HTTP 429"):
            WalkMeHook().get_access_token()
        assert elapsed(started) < 2 and len(server.received) == 1


# -- 7. "was the request sent?" by exception type -------------------------------------------------
def test_a_create_whose_name_lookup_failed_with_another_wording_is_retried_once(monkeypatch):
    import urllib3.util.connection

    real = urllib3.util.connection.create_connection
    failures = []

    def flaky_dns(address, *args, **kwargs):
        if not failures:
            failures.append(address)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", flaky_dns)
    with LocalServer(lambda r: Answer(201, '{"id": 7}')) as server:
        client = _client(server.url)
        assert client.request_json("POST", "/things", json_body={"name": "VIP"}, idempotent=False) == {
            "id": 7
        }
        assert failures and [r.method for r in server.received] == ["POST"]  # exactly one create


def test_a_create_refused_by_a_closed_port_is_retried_once_the_server_is_up():
    port = free_port()
    servers: list[LocalServer] = []
    client = _client(f"http://127.0.0.1:{port}")
    client.sleep = lambda seconds: servers.append(
        LocalServer(lambda r: Answer(201, '{"id": 8}'), port=port).start()
    )
    try:
        assert client.request_json("POST", "/things", json_body={}, idempotent=False) == {"id": 8}
        assert [r.method for r in servers[0].received] == ["POST"]
    finally:
        for server in servers:
            server.stop()


def test_a_connection_reset_after_the_create_was_sent_is_not_taken_for_never_sent():
    with SegmentsTestServer() as sandbox:
        sandbox.inject_fault("/things", drop_connection=True, method="POST")
        with pytest.raises(SegmentsUnknownOutcomeError):
            _client(sandbox.url).request_json("POST", "/things", json_body={}, idempotent=False)
        assert sum(1 for r in sandbox.requests if r["method"] == "POST") <= 1


# -- 8. Zendesk's field-level reasons reach the error ---------------------------------------------
def test_zendesk_field_level_reasons_are_in_the_error(monkeypatch):
    body = {
        "error": "RecordInvalid",
        "description": "Record validation errors",
        "details": {"name": [{"description": "Name: is already taken", "error": "DuplicateValue"}]},
    }
    with SegmentsTestServer() as sandbox:
        for name, value in sandbox_conn_env(sandbox.url).items():
            monkeypatch.setenv(name, value)
        path = "/api/v2/help_center/user_segments.json"
        sandbox.inject_fault(path, 422, body=json.dumps(body), method="POST")
        with pytest.raises(SegmentsApiError) as err:
            ZendeskHelpCenterHook().create_user_segment("VIP", "staff")
    assert err.value.status == 422
    assert "RecordInvalid - Record validation errors" in str(err.value)
    assert "name: Name: is already taken (DuplicateValue)" in str(err.value)


# -- 9. loopback means loopback: no proxy, no .netrc ------------------------------------------
PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture
def recording_proxy(monkeypatch):
    """A proxy-like local server named by every proxy variable of the environment (NO_PROXY unset):
    whatever requests sends through a proxy arrives here, with its Authorization header."""
    with LocalServer(lambda r: Answer(200, TOKEN_ANSWER.body)) as proxy:
        for name in PROXY_VARIABLES:
            monkeypatch.setenv(name, proxy.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        yield proxy


@pytest.mark.parametrize("loopback", ["127.0.0.1", "localhost"])
def test_a_loopback_api_is_reached_directly_even_with_a_proxy_in_the_environment(
    monkeypatch, recording_proxy, loopback
):
    def api(request):
        return TOKEN_ANSWER if request.path.endswith("/connect/token") else Answer(200, "[]")

    with LocalServer(api) as server:
        host = f"http://{loopback}:{server.port}"
        monkeypatch.setenv(WALKME_ENV, walkme_conn_json(host=host, login="cid-42", password="sec-0987654321"))
        try:
            listed: object = WalkMeHook().list_segments()
        except SegmentsError as err:
            listed = err
        assert recording_proxy.received == []  # neither the client secret nor the token went to the proxy
        assert listed == []
        assert [r.method for r in server.received] == ["POST", "GET"]
        assert server.received[1].header("authorization") == "Bearer tok-abcdef0123456789"


def test_a_remote_api_still_goes_through_the_proxy_of_the_environment(
    monkeypatch, recording_proxy, resolve_to_localhost
):
    host = "http://api.corp.test:1"  # never reached directly: the proxy answers
    monkeypatch.setenv(WALKME_ENV, walkme_conn_json(host=host, allow_insecure_http=True))
    assert WalkMeHook().get_access_token() == "tok-abcdef0123456789"
    assert [r.path for r in recording_proxy.received] == [f"{host}/accounts/connect/token"]


@pytest.mark.parametrize("loopback", [True, False])
def test_a_netrc_entry_never_replaces_the_connections_credentials(
    monkeypatch, tmp_path, resolve_to_localhost, loopback
):
    with LocalServer(lambda r: Answer(200, '{"user_segments": []}')) as server:
        machine = "127.0.0.1" if loopback else "help.corp.test"
        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine {machine} login netrc-user password netrc-password-123\n")
        netrc.chmod(0o600)
        monkeypatch.setenv("NETRC", str(netrc))
        conn = zendesk_conn_json(
            host=f"http://{machine}:{server.port}",
            login=None,
            password="oauth-token-0123456789",
            auth_type="oauth_token",
            allow_insecure_http=not loopback,
        )
        monkeypatch.setenv(ZENDESK_ENV, conn)
        assert ZendeskHelpCenterHook().list_user_segments() == []
        assert [r.header("authorization") for r in server.received] == ["Bearer oauth-token-0123456789"]


# -- 10. an unexpected 2xx body is quoted redacted, then cut ------------------------------------
LONG_TOKEN = "tk_" + hashlib.sha256(b"issue 18").hexdigest()[:61]  # 64 characters


def _pieces(secret: str, size: int = 6) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


@pytest.mark.parametrize(
    "listed",
    [
        pytest.param({"status": "ok", "echo": f"Authorization: Bearer {LONG_TOKEN}"}, id="object"),
        pytest.param([f"Bearer {LONG_TOKEN}"], id="list-of-strings"),
        pytest.param({"segments": "Bearer " + LONG_TOKEN}, id="short-prefix"),
    ],
)
def test_an_unexpected_walkme_2xx_body_echoing_the_token_is_quoted_redacted(monkeypatch, listed):
    token_answer = Answer(200, json.dumps({"access_token": LONG_TOKEN, "expires_in": 3600}))

    def api(request):
        return token_answer if request.path.endswith("/connect/token") else Answer(200, json.dumps(listed))

    with LocalServer(api) as server:
        monkeypatch.setenv(WALKME_ENV, walkme_conn_json(host=server.url))
        with pytest.raises(SegmentsError) as err:
            WalkMeHook().list_segments()
    message = str(err.value)
    assert "unexpected shape" in message
    assert not [piece for piece in _pieces(LONG_TOKEN) if piece in message], message


@pytest.mark.parametrize("endpoint", ["list", "show"])
def test_an_unexpected_zendesk_2xx_body_echoing_the_token_is_quoted_redacted(monkeypatch, endpoint):
    echo = Answer(200, json.dumps({"note": "x", "echo": f"Authorization: Bearer {LONG_TOKEN}"}))
    with LocalServer(lambda r: echo) as server:
        conn = zendesk_conn_json(host=server.url, login=None, password=LONG_TOKEN, auth_type="oauth_token")
        monkeypatch.setenv(ZENDESK_ENV, conn)
        hook = ZendeskHelpCenterHook()
        with pytest.raises(SegmentsError) as err:
            hook.list_user_segments() if endpoint == "list" else hook.get_user_segment(7)
        assert server.received[0].header("authorization") == f"Bearer {LONG_TOKEN}"
    message = str(err.value)
    assert "without a" in message
    assert not [piece for piece in _pieces(LONG_TOKEN) if piece in message], message


# -- 11. the Test button makes one attempt and names the host ------------------------------------
@pytest.mark.parametrize(
    ("env", "make_hook"), [(WALKME_ENV, WalkMeHook), (ZENDESK_ENV, ZendeskHelpCenterHook)]
)
def test_test_connection_makes_one_attempt_against_a_failing_server_and_names_the_host(
    monkeypatch, env, make_hook
):
    unavailable = Answer(503, '{"message": "down for maintenance"}')
    with LocalServer(lambda r: unavailable) as server:
        conn = walkme_conn_json if env == WALKME_ENV else zendesk_conn_json
        monkeypatch.setenv(env, conn(host=server.url, backoff_initial=1))
        ok, message = make_hook().test_connection()
        assert len(server.received) == 1
    assert not ok
    assert (
        f"127.0.0.1:{server.port}" in message and "HTTP 503" in message and "down for maintenance" in message
    )


@pytest.mark.parametrize(
    ("env", "make_hook"), [(WALKME_ENV, WalkMeHook), (ZENDESK_ENV, ZendeskHelpCenterHook)]
)
def test_test_connection_to_an_unreachable_host_fails_at_once_naming_it(monkeypatch, env, make_hook):
    host = f"http://127.0.0.1:{free_port()}"
    conn = walkme_conn_json if env == WALKME_ENV else zendesk_conn_json
    monkeypatch.setenv(env, conn(host=host, backoff_initial=1))  # the default backoff: 1, 2, 4, 8 s
    started = time.monotonic()
    ok, message = make_hook().test_connection()
    assert elapsed(started) < 2
    assert not ok and host.removeprefix("http://") in message and "attempts" not in message


# -- 12. an absolute URL is sent only to the client's own origin ------------------------------
def test_an_absolute_url_of_another_origin_is_refused_before_anything_is_sent():
    with LocalServer() as other, LocalServer() as server:
        client = _client(server.url)
        with pytest.raises(SegmentsApiError, match="another origin") as err:
            client.request("GET", f"{other.url}/steal", auth=("user", "pw-123456"))
        assert "pw-123456" not in str(err.value)
        assert client.request("GET", f"HTTP://127.0.0.1:{server.port}/same").status_code == 200
        assert [r.path for r in server.received] == ["/same"]
    assert other.received == []


# -- 13. typed transport errors --------------------------------------------------------------------
def test_no_answer_after_the_budget_is_a_connection_error_and_a_slow_one_a_timeout_error():
    refused = _client(f"http://127.0.0.1:{free_port()}", max_attempts=2)
    with pytest.raises(SegmentsConnectionError) as no_answer:
        refused.request("GET", "/list")
    assert not isinstance(no_answer.value, SegmentsTimeoutError) and no_answer.value.status is None
    assert "after 2 attempts" in str(no_answer.value)
    with (
        TrickleServer(http_answer(200, BODY), interval=0.15) as server,
        pytest.raises(SegmentsTimeoutError) as slow,
    ):
        _client(server.url, timeout=0.5, max_attempts=1).request_json("GET", "/list")
    assert isinstance(slow.value, SegmentsApiError) and slow.value.status is None


def test_a_write_cut_after_it_was_sent_stays_an_unknown_outcome_not_a_timeout():
    answer = http_answer(201, BODY)
    with (
        TrickleServer(answer, fast_bytes=40, interval=0.15) as server,
        pytest.raises(SegmentsUnknownOutcomeError) as err,
    ):
        _client(server.url, timeout=0.5).request_json("POST", "/things", json_body={}, idempotent=False)
    assert not isinstance(err.value, SegmentsConnectionError)
