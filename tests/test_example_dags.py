"""Every example DAG imports cleanly in a DagBag, without touching the network at parse time."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

EXAMPLE_DAGS = Path(__file__).resolve().parents[1] / "example_dags"
EXPECTED = {
    "walkme_segment_demo",
    "walkme_audience_from_warehouse",
    "zendesk_user_segments_demo",
    "zendesk_restrict_help_center",
    "segments_housekeeping",
    "walkme_audience_asset_producer",
    "walkme_audience_content",
}


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access at DAG parse time: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_example_dags_import_without_errors_or_network(no_network, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    # No connection is defined: parsing must not need one.
    for name in ("AIRFLOW_CONN_WALKME_DEFAULT", "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT"):
        monkeypatch.delenv(name, raising=False)
    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == EXPECTED
    for dag_id in EXPECTED:
        dag = bag.dags[dag_id]
        assert "example" in dag.tags and dag.description, dag_id
    assert all((EXAMPLE_DAGS / f"{dag_id}.py").read_text().startswith('"""') for dag_id in EXPECTED)


SYNCING_DAGS = {
    "walkme_audience_asset_producer": "active-enterprise-users.snapshot",
    "walkme_audience_from_warehouse": "enterprise-accounts.snapshot",
}


@pytest.mark.parametrize(
    "data_dir",
    ["s3://aws_default@segments-bucket/examples", "s3://segments-bucket/examples/", "gs://bucket/x"],
)
def test_an_object_storage_data_dir_stays_a_uri_in_the_state_path(data_dir, no_network, monkeypatch):
    # pathlib would make s3://b/x into s3:/b/x: a path no worker can open.
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SEGMENTS_EXAMPLE_DATA_DIR", data_dir)
    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert bag.import_errors == {}
    for dag_id, snapshot in SYNCING_DAGS.items():
        state_path = bag.dags[dag_id].get_task("sync_segment").state_path
        assert state_path == f"{data_dir.rstrip('/')}/state/{snapshot}", dag_id


def _load(dag_file: str, monkeypatch, data_dir: str | None):
    """The example DAG module, parsed with ``SEGMENTS_EXAMPLE_DATA_DIR=data_dir`` (``None``: unset)."""
    import importlib.util

    if data_dir is None:
        monkeypatch.delenv("SEGMENTS_EXAMPLE_DATA_DIR", raising=False)
    else:
        monkeypatch.setenv("SEGMENTS_EXAMPLE_DATA_DIR", data_dir)
    spec = importlib.util.spec_from_file_location(f"example_{dag_file}", EXAMPLE_DAGS / f"{dag_file}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("dag_file", "task_id", "count"),
    [
        ("walkme_audience_asset_producer", "export_audience", 1_200),
        ("walkme_segment_demo", "build_audience", 60_000),
    ],
)
def test_the_export_writes_through_object_storage_and_returns_the_uri(
    dag_file, task_id, count, tmp_path, monkeypatch
):
    # file:// goes through fsspec like s3:// does, and pathlib would mangle it the same way (file:/...).
    from airflow.sdk import ObjectStoragePath

    data_dir = f"file://{tmp_path}/data"
    module = _load(dag_file, monkeypatch, data_dir)
    uri = module.dag.get_task(task_id).python_callable(run_id="scheduled__2026-01-01T00:00:00+00:00")
    assert isinstance(uri, str) and uri.startswith(f"{data_dir}/")
    lines = ObjectStoragePath(uri).read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(set(lines)) == count
    (written,) = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert uri == f"file://{written}"


def test_the_local_default_is_a_folder_in_the_temp_dir_and_stays_a_plain_path(monkeypatch):
    import tempfile

    module = _load("walkme_audience_asset_producer", monkeypatch, None)
    expected = f"{tempfile.gettempdir()}/segments-example/state/active-enterprise-users.snapshot"
    assert module.dag.get_task("sync_segment").state_path == expected
