"""Time, requests and memory of ``WalkMeSyncSegmentOperator`` against a plain-requests floor.

Run: ``.venv-newest/bin/python benchmarks/sync_benchmark.py`` (after ``make demo`` or ``make test``);
``--quick`` for 100,000 ids only, ``--sizes 100000 500000`` to choose, ``--10m`` to add 10,000,000
ids (slow: several minutes more), ``--latency-size 0`` / ``--list-size 0`` to skip those modes.

Everything talks HTTP to the local sandbox, which runs in a process of its own (its memory is not
counted). For each size N (1M and 3M by default) a file of N e-mail-like ids is synced into a new
segment, each run in a fresh process:

- provider: ``WalkMeSyncSegmentOperator(name=..., user_ids_path=..., state_path=...,
  full_refresh=True).execute({})`` with ``AIRFLOW_CONN_WALKME_DEFAULT`` pointing at the sandbox;
- baseline: ``benchmarks/baseline_plain_requests.py``, the same calls from a minimal script that
  streams the file and holds one chunk at a time (no Airflow, no validation, no snapshot).

The list-input mode does the same with the ids given as a Python list (``user_ids=``; the baseline
sends slices of a list), read before the clock starts. The files are in ascending order, as an
export sorted by id is, which the provider dedupes at one comparison per id; the shuffled-file mode
(``--shuffled-size 0`` skips it) syncs the same ids in no order, which needs a set. Before any
measured run one small unmeasured sync caches the bytecode of the modules a sync loads on first use,
as an installed package has it. The latency mode runs against
``benchmarks/latency_server.py``, which answers each write after 200 ms plus 20 us per id: the
sequential bare loop against the provider at ``max_parallel_requests`` 1 and 4 (the default).

"sync s" runs from just before the work (``execute`` / the token call) to its end; imports are
excluded and shown in "process s" (the whole process, interpreter start included). Peak RSS is the
process's ``VmHWM`` (not ``ru_maxrss``: on Linux a child's ``ru_maxrss`` starts at the resident size
of the parent that spawned it); "start RSS" is its resident size when the sync began (for the
provider, mostly Airflow's import), "growth" the difference. Request counts come from the sandbox's
request log: a full sync into a new segment sends ceil(N/25,000) writes plus 3 reads (token, name
look-up, the read-back that verifies the change); an override of an existing segment reads it back
once more, after its override chunk.

Then a delta sync (N = 1,000,000 by default; 1% churn: 0.5% of the ids removed, as many added) with
the snapshot of a full sync, compared with a full override of the same ids; the import cost of the
operator module on top of ``import airflow``; and a check that importing and constructing the
WalkMe operators neither connects nor touches files. ``--profile`` / ``--tracemalloc`` print where
the provider's time / memory goes.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import platform
import random
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

# The baseline script sits beside this one (a script's folder is on sys.path): one memory probe for both.
from baseline_plain_requests import memory_kib

DEFAULT_SIZES = (1_000_000, 3_000_000)
LARGE_SIZE = 10_000_000  # --10m
QUICK_SIZE = 100_000
LIST_SIZE = 1_000_000  # the list-input comparison (ids given as a Python list, not a file)
LATENCY_SIZE = 3_000_000  # --latency: writes answered after 200 ms + 20 us per id
LATENCY_PARALLEL = (1, 4)  # max_parallel_requests compared in the latency mode (4: the default)
IDS_PER_REQUEST = 25_000  # the WalkMe limit (hooks/walkme.py: MAX_IDS_PER_REQUEST)
ID_FORMAT = "user{:07d}@enterprise.example.com"  # 34 characters

# Targets of issue 19 (the time ratio was 1.25 before it).
MAX_TIME_RATIO = 1.0
MAX_RSS_RATIO = 1.5
MAX_RSS_KIB_AT_3M = 1024 * 1024
MAX_RSS_KIB_AT_10M = 1024 * 1024
MAX_GROWTH_KIB_AT_3M = 256 * 1024
MAX_LATENCY_RATIO = 0.35
#: Requests of a full sync into a new segment besides its writes: the token, the name look-up and
#: the read-back that verifies the change.
READS_PER_FULL_SYNC = 3
LATENCY_SANDBOX = Path(__file__).with_name("latency_server.py")
MAX_DELTA_WRITES = 3
MAX_IMPORT_MS = 50.0

SYNC_TIMEOUT = 15 * 60
SHORT_TIMEOUT = 120
BASELINE = Path(__file__).with_name("baseline_plain_requests.py")
WORKER_COMMAND = "_provider-worker"
CONSTRUCT_COMMAND = "_construct-worker"
MISSING_CONN_ID = "benchmark_connection_that_does_not_exist"
SEGMENT_GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"
IMPORT_SNIPPET = (
    "import importlib, json, time; importlib.import_module('airflow'); started = time.perf_counter(); "
    "importlib.import_module('airflow_provider_segments.operators.walkme'); "
    "print(json.dumps({'seconds': time.perf_counter() - started}))"
)


class BenchmarkError(RuntimeError):
    """A run failed: the benchmark stops and shows why."""


# -- measured in the subprocesses -------------------------------------------------------------------


def provider_worker(argv: list[str]) -> None:
    """In a fresh process: sync a file with the operator, print JSON timings and memory last."""
    parser = argparse.ArgumentParser(prog=WORKER_COMMAND)
    parser.add_argument("--ids-file", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--full-refresh", action="store_true")
    parser.add_argument("--from-list", action="store_true", help="read the file into a list first")
    parser.add_argument("--max-parallel-requests", type=int)
    parser.add_argument("--profile-out")
    parser.add_argument("--tracemalloc-out")
    args = parser.parse_args(argv)

    # Imports are outside the clock, as in the baseline (which imports requests at its top; the
    # provider imports it on first use, so that DAG parsing never pays for it). An Airflow 3 task
    # process is forked by the Task SDK's supervisor, with the supervisor's modules (connection
    # look-up, secrets backends) loaded: imported here too, instead of by the first connection
    # look-up inside the clock (~60 ms on the project machine). Its task runner then starts the
    # listener manager (``on_starting``, before any task code runs), which loads the plugins
    # (OpenLineage's among them): done here too, so the first lineage call does not pay for it.
    import airflow.sdk.execution_time.supervisor  # noqa: F401
    import requests  # noqa: F401
    from airflow.sdk.listener import get_listener_manager

    get_listener_manager()

    from airflow_provider_segments.operators.walkme import WalkMeSyncSegmentOperator

    source: dict[str, Any] = {"user_ids_path": args.ids_file}
    if args.from_list:  # as a list from XCom or a DAG: in memory before the task starts
        with open(args.ids_file, encoding="utf-8") as handle:
            source = {"user_ids": handle.read().split()}
    if args.max_parallel_requests is not None:
        source["max_parallel_requests"] = args.max_parallel_requests
    operator = WalkMeSyncSegmentOperator(
        task_id="benchmark_sync",
        name=args.name,
        state_path=args.state,
        full_refresh=args.full_refresh,
        **source,
    )
    with _tracemalloc_checkpoints(args.tracemalloc_out), _profiled(args.profile_out):
        start_rss = memory_kib("VmRSS")
        started = time.perf_counter()
        result = operator.execute({})
        seconds = time.perf_counter() - started
    report = {
        "seconds": seconds,
        "peak_rss_kib": memory_kib("VmHWM"),
        "start_rss_kib": start_rss,
        "result": result,
    }
    print(json.dumps(report, default=str), flush=True)


@contextmanager
def _profiled(out: str | None) -> Iterator[None]:
    if not out:
        yield
        return
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text).strip_dirs()
        stats.sort_stats("cumulative").print_stats(18)
        stats.sort_stats("tottime").print_stats(12)
        Path(out).write_text(text.getvalue())


@contextmanager
def _tracemalloc_checkpoints(out: str | None) -> Iterator[None]:
    """Trace allocations; report the top sites when the hook starts and when the snapshot is written.

    The checkpoints wrap the sync module's plan functions and the snapshot write in this process only
    (benchmark instrumentation; the package is not changed).
    """
    if not out:
        yield
        return
    import tracemalloc

    from airflow_provider_segments.membership import state, sync

    lines: list[str] = []

    def checkpoint(label: str) -> None:
        current, peak = tracemalloc.get_traced_memory()
        lines.append(f"-- {label}: traced now {current / 2**20:.1f} MiB, peak so far {peak / 2**20:.1f} MiB")
        for stat in tracemalloc.take_snapshot().statistics("lineno")[:6]:
            frame = stat.traceback[0]
            where = f"{Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.lineno}"
            lines.append(f"   {stat.size / 2**20:8.1f} MiB {stat.count:>10,} blocks  {where}")

    def wrap(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            checkpoint(label)
            return original(*args, **kwargs)

        setattr(owner, name, wrapper)

    wrap(sync, "full_plan", "ids read, before the full plan")
    wrap(sync, "delta_plan", "ids read, before the delta plan")
    wrap(state.StateStore, "write_snapshot", "requests sent, before the snapshot is written")
    tracemalloc.start()
    try:
        yield
        checkpoint("end of execute")
    finally:
        tracemalloc.stop()
        Path(out).write_text("\n".join(lines) + "\n")


def construct_worker() -> None:
    """In a fresh process: import and construct every WalkMe operator; report any I/O (audit events)."""
    import importlib
    import socket

    importlib.import_module("airflow")
    from airflow.sdk import DAG

    events: list[tuple[str, str, str]] = []
    phase = ["import"]

    def audit(event: str, args: tuple) -> None:
        if event == "open":
            target = str(args[0])
            if target.endswith((".py", ".pyc", ".so")):
                return  # the import system reading module code
            events.append((phase[0], event, target[:100]))
        elif event.startswith(("socket.", "subprocess.", "sqlite3.", "http.client.")):
            events.append((phase[0], event, repr(args)[:100]))

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("sync_benchmark: no network allowed while importing or constructing operators")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    sys.addaudithook(audit)
    operators = importlib.import_module("airflow_provider_segments.operators.walkme")
    sensors = importlib.import_module("airflow_provider_segments.sensors.walkme")
    phase[0] = "setup"  # not counted: Airflow's own DAG set-up (croniter runs `file` on the interpreter)
    dag = DAG("benchmark_construct", schedule=None)
    phase[0] = "construct"
    common = {"walkme_conn_id": MISSING_CONN_ID}
    built: list[str] = []
    error = None
    try:
        with dag:
            for make in (
                lambda: operators.WalkMeCreateSegmentOperator(
                    task_id="c", name="n", user_ids=["a"], **common
                ),
                lambda: operators.WalkMeUpdateSegmentOperator(
                    task_id="u",
                    segment_guid=SEGMENT_GUID,
                    action="add",
                    user_ids_path="/nowhere/ids.txt",
                    **common,
                ),
                lambda: operators.WalkMeSyncSegmentOperator(
                    task_id="s",
                    name="n",
                    user_ids_path="s3://nowhere/ids.txt",
                    state_path="/nowhere/state",
                    **common,
                ),
                lambda: operators.WalkMeDeleteSegmentOperator(
                    task_id="d", segment_guid=SEGMENT_GUID, **common
                ),
                lambda: operators.WalkMeListSegmentsOperator(task_id="l", **common),
                lambda: sensors.WalkMeSegmentPropagationSensor(
                    task_id="p", segment_guid=SEGMENT_GUID, **common
                ),
                lambda: sensors.WalkMeSegmentPropagationSensor(
                    task_id="p2", segment_guid=SEGMENT_GUID, deferrable=False, **common
                ),
            ):
                built.append(type(make()).__name__)
    except Exception as exc:  # reported as a MISS by the parent
        error = f"{type(exc).__name__}: {exc}"
    phase[0] = "done"
    print(json.dumps({"events": events, "built": built, "error": error}), flush=True)


# -- the parent: sandbox, files, runs, report ---------------------------------------------------------


@dataclass
class Run:
    """One measured sync."""

    label: str
    n: int
    seconds: float
    process_seconds: float
    peak_rss_kib: int
    start_rss_kib: int
    requests: int
    writes: int
    ids_sent: int
    users_in_segment: int | None
    result: dict[str, Any] = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds else math.inf


@dataclass
class ImportCost:
    """Milliseconds of ``import airflow_provider_segments.operators.walkme`` after ``import airflow``."""

    median_ms: float
    samples_ms: list[float]
    importtime_by_package: list[tuple[str, float]]
    importtime_total_ms: float
    as_is_median_ms: float | None


class Sandbox:
    """The sandbox in a subprocess of its own, steered over its control endpoints."""

    def __init__(self, log_path: Path, command: list[str] | None = None) -> None:
        self.log_path = log_path
        self.command = command or [sys.executable, "-m", "airflow_provider_segments.testing"]
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self._token: str | None = None

    def start(self, env: dict[str, str], timeout: float = 60) -> None:
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [*self.command, "--host", "127.0.0.1", "--port", "0"]
                if self.command[-1].endswith(".testing")
                else self.command,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            )
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        found = [word for word in line.split() if word.startswith("http://")]
        if not found:
            raise BenchmarkError(f"the sandbox did not start: {line!r} {self.log_path.read_text()[-2000:]}")
        self.url = found[0].rstrip("/")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Any:
        import urllib.request  # here, so the workers that import this file do not load it

        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        with urllib.request.urlopen(request, timeout=SHORT_TIMEOUT) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def reset(self) -> None:
        self.call("POST", "/_sandbox/reset")
        self._token = None

    def request_log(self) -> list[dict[str, Any]]:
        return self.call("GET", "/_sandbox/requests")

    def clear_log(self) -> None:
        self.call("DELETE", "/_sandbox/requests")

    def users_count(self, system_guid: str, segment_guid: str, client: tuple[str, str]) -> int | None:
        """``usersCount`` of a segment as the API lists it (two requests the benchmark does not count)."""
        if self._token is None:
            basic = base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()
            headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}
            body = b"grant_type=client_credentials"
            self._token = self.call("POST", "/accounts/connect/token", body, headers)["access_token"]
        listed = self.call(
            "GET",
            f"/public/v1/user/system/{system_guid}/segment",
            headers={"Authorization": f"Bearer {self._token}"},
        )
        counts = [seg["usersCount"] for seg in listed if seg["guid"] == segment_guid]
        return counts[0] if counts else None

    def members(self, system_guid: str, segment_guid: str) -> list[str]:
        return self.call("GET", f"/_sandbox/walkme/systems/{system_guid}/segments/{segment_guid}/users")[
            "userIds"
        ]


def median_run(runs: list[Run]) -> Run:
    """The run of median sync time (the upper one of an even count), with every sample's time."""
    chosen = sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]
    chosen.samples = sorted(run.seconds for run in runs)
    return chosen


def count_requests(log: list[dict[str, Any]]) -> tuple[int, int, int]:
    """Total requests, segment writes (POST/PUT under /public/) and the ids those writes carried."""
    writes = [
        entry
        for entry in log
        if entry["method"] in ("POST", "PUT")
        and entry["path"].startswith("/public/")
        and "/segment" in entry["path"]
    ]
    failed = [entry for entry in log if entry["status"] is None or entry["status"] >= 400]
    if failed:
        raise BenchmarkError(f"the sandbox answered errors: {failed[:3]}")
    return len(log), len(writes), sum(entry.get("ids", 0) for entry in writes)


def write_ids(path: Path, ids: Callable[[], Iterator[int]]) -> None:
    """Write one id per line for the numbers ``ids()`` yields."""
    with open(path, "w", encoding="utf-8") as handle:
        block: list[str] = []
        for number in ids():
            block.append(ID_FORMAT.format(number))
            if len(block) == 100_000:
                handle.write("\n".join(block) + "\n")
                block.clear()
        if block:
            handle.write("\n".join(block) + "\n")


def churned_numbers(n: int) -> tuple[Callable[[], Iterator[int]], int]:
    """The numbers of a 1% churn of ``range(n)``: every 200th removed, as many new ones appended."""
    step = 200
    changed = len(range(0, n, step))

    def numbers() -> Iterator[int]:
        yield from (i for i in range(n) if i % step)
        yield from range(n, n + changed)

    return numbers, changed


class Bench:
    """Runs the subprocesses and keeps the figures."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        from airflow_provider_segments.testing import (
            TEST_CLIENT_ID,
            TEST_CLIENT_SECRET,
            TEST_SYSTEM_GUID,
        )

        self.args = args
        self.workdir = workdir
        self.client = (TEST_CLIENT_ID, TEST_CLIENT_SECRET)
        self.system_guid = TEST_SYSTEM_GUID
        self.sandbox = Sandbox(workdir / "sandbox.log")
        self.started = time.monotonic()
        self.airflow_home = workdir / "airflow-home"
        self.airflow_home.mkdir()

    def progress(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f} s] {message}", flush=True)

    def env(self, *, warm_bytecode: bool = True, **extra: str) -> dict[str, str]:
        """Environment of the subprocesses: a private Airflow home, no inherited connections.

        With ``warm_bytecode`` Python caches bytecode under the temporary directory (as an installed
        package has its ``.pyc``), even where ``PYTHONDONTWRITEBYTECODE`` is set; nothing is written
        to the source tree.
        """
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW_CONN_")}
        if warm_bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.workdir / "pycache")
        env.update(
            AIRFLOW_HOME=str(self.airflow_home),
            AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            **extra,
        )
        return env

    def provider_env(self) -> dict[str, str]:
        conn = {
            "conn_type": "walkme",
            "host": self.sandbox.url,
            "login": self.client[0],
            "password": self.client[1],
            "extra": {"system_guid": self.system_guid},
        }
        return self.env(AIRFLOW_CONN_WALKME_DEFAULT=json.dumps(conn))

    def run_json(
        self, command: list[str], env: dict[str, str], timeout: float
    ) -> tuple[dict[str, Any], float]:
        """Run a subprocess; return the JSON object on its last JSON stdout line and its wall time."""
        started = time.perf_counter()
        try:
            proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise BenchmarkError(f"timed out after {timeout:.0f} s: {' '.join(command)[:200]}") from exc
        elapsed = time.perf_counter() - started
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith("{"):
                try:
                    return json.loads(line), elapsed
                except ValueError:
                    continue
        raise BenchmarkError(
            f"exit {proc.returncode} without a result: {' '.join(command)[:200]}\n"
            f"stdout: {proc.stdout[-1500:]}\nstderr: {proc.stderr[-3000:]}"
        )

    # -- syncs --------------------------------------------------------------------------------------

    def provider(
        self,
        label: str,
        n: int,
        ids_file: Path,
        state: Path,
        *,
        full_refresh: bool,
        from_list: bool = False,
        parallel: int | None = None,
    ) -> Run:
        self.progress(f"provider: {label}, {n:,} ids ...")
        command = [sys.executable, __file__, WORKER_COMMAND, "--ids-file", str(ids_file)]
        command += ["--state", str(state), "--name", f"bench {n}"]
        if full_refresh:
            command.append("--full-refresh")
        if from_list:
            command.append("--from-list")
        if parallel is not None:
            command += ["--max-parallel-requests", str(parallel)]
        tag = "-".join("".join(c if c.isalnum() else " " for c in label).split()) + f"-{n}"
        if self.args.profile:
            command += ["--profile-out", str(self.workdir / f"profile-{tag}.txt")]
        if self.args.tracemalloc:
            command += ["--tracemalloc-out", str(self.workdir / f"tracemalloc-{tag}.txt")]
        report, elapsed = self.run_json(command, self.provider_env(), SYNC_TIMEOUT)
        result = report["result"]
        return self._finish(label, n, report, elapsed, result["segment_guid"], result)

    def baseline(self, n: int, ids_file: Path, *, from_list: bool = False) -> Run:
        self.progress(f"baseline: plain requests, {n:,} ids{' from a list' if from_list else ''} ...")
        command = [sys.executable, str(BASELINE), "--url", self.sandbox.url]
        command += ["--system-guid", self.system_guid, "--name", f"baseline {n}", str(ids_file)]
        if from_list:
            command.append("--from-list")
        env = self.env(WALKME_CLIENT_ID=self.client[0], WALKME_CLIENT_SECRET=self.client[1])
        report, elapsed = self.run_json(command, env, SYNC_TIMEOUT)
        return self._finish("baseline", n, report, elapsed, report["segment_guid"], {})

    def _finish(
        self, label: str, n: int, report: dict, elapsed: float, guid: str, result: dict[str, Any]
    ) -> Run:
        total, writes, ids_sent = count_requests(self.sandbox.request_log())
        run = Run(
            label=label,
            n=n,
            seconds=report["seconds"],
            process_seconds=elapsed,
            peak_rss_kib=report["peak_rss_kib"],
            start_rss_kib=report["start_rss_kib"],
            requests=total,
            writes=writes,
            ids_sent=ids_sent,
            users_in_segment=self.sandbox.users_count(self.system_guid, guid, self.client),
            result=result,
        )
        self.sandbox.clear_log()
        self.progress(
            f"  {run.seconds:.2f} s sync ({run.process_seconds:.1f} s process), {run.requests} requests "
            f"({run.writes} writes), peak RSS {run.peak_rss_kib / 1024:.0f} MiB, segment holds "
            f"{run.users_in_segment:,} ids"
        )
        return run

    def ids_file(self, n: int, *, shuffled: bool = False) -> Path:
        """The file of ``n`` ids, in ascending order or shuffled (written on first use)."""
        path = self.workdir / f"ids-{n}{'-shuffled' if shuffled else ''}.txt"
        if not path.exists():
            self.progress(f"writing {n:,} ids to {path.name} ...")
            numbers = list(range(n))
            if shuffled:
                random.Random(n).shuffle(numbers)
            write_ids(path, lambda: iter(numbers))
        return path

    def warm_sync(self) -> None:
        """One small sync, unmeasured: the modules a sync imports on first use get their bytecode
        cached, as an installed package has it (else the first measured run compiles them)."""
        self.progress("one small sync to warm the bytecode of what a sync loads on first use ...")
        self.provider(
            "warm-up sync", 1_000, self.ids_file(1_000), self.workdir / "warm.snapshot", full_refresh=True
        )
        self.sandbox.reset()

    def full_syncs(
        self, sizes: list[int], *, from_list: bool = False, shuffled: bool = False
    ) -> list[tuple[Run, Run]]:
        pairs = []
        label = (
            "full sync, list input" if from_list else "full sync, shuffled file" if shuffled else "full sync"
        )
        for n in sizes:
            ids_file = self.ids_file(n, shuffled=shuffled)
            state = self.workdir / f"state-{n}.snapshot"
            ours: list[Run] = []
            floors: list[Run] = []
            for _ in range(self.args.repeat):
                self.sandbox.reset()
                ours.append(self.provider(label, n, ids_file, state, full_refresh=True, from_list=from_list))
                self.sandbox.reset()
                floors.append(self.baseline(n, ids_file, from_list=from_list))
            self.sandbox.reset()
            pairs.append((median_run(ours), median_run(floors)))
            state.unlink(missing_ok=True)
        return pairs

    def latency(self, n: int, parallels: tuple[int, ...]) -> tuple[Run, list[Run]]:
        """Against a sandbox answering each write after 200 ms + 20 us per id: the sequential bare
        loop, then the provider at each ``max_parallel_requests``."""
        ids_file = self.ids_file(n)
        plain = self.sandbox
        slow = Sandbox(self.workdir / "latency-sandbox.log", [sys.executable, str(LATENCY_SANDBOX)])
        self.progress("latency mode: a sandbox answering each write after 200 ms + 20 us per id ...")
        slow.start(self.env())
        self.sandbox = slow
        try:
            floor = self.baseline(n, ids_file)
            self.sandbox.reset()
            runs = []
            for parallel in parallels:
                state = self.workdir / f"latency-{n}-{parallel}.snapshot"
                label = f"max_parallel_requests={parallel}"
                runs.append(self.provider(label, n, ids_file, state, full_refresh=True, parallel=parallel))
                self.sandbox.reset()
            return floor, runs
        finally:
            self.sandbox = plain
            slow.stop()

    def delta(self, n: int) -> tuple[list[Run], int, bool]:
        base = self.ids_file(n)
        numbers, changed = churned_numbers(n)
        churned = self.workdir / f"ids-{n}-churned.txt"
        self.progress(f"writing {churned.name}: {changed:,} ids removed, {changed:,} added ...")
        write_ids(churned, numbers)
        state = self.workdir / f"delta-{n}.snapshot"
        self.sandbox.reset()
        runs = [
            self.provider("full sync (no snapshot yet: create)", n, base, state, full_refresh=False),
            self.provider("delta (snapshot, full_refresh=False)", n, churned, state, full_refresh=False),
        ]
        delta_run = runs[-1]
        self.progress("  checking the segment's members after the delta ...")
        members = self.sandbox.members(self.system_guid, delta_run.result["segment_guid"])
        exact = len(members) == n and set(members) == {ID_FORMAT.format(i) for i in numbers()}
        self.sandbox.clear_log()
        runs.append(self.provider("full override (full_refresh=True)", n, churned, state, full_refresh=True))
        self.sandbox.reset()
        return runs, changed, exact

    # -- import cost and construction ----------------------------------------------------------------

    def warm_up(self) -> None:
        """Compile the bytecode cache and initialise the Airflow home once, outside every measurement."""
        self.progress("warming a temporary bytecode cache and a private AIRFLOW_HOME ...")
        modules = ", ".join(
            (
                "airflow",
                "requests",
                "airflow_provider_segments.operators.walkme",
                "airflow_provider_segments.sensors.walkme",
            )
        )
        try:
            subprocess.run(
                [sys.executable, "-c", f"import {modules}"],
                env=self.env(),
                timeout=SYNC_TIMEOUT,
                check=True,
                capture_output=True,
                text=True,
            )
        except subprocess.CalledProcessError as exc:
            raise BenchmarkError(f"cannot import Airflow and the provider:\n{exc.stderr[-3000:]}") from exc
        except subprocess.TimeoutExpired as exc:
            raise BenchmarkError("importing Airflow and the provider timed out") from exc

    def import_times(self, runs: int, env: dict[str, str]) -> list[float]:
        return [
            self.run_json([sys.executable, "-c", IMPORT_SNIPPET], env, SHORT_TIMEOUT)[0]["seconds"] * 1000
            for _ in range(runs)
        ]

    def import_cost(self, runs: int) -> ImportCost:
        self.progress(f"import cost: {runs} fresh processes ...")
        env = self.env()
        times = self.import_times(runs, env)
        as_is = None
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            self.progress(f"  and {runs} more as this shell runs Python (PYTHONDONTWRITEBYTECODE set) ...")
            as_is = statistics.median(self.import_times(runs, self.env(warm_bytecode=False)))
        proc = subprocess.run(
            [
                sys.executable,
                "-X",
                "importtime",
                "-c",
                "import airflow; import airflow_provider_segments.operators.walkme",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=SHORT_TIMEOUT,
        )
        groups, total = importtime_after_airflow(proc.stderr)
        return ImportCost(statistics.median(times), times, groups, total, as_is)

    def construction(self) -> dict[str, Any]:
        self.progress("import and construction of the WalkMe operators with sockets refused ...")
        return self.run_json([sys.executable, __file__, CONSTRUCT_COMMAND], self.env(), SHORT_TIMEOUT)[0]


def importtime_after_airflow(stderr: str) -> tuple[list[tuple[str, float]], float]:
    """Self time (ms) of the modules ``-X importtime`` shows after top-level ``airflow``, by package."""
    rows = [line.split("|") for line in stderr.splitlines() if line.startswith("import time:")]
    rows = [row for row in rows if len(row) == 3 and row[0].split(":")[1].strip().isdigit()]
    names = [row[2] for row in rows]
    start = names.index(" airflow") + 1 if " airflow" in names else 0
    groups: dict[str, float] = {}
    for row in rows[start:]:
        package = row[2].strip().split(".")[0]
        groups[package] = groups.get(package, 0.0) + int(row[0].split(":")[1]) / 1000
    ranked = sorted(groups.items(), key=lambda item: -item[1])
    return ranked, sum(groups.values())


# -- report ---------------------------------------------------------------------------------------------


def mib(kib: int) -> str:
    return f"{kib / 1024:,.0f}"


def machine() -> str:
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
        model = models[0] if models else model
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            total = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
        memory = f"{total / 2**20:.1f} GiB RAM"
    except (OSError, StopIteration):
        memory = "RAM unknown"
    versions = ", ".join(
        f"{name} {metadata.version(dist)}"
        for name, dist in (("Airflow", "apache-airflow"), ("requests", "requests"))
    )
    return (
        f"Machine: {os.cpu_count()} CPUs ({model or 'unknown model'}), {memory}; "
        f"Python {platform.python_version()}, {versions}"
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def full_table(
    title: str, pairs: list[tuple[Run, Run]], repeat: int, targets: list[tuple[bool, str]], what: str
) -> None:
    """Print provider and baseline side by side per size; add the request-count and time targets."""
    print()
    print(f"{title}; median of {repeat} run(s), the range in brackets")
    print(
        f"{'ids':>10}  {'run':<9} {'sync s':>6} {'(min-max)':>11} {'process s':>9} {'ids/s':>9} "
        f"{'requests':>8} {'writes':>6} {'peak RSS MiB':>12} {'start RSS':>9} {'growth':>6}"
    )
    for ours, floor in pairs:
        for run, name in ((ours, "provider"), (floor, "baseline")):
            size = f"{run.n:,}" if run is ours else ""
            spread = f"({min(run.samples):.2f}-{max(run.samples):.2f})" if run.samples else ""
            print(
                f"{size:>10}  {name:<9} {run.seconds:6.2f} {spread:>11} {run.process_seconds:9.1f} "
                f"{run.rate:9,.0f} {run.requests:8} {run.writes:6} {mib(run.peak_rss_kib):>12} "
                f"{mib(run.start_rss_kib):>9} {mib(run.peak_rss_kib - run.start_rss_kib):>6}"
            )
        time_ratio = ours.seconds / floor.seconds
        rss_ratio = ours.peak_rss_kib / floor.peak_rss_kib
        growth = (ours.peak_rss_kib - ours.start_rss_kib) / max(1, floor.peak_rss_kib - floor.start_rss_kib)
        print(
            f"{'':>10}  {'ratio':<9} {time_ratio:5.2f}x {'':>11} {'':>9} {'':>9} {'':>8} {'':>6} "
            f"{rss_ratio:11.2f}x {'':>9} {growth:5.1f}x"
        )
        chunks = max(1, math.ceil(ours.n / IDS_PER_REQUEST))
        expected = chunks + READS_PER_FULL_SYNC
        exact = ours.writes == chunks and ours.requests == expected and ours.ids_sent == ours.n
        targets.append(
            (
                exact and ours.users_in_segment == ours.n,
                f"{what} {ours.n:,}: {ours.writes} writes = ceil(N/25,000) = {chunks}, {ours.requests} "
                f"requests in all (expected {expected}: + token, name look-up, read-back); "
                f"{ours.ids_sent:,} ids sent, segment holds {ours.users_in_segment:,}",
            )
        )
        targets.append(
            (
                time_ratio <= MAX_TIME_RATIO,
                f"wall time, {what} {ours.n:,}: provider {ours.seconds:.2f} s = {time_ratio:.2f}x baseline "
                f"{floor.seconds:.2f} s (goal <= {MAX_TIME_RATIO}x)",
            )
        )


def print_report(
    bench: Bench,
    pairs: list[tuple[Run, Run]],
    list_pairs: list[tuple[Run, Run]],
    shuffled_pairs: list[tuple[Run, Run]],
    latency: tuple[Run, list[Run]] | None,
    delta: tuple[list[Run], int, bool] | None,
    imports: ImportCost,
    built: dict[str, Any],
) -> None:
    targets: list[tuple[bool, str]] = []
    print()
    print(machine())
    print(f"Sandbox: {bench.sandbox.url} (own process)")
    full_table(
        "Full sync of N ids from a file into a new segment (provider: WalkMeSyncSegmentOperator, "
        "user_ids_path, full_refresh=True)",
        pairs,
        bench.args.repeat,
        targets,
        "full sync from a file",
    )
    if list_pairs:
        full_table(
            "Full sync of N ids from a list (provider: user_ids=<list>; baseline: slices of the list)",
            list_pairs,
            bench.args.repeat,
            targets,
            "full sync from a list",
        )
    if shuffled_pairs:
        full_table(
            "Full sync of N ids from a file in no order (the ascending files above are unique at one "
            "comparison per id; these need a set)",
            shuffled_pairs,
            bench.args.repeat,
            targets,
            "full sync from a shuffled file",
        )
    if pairs:
        at = next((pair for pair in pairs if pair[0].n == 3_000_000), pairs[-1])
        ours, floor = at
        where = "" if ours.n == 3_000_000 else f" (measured at {ours.n:,}; the target names 3,000,000)"
        targets.append(
            (
                ours.peak_rss_kib < MAX_RSS_KIB_AT_3M,
                f"peak RSS {ours.n:,}: {mib(ours.peak_rss_kib)} MiB (target < 1,024 MiB){where}",
            )
        )
        growth = ours.peak_rss_kib - ours.start_rss_kib
        targets.append(
            (
                growth <= MAX_GROWTH_KIB_AT_3M,
                f"RSS growth over the task's start, {ours.n:,} ids from a file: {mib(growth)} MiB "
                f"(goal <= 256 MiB at 3,000,000){where}",
            )
        )
        for ours, _ in pairs:
            if ours.n >= LARGE_SIZE:
                targets.append(
                    (
                        ours.peak_rss_kib < MAX_RSS_KIB_AT_10M,
                        f"peak RSS {ours.n:,} from a file: {mib(ours.peak_rss_kib)} MiB (goal < 1,024 MiB)",
                    )
                )
        ratio = ours.peak_rss_kib / floor.peak_rss_kib
        targets.append(
            (
                ratio <= MAX_RSS_RATIO,
                f"peak RSS {ours.n:,}: provider {mib(ours.peak_rss_kib)} MiB = {ratio:.1f}x baseline "
                f"{mib(floor.peak_rss_kib)} MiB (target <= {MAX_RSS_RATIO}x); of it, "
                f"{mib(ours.start_rss_kib)} MiB before the sync began (Python + Airflow + provider import)",
            )
        )

    if latency is not None:
        floor, runs = latency
        print()
        print(
            f"Latency mode: full sync of {floor.n:,} ids, each write answered after 200 ms + 20 us per id "
            "(sequential bare loop vs the provider)"
        )
        print(f"  {'run':<28} {'sync s':>7} {'vs loop':>7} {'writes':>6} {'peak RSS MiB':>12}  segment holds")
        for run in (floor, *runs):
            name = "bare requests loop" if run is floor else run.label
            print(
                f"  {name:<28} {run.seconds:7.2f} {run.seconds / floor.seconds:6.2f}x {run.writes:6} "
                f"{mib(run.peak_rss_kib):>12}  {run.users_in_segment:,}"
            )
        best = min(runs, key=lambda run: run.seconds)
        default = next((run for run in runs if run.label.endswith("=4")), best)
        ratio = default.seconds / floor.seconds
        targets.append(
            (
                ratio <= MAX_LATENCY_RATIO and default.users_in_segment == default.n,
                f"latency, {floor.n:,} ids: provider ({default.label}) {default.seconds:.1f} s = "
                f"{ratio:.2f}x the sequential bare loop's {floor.seconds:.1f} s (goal <= "
                f"{MAX_LATENCY_RATIO}x); segment holds {default.users_in_segment:,}",
            )
        )

    if delta is not None:
        runs, changed, exact = delta
        n = runs[0].n
        print()
        print(
            f"Delta sync of {n:,} ids with 1% churn ({changed:,} removed, {changed:,} added), same state_path"
        )
        print(f"  {'run':<38} {'sync s':>7} {'requests':>8} {'writes':>6} {'peak RSS MiB':>12}  mode")
        for run in runs:
            print(
                f"  {run.label:<38} {run.seconds:7.2f} {run.requests:8} {run.writes:6} "
                f"{mib(run.peak_rss_kib):>12}  {run.result.get('mode')}"
            )
        _, delta_run, override = runs
        print(
            f"  delta vs full override: {delta_run.writes} vs {override.writes} writes, "
            f"{delta_run.seconds / override.seconds:.2f}x the time"
        )
        # at most 3 at 1M; a larger churn needs its adds' and removes' chunks
        most_writes = max(MAX_DELTA_WRITES, 2 * math.ceil(changed / IDS_PER_REQUEST))
        targets.append(
            (
                delta_run.writes <= most_writes and delta_run.result.get("mode") == "delta" and exact,
                f"delta with 1% churn: {delta_run.writes} write requests (target <= {most_writes}); "
                f"segment membership afterwards {'exactly' if exact else 'NOT'} the churned input",
            )
        )
        if n >= LARGE_SIZE:
            peak = delta_run.peak_rss_kib
            targets.append(
                (
                    peak < MAX_RSS_KIB_AT_10M,
                    f"peak RSS of the delta against a {n:,}-id snapshot: {mib(peak)} MiB "
                    f"(goal < {mib(MAX_RSS_KIB_AT_10M)} MiB)",
                )
            )

    median_ms = imports.median_ms
    print()
    print(
        "Import of airflow_provider_segments.operators.walkme after `import airflow`: "
        f"median {median_ms:.1f} ms of {len(imports.samples_ms)} fresh processes "
        f"({', '.join(f'{t:.1f}' for t in imports.samples_ms)} ms; bytecode cached)"
    )
    if imports.as_is_median_ms is not None:
        print(
            f"  {imports.as_is_median_ms:.1f} ms (median) with PYTHONDONTWRITEBYTECODE as set in this shell: "
            "the provider's own modules are then compiled at every import"
        )
    shown = ", ".join(f"{name} {ms:.1f}" for name, ms in imports.importtime_by_package[:7])
    print(
        f"  -X importtime, self time of what loads after airflow: {imports.importtime_total_ms:.1f} ms; "
        f"by top-level package (ms): {shown}"
    )
    targets.append(
        (median_ms < MAX_IMPORT_MS, f"operator module import: {median_ms:.1f} ms (target < 50 ms)")
    )

    events = built["events"]
    network = [e for e in events if e[1] in ("socket.connect", "socket.getaddrinfo", "socket.sendto")]
    other_import = [e for e in events if e[0] == "import" and e not in network]
    local_sockets = [e for e in other_import if e[1].startswith("socket.")]
    files = [e for e in other_import if not e[1].startswith("socket.")]
    construct = [e for e in events if e[0] == "construct"]
    print(f"  constructed with a missing connection id and sockets refused: {', '.join(built['built'])}")
    if local_sockets:
        calls = "; ".join(f"{e[1]} {e[2]}" for e in local_sockets)
        source = " - urllib3 probing for IPv6 when requests is imported" if "'::1'" in calls else ""
        print(f"  note: a local socket is created at import, without any traffic{source}: {calls[:200]}")
    import_ok = not network and not files
    targets.append(
        (
            import_ok,
            f"no I/O at import: {len(network)} connect/DNS events, {len(files)} file or process events"
            + (f" ({files[:2]})" if files else "")
            + (
                f"; {len(local_sockets)} local socket calls without traffic (see note)"
                if local_sockets
                else ""
            ),
        )
    )
    targets.append(
        (
            not construct and built["error"] is None and len(built["built"]) == 7,
            f"no I/O at construction: {len(construct)} events for {len(built['built'])} operators"
            + (f"; error: {built['error']}" if built["error"] else "")
            + (f" ({construct[:2]})" if construct else ""),
        )
    )

    print()
    print("Targets")
    for ok, text in targets:
        print(f"  {verdict(ok)}  {text}")

    for kind in ("profile", "tracemalloc"):
        for path in sorted(bench.workdir.glob(f"{kind}-*.txt")):
            print()
            print(f"{kind} of the provider run {path.stem.split('-', 1)[1]}:")
            print(path.read_text().rstrip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="ids per full sync")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SIZE:,} ids only (delta included)")
    parser.add_argument(
        "--delta-size",
        type=int,
        help="ids of the delta-sync check (default 1,000,000; 10,000,000 with --10m; 0 skips)",
    )
    parser.add_argument("--10m", dest="ten_million", action="store_true", help="add 10,000,000 ids")
    parser.add_argument(
        "--list-size", type=int, help=f"ids of the list-input comparison (default {LIST_SIZE:,}; 0 skips)"
    )
    parser.add_argument(
        "--shuffled-size",
        type=int,
        help=f"ids of the shuffled-file comparison (default {LIST_SIZE:,}; 0 skips)",
    )
    parser.add_argument(
        "--latency-size",
        type=int,
        help=f"ids of the latency mode (default {LATENCY_SIZE:,}; 0 skips)",
    )
    parser.add_argument(
        "--latency-parallel",
        type=int,
        nargs="+",
        default=list(LATENCY_PARALLEL),
        help="max_parallel_requests values of the latency mode",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per full sync; the median is shown")
    parser.add_argument("--import-runs", type=int, default=5, help="fresh processes for the import time")
    parser.add_argument("--profile", action="store_true", help="cProfile each provider run and print the top")
    parser.add_argument("--tracemalloc", action="store_true", help="trace the provider's allocations (slow)")
    args = parser.parse_args()
    sizes = [QUICK_SIZE] if args.quick else sorted(set(args.sizes))
    if args.ten_million:
        sizes = sorted({*sizes, LARGE_SIZE})
    if args.delta_size is None:
        args.delta_size = QUICK_SIZE if args.quick else LARGE_SIZE if args.ten_million else 1_000_000
    if args.list_size is None:
        args.list_size = QUICK_SIZE if args.quick else LIST_SIZE
    if args.shuffled_size is None:
        args.shuffled_size = QUICK_SIZE if args.quick else LIST_SIZE
    if args.latency_size is None:
        args.latency_size = QUICK_SIZE if args.quick else LATENCY_SIZE
    if min(sizes) < 1 or args.delta_size < 0 or args.repeat < 1 or args.import_runs < 1:
        parser.error("sizes, --repeat and --import-runs must be positive, --delta-size 0 or more")

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    workdir = Path(tempfile.mkdtemp(prefix="segments-sync-bench-"))
    bench = Bench(args, workdir)
    try:
        bench.progress(f"temporary files in {workdir}")
        bench.warm_up()
        bench.progress("starting the sandbox in its own process ...")
        bench.sandbox.start(bench.env())
        bench.warm_sync()
        pairs = bench.full_syncs(sizes)
        list_pairs = bench.full_syncs([args.list_size], from_list=True) if args.list_size else []
        shuffled_pairs = bench.full_syncs([args.shuffled_size], shuffled=True) if args.shuffled_size else []
        delta = bench.delta(args.delta_size) if args.delta_size else None
        latency = (
            bench.latency(args.latency_size, tuple(args.latency_parallel)) if args.latency_size else None
        )
        imports = bench.import_cost(args.import_runs)
        built = bench.construction()
        print_report(bench, pairs, list_pairs, shuffled_pairs, latency, delta, imports, built)
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: sandbox stopped, temporary files removed", file=sys.stderr)
        return 130
    finally:
        bench.sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == WORKER_COMMAND:
        provider_worker(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == CONSTRUCT_COMMAND:
        construct_worker()
    else:
        sys.exit(main())
