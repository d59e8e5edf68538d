"""walkme_audience_from_warehouse in real Airflow: SQL -> file -> delta sync -> deferred sensor -> content."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from demo import run_dag_against_test_server

from airflow_provider_segments.testing import TEST_SYSTEM_GUID, SegmentsTestServer

pytestmark = pytest.mark.e2e

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "example_dags"
DAG_ID = "walkme_audience_from_warehouse"


def test_warehouse_audience_is_synced_then_only_the_difference_on_the_next_run(tmp_path):
    home = tmp_path / "home"
    with SegmentsTestServer() as sandbox:

        def run():
            sandbox.clear_request_log()
            outcome = run_dag_against_test_server(
                sandbox,
                dag_id=DAG_ID,
                airflow_home=home,
                dags_folder=DAGS_FOLDER,
                extra_env={"SEGMENTS_DEMO_PROPAGATION_SECONDS": "8"},
            )
            assert outcome.returncode == 0, outcome.output[-4000:]
            return outcome, [(r["action"], r["ids"]) for r in sandbox.requests if r.get("action")]

        first, first_writes = run()
        warehouse = sqlite3.connect(home / "demo-warehouse.db")
        audience = [
            email
            for (email,) in warehouse.execute(
                "SELECT u.email FROM users u JOIN accounts a ON a.id = u.account_id "
                "WHERE a.plan = 'enterprise' AND u.active = 1 ORDER BY u.id"
            )
        ]
        (segment,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
        assert sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]) == audience
        assert first_writes == [("create", 25_000), ("add", len(audience) - 25_000)]
        assert "full sync" in first.output

        # What went through XCom was the file's path, not the ids.
        metadata = sqlite3.connect(home / "airflow.db")
        (exported,) = metadata.execute(
            "SELECT value FROM xcom WHERE task_id = 'export_audience' ORDER BY timestamp DESC LIMIT 1"
        ).fetchone()
        path = json.loads(exported)
        assert isinstance(path, str) and Path(path).read_text().splitlines() == audience

        # The sensor deferred before the content task ran.
        assert first.output.index("Pausing task as DEFERRED") < first.output.index("DEMO SUMMARY")

        # Same warehouse, second run: a delta sync that has nothing to send.
        second, second_writes = run()
        assert second_writes == []
        assert "delta sync, +0 / -0 in 0 write request(s)" in second.output
        assert sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]) == audience
