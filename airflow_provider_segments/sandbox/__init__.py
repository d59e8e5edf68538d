"""Local servers that speak the segment APIs, for the demo and the tests (standard library only).

Start one in a test::

    with SandboxServer() as sandbox:  # a free port on 127.0.0.1
        ...  # point a WalkMe connection at sandbox.url, log in with the SANDBOX_* credentials

or from a shell: ``python -m airflow_provider_segments.sandbox --port 8080``.
"""

from __future__ import annotations

from airflow_provider_segments.sandbox.server import SandboxServer
from airflow_provider_segments.sandbox.walkme import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_SYSTEM_GUID,
)

__all__ = ["SANDBOX_CLIENT_ID", "SANDBOX_CLIENT_SECRET", "SANDBOX_SYSTEM_GUID", "SandboxServer"]
