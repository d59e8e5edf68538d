"""Do what Airflow's scheduler does with queued asset events, then run one task of the new DAG run.

Run as a script in the Airflow home of a finished producer run (the test sets the environment):

    python asset_triggered_run.py CONSUMER_DAG_ID TASK_ID

1. The scheduler's own DAG-run creation (``SchedulerJobRunner._create_dagruns_for_dags``, one pass of
   its loop, no scheduler process) turns the ``asset_dag_run_queue`` rows into asset-triggered runs.
2. For the consumer's new run, prints one line ``ASSET RUN: {"run_id", "run_type", "events"}`` with
   the extras of the asset events the run consumed.
3. Runs ``airflow tasks test CONSUMER_DAG_ID TASK_ID RUN_ID`` in this process, so the task sees the
   run's ``triggering_asset_events`` as a scheduled run would.
"""

from __future__ import annotations

import json
import sys


def create_asset_triggered_runs() -> None:
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.utils.session import create_session
    from airflow.utils.sqlalchemy import prohibit_commit

    runner = SchedulerJobRunner(job=Job())
    with create_session() as session, prohibit_commit(session) as guard:
        runner._create_dagruns_for_dags(guard, session)


def describe_runs(dag_id: str) -> list[dict]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id)).all()
        return [
            {
                "run_id": run.run_id,
                "run_type": str(run.run_type.value if hasattr(run.run_type, "value") else run.run_type),
                "events": [event.extra for event in run.consumed_asset_events],
            }
            for run in runs
        ]


def main(dag_id: str, task_id: str) -> int:
    from airflow.cli.cli_parser import get_parser

    create_asset_triggered_runs()
    runs = describe_runs(dag_id)
    for run in runs:
        print("ASSET RUN: " + json.dumps(run), flush=True)
    if len(runs) != 1:
        return 1
    args = get_parser().parse_args(["tasks", "test", dag_id, task_id, runs[0]["run_id"]])
    args.func(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
