"""The production shape for tests: built artifacts, a fresh venv, PostgreSQL, Airflow's components.

Everything listens on 127.0.0.1 on free ports and lives in temporary directories. Every process is
started in a session of its own, with a marker in its environment; :meth:`Processes.stop_groups`
ends each process group (SIGTERM, then SIGKILL) and :meth:`Processes.kill_owned` any process still
in one of those sessions or carrying the marker, by its PID: task processes put themselves in
process groups of their own.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests

REPO = Path(__file__).resolve().parents[2]
#: Every process a deployment test starts carries this variable (value: the run's id) in its environment.
MARKER_VAR = "SEGMENTS_DEPLOYMENT_TEST_RUN"

T = TypeVar("T")


@dataclass(frozen=True)
class Dists:
    """The artifacts ``python -m build`` made: the sdist, and the wheel built from that sdist."""

    wheel: Path
    sdist: Path


def build_dists(out: Path) -> Dists:
    """Build the sdist, then the wheel from it (isolated build env, as a release would)."""
    run = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"python -m build failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return Dists(wheel=wheel, sdist=sdist)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    """Call ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = probe()
        except (requests.RequestException, OSError) as exc:
            last_error, result = exc, None
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last error: {last_error!r})")


# -- processes -------------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, session id) of a process, from /proc/PID/stat; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[3])


def owned_pids(marker: str, sessions: set[int]) -> list[int]:
    """Live processes that belong to a test: in one of its ``sessions``, or carrying its marker.

    Both are needed. A process keeps its session id when it makes a process group of its own (task
    processes do) and when its parent dies; but PostgreSQL's server starts a session of its own. The
    marker variable is inherited by every child, but ``setproctitle`` (the Airflow components, their
    task processes, PostgreSQL's workers) overwrites the memory /proc/PID/environ shows.
    """
    needle = f"{MARKER_VAR}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is None or stat[0] == "Z":
            continue
        if stat[1] in sessions:
            found.append(int(entry.name))
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


@dataclass
class Processes:
    """The processes a test started, each in a session of its own, output to ``log_dir/NAME.log``."""

    marker: str
    log_dir: Path
    started: dict[str, subprocess.Popen] = field(default_factory=dict)
    #: Session ids whose members are ours: each started process's, and any added (PostgreSQL's).
    sessions: set[int] = field(default_factory=set)

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], **kwargs: Any
    ) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                list(argv),
                env={**env, MARKER_VAR: self.marker},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kwargs,
            )
        self.started[name] = proc
        self.sessions.add(proc.pid)  # start_new_session: the session id is the child's PID
        return proc

    def owned(self) -> list[int]:
        """The live processes that are ours (see :func:`owned_pids`)."""
        return owned_pids(self.marker, self.sessions)

    def log(self, name: str, tail: int = 4000) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def stop_groups(self, grace: float = 10.0) -> list[str]:
        """SIGTERM every process group started here, then SIGKILL what is left after ``grace`` s.

        Returns the names of the processes that were still running after the grace period.
        """
        for proc in reversed(self.started.values()):
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.started.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        stubborn = [name for name, proc in self.started.items() if proc.poll() is None]
        for proc in self.started.values():
            _signal_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        return stubborn

    def kill_owned(self) -> list[int]:
        """SIGKILL, by PID, every process of ours still alive; return their PIDs."""
        stragglers = self.owned()
        for pid in stragglers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return stragglers


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# -- PostgreSQL ------------------------------------------------------------------------------------


def postgres_program(name: str) -> str | None:
    """Path of a PostgreSQL program: on PATH, or where Debian puts it (/usr/lib/postgresql/N/bin)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]), reverse=True
    )
    return candidates[0] if candidates else None


class PostgresServer:
    """A private PostgreSQL cluster in ``root`` on ``port`` (trust auth, 127.0.0.1 only, no fsync).

    As root it runs as the ``postgres`` user (initdb refuses root), so ``root`` must be reachable by
    that user: put it directly under /tmp, not under pytest's private temp folders.
    """

    def __init__(self, root: Path, port: int, processes: Processes) -> None:
        self.root = root
        self.port = port
        self.processes = processes
        self.data = root / "data"
        self.as_postgres = os.geteuid() == 0

    def _run(self, program: str, *args: str, env: Mapping[str, str] | None = None) -> None:
        argv = [postgres_program(program) or program, *args]
        if self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=self.root)
        assert run.returncode == 0, f"{program} failed: {run.stdout[-2000:]}{run.stderr[-2000:]}"

    def start(self, database: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        # pg_ctl's server inherits this environment, marker included; its session is recorded below.
        env = {**os.environ, MARKER_VAR: self.processes.marker}
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
            "-w",
            "start",
            env=env,
        )
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        stat = _proc_stat(postmaster)
        if stat is not None:
            self.processes.sessions.add(stat[1])
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", database)

    def stop(self) -> None:
        """``pg_ctl stop -m fast``; a server that will not stop is left to :meth:`Processes.kill_owned`."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def dump(self, database: str) -> bytes:
        """``pg_dump`` of ``database`` (plain SQL, data included)."""
        program = postgres_program("pg_dump") or "pg_dump"
        run = subprocess.run(
            [program, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", database],
            capture_output=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
        return run.stdout


# -- the Airflow REST API --------------------------------------------------------------------------


class AirflowApi:
    """A small client of Airflow's public REST API (``/api/v2``) with the simple auth manager's token."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def login(self, username: str, password: str) -> None:
        answer = self.session.post(
            f"{self.base_url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        answer.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def get(self, path: str, **params: Any) -> Any:
        answer = self.session.get(f"{self.base_url}/api/v2{path}", params=params, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def get_text(self, path: str) -> str:
        answer = self.session.get(f"{self.base_url}/api/v2{path}", timeout=30)
        answer.raise_for_status()
        return answer.text

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        answer = self.session.post(
            f"{self.base_url}/api/v2/dags/{dag_id}/dagRuns",
            json={"logical_date": None, "conf": conf},
            timeout=30,
        )
        answer.raise_for_status()
        return answer.json()["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        answer = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti for ti in answer["task_instances"]}

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        entry = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}")
        return entry["value"]

    def answers_about_run(self, dag_id: str, run_id: str) -> str:
        """Every task instance (rendered fields included) and XCom entry of a run, as the API sends them."""
        texts = [self.get_text(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")]
        for task_id in self.task_instances(dag_id, run_id):
            base = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
            texts.append(self.get_text(base))
            for entry in self.get(f"{base}/xcomEntries")["xcom_entries"]:
                texts.append(self.get_text(f"{base}/xcomEntries/{entry['key']}"))
        return "\n".join(texts)


def parse_time(value: str) -> float:
    """An ISO-8601 timestamp from the API or the sandbox as a POSIX time."""
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a task log (Airflow 3 writes one JSON object per line)."""
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines
