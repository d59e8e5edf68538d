"""Every field of a connection means what it says, or the connection is refused before anything is
sent (hostile review 26): a port never dropped on the way to another host, an extra that is not a
JSON object never read as "no extra" (and the region's host lost), a schema never ignored, a login
Basic auth cannot carry, a flag whatever the host, and a Test button that says "Authenticated" only
for an answer a listing would use."""

from __future__ import annotations

import json

import pytest
from local_servers import Answer, LocalServer

from airflow_provider_segments.exceptions import SegmentsConfigError, SegmentsError
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook

SECRET = "connection-field-secret-0123456789"
GUID = "5f2b9c1e8d7a4b3c9e6f1a2d3c4b5a69"


@pytest.fixture
def contacted(monkeypatch):
    """Every (host, port) the HTTP stack connects to; only this machine is really reached."""
    import urllib3.util.connection

    real, seen = urllib3.util.connection.create_connection, []

    def guarded(address, *args, **kwargs):
        seen.append((address[0], address[1]))
        if address[0] not in ("127.0.0.1", "localhost", "::1"):
            raise ConnectionRefusedError("no internet in tests")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", guarded)
    return seen


def _api(request):
    if request.path.endswith("/connect/token"):
        return Answer(200, json.dumps({"access_token": "tok-abcdef0123456789", "expires_in": 3600}))
    return Answer(200, json.dumps({"user_segments": [], "meta": {"has_more": False}}))


def _connect(monkeypatch, hook_class, **conn):
    conn.setdefault("password", SECRET)
    monkeypatch.setenv(f"AIRFLOW_CONN_{hook_class.default_conn_name.upper()}", json.dumps(conn))
    return hook_class()


def _first_call(hook):
    return hook.get_access_token() if isinstance(hook, WalkMeHook) else hook.list_user_segments()


# -- a port goes with the host it was given for ----------------------------------------------------------
@pytest.mark.parametrize("host", ["localhost", "acme", "acme.zendesk.com"])
def test_a_port_beside_a_zendesk_subdomain_is_refused_not_dropped(monkeypatch, contacted, host):
    """``zendesk-help-center://agent:pw@localhost:8080`` gives host ``localhost``, port 8080: the
    password went to https://localhost.zendesk.com:443, on the internet."""
    uri = f"zendesk-help-center://agent%40x.example:{SECRET}@{host}:8080/?auth_type=password"
    monkeypatch.setenv("AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT", uri)
    with pytest.raises(SegmentsConfigError, match=r"port 8080.*full URL"):
        ZendeskHelpCenterHook().list_user_segments()
    assert contacted == []


def test_a_port_without_a_walkme_host_is_refused_not_dropped(monkeypatch, contacted):
    hook = _connect(
        monkeypatch, WalkMeHook, conn_type="walkme", login="cid", port=8443, extra={"region": "eu"}
    )
    with pytest.raises(SegmentsConfigError, match=r"port 8443.*full URL"):
        hook.get_access_token()
    assert contacted == []


def test_a_port_in_the_url_and_another_in_the_port_field_are_refused(monkeypatch, contacted):
    hook = _connect(
        monkeypatch, WalkMeHook, conn_type="walkme", host="https://gateway.example:8443", port=9443, login="c"
    )
    with pytest.raises(SegmentsConfigError, match=r"8443.*9443|9443.*8443"):
        hook.get_access_token()
    assert contacted == []


def test_a_port_given_with_a_full_url_or_both_alike_still_works(monkeypatch, contacted):
    with LocalServer(_api) as server:
        for conn in (
            {"host": "http://127.0.0.1", "port": server.port},
            {"host": f"http://127.0.0.1:{server.port}", "port": server.port},
        ):
            hook = _connect(monkeypatch, ZendeskHelpCenterHook, conn_type="zendesk_help_center", **conn)
            assert hook.list_user_segments() == []
    assert {port for _, port in contacted} == {server.port}


# -- the extra is a JSON object, or the connection is refused --------------------------------------------
def test_an_extra_that_is_not_valid_json_is_refused_not_read_as_empty(monkeypatch, contacted):
    """A trailing comma made Airflow read the extra as ``{}``: region ``eu`` was lost and the EU
    Client Secret went to the US host. The error names the connection and where the JSON breaks,
    never the extra's text (it may hold a secret)."""
    extra = '{"region": "eu", "system_guid": "' + GUID + '", "note": "' + SECRET + '",}'
    hook = _connect(monkeypatch, WalkMeHook, conn_type="walkme", login="cid", extra=extra)
    with pytest.raises(
        SegmentsConfigError, match=r"walkme_default.*extra is not valid JSON.*line 1"
    ) as caught:
        hook.get_access_token()
    assert contacted == [] and SECRET not in str(caught.value)


@pytest.mark.parametrize("extra", ['"eu"', "[1, 2]", "5"])
@pytest.mark.parametrize("hook_class", [WalkMeHook, ZendeskHelpCenterHook])
def test_an_extra_that_is_json_but_not_an_object_is_a_clear_error(monkeypatch, contacted, extra, hook_class):
    hook = _connect(
        monkeypatch, hook_class, conn_type=hook_class.conn_type, host="https://api.test", login="c@x.example",
        extra=extra,
    )  # fmt: skip
    ok, message = hook.test_connection()
    assert not ok and hook_class.default_conn_name in message and "extra" in message, message
    assert contacted == []


# -- a schema, a login Basic auth cannot carry, a malformed flag: refused --------------------------------
@pytest.mark.parametrize("schema", ["walkme-api", "https"])
def test_a_schema_is_refused_not_ignored(monkeypatch, contacted, schema):
    """``walkme://id:secret@gateway.corp/walkme-api`` stores ``walkme-api`` as the schema: the token
    request went to the gateway's root instead. Where a path or scheme goes is the host URL."""
    hook = _connect(
        monkeypatch, WalkMeHook, conn_type="walkme", host="https://gateway.example", schema=schema, login="c"
    )
    with pytest.raises(SegmentsConfigError, match=r"schema field is set \(not shown.*host URL") as caught:
        hook.get_access_token()
    assert contacted == []
    assert f"'{schema}'" not in str(caught.value)  # (it may be a secret pasted in the wrong field)


@pytest.mark.parametrize("hook_class", [WalkMeHook, ZendeskHelpCenterHook])
def test_a_login_holding_a_colon_is_refused_before_basic_auth_sends_it(monkeypatch, contacted, hook_class):
    """RFC 7617: a Basic user-id cannot hold ':'; the server reads the rest of it as the password's
    start. The error names the field and the position, not the value."""
    hook = _connect(
        monkeypatch, hook_class, conn_type=hook_class.conn_type, host="https://api.test",
        login="agent:x@acme.example", extra={"auth_type": "api_token"},
    )  # fmt: skip
    with pytest.raises(SegmentsConfigError, match=r"login field holds ':' at position 5") as caught:
        _first_call(hook)
    assert contacted == [] and "agent:x" not in str(caught.value)


@pytest.mark.parametrize("host", ["https://api.test", "http://127.0.0.1:9"])
def test_a_malformed_allow_insecure_http_is_refused_whatever_the_host(monkeypatch, contacted, host):
    hook = _connect(
        monkeypatch, ZendeskHelpCenterHook, conn_type="zendesk_help_center", host=host,
        extra={"auth_type": "oauth_token", "allow_insecure_http": "maybe"},
    )  # fmt: skip
    with pytest.raises(SegmentsConfigError, match="allow_insecure_http"):
        hook.list_user_segments()
    assert contacted == []


# -- the Test button ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", ["", "{}", '{"error": "no such thing"}'])
def test_the_zendesk_test_button_never_says_authenticated_for_an_answer_a_listing_refuses(monkeypatch, body):
    with LocalServer(lambda request: Answer(200, body, {"Content-Type": "application/json"})) as server:
        hook = _connect(
            monkeypatch, ZendeskHelpCenterHook, conn_type="zendesk_help_center", host=server.url,
            extra={"auth_type": "oauth_token", "max_attempts": 1},
        )  # fmt: skip
        ok, message = hook.test_connection()
        with pytest.raises(SegmentsError):
            ZendeskHelpCenterHook().list_user_segments()  # the listing refuses the same answer
    assert not ok and "Authenticated" not in message, message


def test_a_zendesk_api_token_login_already_ending_in_slash_token_is_refused(monkeypatch, contacted):
    """The provider adds ``/token`` to the agent's email: ``agent@x/token`` went as ``.../token/token``."""
    hook = _connect(
        monkeypatch, ZendeskHelpCenterHook, conn_type="zendesk_help_center", host="https://api.test",
        login="agent@acme.example/token", extra={"auth_type": "api_token"},
    )  # fmt: skip
    with pytest.raises(SegmentsConfigError, match=r"login.*ends in '/token'.*email alone"):
        hook.list_user_segments()
    assert contacted == []


@pytest.mark.parametrize("extra", ["null", "  ", "{}"])
def test_an_extra_airflow_reads_as_empty_without_error_is_still_no_extra(monkeypatch, extra):
    """Hostile review 29: ``null`` and blanks were read as no extra by Airflow, and still are."""
    with LocalServer(_api) as server:
        hook = _connect(
            monkeypatch, WalkMeHook, conn_type="walkme", host=server.url, login="cid", extra=extra
        )
        assert hook.get_access_token()


def test_a_login_an_oauth_token_connection_never_sends_is_not_checked(monkeypatch):
    """Hostile review 29: with auth_type oauth_token the login is not sent, so a ':' in it is no reason
    to refuse the connection."""
    with LocalServer(_api) as server:
        hook = _connect(
            monkeypatch, ZendeskHelpCenterHook, conn_type="zendesk_help_center", host=server.url,
            login="unused:login", extra={"auth_type": "oauth_token"},
        )  # fmt: skip
        assert hook.list_user_segments() == []
        assert all("unused" not in (r.header("authorization") or "") for r in server.received)
