"""One DAG run, many guards: the propagation sensor's modes and limits.

Run by ``tests/e2e/test_guards_dag.py`` with ``airflow dags test`` against the sandbox, with
Airflow's default time zone set to Asia/Tokyo (UTC+9, no daylight saving) and the DAG rendering
templates as native objects. Every task is independent; the test reads each one's state and XCom.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_segments.sensors.walkme import WalkMeSegmentPropagationSensor

GUID = os.environ.get("SEGMENTS_GUARDS_GUID", "12345aeb-123c-4d83-8b38-a5a456789d0a")
SHORT = timedelta(seconds=2)

with DAG(
    dag_id="segments_guards",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    render_template_as_native_obj=True,
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
        poke_interval=1,
        timeout=60,
    )
    WalkMeSegmentPropagationSensor(  # deferrable from [operators] default_deferrable (unset: False)
        task_id="sensor_deferrable_from_config",
        segment_guid=GUID,
        propagation_window=SHORT,
        poke_interval=1,
        timeout=60,
    )
    WalkMeSegmentPropagationSensor(  # a naive local time of the default time zone, as Airflow reads it
        task_id="sensor_deferred_naive_changed_at",
        segment_guid=GUID,
        # The task's start as a wall-clock time in Tokyo (UTC+9 all year), without an offset.
        changed_at="{{ (ti.start_date + macros.timedelta(hours=9)).replace(tzinfo=None).isoformat() }}",
        propagation_window=SHORT,
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
