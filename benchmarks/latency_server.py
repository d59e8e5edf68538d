"""The sandbox with a realistic write latency: each segment write is answered after 200 ms plus 20 us
per id it carries (a 25,000-id chunk: 0.7 s), for ``sync_benchmark.py --latency``.

A benchmark-local wrapper around the sandbox's dispatch (the sandbox package itself is unchanged):
the write is applied, then its answer is held. Other calls (token, listing) answer at once. The
server handles each request in its own thread, so writes sent at once are delayed at once, as a
real API serving several connections would.

Run: ``python benchmarks/latency_server.py [--base 0.2] [--per-id 0.00002]``; prints the URL on
its first stdout line and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any

WRITE_BASE_SECONDS = 0.2
WRITE_SECONDS_PER_ID = 20e-6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=float, default=WRITE_BASE_SECONDS, help="seconds per write")
    parser.add_argument("--per-id", type=float, default=WRITE_SECONDS_PER_ID, help="seconds per id")
    args = parser.parse_args()

    from airflow_provider_segments.testing import SegmentsTestServer

    server = SegmentsTestServer("127.0.0.1", 0)
    dispatch = server.httpd.dispatch

    def slow_writes(request: Any) -> Any:
        response = dispatch(request)
        if request.method in ("POST", "PUT") and request.path.startswith("/public/"):
            time.sleep(args.base + args.per_id * int(request.log.get("ids", 0)))
        return response

    server.httpd.dispatch = slow_writes  # type: ignore[method-assign]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    with server:
        print(f"latency sandbox listening on {server.url}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
