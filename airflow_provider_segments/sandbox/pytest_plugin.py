"""pytest fixtures for your own DAG tests: a sandbox, and the default connections pointing at it.

Opt in from a ``conftest.py`` (the plugin is not loaded unless asked for)::

    pytest_plugins = ["airflow_provider_segments.sandbox.pytest_plugin"]

    def test_my_dag_syncs_the_audience(segments_sandbox, segments_sandbox_connections):
        ...  # run the task or dag.test(); walkme_default and zendesk_help_center_default reach the sandbox
        (segment,) = segments_sandbox.walkme.segments(SANDBOX_SYSTEM_GUID)
        assert segments_sandbox.walkme.members(SANDBOX_SYSTEM_GUID, segment["guid"]) == expected_ids

Each test gets its own server on a free 127.0.0.1 port; nothing starts when this module is imported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_segments.sandbox.server import SandboxServer

__all__ = ["sandbox_connection_env", "segments_sandbox", "segments_sandbox_connections"]


def sandbox_connection_env(url: str, **extra: Any) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` values that point ``walkme_default`` and ``zendesk_help_center_default`` at ``url``.

    They carry the sandbox-only credentials (WalkMe client credentials and system GUID, Zendesk
    ``api_token`` auth). ``extra`` goes into both connections' extras, e.g. ``timeout=5`` or
    ``backoff_initial=0.01`` for quick retries in tests.
    """
    from airflow_provider_segments.sandbox.walkme import (
        SANDBOX_CLIENT_ID,
        SANDBOX_CLIENT_SECRET,
        SANDBOX_SYSTEM_GUID,
    )
    from airflow_provider_segments.sandbox.zendesk import SANDBOX_ZENDESK_API_TOKEN, SANDBOX_ZENDESK_EMAIL

    walkme = {
        "conn_type": "walkme",
        "host": url,
        "login": SANDBOX_CLIENT_ID,
        "password": SANDBOX_CLIENT_SECRET,
        "extra": {"system_guid": SANDBOX_SYSTEM_GUID, **extra},
    }
    zendesk = {
        "conn_type": "zendesk_help_center",
        "host": url,
        "login": SANDBOX_ZENDESK_EMAIL,
        "password": SANDBOX_ZENDESK_API_TOKEN,
        "extra": {"auth_type": "api_token", **extra},
    }
    return {
        "AIRFLOW_CONN_WALKME_DEFAULT": json.dumps(walkme),
        "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT": json.dumps(zendesk),
    }


@pytest.fixture
def segments_sandbox() -> Iterator[SandboxServer]:
    """A running sandbox (WalkMe and Zendesk Help Center APIs) on a free 127.0.0.1 port, for one test."""
    from airflow_provider_segments.sandbox.server import SandboxServer

    with SandboxServer() as server:
        yield server


@pytest.fixture
def segments_sandbox_connections(
    segments_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point the default ``walkme`` and ``zendesk_help_center`` connections at ``segments_sandbox``.

    Sets the ``AIRFLOW_CONN_*`` variables for the test (with quick retries) and returns them, so a
    test that starts Airflow in a subprocess can pass them on.
    """
    env = sandbox_connection_env(segments_sandbox.url, backoff_initial=0.01, backoff_max=0.05)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
