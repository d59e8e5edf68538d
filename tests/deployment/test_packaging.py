"""What the released artifacts hold: the license, the typing marker, metadata an index accepts."""

from __future__ import annotations

import email.parser
import subprocess
import sys
import tarfile
import zipfile

import pytest
from deployment.production import REPO, Dists

pytestmark = pytest.mark.deployment


def _wheel_names(dists: Dists) -> list[str]:
    with zipfile.ZipFile(dists.wheel) as wheel:
        return wheel.namelist()


def _sdist_names(dists: Dists) -> list[str]:
    with tarfile.open(dists.sdist) as sdist:
        root = sdist.getnames()[0].split("/")[0]
        return [name.removeprefix(root + "/") for name in sdist.getnames()]


def test_wheel_holds_the_package_the_typing_marker_and_the_license(built_dists: Dists) -> None:
    names = _wheel_names(built_dists)
    with zipfile.ZipFile(built_dists.wheel) as wheel:
        (license_name,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert wheel.read(license_name) == (REPO / "LICENSE").read_bytes()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(wheel.read(metadata_name).decode())
        entry_points = wheel.read(metadata_name.replace("METADATA", "entry_points.txt")).decode()

    assert "airflow_provider_segments/py.typed" in names
    assert "airflow_provider_segments/testing/pytest_plugin.py" in names  # the testing kit ships
    assert "airflow_provider_segments/testing/connections.py" in names
    # The demo needs the repository's example DAGs: it stays out of the wheel (tools/demo.py).
    assert not [name for name in names if name.endswith("demo.py")]
    # `pip install airflow-provider-segments[testing]` brings what the kit's pytest fixtures need.
    assert "testing" in metadata.get_all("Provides-Extra")
    assert any(
        req.startswith("pytest") and 'extra == "testing"' in req for req in metadata.get_all("Requires-Dist")
    )
    # The package only: no tests, example DAGs or docs inside site-packages.
    assert {name.split("/")[0] for name in names} == {
        "airflow_provider_segments",
        license_name.split("/")[0],
    }
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert "provider_info = airflow_provider_segments.get_provider_info:get_provider_info" in entry_points
    assert "Apache License" in (REPO / "LICENSE").read_text()


def test_sdist_is_the_source_release_with_license_docs_and_tests(built_dists: Dists) -> None:
    names = set(_sdist_names(built_dists))

    for expected in (
        "LICENSE",
        "README.md",
        "pyproject.toml",
        "airflow_provider_segments/py.typed",
        "docs/index.md",
        "docs/deploying.md",
        "example_dags/walkme_segment_demo.py",
        "tests/conftest.py",
        "tests/deployment/test_production_shape.py",
        "tests/deployment/dags/segments_deployment_check.py",
        "constraints/airflow-3.2.txt",
        "Makefile",
        "tools/demo.py",
    ):
        assert expected in names, expected
    assert not [name for name in names if "__pycache__" in name or name.startswith("docs/_build")]


def test_twine_check_accepts_both_artifacts(built_dists: Dists) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(built_dists.wheel), str(built_dists.sdist)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("PASSED") == 2, run.stdout
