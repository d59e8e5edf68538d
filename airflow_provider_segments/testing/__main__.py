"""Run the test server in the foreground: ``python -m airflow_provider_segments.testing [--port 8080]``.

Stops cleanly on Ctrl-C or SIGTERM (exit status 0).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from airflow_provider_segments.testing import (
    TEST_CLIENT_ID,
    TEST_SYSTEM_GUID,
    TEST_ZENDESK_EMAIL,
    SegmentsTestServer,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_segments.testing",
        description=(
            "Serve local fakes of the WalkMe Segments API and the Zendesk Help Center User Segments API "
            "on one port (test-only credentials)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port, 0 for a free one (default: 8080)")
    parser.add_argument(
        "--token-ttl",
        type=float,
        default=86400,
        help="access-token lifetime in seconds (default: 86400)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host; anyone who can reach it can use the public test credentials",
    )
    parser.add_argument("--verbose", action="store_true", help="print one access-log line per request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start the test server, print where it listens, and serve until Ctrl-C or SIGTERM."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.token_ttl <= 0:
        parser.error("--token-ttl must be positive")
    try:
        server = SegmentsTestServer(
            args.host,
            args.port,
            token_ttl=args.token_ttl,
            allow_remote=args.allow_remote,
            log_requests=args.verbose,
        )
    except ValueError as exc:
        parser.error(str(exc))
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def _request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    with server:
        print(
            f"WalkMe Segments and Zendesk Help Center test server listening on {server.url} - test-only "
            f"credentials: WalkMe client id {TEST_CLIENT_ID!r}, system GUID {TEST_SYSTEM_GUID!r} "
            "(client secret: airflow_provider_segments.testing.TEST_CLIENT_SECRET); "
            f"Zendesk email {TEST_ZENDESK_EMAIL!r} (API token, password and OAuth token: "
            "airflow_provider_segments.testing.TEST_ZENDESK_API_TOKEN, TEST_ZENDESK_PASSWORD, "
            "TEST_ZENDESK_OAUTH_TOKEN); AIRFLOW_CONN_* lines to paste: "
            f"python -m airflow_provider_segments.testing.connections {server.url}; Ctrl-C stops",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    print("test server stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
