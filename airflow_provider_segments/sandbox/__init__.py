"""Local servers that speak the segment APIs, for the demo and the tests (standard library only).

Start one in a test::

    with SandboxServer() as sandbox:  # a free port on 127.0.0.1
        ...  # point a WalkMe connection at sandbox.url, log in with the SANDBOX_* credentials
        ...  # or a Zendesk one, with the SANDBOX_ZENDESK_* credentials (same URL, same port)

or from a shell: ``python -m airflow_provider_segments.sandbox --port 8080``.
"""

from __future__ import annotations

from airflow_provider_segments.sandbox.server import SandboxServer
from airflow_provider_segments.sandbox.walkme import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_SYSTEM_GUID,
)
from airflow_provider_segments.sandbox.zendesk import (
    SANDBOX_ZENDESK_API_TOKEN,
    SANDBOX_ZENDESK_EMAIL,
    SANDBOX_ZENDESK_OAUTH_TOKEN,
    SANDBOX_ZENDESK_PASSWORD,
)

__all__ = [
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_SYSTEM_GUID",
    "SANDBOX_ZENDESK_API_TOKEN",
    "SANDBOX_ZENDESK_EMAIL",
    "SANDBOX_ZENDESK_OAUTH_TOKEN",
    "SANDBOX_ZENDESK_PASSWORD",
    "SandboxServer",
]
