"""Run an example DAG in real Airflow against the local test server: ``make demo`` calls this.

It starts the test server on a free loopback port, points the ``walkme_default`` and
``zendesk_help_center_default`` connections at it with the test server-only credentials, prepares a
throw-away Airflow home (SQLite, no examples), runs ``airflow dags test`` on the example DAG and
prints a short summary read back from the test server.
The end-to-end tests call :func:`run_dag_against_test_server` too, so the demo is tested as it ships.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_segments.testing.server import SegmentsTestServer
from airflow_provider_segments.testing.walkme import (
    TEST_CLIENT_ID,
    TEST_CLIENT_SECRET,
    TEST_SYSTEM_GUID,
)
from airflow_provider_segments.testing.zendesk import TEST_ZENDESK_API_TOKEN, TEST_ZENDESK_EMAIL

DEFAULT_DAG_ID = "walkme_segment_demo"


@dataclass
class DagRunOutcome:
    """What a DAG run against the test server produced."""

    returncode: int
    output: str
    seconds: float
    log_path: Path


def airflow_env(airflow_home: Path, dags_folder: Path, sandbox_url: str, **extra_env: str) -> dict[str, str]:
    """Environment for an Airflow process that uses a private home and the test server connections."""
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_WALKME_DEFAULT": json.dumps(
                {
                    "conn_type": "walkme",
                    "host": sandbox_url,
                    "login": TEST_CLIENT_ID,
                    "password": TEST_CLIENT_SECRET,
                    "extra": {"system_guid": TEST_SYSTEM_GUID},
                }
            ),
            # The example DAGs' small SQLite warehouse and their files live in the private home too.
            "AIRFLOW_CONN_SEGMENTS_DEMO_WAREHOUSE": json.dumps(
                {"conn_type": "sqlite", "host": str(airflow_home / "demo-warehouse.db")}
            ),
            "SEGMENTS_EXAMPLE_DATA_DIR": str(airflow_home / "example-data"),
            "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT": json.dumps(
                {
                    "conn_type": "zendesk_help_center",
                    "host": sandbox_url,
                    "login": TEST_ZENDESK_EMAIL,
                    "password": TEST_ZENDESK_API_TOKEN,
                    "extra": {"auth_type": "api_token"},
                }
            ),
            **extra_env,
        }
    )
    return env


def migrate_db(env: dict[str, str]) -> None:
    """``airflow db migrate`` once per Airflow home (SQLite; a few seconds)."""
    marker = Path(env["AIRFLOW_HOME"]) / ".segments-db-migrated"
    if marker.exists():
        return
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    marker.touch()


def run_dag_against_test_server(
    sandbox: SegmentsTestServer,
    *,
    dag_id: str = DEFAULT_DAG_ID,
    airflow_home: Path,
    dags_folder: Path,
    extra_env: dict[str, str] | None = None,
    timeout: float = 600,
) -> DagRunOutcome:
    """Run ``airflow dags test DAG_ID`` in a subprocess whose connections point at ``sandbox``."""
    airflow_home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(airflow_home, dags_folder, sandbox.url, **(extra_env or {}))
    migrate_db(env)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", dag_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    log_path = airflow_home / f"{dag_id}.log"
    log_path.write_text(proc.stdout)
    return DagRunOutcome(proc.returncode, proc.stdout, time.monotonic() - started, log_path)


def main(argv: list[str] | None = None) -> int:
    """Run the demo and print its summary; exit non-zero if the DAG or the check failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dag-id", default=DEFAULT_DAG_ID)
    parser.add_argument("--dags-folder", type=Path, default=Path("example_dags"))
    parser.add_argument("--airflow-home", type=Path, default=Path(".airflow-home"))
    parser.add_argument("--propagation-seconds", type=int, default=5, help="shortened propagation window")
    args = parser.parse_args(argv)

    with SegmentsTestServer() as sandbox:
        print(f"Test server (WalkMe and Zendesk Help Center APIs) listening on {sandbox.url}")
        print(f"Running DAG {args.dag_id!r} with real Airflow (airflow dags test) ...", flush=True)
        outcome = run_dag_against_test_server(
            sandbox,
            dag_id=args.dag_id,
            airflow_home=args.airflow_home.resolve(),
            dags_folder=args.dags_folder.resolve(),
            extra_env={"SEGMENTS_DEMO_PROPAGATION_SECONDS": str(args.propagation_seconds)},
        )
        summary_lines = [line for line in outcome.output.splitlines() if "DEMO SUMMARY:" in line]
        segments = sandbox.walkme.segments(TEST_SYSTEM_GUID)
        writes = [r for r in sandbox.requests if r.get("action")]  # segment writes, not token calls

    print(f"Airflow log: {outcome.log_path}")
    if outcome.returncode != 0:
        print("\n".join(outcome.output.splitlines()[-60:]))
        print(f"DAG run FAILED (exit code {outcome.returncode}).")
        return 1
    print()
    print(f"DAG {args.dag_id!r} succeeded in {outcome.seconds:.1f} s.")
    for segment in segments:
        members = sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"])
        print(f"  test server segment {segment['name']!r} ({segment['guid']}): {len(members):,} members")
    print(f"  write requests the test server received: {len(writes)}")
    for line in summary_lines[-1:]:
        print("  " + line.split("DEMO SUMMARY:", 1)[1].strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
