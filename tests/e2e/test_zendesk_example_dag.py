"""The Zendesk example DAG in real Airflow (``airflow dags test``) against the sandbox over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from demo import run_dag_against_test_server
from support import leaked_secrets, leaked_secrets_in_files

from airflow_provider_segments.testing import SegmentsTestServer
from airflow_provider_segments.testing.zendesk import FIRST_CUSTOM_SEGMENT_ID, TEST_ZENDESK_API_TOKEN

pytestmark = pytest.mark.e2e

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "example_dags"
PRESEEDED = 250
SEGMENT_NAME = "VIP agents (demo)"
LIST_PATH = "/api/v2/help_center/user_segments.json"


@pytest.mark.parametrize("segment_exists", [False, True], ids=["fresh", "rerun-after-lost-create"])
def test_zendesk_example_dag_runs_the_segment_life_cycle(tmp_path, segment_exists):
    with SegmentsTestServer() as sandbox:
        zendesk = sandbox.zendesk
        for i in range(PRESEEDED):  # enough custom segments for three pages of 100
            zendesk.create_segment(name=f"existing {i:03d}", user_type="signed_in_users")
        if segment_exists:  # as if an earlier try created it and then failed
            existing = zendesk.create_segment(name=SEGMENT_NAME, user_type="signed_in_users")
            zendesk.add_section(existing["id"], "VIP escalations")
            zendesk.add_topic(existing["id"], "VIP lounge")
        outcome = run_dag_against_test_server(
            sandbox,
            dag_id="zendesk_user_segments_demo",
            airflow_home=tmp_path / "home",
            dags_folder=DAGS_FOLDER,
            extra_env={"AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG"},
        )
        requests = sandbox.requests
        remaining = zendesk.segments()

    assert outcome.returncode == 0, outcome.output[-4000:]
    # The DAG's segment was created (or reused), updated and deleted again; the others are untouched.
    assert [s["id"] for s in remaining if not s["built_in"]] == list(
        range(FIRST_CUSTOM_SEGMENT_ID, FIRST_CUSTOM_SEGMENT_ID + PRESEEDED)
    )
    segment_id = FIRST_CUSTOM_SEGMENT_ID + PRESEEDED
    segment_path = f"/api/v2/help_center/user_segments/{segment_id}.json"
    writes = [(r["method"], r["path"]) for r in requests if r["method"] in ("POST", "PUT", "DELETE")]
    first_write = ("PUT", segment_path) if segment_exists else ("POST", LIST_PATH)
    assert writes == [first_write, ("PUT", segment_path), ("DELETE", segment_path)]
    assert all(r.get("auth") == "api_token" for r in requests)

    output = outcome.output
    assert "is one of 253 segments" in output  # list_segments followed every page
    assert "staff, tags ['vip'], or_tags ['gold', 'platinum']" in output
    if segment_exists:
        assert "it restricts VIP escalations and VIP lounge" in output
    else:
        assert "it restricts no sections and no topics" in output
    assert leaked_secrets(output, [TEST_ZENDESK_API_TOKEN]) == []
    assert (
        leaked_secrets_in_files(tmp_path / "home", [TEST_ZENDESK_API_TOKEN], skip=(outcome.log_path.name,))
        == {}
    )
