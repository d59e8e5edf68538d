"""The floor for ``sync_benchmark.py``: push a file of ids into a new WalkMe segment with plain requests.

What a competent engineer writes as a "minimal script", with none of the provider's work: no Airflow,
no validation, no deduplication, no retries, no snapshot. One ``requests.Session``: a token
(``POST /accounts/connect/token``, HTTP Basic auth, form ``grant_type=client_credentials``), then the
file is streamed in chunks of 25,000 lines (never all ids in memory): the first chunk creates the
segment (``POST .../segment``), every further chunk is an ``add`` (``PUT .../segment/{guid}``) - the
same URLs and payloads the provider sends.

Run (the sync benchmark does; the client id and secret come from the environment)::

    WALKME_CLIENT_ID=... WALKME_CLIENT_SECRET=... python benchmarks/baseline_plain_requests.py \\
        --url http://127.0.0.1:8080 --system-guid GUID --name "my segment" ids.txt

``--from-list`` reads the file into a list first (outside the clock), as when the ids come as a
list from XCom, and sends slices of it.

The last stdout line is JSON: ``seconds`` (token, file and every call; imports excluded),
``peak_rss_kib`` (peak resident memory, ``VmHWM``), ``start_rss_kib`` (resident memory before the
token), ``requests``, ``writes``, ``ids`` and ``segment_guid``. ``VmHWM`` rather than ``ru_maxrss``:
on Linux a child's ``ru_maxrss`` starts at its parent's resident size when it was spawned.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Iterator
from itertools import islice

import requests

MAX_IDS_PER_REQUEST = 25_000
TOKEN_PATH = "/accounts/connect/token"
SEGMENTS_PATH = "/public/v1/user/system/{system_guid}/segment"
TIMEOUT = (10, 300)


def id_chunks(path: str, size: int = MAX_IDS_PER_REQUEST) -> Iterator[list[str]]:
    """Yield the file's non-blank lines, stripped, in lists of at most ``size``."""
    with open(path, encoding="utf-8") as handle:
        ids = (line.strip() for line in handle)
        non_blank = (user_id for user_id in ids if user_id)
        while chunk := list(islice(non_blank, size)):
            yield chunk


def list_chunks(ids: list[str], size: int = MAX_IDS_PER_REQUEST) -> Iterator[list[str]]:
    """Yield slices of at most ``size`` ids."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def push(
    url: str,
    client_id: str,
    client_secret: str,
    system_guid: str,
    name: str,
    path: str,
    ids: list[str] | None = None,
) -> dict:
    """Create segment ``name`` holding the ids of ``path`` (or ``ids``); return what was sent."""
    with requests.Session() as session:
        response = session.post(
            f"{url}{TOKEN_PATH}",
            data={"grant_type": "client_credentials"},
            auth=(client_id, client_secret),
            timeout=TIMEOUT,
        )
        response.raise_for_status()
        session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        segments = f"{url}{SEGMENTS_PATH.format(system_guid=system_guid)}"
        guid = None
        writes = sent = 0
        for chunk in id_chunks(path) if ids is None else list_chunks(ids):
            if guid is None:
                response = session.post(segments, json={"name": name, "userIds": chunk}, timeout=TIMEOUT)
                response.raise_for_status()
                guid = response.json()["guid"]
            else:
                response = session.put(
                    f"{segments}/{guid}", json={"action": "add", "userIds": chunk}, timeout=TIMEOUT
                )
                response.raise_for_status()
            writes += 1
            sent += len(chunk)
    return {"requests": writes + 1, "writes": writes, "ids": sent, "segment_guid": guid}


def memory_kib(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in KiB; ``ru_maxrss`` where /proc is absent."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="API base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--system-guid", required=True)
    parser.add_argument("--name", required=True, help="name of the segment to create")
    parser.add_argument("path", help="file of ids, one per line")
    parser.add_argument("--from-list", action="store_true", help="read the file into a list first")
    args = parser.parse_args()
    ids = None
    if args.from_list:
        with open(args.path, encoding="utf-8") as handle:
            ids = handle.read().split()

    start_rss = memory_kib("VmRSS")
    started = time.perf_counter()
    sent = push(
        args.url.rstrip("/"),
        os.environ["WALKME_CLIENT_ID"],
        os.environ["WALKME_CLIENT_SECRET"],
        args.system_guid,
        args.name,
        args.path,
        ids,
    )
    seconds = time.perf_counter() - started
    peak = memory_kib("VmHWM")
    print(json.dumps({"seconds": seconds, "peak_rss_kib": peak, "start_rss_kib": start_rss, **sent}))


if __name__ == "__main__":
    main()
