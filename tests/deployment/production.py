"""The production shape for tests: built artifacts, a fresh venv, PostgreSQL, Airflow's components.

Everything listens on 127.0.0.1 on free ports and lives in temporary directories. Every process is
started in a session of its own, with a marker in its environment; :meth:`Processes.stop_groups`
ends each process group (SIGTERM, then SIGKILL) and :meth:`Processes.kill_owned` any process still
in one of those sessions or carrying the marker, by its PID: task processes put themselves in
process groups of their own.

Also here: the fresh venv with the wheel (:func:`install_in_fresh_venv`), the settings every Airflow
component shares (:func:`airflow_base_env`), and the servers a distributed deployment adds: Redis as
Celery's broker (:class:`RedisServer`) and an S3-compatible store (:class:`S3Server`, moto's server).
"""

from __future__ import annotations

import contextlib
import glob
import importlib.metadata
import json
import os
import secrets as secrets_module
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


def session_pids(session: int) -> list[int]:
    """Live processes in ``session`` only (a worker's: its pool, the supervisors, their tasks)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            stat = _proc_stat(int(entry.name))
            if stat is not None and stat[0] != "Z" and stat[1] == session:
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


# -- the fresh venv and the settings every component shares ---------------------------------------


def start_fresh_venv_install(
    venv: Path,
    wheel: Path,
    requirements: Sequence[str],
    processes: Processes,
    env: Mapping[str, str],
    hold_versions: bool = True,
) -> subprocess.Popen:
    """Create a venv at ``venv`` and start installing into it the wheel (not the checkout), the
    running Airflow's version with its postgres extra, and ``requirements``; wait for the returned
    ``pip`` process (its output is ``processes.log("pip-install")``).

    With ``hold_versions`` every package this test's own venv has is held at its version (a
    constraints file from ``pip freeze``), so pip's cache serves most of them; packages it lacks
    resolve freely. Without it, everything resolves freely, as a user's install would.
    """
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    airflow_version = importlib.metadata.version("apache-airflow")
    argv = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)]
    argv += [f"apache-airflow[postgres]=={airflow_version}", *requirements]
    if not hold_versions:
        return processes.start("pip-install", argv, env)
    constraints = venv.parent / f"{venv.name}-constraints.txt"
    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    constraints.write_text("".join(line + "\n" for line in freeze.splitlines() if " @ " not in line))
    return processes.start("pip-install", [*argv, "--constraint", str(constraints)], env)


def airflow_base_env(
    home: Path, venv: Path, api_port: int, database_url: str, executor: str
) -> dict[str, str]:
    """The settings every Airflow component of one deployment shares (this process's environment
    without its Airflow, pytest and venv variables, plus these)."""
    from cryptography.fernet import Fernet

    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW", "PYTEST_", "VIRTUAL_ENV", "PYTHONPATH"))
    }
    api_url = f"http://127.0.0.1:{api_port}"
    env.update(
        {
            "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            # Shared by every component: one fernet key, one JWT secret.
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets_module.token_urlsafe(32),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": api_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }
    )
    return env


def login_when_up(api: AirflowApi, home: Path) -> None:
    """Wait for the api-server, then log in as the simple auth manager's generated admin."""
    wait_for(
        "the api-server",
        lambda: requests.get(f"{api.base_url}/api/v2/monitor/health", timeout=5).ok,
        timeout=120,
    )
    passwords = home / "simple_auth_manager_passwords.json.generated"
    wait_for("the generated admin password", passwords.exists, 30)
    api.login("admin", json.loads(passwords.read_text())["admin"])


def airflow_db_migrate(venv: Path, env: Mapping[str, str]) -> None:
    """``airflow db migrate`` with the deployment's settings."""
    migrate = subprocess.run(
        [str(venv / "bin" / "airflow"), "db", "migrate"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]


def dag_listed(api: AirflowApi, dag_id: str) -> bool:
    """True once the dag-processor has parsed ``dag_id`` and the API knows it."""
    try:
        api.get(f"/dags/{dag_id}")
    except requests.HTTPError:
        return False
    return True


# -- Redis (Celery's broker) and an S3-compatible store -------------------------------------------


def redis_server_program() -> str | None:
    """Debian's ``redis-server`` (package redis-server, which ``make system-deps`` installs)."""
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


class RedisServer:
    """A private ``redis-server`` on 127.0.0.1:``port``, its files in ``root``, nothing persisted."""

    def __init__(self, root: Path, port: int, processes: Processes) -> None:
        self.root = root
        self.port = port
        self.processes = processes

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [redis_server_program() or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        # No snapshots, no append-only file, no daemonizing (its process group is stopped with the rest).
        argv += ["--dir", str(self.root), "--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.processes.start("redis", argv, os.environ)
        wait_for("redis-server", self.ping, timeout=30, interval=0.2)

    def ping(self) -> bool:
        """True when the server answers ``PING`` (the inline protocol, no client library needed)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")

    def url(self, database: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"


class S3Server:
    """moto's S3-compatible server on 127.0.0.1:``port``, run from ``python`` (a venv with ``moto[server]``).

    It accepts any access key; buckets and objects are read here with plain HTTP (path-style URLs).
    """

    def __init__(self, python: Path, port: int, processes: Processes) -> None:
        self.python = python
        self.port = port
        self.processes = processes
        self.url = f"http://127.0.0.1:{port}"

    def start(self, env: Mapping[str, str]) -> None:
        argv = [str(self.python), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.processes.start("s3", argv, env)
        wait_for("the S3 server", lambda: requests.get(self.url, timeout=5).ok, timeout=60)

    def create_bucket(self, bucket: str) -> None:
        requests.put(f"{self.url}/{bucket}", timeout=30).raise_for_status()

    def keys(self, bucket: str) -> list[str]:
        """Every key in ``bucket`` (one page of up to 1,000 is plenty for a test)."""
        import xml.etree.ElementTree as ET

        answer = requests.get(f"{self.url}/{bucket}", params={"list-type": "2"}, timeout=30)
        answer.raise_for_status()
        tree = ET.fromstring(answer.content)
        return [node.text or "" for node in tree.iter() if node.tag.endswith("}Key") or node.tag == "Key"]

    def get(self, bucket: str, key: str) -> bytes:
        from urllib.parse import quote

        # Quoted: run ids hold "+" and ":", and an unquoted "+" reads as a space. moto checks no
        # signature but refuses an anonymous GetObject on a private object: any AWS4 header will do.
        authorization = (
            "AWS4-HMAC-SHA256 Credential=AKIATEST/20260101/us-east-1/s3/aws4_request, "
            "SignedHeaders=host, Signature=00"
        )
        url = f"{self.url}/{bucket}/{quote(key, safe='/')}"
        answer = requests.get(url, headers={"Authorization": authorization}, timeout=30)
        answer.raise_for_status()
        return answer.content


def walkme_token(server_url: str) -> str:
    """A bearer token from the test server's WalkMe token endpoint (its public test credentials)."""
    from airflow_provider_segments.testing import TEST_CLIENT_ID, TEST_CLIENT_SECRET

    return requests.post(
        f"{server_url}/accounts/connect/token",
        data={"grant_type": "client_credentials"},
        auth=(TEST_CLIENT_ID, TEST_CLIENT_SECRET),
        timeout=30,
    ).json()["access_token"]


def listed_segments(server_url: str, system_guid: str) -> list[dict[str, Any]]:
    """The segments the test server's WalkMe API lists for ``system_guid``, as a client sees them."""
    answer = requests.get(
        f"{server_url}/public/v1/user/system/{system_guid}/segment",
        headers={"Authorization": f"Bearer {walkme_token(server_url)}"},
        timeout=30,
    )
    answer.raise_for_status()
    return answer.json()
