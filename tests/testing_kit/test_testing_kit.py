"""The sandbox ships as a testing kit: opt-in pytest fixtures, and nothing runs when it is imported."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

USER_CONFTEST = 'pytest_plugins = ["airflow_provider_segments.testing.pytest_plugin"]\n'

USER_TEST = textwrap.dedent(
    """
    import os

    from airflow_provider_segments.hooks.walkme import WalkMeHook
    from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
    from airflow_provider_segments.testing import TEST_SYSTEM_GUID


    def test_a_dag_authors_test(segments_test_server, segments_test_connections):
        assert os.environ["AIRFLOW_CONN_WALKME_DEFAULT"] == segments_test_connections[
            "AIRFLOW_CONN_WALKME_DEFAULT"
        ]
        created = WalkMeHook().create_segment("Beta testers", ["u1", "u2", "u2"])
        assert segments_test_server.walkme.members(TEST_SYSTEM_GUID, created["segment_guid"]) == ["u1", "u2"]
        assert [s["name"] for s in ZendeskHelpCenterHook().list_user_segments()]
    """
)


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "PYTEST_"))}
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow-home")
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    return env


def test_a_dag_author_opts_in_to_the_fixtures_from_a_conftest(tmp_path: Path) -> None:
    project = tmp_path / "my_dags_tests"
    project.mkdir()
    (project / "conftest.py").write_text(USER_CONFTEST)
    (project / "test_my_dag.py").write_text(USER_TEST)

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(project), "."],
        cwd=project,
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "1 passed" in run.stdout


def test_importing_the_provider_or_the_kit_starts_nothing(tmp_path: Path) -> None:
    probe = textwrap.dedent(
        """
        import sys, threading
        import airflow_provider_segments
        import airflow_provider_segments.hooks.walkme, airflow_provider_segments.hooks.zendesk
        import airflow_provider_segments.operators.walkme, airflow_provider_segments.operators.zendesk
        import airflow_provider_segments.sensors.walkme
        import airflow_provider_segments.get_provider_info
        airflow_provider_segments.get_provider_info.get_provider_info()
        # The provider never imports its sandbox: a deployment that does not use it never loads it.
        assert not [m for m in sys.modules if m.startswith("airflow_provider_segments.testing")]
        before = threading.active_count()
        import airflow_provider_segments.testing, airflow_provider_segments.testing.connections
        import airflow_provider_segments.testing.pytest_plugin
        # Importing the kit binds no port and starts no server thread.
        assert threading.active_count() == before, threading.enumerate()
        print("ok")
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], env=_clean_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "ok" in run.stdout.splitlines()


def test_the_connections_command_prints_lines_to_paste_and_needs_no_pytest(tmp_path: Path) -> None:
    from airflow_provider_segments.testing import TEST_CLIENT_SECRET, TEST_SYSTEM_GUID, SegmentsTestServer

    # pytest made unimportable: the commands a DAG author runs by hand must not need it.
    command = (
        "import runpy, sys; sys.modules['pytest'] = None; "
        "sys.argv = ['connections', sys.argv[1]]; "
        "runpy.run_module('airflow_provider_segments.testing.connections', run_name='__main__')"
    )
    with SegmentsTestServer() as server:
        printed = subprocess.run(
            [sys.executable, "-c", command, server.url],
            env=_clean_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.splitlines()
        assert all(line.startswith("export AIRFLOW_CONN_") for line in printed), printed
        # What a POSIX shell makes of the pasted lines:
        exports = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in printed)
        assert sorted(exports) == ["AIRFLOW_CONN_WALKME_DEFAULT", "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT"]
        assert TEST_CLIENT_SECRET in exports["AIRFLOW_CONN_WALKME_DEFAULT"]

        probe = textwrap.dedent(
            """
            from airflow_provider_segments.hooks.walkme import WalkMeHook
            from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
            created = WalkMeHook().create_segment("Pasted", ["u1", "u2"])
            print("GUID", created["segment_guid"], len(ZendeskHelpCenterHook().list_user_segments()))
            """
        )
        run = subprocess.run(
            [sys.executable, "-c", probe],
            env={**_clean_env(tmp_path), **exports},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        (guid, listed) = next(
            line.split()[1:] for line in run.stdout.splitlines() if line.startswith("GUID ")
        )
        assert server.walkme.members(TEST_SYSTEM_GUID, guid) == ["u1", "u2"]
        assert int(listed) == len(server.zendesk.segments())
