"""Run the sandbox in the foreground: ``python -m airflow_provider_segments.sandbox [--port 8080]``.

Stops cleanly on Ctrl-C or SIGTERM (exit status 0).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from airflow_provider_segments.sandbox import (
    SANDBOX_CLIENT_ID,
    SANDBOX_SYSTEM_GUID,
    SANDBOX_ZENDESK_EMAIL,
    SandboxServer,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_segments.sandbox",
        description=(
            "Serve local fakes of the WalkMe Segments API and the Zendesk Help Center User Segments API "
            "on one port (sandbox-only credentials)."
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
        help="allow a non-loopback --host; anyone who can reach it can use the public sandbox credentials",
    )
    parser.add_argument("--verbose", action="store_true", help="print one access-log line per request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start the sandbox, print where it listens, and serve until Ctrl-C or SIGTERM."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.token_ttl <= 0:
        parser.error("--token-ttl must be positive")
    try:
        server = SandboxServer(
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
            f"WalkMe Segments and Zendesk Help Center sandbox listening on {server.url} - sandbox-only "
            f"credentials: WalkMe client id {SANDBOX_CLIENT_ID!r}, system GUID {SANDBOX_SYSTEM_GUID!r} "
            "(client secret: airflow_provider_segments.sandbox.SANDBOX_CLIENT_SECRET); "
            f"Zendesk email {SANDBOX_ZENDESK_EMAIL!r} (API token, password and OAuth token: "
            "airflow_provider_segments.sandbox.SANDBOX_ZENDESK_API_TOKEN, SANDBOX_ZENDESK_PASSWORD, "
            "SANDBOX_ZENDESK_OAUTH_TOKEN); Ctrl-C stops",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    print("sandbox stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
