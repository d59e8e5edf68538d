"""The HTTP core on the wire: what a real local server receives when a connection, a server or the
network misbehaves. Credentials go to the validated host only, redirects are not followed, a
trickling answer is cut at the per-attempt deadline, and nothing an error body echoes leaks a secret."""

from __future__ import annotations

import base64
import json

import pytest
from local_servers import Answer, LocalServer
from support import walkme_conn_json, zendesk_conn_json

from airflow_provider_segments.exceptions import (
    SegmentsConfigError,
)
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.http import ApiClient

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
        assert hook.default_conn_name in str(err.value) and str(server.port) in str(err.value)
        assert server.received == []  # no Authorization reached the server on localhost
