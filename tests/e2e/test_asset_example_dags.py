"""Data-aware pipeline in real Airflow: the gate's asset event schedules the content DAG; lineage.

One run of ``walkme_audience_asset_producer`` (``airflow dags test`` against the sandbox, with the
OpenLineage provider writing its events to a file), then what Airflow's scheduler does with the
queued event (one pass of its DAG-run creation) and a run of the consumer's task on the new run.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from demo import airflow_env, run_dag_against_test_server

from airflow_provider_segments.assets import walkme_segment_asset
from airflow_provider_segments.testing import TEST_SYSTEM_GUID, SegmentsTestServer

pytestmark = pytest.mark.e2e

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "example_dags"
PRODUCER, CONSUMER = "walkme_audience_asset_producer", "walkme_audience_content"
SEGMENT_NAME = "Active enterprise users"
AUDIENCE = 1_200


class Run:
    """The producer's run, the consumer's asset-triggered run, and what they left behind."""

    def __init__(self, tmp_path: Path) -> None:
        home = tmp_path / "home"
        self.openlineage_file = tmp_path / "openlineage.jsonl"
        env = {
            "SEGMENTS_DEMO_PROPAGATION_SECONDS": "2",
            "SEGMENTS_EXAMPLE_WALKME_SYSTEM_GUID": TEST_SYSTEM_GUID,
            # A consumer DAG that is paused gets no queued runs; new DAGs are paused by default.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(self.openlineage_file), "append": True}
            ),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "segments-e2e",
        }
        with SegmentsTestServer() as sandbox:
            self.producer = run_dag_against_test_server(
                sandbox, dag_id=PRODUCER, airflow_home=home, dags_folder=DAGS_FOLDER, extra_env=env
            )
            assert self.producer.returncode == 0, self.producer.output[-4000:]
            (self.segment,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
            self.members = sandbox.walkme.members(TEST_SYSTEM_GUID, self.segment["guid"])
            consumer_env = airflow_env(home, DAGS_FOLDER, sandbox.url, **env)
        # Before the consumer runs: what the producer's run queued.
        with sqlite3.connect(home / "airflow.db") as db:
            self.events = [
                (uri, json.loads(extra), dag_id, task_id)
                for uri, extra, dag_id, task_id in db.execute(
                    "SELECT a.uri, e.extra, e.source_dag_id, e.source_task_id FROM asset_event e "
                    "JOIN asset a ON a.id = e.asset_id"
                )
            ]
            self.queued = [row[0] for row in db.execute("SELECT target_dag_id FROM asset_dag_run_queue")]
            (sync,) = db.execute(
                "SELECT value FROM xcom WHERE task_id = 'sync_segment' AND key = 'return_value'"
            ).fetchone()
            self.sync = json.loads(sync)
        self.consumer = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).with_name("asset_triggered_run.py")),
                CONSUMER,
                "publish_content",
            ],
            env=consumer_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert self.consumer.returncode == 0, (self.consumer.stdout + self.consumer.stderr)[-4000:]
        with sqlite3.connect(home / "airflow.db") as db:
            self.consumer_runs = list(
                db.execute("SELECT run_id, run_type FROM dag_run WHERE dag_id = ?", [CONSUMER])
            )
            (self.content_xcom,) = [
                json.loads(value)
                for (value,) in db.execute(
                    "SELECT value FROM xcom WHERE dag_id = ? AND task_id = 'publish_content' "
                    "AND key = 'return_value'",
                    [CONSUMER],
                )
            ]

    def openlineage_events(self, job: str, event_type: str) -> list[dict]:
        events = [json.loads(line) for line in self.openlineage_file.read_text().splitlines() if line.strip()]
        return [e for e in events if e.get("job", {}).get("name") == job and e.get("eventType") == event_type]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    return Run(tmp_path_factory.mktemp("assets"))


def test_the_gate_emits_one_event_of_the_segments_asset_with_count_mode_and_changed_at(run):
    guid = run.segment["guid"]
    asset = walkme_segment_asset(TEST_SYSTEM_GUID, SEGMENT_NAME)
    assert asset.uri == f"walkme-segment://{TEST_SYSTEM_GUID}/name/Active%20enterprise%20users"
    assert len(run.members) == AUDIENCE
    ((uri, extra, dag_id, task_id),) = run.events  # one event: the gate's, not the sync's
    assert (uri, dag_id, task_id) == (asset.uri, PRODUCER, "wait_for_propagation")
    changed_at = extra.pop("changed_at")
    assert extra == {
        "user_count": AUDIENCE,
        "mode": "full",
        "segment_guid": guid.lower(),
        "name": SEGMENT_NAME,
        "system_guid": TEST_SYSTEM_GUID,
    }
    # The sync's changed_at, in UTC to the second (what the sensor was given, rendered from XCom).
    synced_at = datetime.fromisoformat(run.sync["changed_at"]).replace(microsecond=0)
    assert datetime.fromisoformat(changed_at) == synced_at and changed_at.endswith("+00:00")
    assert run.queued == [CONSUMER]


def test_the_scheduler_creates_an_asset_triggered_content_run_that_reads_the_events_extra(run):
    ((run_id, run_type),) = run.consumer_runs
    assert run_type == "asset_triggered" and run_id.startswith("asset_triggered__")
    (line,) = [line for line in run.consumer.stdout.splitlines() if line.startswith("ASSET RUN: ")]
    consumed = json.loads(line.removeprefix("ASSET RUN: "))["events"]
    assert [event["user_count"] for event in consumed] == [AUDIENCE]
    output = run.consumer.stdout + run.consumer.stderr
    assert f"holds {AUDIENCE:,} users after a full sync" in output
    assert f"event from {PRODUCER}.wait_for_propagation" in output
    assert run.content_xcom["segment_guid"] == run.segment["guid"].lower()
    assert run.content_xcom["user_count"] == AUDIENCE


def test_openlineage_events_name_the_input_file_and_the_output_segment_with_counts(run):
    (complete,) = run.openlineage_events(f"{PRODUCER}.sync_segment", "COMPLETE")
    (source,) = complete["inputs"]
    assert source["namespace"] == "file"
    assert source["name"].endswith(".txt") and "/audiences/active-enterprise-" in source["name"]
    assert source["inputFacets"]["inputStatistics"]["rowCount"] == AUDIENCE
    (segment,) = complete["outputs"]
    assert segment["namespace"] == f"walkme-segment://{TEST_SYSTEM_GUID}"
    assert segment["name"] == run.segment["guid"].lower()
    assert segment["outputFacets"]["outputStatistics"]["rowCount"] == AUDIENCE
    (alias,) = segment["facets"]["symlinks"]["identifiers"]
    assert alias == {
        "namespace": f"walkme-segment://{TEST_SYSTEM_GUID}",
        "name": f"name/{SEGMENT_NAME}",
        "type": "SEGMENT_NAME",
    }
    facet = complete["run"]["facets"]["segments"]
    assert (facet["platform"], facet["input"], facet["mode"]) == ("walkme", "file", "full")
    assert (facet["added"], facet["user_count"], facet["requests"]) == (AUDIENCE, AUDIENCE, 1)
