"""An example DAG with its data on a URI (``file://`` goes through object storage as ``s3://`` does):
only the URI goes through XCom, and the sync's input and snapshot are read and written there."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from demo import run_dag_against_test_server

from airflow_provider_segments.testing import TEST_SYSTEM_GUID, SegmentsTestServer

pytestmark = pytest.mark.e2e

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "example_dags"
DAG_ID = "walkme_audience_asset_producer"


def test_producer_with_a_uri_data_dir_passes_uris_and_keeps_the_snapshot_there(tmp_path):
    home, data = tmp_path / "home", tmp_path / "data"
    data_uri = f"file://{data}"
    with SegmentsTestServer() as sandbox:
        outcome = run_dag_against_test_server(
            sandbox,
            dag_id=DAG_ID,
            airflow_home=home,
            dags_folder=DAGS_FOLDER,
            extra_env={
                "SEGMENTS_EXAMPLE_DATA_DIR": data_uri,
                "SEGMENTS_EXAMPLE_WALKME_SYSTEM_GUID": TEST_SYSTEM_GUID,
                "SEGMENTS_DEMO_PROPAGATION_SECONDS": "1",
            },
        )
        assert outcome.returncode == 0, outcome.output[-4000:]
        (segment,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
        members = sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"])

    with sqlite3.connect(home / "airflow.db") as db:
        (exported,) = db.execute(
            "SELECT value FROM xcom WHERE task_id = 'export_audience' AND key = 'return_value'"
        ).fetchone()
    uri = json.loads(exported)
    assert isinstance(uri, str) and uri.startswith(f"{data_uri}/audiences/")
    exported_file = Path(uri.removeprefix("file://"))
    assert exported_file.read_text().splitlines() == members and len(members) == 1_200

    snapshot = data / "state" / "active-enterprise-users.snapshot"
    assert snapshot.is_file() and set(snapshot.read_text().splitlines()[1:]) == set(members)
    # Nothing was written where the old pathlib join put it (s3://b/x -> s3:/b/x, file:// -> file:/).
    assert not (home / "file:").exists() and not Path("file:").exists()
