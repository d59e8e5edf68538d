"""Lineage of segment changes: Airflow's hook lineage and the OpenLineage facets, with and without
the OpenLineage provider, against the sandbox over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from airflow.sdk import Asset
from airflow.sdk.lineage import HookLineageCollector
from support import ZENDESK_TEST_URL, ZendeskSegmentStore

from airflow_provider_segments._compat import ObjectStoragePath
from airflow_provider_segments.assets import walkme_segment_asset, zendesk_user_segment_asset
from airflow_provider_segments.ids import IdSource
from airflow_provider_segments.lineage import input_uri, zendesk_change
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeSyncSegmentOperator,
    WalkMeUpdateSegmentOperator,
)
from airflow_provider_segments.operators.zendesk import (
    ZendeskCreateUserSegmentOperator,
    ZendeskUpdateUserSegmentOperator,
)
from airflow_provider_segments.testing import TEST_SYSTEM_GUID

OPENLINEAGE_MODULES = ("airflow.providers.openlineage", "openlineage")


@pytest.fixture
def collector(monkeypatch) -> HookLineageCollector:
    """A real collector, as Airflow uses when a lineage reader (the OpenLineage plugin) is registered."""
    collector = HookLineageCollector()
    monkeypatch.setattr("airflow.sdk.lineage.get_hook_lineage_collector", lambda: collector)
    return collector


def collected(collector) -> tuple[list[str], list[str]]:
    lineage = collector.collected_assets
    return [i.asset.uri for i in lineage.inputs], [o.asset.uri for o in lineage.outputs]


@pytest.fixture
def without_openlineage(monkeypatch):
    """Simulate an Airflow without the OpenLineage provider: importing it raises ImportError."""
    for name in list(sys.modules):
        if name.startswith(OPENLINEAGE_MODULES):
            monkeypatch.delitem(sys.modules, name)
    for name in (
        "airflow.providers.openlineage",
        "airflow.providers.openlineage.extractors",
        "openlineage",
        "openlineage.client",
        "openlineage.client.event_v2",
        "openlineage.client.facet_v2",
    ):
        monkeypatch.setitem(sys.modules, name, None)


def segment_asset(guid: str) -> str:
    return walkme_segment_asset(TEST_SYSTEM_GUID, guid).uri


def test_a_sync_from_a_file_reports_the_file_as_input_and_the_segment_as_output(sandbox, collector, tmp_path):
    audience = tmp_path / "audience.txt"
    audience.write_text("a\nb\nc\n")
    result = WalkMeSyncSegmentOperator(
        task_id="s", name="Synced", user_ids_path=str(audience), state_path=str(tmp_path / "s.snapshot")
    ).execute({})
    assert collected(collector) == ([f"file://{audience}"], [segment_asset(result["segment_guid"])])
    # Airflow knows both ends as assets, the segment in its normalised form.
    assert collector.collected_assets.outputs[0].asset == walkme_segment_asset(
        TEST_SYSTEM_GUID, result["segment_guid"].upper()
    )


def test_a_create_from_an_inline_list_reports_only_the_segment(sandbox, collector):
    result = WalkMeCreateSegmentOperator(task_id="c", name="Inline", user_ids=["a", "b"]).execute({})
    assert collected(collector) == ([], [segment_asset(result["segment_guid"])])


def test_an_update_from_object_storage_reports_its_uri(sandbox, collector, tmp_path):
    uri = f"file://{tmp_path}/bucket/audience.txt"
    ObjectStoragePath(uri).parent.mkdir(parents=True, exist_ok=True)
    ObjectStoragePath(uri).write_text("x\ny\n")
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Obj", ["x"])["guid"]
    WalkMeUpdateSegmentOperator(task_id="u", segment_guid=guid, action="add", user_ids_path=uri).execute({})
    assert collected(collector) == ([uri], [segment_asset(guid)])


def test_the_input_uri_of_object_storage_leaves_the_connection_id_out():
    assert input_uri(IdSource(path="s3://aws_prod@bucket/audiences/a.csv")) == "s3://bucket/audiences/a.csv"
    assert input_uri(IdSource(path="relative/a.txt")).startswith("file:///")
    assert input_uri(IdSource(values=["a"])) is None


def test_a_zendesk_segment_is_named_by_the_host_of_the_connections_base_url_without_its_path():
    proxied = zendesk_change("https://help.internal:8443/zendesk", {"id": 3, "user_type": "staff"})
    assert proxied.output_uri == "zendesk-user-segment://help.internal:8443/3"


def test_a_dry_run_reports_nothing_it_did_not_write(sandbox, collector, tmp_path):
    op = WalkMeSyncSegmentOperator(
        task_id="s", name="Dry", user_ids=["a"], state_path=str(tmp_path / "s.snapshot"), dry_run=True
    )
    op.execute({})
    assert collected(collector) == ([], [])
    if _openlineage_installed():
        assert op.get_openlineage_facets_on_complete(None).outputs == []


def test_zendesk_create_and_update_report_the_user_segment(requests_mock, zendesk_conn, collector):
    base = f"{ZENDESK_TEST_URL}/api/v2/help_center"
    requests_mock.get(f"{base}/user_segments.json", json={"user_segments": [], "meta": {"has_more": False}})
    requests_mock.post(f"{base}/user_segments.json", json=ZendeskSegmentStore(requests_mock, base).create(5))
    ZendeskCreateUserSegmentOperator(task_id="c", name="VIP", user_type="staff").execute({})
    update = ZendeskUpdateUserSegmentOperator(task_id="u", user_segment_id=5, tags=["vip"])
    update.execute({})
    expected = zendesk_user_segment_asset("acme", 5).uri
    assert collected(collector) == ([], [expected, expected])  # one asset, written by two tasks' hooks
    if _openlineage_installed():
        (output,) = update.get_openlineage_facets_on_complete(None).outputs
        assert (output.namespace, output.name) == ("zendesk-user-segment://acme.zendesk.com", "5")


def test_a_failing_lineage_collector_never_fails_a_change_that_went_through(sandbox, monkeypatch, capfd):
    class Broken(HookLineageCollector):
        def add_output_asset(self, *args, **kwargs):
            raise RuntimeError("collector down")

    monkeypatch.setattr("airflow.sdk.lineage.get_hook_lineage_collector", Broken)
    result = WalkMeCreateSegmentOperator(task_id="c", name="Kept", user_ids=["a"]).execute({})
    assert sandbox.walkme.members(TEST_SYSTEM_GUID, result["segment_guid"]) == ["a"]
    output = capfd.readouterr()
    assert "Could not report lineage" in output.out + output.err


def _openlineage_installed() -> bool:
    try:
        import airflow.providers.openlineage  # noqa: F401
    except ImportError:
        return False
    return True


# -- OpenLineage -----------------------------------------------------------------------------------
def test_openlineage_facets_of_a_delta_sync_count_what_was_read_and_sent(sandbox, tmp_path):
    pytest.importorskip("airflow.providers.openlineage")
    state, audience = tmp_path / "s.snapshot", tmp_path / "audience.txt"

    def sync(ids: list[str]) -> WalkMeSyncSegmentOperator:
        audience.write_text("".join(f"{i}\n" for i in ids))
        op = WalkMeSyncSegmentOperator(
            task_id="s", name="Delta", user_ids_path=str(audience), state_path=str(state)
        )
        op.execute({})
        return op

    sync(["a", "b", "c", "d"])
    lineage = sync(["b", "c", "d", "e", "f"]).get_openlineage_facets_on_complete(None)
    (source,) = lineage.inputs
    assert (source.namespace, source.name) == ("file", str(audience))
    assert source.inputFacets["inputStatistics"].rowCount == 5
    (segment,) = lineage.outputs
    assert segment.namespace == f"walkme-segment://{TEST_SYSTEM_GUID}"
    assert segment.outputFacets["outputStatistics"].rowCount == 3  # +2 / -1
    facet = lineage.run_facets["segments"]
    assert (facet.mode, facet.added, facet.removed, facet.unchanged, facet.user_count) == (
        "delta",
        2,
        1,
        3,
        5,
    )


def test_without_openlineage_the_operators_run_and_offer_no_facets(sandbox, collector, without_openlineage):
    with pytest.raises(ImportError):
        import airflow.providers.openlineage.extractors  # noqa: F401
    op = WalkMeCreateSegmentOperator(task_id="c", name="No OL", user_ids=["a"])
    result = op.execute({})
    assert op.get_openlineage_facets_on_complete(None) is None
    assert collected(collector) == ([], [segment_asset(result["segment_guid"])])  # hook lineage still works


def test_importing_the_operators_and_sensor_imports_no_openlineage_and_no_lineage_module():
    code = (
        "import json, sys\n"
        "import airflow_provider_segments.operators.walkme, airflow_provider_segments.operators.zendesk\n"
        "import airflow_provider_segments.sensors.walkme\n"
        "loaded = [m for m in sys.modules if m.startswith(('openlineage', 'airflow.providers.openlineage.',"
        " 'airflow_provider_segments.lineage', 'airflow.sdk.lineage'))]\n"
        "print('LOADED', json.dumps(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # Airflow itself reads every provider's get_provider_info (its configuration); nothing more.
    loaded = json.loads(next(line for line in out.splitlines() if line.startswith("LOADED "))[7:])
    assert set(loaded) <= {"airflow.providers.openlineage.get_provider_info"}


def test_an_asset_of_another_scheme_is_left_to_its_own_provider():
    assert Asset(uri="s3://bucket/key").uri == "s3://bucket/key"


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/a.csv?X-Amz-Signature=0123456789abcdef&X-Amz-Credential=AKIA",
        "abfs://container/a.csv?sv=2022&sig=s3cr3tsig",
    ],
)
def test_the_input_uri_carries_no_query_string(uri):
    """A pre-signed URL's query holds a signature: it never reaches a lineage URI (review 10)."""
    assert input_uri(IdSource(path=uri)) == uri.split("?")[0]
