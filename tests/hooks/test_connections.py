"""Connections read once into one typed, frozen settings object per platform."""

from __future__ import annotations

import dataclasses
import json

import pytest

from airflow_provider_segments.exceptions import SegmentsApiError, SegmentsConfigError
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.hooks.walkme_connection import WalkMeConnection
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.hooks.zendesk_connection import ZendeskConnection

SECRET = "typed-settings-secret-0123456789"


def test_walkme_connection_reads_into_typed_fields_and_never_shows_the_secret(monkeypatch):
    extra = {"extra__walkme__system_guid": "sys-1", "region": " EU "}
    conn = {"conn_type": "walkme", "login": "client", "password": SECRET, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_WALKME_DEFAULT", json.dumps(conn))
    settings = WalkMeHook().settings
    assert isinstance(settings, WalkMeConnection)
    assert (settings.base_url, settings.system_guid, settings.region) == (
        "https://eu-api.walkme.com",
        "sys-1",
        "eu",
    )
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.base_url = "https://evil.test"  # type: ignore[misc]


def test_zendesk_connection_reads_the_auth_style_once_and_never_shows_the_secret(monkeypatch):
    conn = {"conn_type": "zendesk_help_center", "host": "acme.zendesk.com", "password": SECRET}
    monkeypatch.setenv("AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT", json.dumps(conn))
    settings = ZendeskHelpCenterHook().settings
    assert isinstance(settings, ZendeskConnection)
    assert (settings.base_url, settings.auth_type) == ("https://acme.zendesk.com", "oauth_token")
    assert settings.auth_kwargs() == {"headers": {"Authorization": f"Bearer {SECRET}"}}
    assert SECRET not in repr(settings)


# -- credentials and connection fields HTTP cannot carry, refused before anything is sent (review 8) --
WALKME_ENV = "AIRFLOW_CONN_WALKME_DEFAULT"


@pytest.mark.parametrize("pad", [" ", "\u00a0", "\u3000", "\u2003"])
@pytest.mark.parametrize("field", ["password", "login"])
@pytest.mark.parametrize("end", ["leading", "trailing"])
def test_a_credential_with_surrounding_whitespace_is_refused_before_sending(
    monkeypatch, requests_mock, pad, field, end
):
    from support import walkme_conn_json

    values = {"password": SECRET, "login": "client-id-123"}
    values[field] = pad + values[field] if end == "leading" else values[field] + pad
    monkeypatch.setenv(WALKME_ENV, walkme_conn_json(**values))
    with pytest.raises(SegmentsConfigError, match=f"its {field} field .*(begins|ends) with") as caught:
        WalkMeHook().get_access_token()
    assert requests_mock.request_history == []
    assert SECRET not in str(caught.value) and SECRET[:12] not in str(caught.value)


@pytest.mark.parametrize("pad", [" ", "\u00a0"])
def test_a_zendesk_token_with_surrounding_whitespace_is_refused_before_sending(
    monkeypatch, requests_mock, pad
):
    from support import zendesk_conn_json

    monkeypatch.setenv("AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT", zendesk_conn_json(password=SECRET + pad))
    with pytest.raises(SegmentsConfigError, match="password"):
        ZendeskHelpCenterHook().list_user_segments()
    assert requests_mock.request_history == []


@pytest.mark.parametrize(
    "token",
    [
        "tok\u20ac-0123456789abcdef",
        "tok-0123456789\r\nX-Injected: 1",
        "tok 0123456789abcdef",
        "\u200btok-01234",
    ],
)
def test_an_access_token_http_cannot_carry_is_a_clear_error_without_the_token(monkeypatch, caplog, token):
    from local_servers import Answer, LocalServer
    from support import walkme_conn_json

    def api(request):
        if request.path.endswith("/connect/token"):
            return Answer(200, json.dumps({"access_token": token, "expires_in": 3600}))
        return Answer(200, "[]")

    with LocalServer(api) as server:
        monkeypatch.setenv(
            WALKME_ENV, walkme_conn_json(host=f"http://127.0.0.1:{server.port}", max_attempts=1)
        )
        with pytest.raises(SegmentsApiError, match="access_token") as caught:
            WalkMeHook().list_segments()
        assert [r.method for r in server.received] == ["POST"]  # nothing sent with that token
    text = str(caught.value) + caplog.text
    assert token[:10] not in text and token[-8:] not in text


def test_a_secret_pasted_into_the_system_guid_field_is_not_quoted(monkeypatch, requests_mock):
    from support import walkme_conn_json

    pasted = "s3cr3t+client/secret=value"
    monkeypatch.setenv(WALKME_ENV, walkme_conn_json(password=pasted, system_guid=pasted))
    with pytest.raises(SegmentsConfigError, match="system_guid") as caught:
        WalkMeHook().list_segments()
    assert "s3cr3t" not in str(caught.value)
    assert requests_mock.request_history == []


def test_a_malformed_system_guid_in_the_connection_is_named_when_it_is_no_secret(monkeypatch, requests_mock):
    from support import walkme_conn_json

    monkeypatch.setenv(WALKME_ENV, walkme_conn_json(system_guid="not a guid/.."))
    with pytest.raises(SegmentsConfigError, match=r"system_guid.*'not a guid/\.\.'"):
        WalkMeHook().list_segments()
    assert requests_mock.request_history == []
