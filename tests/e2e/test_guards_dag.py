"""Guards proven in real Airflow (``airflow dags test``, sandbox over HTTP), one DAG run for all.

``tests/e2e/dags/segments_guards.py`` holds one independent task per case; this module runs it once
with Airflow's default time zone set to Asia/Tokyo (UTC+9) and ``[operators] default_deferrable``
off, then reads each task's state and XCom from the metadata DB and what the sandbox holds.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from demo import run_dag_against_test_server

from airflow_provider_segments.testing import TEST_SYSTEM_GUID, SegmentsTestServer

pytestmark = pytest.mark.e2e

DAGS_FOLDER = Path(__file__).resolve().parent / "dags"
SENSOR_SEGMENT = "2026 launch"


class Run:
    """What one run of the DAG left behind."""

    def __init__(self, sandbox: SegmentsTestServer, outcome, airflow_home: Path, guid: str) -> None:
        self.outcome = outcome
        self.output = outcome.output
        self.guid = guid
        self.requests = sandbox.requests
        self.walkme_segments = sandbox.walkme.segments(TEST_SYSTEM_GUID)
        self.zendesk_segments = sandbox.zendesk.segments()
        with sqlite3.connect(airflow_home / "airflow.db") as db:
            self.states = dict(db.execute("SELECT task_id, state FROM task_instance"))
            self.tries = dict(db.execute("SELECT task_id, try_number FROM task_instance"))
            self.xcoms = {
                task: json.loads(value) if isinstance(value, (str, bytes)) else value
                for task, value in db.execute("SELECT task_id, value FROM xcom WHERE key = 'return_value'")
            }
            self.named_xcoms = {
                (task, key): json.loads(value) if isinstance(value, (str, bytes)) else value
                for task, key, value in db.execute(
                    "SELECT task_id, key, value FROM xcom WHERE key != 'return_value'"
                )
            }
            self.reschedules = {
                task: count
                for task, count in db.execute(
                    "SELECT ti.task_id, COUNT(*) FROM task_reschedule tr "
                    "JOIN task_instance ti ON tr.ti_id = ti.id GROUP BY ti.task_id"
                )
            }

    def task_output(self, task_id: str) -> str:
        """The output lines that name ``task_id``."""
        return "\n".join(line for line in self.output.splitlines() if task_id in line)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    home = tmp_path_factory.mktemp("airflow-home")
    inputs = tmp_path_factory.mktemp("inputs")  # holds no not-yet.txt: a folder, and a missing file
    with SegmentsTestServer() as sandbox:
        guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, SENSOR_SEGMENT, ["a"])["guid"]
        sandbox.zendesk.create_segment(name="existing custom", user_type="signed_in_users")
        outcome = run_dag_against_test_server(
            sandbox,
            dag_id="segments_guards",
            airflow_home=home,
            dags_folder=DAGS_FOLDER,
            extra_env={
                "SEGMENTS_GUARDS_GUID": guid,
                "SEGMENTS_GUARDS_INPUTS": str(inputs),
                "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Tokyo",
                "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",
            },
            timeout=240,
        )
        return Run(sandbox, outcome, home, guid)


# -- the propagation sensor -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "task_id",
    [
        "sensor_poke_without_changed_at",
        "sensor_reschedule_without_changed_at",
        "sensor_deferrable_from_config",
        "sensor_deferred_naive_changed_at",
    ],
)
def test_sensor_succeeds_in_every_mode_with_the_segment_as_xcom(run, task_id):
    assert run.states[task_id] == "success", run.task_output(task_id)[-3000:]
    assert run.xcoms[task_id] == {
        "segment_guid": run.guid,
        "name": SENSOR_SEGMENT,
        "user_count": 1,  # the count WalkMe lists for the seeded segment
    }


def test_sensor_defers_only_when_deferrable_which_defaults_to_the_airflow_setting(run):
    deferred = set(re.findall(r"Pausing task as DEFERRED.* task_id=(\w+)", run.output))
    assert deferred == {"sensor_deferred_naive_changed_at"}
    # Not deferrable (here from [operators] default_deferrable=False): reschedule mode by default.
    reschedules = run.reschedules
    assert reschedules.get("sensor_deferrable_from_config", 0) >= 1, reschedules
    assert reschedules.get("sensor_reschedule_without_changed_at", 0) >= 1, reschedules
    assert "sensor_poke_without_changed_at" not in reschedules, reschedules


def test_sensor_reads_a_naive_changed_at_in_airflows_default_time_zone(run):
    # A naive local time in Tokyo: read as UTC it would be 9 h ahead (and refused as a future time);
    # read in the default time zone, the 3 s window follows at once.
    assert run.states["sensor_deferred_naive_changed_at"] == "success"
    (until,) = re.findall(r"deferring until (\S+), when WalkMe", run.output)
    assert abs(datetime.fromisoformat(until) - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_sensor_fails_at_once_when_the_window_ends_after_its_timeout(run):
    task = "sensor_window_beyond_timeout"
    assert run.states[task] == "failed"
    ends = r"propagation window of segment \S+ ends at \S+, after this sensor's timeout \(timeout of 30 s"
    assert re.search(ends, run.output)


def test_sensor_refuses_a_changed_at_in_the_future_naming_it(run):
    assert run.states["sensor_changed_at_in_the_future"] == "failed"
    assert re.search(r"changed_at '[^']+' is \d+ min in the future", run.output)


# -- text stays text under native rendering -------------------------------------------------------
@pytest.mark.parametrize(
    "task_id", ["walkme_list_literal_digit_prefix", "walkme_list_templated_digit_prefix"]
)
def test_a_name_prefix_of_digits_stays_text(run, task_id):
    assert run.states[task_id] == "success", run.task_output(task_id)[-3000:]
    names = [s["name"] for s in run.xcoms[task_id]]
    assert SENSOR_SEGMENT in names and all(name.startswith("2026") for name in names)


def test_walkme_name_and_external_id_of_digits_reach_the_api_as_text(run):
    task = "walkme_create_digit_name_and_external_id"
    assert run.states[task] == "success", run.task_output(task)[-3000:]
    (created,) = [s for s in run.walkme_segments if s["name"] == "2026"]
    assert created["id"] == "4711"


def test_zendesk_name_and_templated_tag_of_digits_reach_the_api_as_written(run):
    task = "zendesk_create_digit_name_and_tag"
    assert run.states[task] == "success", run.task_output(task)[-3000:]
    (created,) = [s for s in run.zendesk_segments if s["name"] == "2026"]
    assert created["tags"] == ["1.10", "007"]


# -- named XCom keys ------------------------------------------------------------------------------
def test_write_operators_push_the_segment_id_under_its_own_key_for_op_output(run):
    (walkme,) = [s for s in run.walkme_segments if s["name"] == "2026"]
    (zendesk,) = [s for s in run.zendesk_segments if s["name"] == "2026"]
    walkme_task, zendesk_task = (
        "walkme_create_digit_name_and_external_id",
        "zendesk_create_digit_name_and_tag",
    )
    assert run.named_xcoms[(walkme_task, "segment_guid")] == walkme["guid"]
    assert run.named_xcoms[(zendesk_task, "segment_id")] == zendesk["id"]
    # op.output["segment_guid"] / ["segment_id"] resolved in a downstream task of the same run
    assert run.states["named_xcom_keys"] == "success", run.task_output("named_xcom_keys")[-3000:]
    assert run.xcoms["named_xcom_keys"] == {"segment_guid": walkme["guid"], "segment_id": zendesk["id"]}
    # return_value is unchanged: the whole result
    assert run.xcoms[walkme_task]["segment_guid"] == walkme["guid"]


# -- templated booleans ---------------------------------------------------------------------------
def test_a_templated_built_in_false_lists_only_custom_segments(run):
    listed = run.xcoms["zendesk_list_custom_only"]
    assert listed and not any(s["built_in"] for s in listed)


def test_a_templated_applicable_false_lists_all_segments_not_the_applicable_ones(run):
    assert run.states["zendesk_list_not_applicable"] == "success"
    assert not any(r["path"].endswith("/applicable.json") for r in run.requests)
    assert any(s["built_in"] for s in run.xcoms["zendesk_list_not_applicable"])


# -- a file of ids: missing is retried, a directory is not ----------------------------------------
def test_a_missing_file_of_ids_is_retried_and_a_directory_fails_at_once(run):
    missing, folder = "walkme_ids_file_missing", "walkme_ids_path_is_a_directory"
    assert (run.states[missing], run.tries[missing]) == ("failed", 2), run.task_output(missing)[-3000:]
    assert (run.states[folder], run.tries[folder]) == ("failed", 1), run.task_output(folder)[-3000:]
    assert re.search(r"not-yet\.txt' does not exist", run.output)
    assert re.search(r"inputs\d*' is a directory", run.output)
    assert not [s for s in run.walkme_segments if s["name"] in (missing, folder)]
