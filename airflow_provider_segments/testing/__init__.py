"""Local servers that speak the segment APIs, for the demo and the tests (standard library only).

Start one in a test::

    with SegmentsTestServer() as server:  # a free port on 127.0.0.1
        os.environ.update(connection_env(server.url))  # walkme_default, zendesk_help_center_default
        ...  # or point a WalkMe connection at server.url yourself, with the TEST_* credentials
        ...  # or a Zendesk one, with the TEST_ZENDESK_* credentials (same URL, same port)

or from a shell: ``python -m airflow_provider_segments.testing --port 8080``.
"""

from __future__ import annotations

from airflow_provider_segments.testing.connections import connection_env, export_lines
from airflow_provider_segments.testing.server import SegmentsTestServer
from airflow_provider_segments.testing.walkme import (
    TEST_CLIENT_ID,
    TEST_CLIENT_SECRET,
    TEST_SYSTEM_GUID,
)
from airflow_provider_segments.testing.zendesk import (
    TEST_ZENDESK_API_TOKEN,
    TEST_ZENDESK_EMAIL,
    TEST_ZENDESK_OAUTH_TOKEN,
    TEST_ZENDESK_PASSWORD,
)

__all__ = [
    "TEST_CLIENT_ID",
    "TEST_CLIENT_SECRET",
    "TEST_SYSTEM_GUID",
    "TEST_ZENDESK_API_TOKEN",
    "TEST_ZENDESK_EMAIL",
    "TEST_ZENDESK_OAUTH_TOKEN",
    "TEST_ZENDESK_PASSWORD",
    "SegmentsTestServer",
    "connection_env",
    "export_lines",
]
