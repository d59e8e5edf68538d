"""Test set-up shared by every test: an isolated AIRFLOW_HOME and connection fixtures."""

from __future__ import annotations

import os
import tempfile

# Airflow reads its configuration at import: point it at a throw-away home before anything imports it.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="segments-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# Every test runs with DEBUG logging, so secret scans also see what only shows at DEBUG.
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "DEBUG")

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings
from support import sandbox_conn_env, walkme_conn_json, zendesk_conn_json

# Property tests check what is computed, not how fast: Hypothesis's default deadline of 200 ms an
# example fails a test (DeadlineExceeded, then Flaky) whenever a busy 2-core CI machine pauses one.
settings.register_profile("segments", deadline=None)
settings.load_profile("segments")


@pytest.fixture
def walkme_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    """Install ``walkme_default`` pointing at https://walkme.test (for requests-mock)."""
    monkeypatch.setenv("AIRFLOW_CONN_WALKME_DEFAULT", walkme_conn_json())
    return "walkme_default"


@pytest.fixture
def zendesk_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    """Install ``zendesk_help_center_default`` for subdomain ``acme`` with an API token."""
    monkeypatch.setenv("AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT", zendesk_conn_json())
    return "zendesk_help_center_default"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The local sandbox (WalkMe and Zendesk) on a free port, with the default connections pointing
    at it. A module that needs other connection settings defines a ``sandbox`` of its own."""
    from airflow_provider_segments.testing import SegmentsTestServer  # Airflow: only for tests that use it

    with SegmentsTestServer() as server:
        for name, value in sandbox_conn_env(server.url).items():
            monkeypatch.setenv(name, value)
        yield server


def pytest_unconfigure(config: pytest.Config) -> None:
    """Airflow's atexit hook logs "Disposing DB connection pool" to a stream pytest has closed by
    then; silence that harmless "--- Logging error ---" noise at interpreter exit."""
    import logging

    logging.raiseExceptions = False
