"""segments_housekeeping and zendesk_restrict_help_center in real Airflow against the sandbox."""

from __future__ import annotations

from pathlib import Path

import pendulum
import pytest
from demo import run_dag_against_test_server

from airflow_provider_segments.testing import TEST_SYSTEM_GUID, SegmentsTestServer

pytestmark = pytest.mark.e2e

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "example_dags"


def test_housekeeping_deletes_only_old_prefixed_segments_on_both_platforms(tmp_path):
    old = pendulum.now("UTC").subtract(days=60).to_iso8601_string()
    with SegmentsTestServer() as sandbox:
        walkme, zendesk = sandbox.walkme, sandbox.zendesk
        for name, created in [("tmp-old-1", old), ("tmp-old-2", old), ("tmp-new", None), ("keep-old", old)]:
            walkme.create_segment(TEST_SYSTEM_GUID, name, ["a"], created_at=created)
        for name, created in [("tmp-old", old), ("tmp-new", None), ("prod-old", old)]:
            zendesk.create_segment(name=name, **({"created_at": old} if created else {}))
        outcome = run_dag_against_test_server(
            sandbox, dag_id="segments_housekeeping", airflow_home=tmp_path / "home", dags_folder=DAGS_FOLDER
        )
        walkme_left = sorted(s["name"] for s in walkme.segments(TEST_SYSTEM_GUID))
        zendesk_left = sorted(s["name"] for s in zendesk.segments() if not s["built_in"])
        deletes = [r["path"] for r in sandbox.requests if r["method"] == "DELETE"]

    assert outcome.returncode == 0, outcome.output[-4000:]
    assert walkme_left == ["keep-old", "tmp-new"]
    assert zendesk_left == ["prod-old", "tmp-new"]
    assert len(deletes) == 3  # two WalkMe and one Zendesk mapped task instance
    assert "delete_walkme_segment" in outcome.output and "map_index=1" in outcome.output


def test_restrict_help_center_updates_the_segment_of_that_name_and_reports_its_content(tmp_path):
    with SegmentsTestServer() as sandbox:
        zendesk = sandbox.zendesk
        existing = zendesk.create_segment(name="Enterprise support staff", user_type="signed_in_users")
        zendesk.add_section(existing["id"], "Escalation playbooks")
        zendesk.add_topic(existing["id"], "Staff lounge")
        outcome = run_dag_against_test_server(
            sandbox,
            dag_id="zendesk_restrict_help_center",
            airflow_home=tmp_path / "home",
            dags_folder=DAGS_FOLDER,
        )
        segment = zendesk.segment(existing["id"])
        writes = [
            (r["method"], r["path"]) for r in sandbox.requests if r["method"] in ("POST", "PUT", "DELETE")
        ]

    assert outcome.returncode == 0, outcome.output[-4000:]
    assert (segment["user_type"], segment["tags"], segment["organization_ids"]) == (
        "staff",
        ["enterprise"],
        [42, 43],
    )
    assert writes == [("PUT", f"/api/v2/help_center/user_segments/{existing['id']}.json")]  # no duplicate
    assert "restricts 2 item(s)" in outcome.output
    assert "Escalation playbooks" in outcome.output and "Staff lounge" in outcome.output
