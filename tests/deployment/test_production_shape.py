"""The provider as it runs in production: the built wheel, PostgreSQL, Airflow's separate components.

Once per session (about 2-3 minutes): build the sdist and wheel, install the wheel (not editable) with
``apache-airflow[postgres]`` of the running Airflow's version into a fresh venv, start a private
PostgreSQL cluster, the sandbox (from that venv), then ``airflow api-server``, ``scheduler``,
``dag-processor`` and ``triggerer`` as separate processes with the LocalExecutor. Over the REST API it
triggers, at the same time:

- ``segments_deployment_pipeline`` (tests/deployment/dags): sync 60,000 ids from a file, a deferrable
  propagation sensor with a 20-second window, a downstream task;
- ``segments_deployment_kill_retry``: the same sync into a second system, whose first try is killed
  with SIGKILL while the sandbox holds its create; Airflow retries it;
- the example DAG ``zendesk_user_segments_demo``.

Then it checks the outcome on the sandbox, in the API's answers, in the logs and in a ``pg_dump``.
PostgreSQL's ``initdb``/``pg_ctl`` are required in CI (``make system-deps`` installs them); elsewhere
the test is skipped without them. ``SEGMENTS_DEPLOYMENT_SABOTAGE`` (see the DAG file) breaks the DAG on
purpose to show that the test fails.
"""

from __future__ import annotations

import base64
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
    airflow_base_env,
    airflow_db_migrate,
    dag_listed,
    free_port,
    json_lines,
    listed_segments,
    login_when_up,
    parse_time,
    postgres_program,
    start_fresh_venv_install,
    wait_for,
    walkme_token,
)
from support import leaked_secrets_in_files

from airflow_provider_segments.testing import (
    TEST_CLIENT_ID,
    TEST_CLIENT_SECRET,
    TEST_SYSTEM_GUID,
    TEST_ZENDESK_API_TOKEN,
    TEST_ZENDESK_EMAIL,
    TEST_ZENDESK_OAUTH_TOKEN,
    TEST_ZENDESK_PASSWORD,
)
from airflow_provider_segments.testing.pytest_plugin import connection_env

pytestmark = pytest.mark.deployment

DAGS = REPO / "tests" / "deployment" / "dags"
PIPELINE = "segments_deployment_pipeline"
KILL_RETRY = "segments_deployment_kill_retry"
STALE = "segments_deployment_stale_write"
ZENDESK = "zendesk_user_segments_demo"
SECOND_SYSTEM = "0123456789abcdef0123456789abcdef"
THIRD_SYSTEM = "fedcba9876543210fedcba9876543210"
STALE_AUDIENCE = 3_000  # what the stale-write run syncs; the late write cuts it to STALE_LEFT
STALE_LEFT = 100
PROPAGATION_SECONDS = 20  # the DAG file's window
HOLD_SECONDS = 8  # the sandbox holds the killed try's create this long
RETRY_DELAY_SECONDS = 15  # the DAG file's retry_delay
AUDIENCE = 60_000  # 3 write requests
RUNS_TIMEOUT = 240


def _pipeline_ids() -> list[str]:
    return [f"user{i:06d}@deploy.example.com" for i in range(AUDIENCE)]


def _kill_retry_ids() -> list[str]:
    return [f"member{i:06d}@retry.example.com" for i in range(AUDIENCE)]


@dataclass
class Deployment:
    """What the running deployment is made of, and the timings of getting it there."""

    home: Path
    data: Path
    venv: Path
    sandbox_url: str
    api: AirflowApi
    postgres: PostgresServer
    processes: Processes
    timings: dict[str, float] = field(default_factory=dict)

    def sandbox(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = requests.request(method, self.sandbox_url + path, timeout=30, **kwargs)
        answer.raise_for_status()
        return answer.json() if answer.content else None


def _require_postgres() -> None:
    missing = [name for name in ("initdb", "pg_ctl", "pg_dump") if postgres_program(name) is None]
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing.append("runuser")
    if not missing:
        return
    reason = (
        f"the deployment test needs PostgreSQL's server programs, missing: {', '.join(missing)} "
        "(Debian: apt-get install postgresql, or make system-deps)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason)  # CI installs them: a skip there would hide a broken set-up
    pytest.skip(reason)


def _airflow_env(
    deployment_dirs: dict[str, Path], ports: dict[str, int], pg: PostgresServer
) -> dict[str, str]:
    env = airflow_base_env(
        deployment_dirs["home"], deployment_dirs["venv"], ports["api"], pg.url("airflow"), "LocalExecutor"
    )
    sandbox_url = f"http://127.0.0.1:{ports['sandbox']}"
    env.update(
        {
            # Private ports for the log servers of the workers and the triggerer (defaults 8793/8794).
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports["worker_logs"]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports["trigger_logs"]),
            # Short timeouts, so the DAG's 15 s retry_delay is longer than a request can be in flight.
            **connection_env(sandbox_url, connect_timeout=2, timeout=10, backoff_initial=0.2, backoff_max=1),
            "SEGMENTS_DEPLOYMENT_SABOTAGE": os.environ.get("SEGMENTS_DEPLOYMENT_SABOTAGE", ""),
        }
    )
    return env


@pytest.fixture(scope="module")
def deployment(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    """The running deployment; every process is stopped afterwards and none may be left."""
    _require_postgres()
    started = time.monotonic()
    dists = request.getfixturevalue("built_dists")
    timings = {"build sdist + wheel": time.monotonic() - started}

    # Under /tmp itself: the postgres user must reach the cluster's folder.
    root = Path(tempfile.mkdtemp(prefix="segments-deployment-"))
    root.chmod(0o755)
    dirs = {"venv": root / "venv", "home": root / "airflow-home", "data": root / "data"}
    for path in (dirs["home"] / "dags", dirs["data"]):
        path.mkdir(parents=True)
    shutil.copy(DAGS / "segments_deployment_check.py", dirs["home"] / "dags")
    shutil.copy(REPO / "example_dags" / f"{ZENDESK}.py", dirs["home"] / "dags")
    ports = {name: free_port() for name in ("api", "sandbox", "postgres", "worker_logs", "trigger_logs")}
    marker = secrets.token_hex(8)
    processes = Processes(marker=marker, log_dir=dirs["home"] / "component-logs")
    postgres = PostgresServer(root / "postgres", ports["postgres"], processes)
    env = _airflow_env(dirs, ports, postgres)
    api = AirflowApi(f"http://127.0.0.1:{ports['api']}")
    deployment = Deployment(
        home=dirs["home"],
        data=dirs["data"],
        venv=dirs["venv"],
        sandbox_url=f"http://127.0.0.1:{ports['sandbox']}",
        api=api,
        postgres=postgres,
        processes=processes,
        timings=timings,
    )
    try:
        # A clean install of the wheel: a fresh venv, Airflow of the version under test with the
        # postgres extra, every other package held at the version this venv has (pip's cache serves them).
        step = time.monotonic()
        install = start_fresh_venv_install(dirs["venv"], dists.wheel, [], processes, env)
        postgres.start("airflow")  # meanwhile
        timings["postgres initdb + start"] = time.monotonic() - step
        assert install.wait(timeout=600) == 0, processes.log("pip-install")
        timings["venv + pip install (wheel, airflow[postgres])"] = time.monotonic() - step

        step = time.monotonic()
        airflow_db_migrate(dirs["venv"], env)
        timings["airflow db migrate"] = time.monotonic() - step

        step = time.monotonic()
        python = str(dirs["venv"] / "bin" / "python")
        processes.start(
            "sandbox",
            [python, "-m", "airflow_provider_segments.testing", "--port", str(ports["sandbox"])],
            env,
        )
        airflow = str(dirs["venv"] / "bin" / "airflow")
        for component in ("api-server", "scheduler", "dag-processor", "triggerer"):
            processes.start(component, [airflow, component], env)
        login_when_up(api, dirs["home"])
        for dag_id in (PIPELINE, KILL_RETRY, ZENDESK):
            wait_for(f"DAG {dag_id} to be parsed", lambda d=dag_id: dag_listed(api, d), timeout=120)
        assert api.get("/importErrors")["import_errors"] == []
        wait_for("the sandbox", lambda: deployment.sandbox("GET", "/_sandbox/faults") == [], 30)
        timings["components up, DAGs parsed"] = time.monotonic() - step
        yield deployment
    except BaseException:
        for name in ("scheduler", "triggerer", "dag-processor", "api-server", "sandbox"):
            print(f"--- {name} (last lines)\n{processes.log(name, 2000)}")
        raise
    finally:
        step = time.monotonic()
        stubborn = processes.stop_groups()  # Airflow's components and the sandbox
        postgres.stop()
        stragglers = processes.kill_owned()  # e.g. a task process in a group of its own
        time.sleep(0.5)
        leftovers = processes.owned()
        timings["stop everything"] = time.monotonic() - step
        timings["total"] = time.monotonic() - started
        print("\ndeployment test timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        if stubborn:
            print(f"still running 10 s after SIGTERM, then SIGKILLed: {stubborn}")
        if stragglers:
            print(f"killed by PID after their process groups were stopped: {stragglers}")
        if os.environ.get("SEGMENTS_DEPLOYMENT_KEEP"):  # to read the logs after a failure
            print(f"kept {root} (SEGMENTS_DEPLOYMENT_KEEP)")
        else:
            shutil.rmtree(root, ignore_errors=True)
        assert leftovers == [], f"processes of the deployment test still alive: {leftovers}"


@dataclass
class Runs:
    """The three runs, triggered together, and what was observed while they ran."""

    run_ids: dict[str, str]
    states: dict[str, str]
    sensor_states: list[str]
    sensor_triggers: list[str]
    killed_pid: int | None = None
    killed_at: float | None = None
    seconds: float = 0.0


@pytest.fixture(scope="module")
def runs(deployment: Deployment) -> Runs:
    started = time.monotonic()
    api, data = deployment.api, deployment.data
    (data / "pipeline.txt").write_text("".join(f"{i}\n" for i in _pipeline_ids()))
    (data / "kill-retry.txt").write_text("".join(f"{i}\n" for i in _kill_retry_ids()))
    (data / "stale.txt").write_text("".join(f"stale{i:05d}\n" for i in range(STALE_AUDIENCE)))
    deployment.sandbox("POST", "/_sandbox/walkme/systems", json={"guid": SECOND_SYSTEM})
    deployment.sandbox("POST", "/_sandbox/walkme/systems", json={"guid": THIRD_SYSTEM})
    # Hold the kill-retry DAG's create (and only it): the test kills the task while it is held.
    deployment.sandbox(
        "POST",
        "/_sandbox/faults",
        json={
            "path_prefix": f"/public/v1/user/system/{SECOND_SYSTEM}/segment",
            "method": "POST",
            "delay": HOLD_SECONDS,
        },
    )

    def sync_run(dag_id: str, segment_name: str, stem: str, system_guid: str) -> str:
        params = {
            "segment_name": segment_name,
            "ids_path": str(data / f"{stem}.txt"),
            "state_path": str(data / f"{stem}.snapshot"),
            "system_guid": system_guid,
        }
        return api.trigger(dag_id, params)

    run_ids = {
        PIPELINE: sync_run(PIPELINE, "Deployed audience", "pipeline", TEST_SYSTEM_GUID),
        KILL_RETRY: sync_run(KILL_RETRY, "Killed and retried", "kill-retry", SECOND_SYSTEM),
        STALE: sync_run(STALE, "Changed behind the gate", "stale", THIRD_SYSTEM),
        ZENDESK: api.trigger(ZENDESK, {}),
    }
    stale_written = False
    observed = Runs(run_ids=run_ids, states={}, sensor_states=[], sensor_triggers=[])
    deadline = time.monotonic() + RUNS_TIMEOUT
    while time.monotonic() < deadline:
        sensor = api.task_instances(PIPELINE, run_ids[PIPELINE]).get("wait_for_propagation") or {}
        if sensor.get("state") and (
            not observed.sensor_states or observed.sensor_states[-1] != sensor["state"]
        ):
            observed.sensor_states.append(sensor["state"])
        if sensor.get("trigger"):
            observed.sensor_triggers.append(sensor["trigger"]["classpath"])
        if observed.killed_pid is None and deployment.sandbox("GET", "/_sandbox/faults") == []:
            # The sandbox took the fault: the create is being held. Kill the task process itself.
            ti = api.task_instances(KILL_RETRY, run_ids[KILL_RETRY])["sync_segment"]
            assert ti["state"] == "running" and ti["try_number"] == 1 and ti["pid"], ti
            assert ti["pid"] in deployment.processes.owned()  # one of ours, nobody else's
            os.kill(ti["pid"], signal.SIGKILL)
            observed.killed_pid, observed.killed_at = ti["pid"], time.time()
        if not stale_written:
            stale_sensor = api.task_instances(STALE, run_ids[STALE]).get("wait_for_propagation") or {}
            if stale_sensor.get("state") == "deferred":
                # A killed try's late `override` lands while the sensor waits in the triggerer.
                (segment,) = listed_segments(deployment.sandbox_url, THIRD_SYSTEM)
                _override(
                    deployment, THIRD_SYSTEM, segment["guid"], [f"stale{i:05d}" for i in range(STALE_LEFT)]
                )
                stale_written = True
        observed.states = {dag_id: api.run_state(dag_id, run_id) for dag_id, run_id in run_ids.items()}
        if all(state in ("success", "failed") for state in observed.states.values()):
            break
        time.sleep(0.5)
    observed.seconds = time.monotonic() - started
    deployment.timings["DAG runs"] = observed.seconds
    return observed


def _task_log(deployment: Deployment, dag_id: str, run_id: str, task_id: str) -> Path:
    folder = deployment.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    return folder / "attempt=1.log"


def test_every_run_succeeds(runs: Runs, deployment: Deployment) -> None:
    failed = {
        dag_id: state for dag_id, state in runs.states.items() if state != "success" and dag_id != STALE
    }
    details = {
        dag_id: {
            t: ti["state"] for t, ti in deployment.api.task_instances(dag_id, runs.run_ids[dag_id]).items()
        }
        for dag_id in failed
    }
    assert failed == {}, f"runs that did not succeed within {RUNS_TIMEOUT} s: {details}"


def test_sensor_defers_to_the_triggerer_and_the_downstream_task_runs_after_the_window(
    runs: Runs, deployment: Deployment
) -> None:
    api, run_id = deployment.api, runs.run_ids[PIPELINE]
    tis = api.task_instances(PIPELINE, run_id)

    # The sensor's task instance was seen deferred, on a time trigger, in one try: it held no worker
    # slot while it waited (a sensor that pokes shows up_for_reschedule instead).
    assert "deferred" in runs.sensor_states, runs.sensor_states
    assert set(runs.sensor_triggers) == {"airflow.providers.standard.triggers.temporal.DateTimeTrigger"}
    assert tis["wait_for_propagation"]["state"] == "success"
    assert [t["state"] for t in api.tries(PIPELINE, run_id, "wait_for_propagation")] == ["success"]

    # The task said so, and the triggerer ran the trigger until it fired (its log is the triggerer's).
    sensor_log = _task_log(deployment, PIPELINE, run_id, "wait_for_propagation")
    events = [line.get("event", "") for line in json_lines(sensor_log)]
    assert "Pausing task as DEFERRED. " in events
    assert not [e for e in events if "Failed to report" in e]
    (trigger_log,) = sensor_log.parent.glob("attempt=1.log.trigger.*.log")
    trigger_events = [line.get("event", "") for line in json_lines(trigger_log)]
    assert "Trigger fired event" in trigger_events, trigger_events[-5:]

    # The content task started only after changed_at + the window.
    synced = api.xcom(PIPELINE, run_id, "sync_segment")
    window_end = parse_time(synced["changed_at"]) + PROPAGATION_SECONDS
    assert parse_time(tis["wait_for_propagation"]["end_date"]) >= window_end
    assert parse_time(tis["publish_content"]["start_date"]) >= window_end
    assert api.xcom(PIPELINE, run_id, "publish_content") == {
        "segment_guid": synced["segment_guid"],
        "user_count": AUDIENCE,
    }


def _override(deployment: Deployment, system_guid: str, segment_guid: str, user_ids: list[str]) -> None:
    requests.put(
        f"{deployment.sandbox_url}/public/v1/user/system/{system_guid}/segment/{segment_guid}",
        json={"action": "override", "userIds": user_ids},
        headers={"Authorization": f"Bearer {walkme_token(deployment.sandbox_url)}"},
        timeout=30,
    ).raise_for_status()


def test_a_write_behind_the_gates_back_stops_the_content(runs: Runs, deployment: Deployment) -> None:
    """The sync left 3,000 members; a late override cut them to 100 during the window: the sensor
    fails with both counts and the content task never runs (without the gate it would publish)."""
    api, run_id = deployment.api, runs.run_ids[STALE]
    tis = api.task_instances(STALE, run_id)
    assert runs.states[STALE] == "failed", {task: ti["state"] for task, ti in tis.items()}
    assert tis["sync_segment"]["state"] == "success"
    assert tis["wait_for_propagation"]["state"] == "failed"
    assert tis["publish_content"]["state"] == "upstream_failed"
    log = _task_log(deployment, STALE, run_id, "wait_for_propagation").read_text()
    assert f"lists {STALE_LEFT:,} members" in log and f"not the {STALE_AUDIENCE:,}" in log


def _members(deployment: Deployment, system_guid: str, segment_guid: str) -> list[str]:
    path = f"/_sandbox/walkme/systems/{system_guid}/segments/{segment_guid}/users"
    return deployment.sandbox("GET", path)["userIds"]


def test_the_synced_segment_holds_exactly_the_file(runs: Runs, deployment: Deployment) -> None:
    (segment,) = listed_segments(deployment.sandbox_url, TEST_SYSTEM_GUID)
    assert segment["name"] == "Deployed audience"
    members = _members(deployment, TEST_SYSTEM_GUID, segment["guid"])
    assert len(members) == AUDIENCE and set(members) == set(_pipeline_ids())
    writes = [
        (r["method"], r.get("action"), r.get("ids"))
        for r in deployment.sandbox("GET", "/_sandbox/requests")
        if r["path"].startswith(f"/public/v1/user/system/{TEST_SYSTEM_GUID}/") and r["method"] != "GET"
    ]
    assert writes[0] == ("POST", "create", 25_000)  # then the adds, in parallel: in any order
    assert sorted(writes[1:]) == [("PUT", "add", 10_000), ("PUT", "add", 25_000)]


def test_a_killed_try_is_retried_after_its_held_write_landed_and_converges(
    runs: Runs, deployment: Deployment
) -> None:
    api, run_id = deployment.api, runs.run_ids[KILL_RETRY]
    assert runs.killed_pid is not None, "the sandbox never held the create: nothing was killed"

    tries = api.tries(KILL_RETRY, run_id, "sync_segment")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    assert tries[0]["pid"] == runs.killed_pid

    # The held create of the killed try landed (the sandbox applies it after the hold) before the
    # retry started: retry_delay exceeds how long a request of the killed try can be in flight.
    log = [
        r
        for r in deployment.sandbox("GET", "/_sandbox/requests")
        if SECOND_SYSTEM in r["path"] and "action" in r
    ]
    held = [r for r in log if r.get("fault") == "delay"]
    assert [(r["method"], r["action"]) for r in held] == [("POST", "create")]
    retry_started = parse_time(tries[1]["start_date"])
    assert held[0]["time"] < retry_started
    assert retry_started - runs.killed_at >= RETRY_DELAY_SECONDS
    retried = [(r["action"], r["ids"]) for r in log if r["time"] >= retry_started]
    # the override alone first; the adds after it go out in parallel, in any order
    assert retried[0] == ("override", 25_000) and sorted(retried[1:]) == [("add", 10_000), ("add", 25_000)]

    # One segment, holding exactly the file: no duplicate from the lost create, nothing missing.
    (segment,) = listed_segments(deployment.sandbox_url, SECOND_SYSTEM)
    assert segment["name"] == "Killed and retried"
    members = _members(deployment, SECOND_SYSTEM, segment["guid"])
    assert len(members) == AUDIENCE and set(members) == set(_kill_retry_ids())
    assert api.xcom(KILL_RETRY, run_id, "sync_segment")["user_count"] == AUDIENCE


def test_the_zendesk_example_dag_runs_every_task(runs: Runs, deployment: Deployment) -> None:
    api, run_id = deployment.api, runs.run_ids[ZENDESK]
    tis = api.task_instances(ZENDESK, run_id)
    assert {task_id: ti["state"] for task_id, ti in tis.items()} == dict.fromkeys(
        ("create_segment", "list_segments", "update_segment", "list_usage", "report", "delete_segment"),
        "success",
    )
    assert "User segment 'VIP agents (demo)'" in api.xcom(ZENDESK, run_id, "report")
    calls = [
        (r["method"], r["status"])
        for r in deployment.sandbox("GET", "/_sandbox/requests")
        if r["path"].startswith("/api/v2/help_center/user_segments")
    ]
    assert ("DELETE", 204) in calls and any(method == "PUT" for method, _ in calls), calls


def _secrets(deployment: Deployment) -> list[str]:
    tokens = deployment.sandbox("GET", "/_sandbox/walkme/tokens")["tokens"]
    assert tokens, "the sandbox issued no WalkMe token: the runs never logged in"
    basic = [
        base64.b64encode(f"{TEST_CLIENT_ID}:{TEST_CLIENT_SECRET}".encode()).decode(),
        base64.b64encode(f"{TEST_ZENDESK_EMAIL}/token:{TEST_ZENDESK_API_TOKEN}".encode()).decode(),
    ]
    return [
        TEST_CLIENT_SECRET,
        TEST_ZENDESK_API_TOKEN,
        TEST_ZENDESK_PASSWORD,
        TEST_ZENDESK_OAUTH_TOKEN,
        *basic,
        *tokens,
    ]


def test_no_secret_in_any_log_the_metadata_db_or_the_apis_answers(runs: Runs, deployment: Deployment) -> None:
    found = _secrets(deployment)

    # Every file under AIRFLOW_HOME: task and trigger logs, the components' own output, the config.
    files = leaked_secrets_in_files(deployment.home, found)
    assert files == {}, files
    assert len(list((deployment.home / "logs").rglob("*.log"))) > 10  # task, trigger, dag-processor logs

    # The metadata DB, XComs and rendered template fields included.
    dump = deployment.postgres.dump("airflow")
    assert b"segments_deployment_pipeline" in dump and b"rendered_task_instance_fields" in dump
    assert [s for s in found if s.encode() in dump] == []

    # What the REST API answers about each run: task instances with rendered fields, every XCom.
    answers = "\n".join(deployment.api.answers_about_run(d, r) for d, r in runs.run_ids.items())
    assert '"rendered_fields"' in answers and "segment_guid" in answers
    assert [s for s in found if s in answers] == []
