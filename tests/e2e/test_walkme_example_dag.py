"""The WalkMe example DAG in real Airflow (``airflow dags test``) against the sandbox over HTTP."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from demo import main as demo_main
from demo import run_dag_against_test_server
from support import leaked_secrets, leaked_secrets_in_files

from airflow_provider_segments.testing import TEST_CLIENT_SECRET, TEST_SYSTEM_GUID, SegmentsTestServer

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "example_dags"
SEGMENT_NAME = "Enterprise accounts (demo)"


def _load_dag_module():
    spec = importlib.util.spec_from_file_location(
        "walkme_segment_demo", DAGS_FOLDER / "walkme_segment_demo.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("airflow-home")


@pytest.fixture(scope="module")
def sandbox():
    with SegmentsTestServer() as server:
        yield server


def _run(sandbox: SegmentsTestServer, airflow_home: Path, propagation_seconds: int = 1):
    sandbox.clear_request_log()
    outcome = run_dag_against_test_server(
        sandbox,
        airflow_home=airflow_home,
        dags_folder=DAGS_FOLDER,
        # DEBUG, so that the secret scans below also cover what only shows at DEBUG.
        extra_env={
            "SEGMENTS_DEMO_PROPAGATION_SECONDS": str(propagation_seconds),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
        },
    )
    assert outcome.returncode == 0, outcome.output[-4000:]
    return outcome


def _writes(sandbox: SegmentsTestServer) -> list[tuple[str, int]]:
    return [(r["action"], r["ids"]) for r in sandbox.requests if "action" in r]


def test_example_dag_creates_the_segment_defers_then_publishes(sandbox, airflow_home):
    # A window long enough that it is still open when the sensor starts, even on a slow machine.
    outcome = _run(sandbox, airflow_home, propagation_seconds=12)
    audience = _load_dag_module().demo_audience()

    (segment,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    assert segment["name"] == SEGMENT_NAME
    # the add chunks after the create go out in parallel: in any order
    assert sorted(sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"])) == sorted(audience)
    writes = _writes(sandbox)
    assert writes[0] == ("create", 25_000) and sorted(writes[1:]) == [("add", 10_000), ("add", 25_000)]

    # The sensor really deferred to the triggerer and resumed; the content task ran after it.
    output = outcome.output
    deferred_at = output.index("Pausing task as DEFERRED")
    resumed_at = output.index("Propagation window over")
    assert deferred_at < output.index("Trigger completed") < resumed_at < output.index("DEMO SUMMARY")
    assert "holds 60,000 users after 3 write request(s)" in output

    # No secret in the output at DEBUG (dag.test does not mask: the provider must not log them), nor in
    # the metadata DB (XComs, rendered template fields) or any task log file.
    secrets = [TEST_CLIENT_SECRET, *sandbox.walkme.issued_tokens]
    assert len(secrets) > 1
    assert leaked_secrets(output, secrets) == []
    assert leaked_secrets_in_files(airflow_home, secrets, skip=(outcome.log_path.name,)) == {}


def test_rerunning_the_dag_converges_without_a_duplicate(sandbox, airflow_home):
    _run(sandbox, airflow_home)  # the segment exists from the first test (or is created now)
    first_guid = sandbox.walkme.segments(TEST_SYSTEM_GUID)[0]["guid"]
    outcome = _run(sandbox, airflow_home)

    (segment,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    assert segment["guid"] == first_guid
    # the add chunks after the override go out in parallel: in any order
    members = sandbox.walkme.members(TEST_SYSTEM_GUID, first_guid)
    assert sorted(members) == sorted(_load_dag_module().demo_audience())
    writes = _writes(sandbox)
    assert writes[0] == ("override", 25_000) and sorted(writes[1:]) == [("add", 10_000), ("add", 25_000)]
    assert "already exists" in outcome.output


def test_readme_demo_command_prints_the_summary(tmp_path, capsys):
    exit_code = demo_main(
        [
            "--airflow-home",
            str(tmp_path / "home"),
            "--dags-folder",
            str(DAGS_FOLDER),
            "--propagation-seconds",
            "1",
        ]
    )
    printed = capsys.readouterr().out
    assert exit_code == 0, printed
    assert "succeeded" in printed
    assert f"test server segment '{SEGMENT_NAME}'" in printed and "60,000 members" in printed
    assert "holds 60,000 users" in printed and "write requests the test server received: 3" in printed
