"""The provider on a multi-worker Airflow: CeleryExecutor, Redis, two workers, ids and state on S3.

Once per module (about 3-4 minutes): the built wheel goes into a fresh venv with
``apache-airflow[postgres]``, ``apache-airflow-providers-celery`` (which brings ``celery[redis]``),
``apache-airflow-providers-amazon[s3fs]`` and ``moto[server]``. The test starts Debian's
``redis-server`` (Celery's broker), moto's S3-compatible server, a private PostgreSQL cluster (metadata
DB and Celery's result backend), the sandbox, ``airflow api-server``, ``scheduler`` and
``dag-processor``, and two ``airflow celery worker`` processes, each with its own working and temp
directory and its own name (which Airflow records as the task instance's ``hostname``).

The DAGs (tests/deployment/dags/segments_celery_check.py) export ids to
``s3://segments_s3@<bucket>/...`` and sync them with ``state_path`` in the same bucket:

- three runs, one after the other, whose export and sync run on different workers and whose syncs
  alternate between the workers: after each, the segment holds exactly that run's ids, and the second
  and third runs are deltas from the snapshot the other worker wrote;
- a sync whose whole worker (Celery's processes, the task's supervisor and the task) is SIGKILLed
  while the sandbox holds its create: Airflow fails the try when its heartbeat stops, retries it on
  the other worker, and the segment holds exactly the input, once;
- no secret (the sandbox's client secret, its tokens, the S3 secret key) in any file under
  ``AIRFLOW_HOME`` or the workers' directories, in a ``pg_dump`` of the metadata DB, or in any object
  in the bucket.

Needs PostgreSQL's server programs and ``redis-server`` (``make system-deps``): required in CI, skipped
elsewhere without them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from deployment.production import (
    REPO,
    AirflowApi,
    PostgresServer,
    Processes,
    RedisServer,
    S3Server,
    airflow_base_env,
    airflow_db_migrate,
    dag_listed,
    free_port,
    listed_segments,
    login_when_up,
    parse_time,
    postgres_program,
    redis_server_program,
    session_pids,
    start_fresh_venv_install,
    wait_for,
)
from support import leaked_secrets_in_files

from airflow_provider_segments.testing import TEST_CLIENT_ID, TEST_CLIENT_SECRET, connection_env

pytestmark = pytest.mark.deployment

DAG_FILE = REPO / "tests" / "deployment" / "dags" / "segments_celery_check.py"
EXPORT_A_SYNC_B = "segments_celery_export_a_sync_b"
EXPORT_B_SYNC_A = "segments_celery_export_b_sync_a"
KILL = "segments_celery_kill"
WORKERS = ("worker_a", "worker_b")
BUCKET = "segments-deployment"
S3_CONN_ID = "segments_s3"  # the DAG file's
S3_ACCESS_KEY = "AKIASEGMENTSDEPLOY01"
S3_SECRET_KEY = "s3-secret-" + secrets.token_hex(12)
ALTERNATING_SYSTEM = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
KILL_SYSTEM = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
AUDIENCE = 3_000
SHIFT = 200  # each alternating run drops the first SHIFT ids of the previous one and adds SHIFT new
HOLD_SECONDS = 8  # the sandbox holds the create of the sync whose worker is killed
RETRY_DELAY_SECONDS = 15  # the DAG file's
HEARTBEAT_TIMEOUT_SECONDS = 20  # a task whose worker died is failed this long after its last heartbeat
RUN_TIMEOUT = 150
#: What a Celery deployment with ids and state on S3 installs next to the provider (see the docs).
EXTRA_REQUIREMENTS = ("apache-airflow-providers-celery", "apache-airflow-providers-amazon[s3fs]")
#: The S3-compatible server, and pins that spare pip's resolver a walk back through hundreds of
#: boto3 releases (s3fs follows fsspec's version; aiobotocore pins botocore to a narrow range).
#: The test's own venv's versions are not held here: it pins python-dateutil 4, which botocore refuses.
#: Celery 5.7 dropped ``celery.backends.database.retry``, which the Celery provider 3.26 imports.
TEST_REQUIREMENTS = (
    "moto[server]",
    "s3fs==2026.9.0",
    "aiobotocore==3.10.0",
    "boto3>=1.43.115,<1.43.118",
    "celery[redis]>=5.5,<5.7",
)

#: Loaded by each worker through ``[core] hostname_callable``: Airflow then records the worker's name
#: as the hostname of the task instances it runs (both workers share this machine's real hostname).
WORKER_IDENTITY_MODULE = '''"""The name of this process's Celery worker (set by the deployment test)."""

import os


def hostname() -> str:
    return os.environ["SEGMENTS_WORKER_NAME"]
'''


def _ids(prefix: str, first: int, count: int) -> set[str]:
    return {f"{prefix}{n:06d}" for n in range(first, first + count)}


@dataclass
class CeleryDeployment:
    """The running deployment: what the test reads and the workers' processes."""

    home: Path
    workers_root: Path
    sandbox_url: str
    api: AirflowApi
    postgres: PostgresServer
    s3: S3Server
    processes: Processes
    timings: dict[str, float] = field(default_factory=dict)

    def sandbox(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = requests.request(method, self.sandbox_url + path, timeout=30, **kwargs)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def worker_of_session(self, session: int) -> str | None:
        """The name of the worker started in ``session`` (its processes keep the session id)."""
        for name in WORKERS:
            proc = self.processes.started.get(name)
            if proc is not None and proc.pid == session:
                return name
        return None


def _require_system_programs() -> None:
    missing = [name for name in ("initdb", "pg_ctl", "pg_dump") if postgres_program(name) is None]
    if redis_server_program() is None:
        missing.append("redis-server")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing.append("runuser")
    if not missing:
        return
    reason = (
        f"the Celery deployment test needs {', '.join(missing)} "
        "(Debian: apt-get install postgresql redis-server, or make system-deps)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason)  # CI installs them: a skip there would hide a broken set-up
    pytest.skip(reason)


def _s3_connection(s3_url: str) -> str:
    return json.dumps(
        {
            "conn_type": "aws",
            "login": S3_ACCESS_KEY,
            "password": S3_SECRET_KEY,
            "extra": {"endpoint_url": s3_url, "region_name": "us-east-1"},
        }
    )


@pytest.fixture(scope="module")
def celery(request: pytest.FixtureRequest) -> Iterator[CeleryDeployment]:
    """The running deployment; every process is stopped afterwards and none may be left."""
    _require_system_programs()
    started = time.monotonic()
    dists = request.getfixturevalue("built_dists")
    timings = {"build sdist + wheel": time.monotonic() - started}

    root = Path(tempfile.mkdtemp(prefix="segments-celery-"))  # under /tmp: the postgres user reaches it
    root.chmod(0o755)
    home, venv, workers_root = root / "airflow-home", root / "venv", root / "workers"
    (home / "dags").mkdir(parents=True)
    shutil.copy(DAG_FILE, home / "dags")
    identity = root / "worker-identity"
    identity.mkdir()
    (identity / "segments_worker_identity.py").write_text(WORKER_IDENTITY_MODULE)
    ports = {name: free_port() for name in ("api", "sandbox", "postgres", "redis", "s3", *WORKERS)}
    processes = Processes(marker=secrets.token_hex(8), log_dir=home / "component-logs")
    postgres = PostgresServer(root / "postgres", ports["postgres"], processes)
    redis = RedisServer(root / "redis", ports["redis"], processes)
    s3 = S3Server(venv / "bin" / "python", ports["s3"], processes)
    sandbox_url = f"http://127.0.0.1:{ports['sandbox']}"
    env = airflow_base_env(home, venv, ports["api"], postgres.url("airflow"), "CeleryExecutor")
    env.update(
        {
            "AIRFLOW__CELERY__BROKER_URL": redis.url(),
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + postgres.url("airflow").replace("+psycopg2", ""),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_SECONDS),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW_CONN_SEGMENTS_S3": _s3_connection(s3.url),
            "SEGMENTS_CELERY_BUCKET": BUCKET,
            # moto's server and botocore read no credentials from anywhere else.
            "AWS_CONFIG_FILE": str(root / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(root / "no-aws-credentials"),
            **connection_env(sandbox_url, connect_timeout=2, timeout=10, backoff_initial=0.2, backoff_max=1),
        }
    )
    api = AirflowApi(f"http://127.0.0.1:{ports['api']}")
    deployment = CeleryDeployment(
        home=home,
        workers_root=workers_root,
        sandbox_url=sandbox_url,
        api=api,
        postgres=postgres,
        s3=s3,
        processes=processes,
        timings=timings,
    )
    try:
        step = time.monotonic()
        install = start_fresh_venv_install(
            venv, dists.wheel, [*EXTRA_REQUIREMENTS, *TEST_REQUIREMENTS], processes, env, hold_versions=False
        )
        postgres.start("airflow")  # meanwhile
        redis.start()
        assert install.wait(timeout=600) == 0, processes.log("pip-install")
        timings["venv + pip install, postgres, redis"] = time.monotonic() - step

        step = time.monotonic()
        airflow_db_migrate(venv, env)
        timings["airflow db migrate"] = time.monotonic() - step

        step = time.monotonic()
        python, airflow = str(venv / "bin" / "python"), str(venv / "bin" / "airflow")
        s3.start(env)
        s3.create_bucket(BUCKET)
        processes.start(
            "sandbox",
            [python, "-m", "airflow_provider_segments.testing", "--port", str(ports["sandbox"])],
            env,
        )
        for component in ("api-server", "scheduler", "dag-processor"):
            processes.start(component, [airflow, component], env)
        for name in WORKERS:
            # Its own working and temp directory, name, queue and log-server port.
            workdir = workers_root / name
            (workdir / "tmp").mkdir(parents=True)
            worker_env = {
                **env,
                "TMPDIR": str(workdir / "tmp"),
                "PYTHONPATH": str(identity),
                "SEGMENTS_WORKER_NAME": name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "segments_worker_identity.hostname",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports[name]),
            }
            argv = [airflow, "celery", "worker", "--queues", f"default,{name}", "--concurrency", "1"]
            argv += ["--celery-hostname", f"{name}@%h", "--without-mingle", "--without-gossip"]
            argv += [
                "--pid",
                str(workdir / "worker.pid"),
            ]  # the default, one file in AIRFLOW_HOME, admits one
            processes.start(name, argv, worker_env, cwd=workdir)
        login_when_up(api, home)
        for dag_id in (EXPORT_A_SYNC_B, EXPORT_B_SYNC_A, KILL):
            wait_for(f"DAG {dag_id} to be parsed", lambda d=dag_id: dag_listed(api, d), timeout=120)
        assert api.get("/importErrors")["import_errors"] == []
        wait_for("the sandbox", lambda: deployment.sandbox("GET", "/_sandbox/faults") == [], 30)
        for guid in (ALTERNATING_SYSTEM, KILL_SYSTEM):
            deployment.sandbox("POST", "/_sandbox/walkme/systems", json={"guid": guid})
        timings["components and workers up, DAGs parsed"] = time.monotonic() - step
        yield deployment
    except BaseException:
        for name in ("scheduler", *WORKERS, "dag-processor", "api-server", "s3", "sandbox"):
            print(f"--- {name} (last lines)\n{processes.log(name, 2000)}")
        raise
    finally:
        step = time.monotonic()
        stubborn = processes.stop_groups()  # Airflow's components, the workers, redis, s3, the sandbox
        postgres.stop()
        stragglers = processes.kill_owned()  # e.g. a task process in a group of its own
        time.sleep(0.5)
        leftovers = processes.owned()
        timings["stop everything"] = time.monotonic() - step
        timings["total"] = time.monotonic() - started
        print("\nCelery deployment test timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        if stubborn:
            print(f"still running 10 s after SIGTERM, then SIGKILLed: {stubborn}")
        if stragglers:
            print(f"killed by PID after their process groups were stopped: {stragglers}")
        if os.environ.get("SEGMENTS_DEPLOYMENT_KEEP"):  # to read the logs after a failure
            print(f"kept {root} (SEGMENTS_DEPLOYMENT_KEEP)")
        else:
            shutil.rmtree(root, ignore_errors=True)
        assert leftovers == [], f"processes of the Celery deployment test still alive: {leftovers}"


def _wait_for_run(deployment: CeleryDeployment, dag_id: str, run_id: str) -> str:
    def finished() -> str | None:
        state = deployment.api.run_state(dag_id, run_id)
        return state if state in ("success", "failed") else None

    return wait_for(f"run {run_id} of {dag_id}", finished, timeout=RUN_TIMEOUT)


def _members(deployment: CeleryDeployment, system_guid: str, segment_guid: str) -> set[str]:
    path = f"/_sandbox/walkme/systems/{system_guid}/segments/{segment_guid}/users"
    members = deployment.sandbox("GET", path)["userIds"]
    assert len(members) == len(set(members)), "the sandbox lists a member twice"
    return set(members)


@dataclass
class AlternatingRun:
    """One run of the alternating DAGs and what the test read right after it."""

    dag_id: str
    run_id: str
    state: str
    expected: set[str]
    members: set[str]
    export_worker: str
    sync_worker: str
    synced: dict[str, Any]


@pytest.fixture(scope="module")
def alternating_runs(celery: CeleryDeployment) -> list[AlternatingRun]:
    """Three runs one after the other; each export and sync on different workers, the syncs alternating."""
    started = time.monotonic()
    api, observed = celery.api, []
    for number, dag_id in enumerate((EXPORT_A_SYNC_B, EXPORT_B_SYNC_A, EXPORT_A_SYNC_B)):
        first = number * SHIFT
        conf = {
            "segment_name": "Celery audience",
            "system_guid": ALTERNATING_SYSTEM,
            "first": first,
            "count": AUDIENCE,
            "prefix": "celery",
            "state_key": "celery-audience",
        }
        run_id = api.trigger(dag_id, conf)
        state = _wait_for_run(celery, dag_id, run_id)
        tis = api.task_instances(dag_id, run_id)
        segments = listed_segments(celery.sandbox_url, ALTERNATING_SYSTEM)
        members = _members(celery, ALTERNATING_SYSTEM, segments[0]["guid"]) if len(segments) == 1 else set()
        observed.append(
            AlternatingRun(
                dag_id=dag_id,
                run_id=run_id,
                state=state,
                expected=_ids("celery", first, AUDIENCE),
                members=members,
                export_worker=tis["export_ids"]["hostname"],
                sync_worker=tis["sync_segment"]["hostname"],
                synced=api.xcom(dag_id, run_id, "sync_segment") if state == "success" else {},
            )
        )
    celery.timings["alternating runs"] = time.monotonic() - started
    return observed


def test_syncs_alternate_between_workers_and_each_leaves_exactly_its_input(
    alternating_runs: list[AlternatingRun], celery: CeleryDeployment
) -> None:
    assert [run.state for run in alternating_runs] == ["success"] * 3, [
        celery.api.task_instances(run.dag_id, run.run_id) for run in alternating_runs
    ]
    # Export and sync of each run on different workers; the syncs alternate.
    assert [(run.export_worker, run.sync_worker) for run in alternating_runs] == [
        ("worker_a", "worker_b"),
        ("worker_b", "worker_a"),
        ("worker_a", "worker_b"),
    ]
    for run in alternating_runs:
        assert run.members == run.expected, (
            f"{run.run_id}: {len(run.members - run.expected)} extra, "
            f"{len(run.expected - run.members)} missing"
        )
        assert run.synced["user_count"] == AUDIENCE
    # The second and third syncs found the snapshot the other worker left in the bucket: deltas.
    assert [run.synced["mode"] for run in alternating_runs] == ["full", "delta", "delta"]
    assert len(listed_segments(celery.sandbox_url, ALTERNATING_SYSTEM)) == 1


def test_ids_and_state_live_in_the_bucket_and_only_uris_go_through_xcom(
    alternating_runs: list[AlternatingRun], celery: CeleryDeployment
) -> None:
    keys = celery.s3.keys(BUCKET)
    assert "state/celery-audience.snapshot" in keys, keys
    # The lease is given back and the journal removed after a verified change.
    assert not [key for key in keys if key.endswith((".lease", ".journal"))], keys
    for run in alternating_runs:
        uri = celery.api.xcom(run.dag_id, run.run_id, "export_ids")
        assert uri == f"s3://{S3_CONN_ID}@{BUCKET}/ids/{run.run_id}/ids.txt"
        assert f"ids/{run.run_id}/ids.txt" in keys
    # Nothing landed in the workers' working or temp directories (a pid file aside).
    files = [p for p in celery.workers_root.rglob("*") if p.is_file() and p.suffix != ".pid"]
    assert files == [], files


@dataclass
class KilledRun:
    run_id: str
    state: str
    killed_worker: str | None
    killed_pids: list[int]
    killed_at: float | None


@pytest.fixture(scope="module")
def killed_run(alternating_runs: list[AlternatingRun], celery: CeleryDeployment) -> KilledRun:
    """A sync whose worker is SIGKILLed, every process of it, while the sandbox holds the create."""
    started = time.monotonic()
    api = celery.api
    celery.sandbox(
        "POST",
        "/_sandbox/faults",
        json={
            "path_prefix": f"/public/v1/user/system/{KILL_SYSTEM}/segment",
            "method": "POST",
            "delay": HOLD_SECONDS,
        },
    )
    conf = {
        "segment_name": "Killed worker",
        "system_guid": KILL_SYSTEM,
        "first": 0,
        "count": AUDIENCE,
        "prefix": "killed",
        "state_key": "killed-worker",
    }
    run_id = api.trigger(KILL, conf)

    def create_held() -> dict[str, Any] | None:
        if celery.sandbox("GET", "/_sandbox/faults") != []:
            return None  # the sandbox has not taken the fault: the create is not being held yet
        return api.task_instances(KILL, run_id)["sync_segment"]

    ti = wait_for("the sandbox to hold the sync's create", create_held, timeout=RUN_TIMEOUT, interval=0.2)
    assert ti["state"] == "running" and ti["try_number"] == 1 and ti["pid"], ti
    session = _session_of(ti["pid"])
    worker = celery.worker_of_session(session) if session is not None else None
    assert worker is not None and worker == ti["hostname"], (ti, session)
    # The whole worker dies at once: Celery's main process and pool, the supervisor, the task.
    killed = session_pids(session)
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    state = _wait_for_run(celery, KILL, run_id)
    celery.timings["killed-worker run"] = time.monotonic() - started
    return KilledRun(
        run_id=run_id, state=state, killed_worker=worker, killed_pids=killed, killed_at=killed_at
    )


def _session_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except OSError:
        return None


def test_a_sync_whose_worker_is_killed_is_retried_on_the_other_worker_and_converges(
    killed_run: KilledRun, celery: CeleryDeployment
) -> None:
    api = celery.api
    tries = api.tries(KILL, killed_run.run_id, "sync_segment")
    assert killed_run.state == "success", tries
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    survivor = next(name for name in WORKERS if name != killed_run.killed_worker)
    assert [t["hostname"] for t in tries] == [killed_run.killed_worker, survivor]
    # The held create landed (the sandbox applies it after the hold) before the retry started.
    writes = [
        r for r in celery.sandbox("GET", "/_sandbox/requests") if KILL_SYSTEM in r["path"] and "action" in r
    ]
    held = [r for r in writes if r.get("fault") == "delay"]
    assert [(r["method"], r["action"]) for r in held] == [("POST", "create")]
    retry_started = parse_time(tries[1]["start_date"])
    assert held[0]["time"] < retry_started
    assert retry_started - killed_run.killed_at >= RETRY_DELAY_SECONDS
    # The killed try's lease stayed in the bucket; the retry, on another machine, took it over as its own.
    retry_log = next((celery.home / "logs" / f"dag_id={KILL}").rglob("task_id=sync_segment/attempt=2.log"))
    assert "takes over its own lease (an earlier try)" in retry_log.read_text()
    # One segment, exactly the input: the retry adopted the killed try's segment, no duplicate.
    (segment,) = listed_segments(celery.sandbox_url, KILL_SYSTEM)
    assert segment["name"] == "Killed worker"
    assert _members(celery, KILL_SYSTEM, segment["guid"]) == _ids("killed", 0, AUDIENCE)
    assert api.xcom(KILL, killed_run.run_id, "sync_segment")["user_count"] == AUDIENCE


def _secrets(celery: CeleryDeployment) -> list[str]:
    tokens = celery.sandbox("GET", "/_sandbox/walkme/tokens")["tokens"]
    assert tokens, "the sandbox issued no WalkMe token: the runs never logged in"
    basic = base64.b64encode(f"{TEST_CLIENT_ID}:{TEST_CLIENT_SECRET}".encode()).decode()
    return [TEST_CLIENT_SECRET, basic, S3_SECRET_KEY, *tokens]


def test_no_secret_in_logs_the_metadata_db_or_the_bucket(
    alternating_runs: list[AlternatingRun], killed_run: KilledRun, celery: CeleryDeployment
) -> None:
    found = _secrets(celery)
    # Task logs, the components' and workers' output, the config; the workers' own directories.
    assert leaked_secrets_in_files(celery.home, found) == {}
    assert leaked_secrets_in_files(celery.workers_root, found) == {}
    task_logs = list((celery.home / "logs").rglob("*.log"))
    assert len([p for p in task_logs if "task_id=sync_segment" in str(p)]) >= 5  # 3 runs + 2 tries
    # The metadata DB (XComs, rendered fields, Celery's results).
    dump = celery.postgres.dump("airflow")
    assert b"segments_celery_kill" in dump and b"rendered_task_instance_fields" in dump
    assert [s for s in found if s.encode() in dump] == []
    # Every object in the bucket: id files, snapshots.
    keys = celery.s3.keys(BUCKET)
    assert len(keys) >= 6, keys
    leaked = {key: [s for s in found if s.encode() in celery.s3.get(BUCKET, key)] for key in keys}
    assert {key: hits for key, hits in leaked.items() if hits} == {}


def test_no_warning_about_a_local_state_path(
    alternating_runs: list[AlternatingRun], celery: CeleryDeployment
) -> None:
    """state_path is on object storage, so the warning for a per-worker state_path stays silent."""
    sync_logs = [p for p in (celery.home / "logs").rglob("*.log") if "task_id=sync_segment" in str(p)]
    assert sync_logs
    for path in sync_logs:
        assert "is on this worker's local disk" not in path.read_text(errors="replace"), path
