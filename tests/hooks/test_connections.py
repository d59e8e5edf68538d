"""Connections read once into one typed, frozen settings object per platform."""

from __future__ import annotations

import dataclasses
import json

import pytest

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
