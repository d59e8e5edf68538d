"""One DAG run, many guards: the propagation sensor's modes and limits, and templated arguments.

Run by ``tests/e2e/test_guards_dag.py`` with ``airflow dags test`` against the sandbox, with
Airflow's default time zone set to Asia/Tokyo (UTC+9, no daylight saving) and the DAG rendering
templates as native objects. Every task is independent; the test reads each one's state and XCom.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeListSegmentsOperator,
)
from airflow_provider_segments.operators.zendesk import (
    ZendeskCreateUserSegmentOperator,
    ZendeskListUserSegmentsOperator,
)
from airflow_provider_segments.sensors.walkme import WalkMeSegmentPropagationSensor

GUID = os.environ.get("SEGMENTS_GUARDS_GUID", "12345aeb-123c-4d83-8b38-a5a456789d0a")
#: A folder of the test's own: the missing file and the directory given as files of ids.
INPUTS = os.environ.get("SEGMENTS_GUARDS_INPUTS", "/nonexistent-segments-guards-inputs")
#: Without changed_at the window starts at the task's start; Airflow 3.2 takes ~3 s from there to
#: execute(), and more on a loaded 2-core machine (6 s was seen to pass before the first poke), so the
#: window must be well longer for the sensor to really wait.
SHORT = timedelta(seconds=12)

with DAG(
    dag_id="segments_guards",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    render_template_as_native_obj=True,
    params={"year": "2026", "tag": "1.10", "external_id": "4711", "false": "false"},
) as dag:
    # -- the propagation sensor --------------------------------------------------------------------
    WalkMeSegmentPropagationSensor(
        task_id="sensor_poke_without_changed_at",
        segment_guid=GUID,
        propagation_window=SHORT,
        deferrable=False,
        mode="poke",
        poke_interval=0.5,
        timeout=60,
    )
    WalkMeSegmentPropagationSensor(
        task_id="sensor_reschedule_without_changed_at",
        segment_guid=GUID,
        propagation_window=SHORT,
        deferrable=False,
        poke_interval=3,
        timeout=60,
    )
    WalkMeSegmentPropagationSensor(  # deferrable from [operators] default_deferrable (unset: False)
        task_id="sensor_deferrable_from_config",
        segment_guid=GUID,
        propagation_window=SHORT,
        poke_interval=3,
        timeout=60,
    )
    WalkMeSegmentPropagationSensor(  # a naive local time of the default time zone, as Airflow reads it
        task_id="sensor_deferred_naive_changed_at",
        segment_guid=GUID,
        # Now (when the template renders) as a wall-clock time in Tokyo (UTC+9 all year), no offset.
        changed_at="{{ (macros.datetime.utcnow() + macros.timedelta(hours=9)).isoformat() }}",
        propagation_window=timedelta(seconds=3),
        deferrable=True,
        timeout=60,
    )
    WalkMeSegmentPropagationSensor(
        task_id="sensor_window_beyond_timeout",
        segment_guid=GUID,
        propagation_window=timedelta(hours=1),
        deferrable=True,
        timeout=30,
    )
    WalkMeSegmentPropagationSensor(
        task_id="sensor_changed_at_in_the_future",
        segment_guid=GUID,
        changed_at="{{ (ti.start_date + macros.timedelta(hours=2)).isoformat() }}",
        deferrable=True,
    )

    # -- text stays text under native rendering ----------------------------------------------------
    WalkMeListSegmentsOperator(task_id="walkme_list_literal_digit_prefix", name_prefix="2026")
    WalkMeListSegmentsOperator(task_id="walkme_list_templated_digit_prefix", name_prefix="{{ params.year }}")
    walkme_create = WalkMeCreateSegmentOperator(
        task_id="walkme_create_digit_name_and_external_id",
        name="{{ params.year }}",
        external_id="{{ params.external_id }}",
        user_ids=["u1", "u2"],
    )
    zendesk_create = ZendeskCreateUserSegmentOperator(
        task_id="zendesk_create_digit_name_and_tag",
        name="{{ params.year }}",
        user_type="staff",
        tags=["{{ params.tag }}", "007"],
    )

    # -- named XCom keys: a downstream task takes one field, not the whole result ---------------------
    @task
    def named_xcom_keys(segment_guid, segment_id):
        return {"segment_guid": segment_guid, "segment_id": segment_id}

    named_xcom_keys(walkme_create.output["segment_guid"], zendesk_create.output["segment_id"])

    # -- templated booleans ------------------------------------------------------------------------
    ZendeskListUserSegmentsOperator(task_id="zendesk_list_custom_only", built_in="{{ params.false }}")
    ZendeskListUserSegmentsOperator(task_id="zendesk_list_not_applicable", applicable="{{ params.false }}")

    # -- a file of ids not there yet is retried; a directory is not --------------------------------
    for task_id, path in (
        ("walkme_ids_file_missing", os.path.join(INPUTS, "not-yet.txt")),
        ("walkme_ids_path_is_a_directory", INPUTS),
    ):
        WalkMeCreateSegmentOperator(
            task_id=task_id, name=task_id, user_ids_path=path, retries=1, retry_delay=timedelta(0)
        )
