"""Ready-to-use ``AIRFLOW_CONN_*`` values for a running test server (no pytest needed).

``python -m airflow_provider_segments.testing.connections [URL]`` prints them as shell ``export``
lines to paste where Airflow runs (URL: the one the server printed, default http://127.0.0.1:8080);
:func:`connection_env` gives them to code (a ``conftest.py``, a script that starts Airflow). They
hold the public test-only credentials, which is why the server's own start-up line does not.
"""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Sequence
from typing import Any

from airflow_provider_segments.testing.walkme import TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_SYSTEM_GUID
from airflow_provider_segments.testing.zendesk import TEST_ZENDESK_API_TOKEN, TEST_ZENDESK_EMAIL

__all__ = ["connection_env", "export_lines"]


def connection_env(url: str, **extra: Any) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` values that point ``walkme_default`` and ``zendesk_help_center_default`` at ``url``.

    They carry the test-only credentials (WalkMe client credentials and system GUID, Zendesk
    ``api_token`` auth). ``extra`` goes into both connections' extras, e.g. ``timeout=5`` or
    ``backoff_initial=0.01`` for quick retries in tests.
    """
    walkme = {
        "conn_type": "walkme",
        "host": url,
        "login": TEST_CLIENT_ID,
        "password": TEST_CLIENT_SECRET,
        "extra": {"system_guid": TEST_SYSTEM_GUID, **extra},
    }
    zendesk = {
        "conn_type": "zendesk_help_center",
        "host": url,
        "login": TEST_ZENDESK_EMAIL,
        "password": TEST_ZENDESK_API_TOKEN,
        "extra": {"auth_type": "api_token", **extra},
    }
    return {
        "AIRFLOW_CONN_WALKME_DEFAULT": json.dumps(walkme),
        "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT": json.dumps(zendesk),
    }


def export_lines(url: str, **extra: Any) -> list[str]:
    """``export AIRFLOW_CONN_...='...'`` lines for a POSIX shell, one per connection (see
    :func:`connection_env`), quoted so that they can be pasted as they are."""
    return [f"export {name}={shlex.quote(value)}" for name, value in connection_env(url, **extra).items()]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the ``export`` lines for the test server at the URL given (or the default)."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_segments.testing.connections",
        description="Print AIRFLOW_CONN_* export lines pointing the default connections at a test server.",
    )
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8080", help="the server's URL")
    args = parser.parse_args(argv)
    for line in export_lines(args.url):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
