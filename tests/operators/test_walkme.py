"""WalkMe operators: thin wrappers that validate, call the hook and return XCom-ready results."""

from __future__ import annotations

import logging
import time

import pendulum
import pytest
from airflow.sdk import DAG
from support import WALKME_SYSTEM, WALKME_TEST_URL, WalkMeSegmentMock

from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.exceptions import SegmentsNotFoundError, SegmentsValidationError
from airflow_provider_segments.operators._base import is_local_location
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeDeleteSegmentOperator,
    WalkMeListSegmentsOperator,
    WalkMeSyncSegmentOperator,
    WalkMeUpdateSegmentOperator,
)
from airflow_provider_segments.testing import TEST_SYSTEM_GUID

SEGMENTS_URL = f"{WALKME_TEST_URL}/public/v1/user/system/{WALKME_SYSTEM}/segment"
GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"


@pytest.fixture
def api(requests_mock, walkme_conn):
    requests_mock.post(f"{WALKME_TEST_URL}/accounts/connect/token", json={"access_token": "tok-0123456789"})
    api = WalkMeSegmentMock(requests_mock, SEGMENTS_URL, GUID, "Existing")
    api.members = dict.fromkeys(["old1", "old2"])
    return api


def test_template_fields_are_the_documented_ones():
    assert set(WalkMeCreateSegmentOperator.template_fields) >= {"name", "user_ids", "system_guid"}
    assert set(WalkMeUpdateSegmentOperator.template_fields) >= {"segment_guid", "user_ids", "system_guid"}
    assert set(WalkMeDeleteSegmentOperator.template_fields) >= {"segment_guid", "system_guid"}
    assert "system_guid" in WalkMeListSegmentsOperator.template_fields


def test_create_returns_xcom_summary(api):
    op = WalkMeCreateSegmentOperator(task_id="create", name="New", user_ids=["a", "b", "a"])
    result = op.execute({})
    assert result["segment_guid"] == GUID and result["name"] == "New" and result["user_count"] == 2
    assert result["created"] is True and result["requests"] == 1 and result["system_guid"] == WALKME_SYSTEM
    assert pendulum.parse(result["changed_at"]).offset == 0


def test_update_returns_action_count_and_requests(api):
    op = WalkMeUpdateSegmentOperator(task_id="u", segment_guid=GUID, action="override", user_ids=["x"] * 3)
    result = op.execute({})
    assert {k: result[k] for k in ("segment_guid", "action", "user_count", "requests")} == {
        "segment_guid": GUID,
        "action": "override",
        "user_count": 1,
        "requests": 1,
    }
    assert "changed_at" in result


def test_delete_returns_the_guid_and_list_returns_dicts(api):
    listed = WalkMeListSegmentsOperator(task_id="l", name_prefix="Exi").execute({})
    assert [s["segment_guid"] for s in listed] == [GUID]
    assert WalkMeListSegmentsOperator(task_id="l2", name_prefix="zzz").execute({}) == []
    assert WalkMeDeleteSegmentOperator(task_id="d", segment_guid=GUID).execute({}) == GUID
    assert WalkMeListSegmentsOperator(task_id="l3", name_prefix="Exi").execute({}) == []  # gone


def test_bad_input_fails_without_retry_and_sends_nothing(api):
    op = WalkMeCreateSegmentOperator(task_id="c", name="New", user_ids=["ok", "z" * 101], retries=3)
    with pytest.raises(AirflowFailException, match=r"user_ids\[1\]"):
        op.execute({})
    assert api.request_history == []


def test_invalid_action_is_refused_when_the_dag_is_parsed():
    with pytest.raises(SegmentsValidationError, match="action 'append'"):
        WalkMeUpdateSegmentOperator(task_id="u", segment_guid=GUID, action="append", user_ids=[])


def test_operator_construction_does_no_io(requests_mock, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_WALKME_DEFAULT", raising=False)  # no connection exists at parse time
    WalkMeCreateSegmentOperator(task_id="c", name="n", user_ids=["a"], walkme_conn_id="nope")
    assert requests_mock.request_history == []


# -- rendering of large literal id lists (Jinja only where there is Jinja) ------------------------
def test_literal_ids_are_kept_and_templated_elements_rendered():
    with DAG("render_test", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        literal = [f"{i:05d}" for i in range(60_000)]
        op = WalkMeUpdateSegmentOperator(
            task_id="u",
            segment_guid="{{ params.guid }}",
            action="add",
            user_ids=[*literal, "{{ 'x@example.com' }}"],
            params={"guid": GUID},
        )
    started = time.perf_counter()
    op.render_template_fields({"params": {"guid": GUID}})
    elapsed = time.perf_counter() - started
    assert op.user_ids[:-1] == literal and all(isinstance(u, str) for u in op.user_ids)
    assert op.user_ids[-1] == "x@example.com"
    assert op.segment_guid == GUID
    # Not a timing assertion on speed goals (those live in the benchmark), only a guard against
    # falling back to compiling 60,000 templates (~10 s).
    assert elapsed < 5, elapsed


def test_native_rendering_of_an_xcom_expression_still_gives_a_list():
    with DAG(
        "render_native",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1),
        render_template_as_native_obj=True,
    ):
        op = WalkMeUpdateSegmentOperator(
            task_id="u",
            segment_guid=GUID,
            action="add",
            user_ids="{{ params.ids }}",
            params={"ids": ["1", "2"]},
        )
    op.render_template_fields({"params": {"ids": ["007", "2"]}})
    assert op.user_ids == ["007", "2"]


def test_delete_missing_ok_is_a_strict_boolean_checked_at_parse_or_run_time(api):
    with pytest.raises(SegmentsValidationError, match="missing_ok 'maybe' is not valid"):
        WalkMeDeleteSegmentOperator(task_id="d", segment_guid=GUID, missing_ok="maybe")
    gone = "22345aeb-123c-4d83-8b38-a5a456789d0a"  # not listed: a 404 for it is read back as gone
    api.delete(f"{SEGMENTS_URL}/{gone}", status_code=404, reason="Not Found", json={"message": "not found"})
    op = WalkMeDeleteSegmentOperator(task_id="d", segment_guid=gone, missing_ok="{{ params.ok }}")
    op.missing_ok = "False"  # what a template renders to without native rendering: not truthy
    with pytest.raises(SegmentsNotFoundError):
        op.execute({})
    op.missing_ok = "maybe"
    with pytest.raises(AirflowFailException, match="missing_ok 'maybe' is not valid"):
        op.execute({})


PER_WORKER_WARNING = "is on this worker's local disk"


def _sync_and_capture(sandbox, capsys, caplog, state_path, **kwargs) -> tuple[dict, str]:
    caplog.set_level(logging.WARNING)
    op = WalkMeSyncSegmentOperator(
        task_id="sync", name="Audience", state_path=state_path, user_ids=["a", "b"], **kwargs
    )
    result = op.execute({})
    return result, capsys.readouterr().out + caplog.text


@pytest.mark.parametrize(
    ("executor", "task_executor"),
    [
        ("CeleryExecutor", None),
        ("airflow.providers.cncf.kubernetes.executors.kubernetes_executor.KubernetesExecutor", None),
        ("LocalExecutor,CeleryExecutor", "CeleryExecutor"),  # the task's own executor counts
        ("LocalExecutor,remote:my_company.executors.EdgeExecutor", "remote"),  # by its alias
    ],
)
def test_a_local_state_path_under_a_distributed_executor_warns_and_still_syncs(
    sandbox, tmp_path, monkeypatch, capsys, caplog, executor, task_executor
):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    state_path = str(tmp_path / "audience.snapshot")
    result, logged = _sync_and_capture(sandbox, capsys, caplog, state_path, executor=task_executor)
    assert PER_WORKER_WARNING in logged and repr(state_path) in logged
    assert "Executor" in logged.split(PER_WORKER_WARNING, 1)[1] and "s3://<conn_id>@" in logged
    assert sandbox.walkme.members(TEST_SYSTEM_GUID, result["segment_guid"]) == ["a", "b"]


@pytest.mark.parametrize(
    ("executor", "task_executor"),
    [
        ("LocalExecutor", None),
        ("SequentialExecutor", None),
        ("airflow.executors.local_executor.LocalExecutor", None),
        ("LocalExecutor,CeleryExecutor", None),  # the first is the default
        ("CeleryExecutor,LocalExecutor", "LocalExecutor"),
    ],
)
def test_a_local_state_path_under_a_local_executor_does_not_warn(
    sandbox, tmp_path, monkeypatch, capsys, caplog, executor, task_executor
):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    _, logged = _sync_and_capture(
        sandbox, capsys, caplog, str(tmp_path / "audience.snapshot"), executor=task_executor
    )
    assert PER_WORKER_WARNING not in logged


def test_a_file_uri_is_local_disk_too_and_warns_under_celery(sandbox, tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    _, logged = _sync_and_capture(sandbox, capsys, caplog, f"file://{tmp_path}/audience.snapshot")
    assert PER_WORKER_WARNING in logged and (tmp_path / "audience.snapshot").is_file()


@pytest.mark.parametrize(
    ("location", "local"),
    [
        ("/var/lib/segments/a.snapshot", True),
        ("relative/a.snapshot", True),
        ("file:///var/lib/segments/a.snapshot", True),
        ("s3://aws_default@bucket/segments/a.snapshot", False),
        ("s3://bucket/segments/a.snapshot", False),
        ("gs://bucket/a.snapshot", False),
    ],
)
def test_which_state_paths_count_as_one_workers_local_disk(location, local):
    assert is_local_location(location) is local  # no I/O: only the scheme is read


def test_the_sync_operators_dry_run_flag_leaves_airflows_dry_run_method_working(sandbox):
    # BaseOperator.dry_run() renders the templates and logs them; storing the flag under the same
    # name would replace that method with a bool.
    with DAG("dry_run_method", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        op = WalkMeSyncSegmentOperator(
            task_id="sync", name="Planned", user_ids=["u1"], state_path="/tmp/x.state", dry_run=True
        )
    op.dry_run()  # Airflow's method: renders and logs the template fields, sends nothing
    assert sandbox.request_log() == []
