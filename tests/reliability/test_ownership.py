"""Whose segment is it: a create recognises only its own earlier try, never a segment of the same
name that someone or something else made while the DAG run was going (found by a hostile review)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from support import impatient_sandbox

from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.exceptions import SegmentsError
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeSyncSegmentOperator,
)
from airflow_provider_segments.operators.zendesk import ZendeskCreateUserSegmentOperator
from airflow_provider_segments.testing import TEST_SYSTEM_GUID


@pytest.fixture
def sandbox(monkeypatch):
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.05)


def _context(task_id: str, started: datetime) -> dict:
    ti = SimpleNamespace(dag_id="d", task_id=task_id, map_index=-1, xcom_push=lambda **kw: None)
    return {"ti": ti, "run_id": "r", "dag_run": SimpleNamespace(start_date=started)}


def _half_an_hour_ago() -> datetime:
    return datetime.now(timezone.utc) - timedelta(minutes=30)


def test_walkme_if_exists_error_never_takes_a_segment_someone_made_during_the_run(sandbox):
    """The creation token this task sends as the external id is the proof of its own segment: a
    segment of the same name made in the UI after the run started is not it, whatever its time."""
    started = _half_an_hour_ago()
    human = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "VIP", ["alice", "bob"])
    create = WalkMeCreateSegmentOperator(task_id="c", name="VIP", user_ids=["zed"], if_exists="error")
    with pytest.raises(AirflowFailException, match="already exists"):
        create.execute(_context("c", started))
    assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, human["guid"])) == {"alice", "bob"}
    # two tasks of one run creating the same name: the second does not take the first's segment
    first = WalkMeCreateSegmentOperator(task_id="a", name="Gold", user_ids=["a1"], if_exists="error")
    made = first.execute(_context("a", started))
    second = WalkMeCreateSegmentOperator(task_id="b", name="Gold", user_ids=["b1"], if_exists="error")
    with pytest.raises(AirflowFailException, match="already exists"):
        second.execute(_context("b", started))
    assert sandbox.walkme.members(TEST_SYSTEM_GUID, made["segment_guid"]) == ["a1"]
    # the task's own retry still continues with its own segment
    again = WalkMeCreateSegmentOperator(task_id="a", name="Gold", user_ids=["a1"], if_exists="error")
    assert again.execute(_context("a", started))["segment_guid"] == made["segment_guid"]


def test_a_sync_by_name_refuses_to_guess_between_two_segments_of_that_name(sandbox, tmp_path):
    old = sandbox.walkme.create_segment(
        TEST_SYSTEM_GUID, "Audience", ["a", "b"], created_at="2020-01-01T00:00:00.000Z"
    )
    look_alike = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Audience", ["q"])  # made today
    sync = WalkMeSyncSegmentOperator(
        task_id="s", name="Audience", state_path=str(tmp_path / "s"), user_ids=["a", "b", "c"]
    )
    with pytest.raises((AirflowFailException, SegmentsError), match="refusing to guess"):
        sync.execute(_context("s", _half_an_hour_ago()))
    assert sorted(sandbox.walkme.members(TEST_SYSTEM_GUID, old["guid"])) == ["a", "b"]
    assert sandbox.walkme.members(TEST_SYSTEM_GUID, look_alike["guid"]) == ["q"]


def test_zendesk_if_exists_error_never_takes_another_tasks_segment_of_that_name(sandbox):
    """Zendesk segments carry no external id: a segment made since the run started is this task's
    only if it holds exactly what this create sends."""
    started = datetime.now(timezone.utc) - timedelta(hours=1)
    first = ZendeskCreateUserSegmentOperator(
        task_id="team_a", name="VIP", user_type="signed_in_users", added_user_ids=[1, 2, 3], if_exists="error"
    )
    made = first.execute(_context("team_a", started))
    second = ZendeskCreateUserSegmentOperator(
        task_id="team_b", name="VIP", user_type="staff", tags=["x"], if_exists="error"
    )
    with pytest.raises(AirflowFailException, match="already exists"):
        second.execute(_context("team_b", started))
    kept = sandbox.zendesk.segment(made["id"])
    assert kept["user_type"] == "signed_in_users" and sorted(kept["added_user_ids"]) == [1, 2, 3]
    assert kept["tags"] == []


def test_a_zendesk_create_retried_in_the_second_its_run_started_recognises_its_own_segment(sandbox):
    """Zendesk lists creation times in whole seconds; the run's start has microseconds."""
    started = datetime.now(timezone.utc)
    create = ZendeskCreateUserSegmentOperator(
        task_id="c", name="Mine", user_type="signed_in_users", added_user_ids=[1], if_exists="error"
    )
    made = create.execute(_context("c", started))
    created_at = sandbox.zendesk.segment(made["id"])["created_at"]
    assert "." not in created_at  # whole seconds, as Zendesk lists them
    retried = create.execute(_context("c", started))  # Airflow's retry of the same task
    assert retried["id"] == made["id"]
    assert [s["name"] for s in sandbox.zendesk.segments() if not s.get("built_in")].count("Mine") == 1
