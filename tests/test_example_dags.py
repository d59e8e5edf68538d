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
