"""pytest fixtures for your own DAG tests: a test server, and the default connections pointing at it.

Opt in from a ``conftest.py`` (the plugin is not loaded unless asked for)::

    pytest_plugins = ["airflow_provider_segments.testing.pytest_plugin"]

    def test_my_dag_syncs_the_audience(segments_test_server, segments_test_connections):
        ...  # run the task or dag.test(); walkme_default and zendesk_help_center_default reach it
        (segment,) = segments_test_server.walkme.segments(TEST_SYSTEM_GUID)
        assert segments_test_server.walkme.members(TEST_SYSTEM_GUID, segment["guid"]) == expected_ids

Each test gets its own server on a free 127.0.0.1 port; nothing starts when this module is imported.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from airflow_provider_segments.testing.connections import connection_env

if TYPE_CHECKING:
    from airflow_provider_segments.testing.server import SegmentsTestServer

__all__ = ["connection_env", "segments_test_connections", "segments_test_server"]


@pytest.fixture
def segments_test_server() -> Iterator[SegmentsTestServer]:
    """A running test server (WalkMe and Zendesk Help Center APIs) on a free 127.0.0.1 port, for one test."""
    from airflow_provider_segments.testing.server import SegmentsTestServer

    with SegmentsTestServer() as server:
        yield server


@pytest.fixture
def segments_test_connections(
    segments_test_server: SegmentsTestServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point the default ``walkme`` and ``zendesk_help_center`` connections at ``segments_test_server``.

    Sets the ``AIRFLOW_CONN_*`` variables for the test (with quick retries) and returns them, so a
    test that starts Airflow in a subprocess can pass them on.
    """
    env = connection_env(segments_test_server.url, backoff_initial=0.01, backoff_max=0.05)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
