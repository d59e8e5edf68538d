"""Asset URIs of segments: one spelling per segment, through Airflow's own Asset and provider registry."""

from __future__ import annotations

import pytest
from airflow.sdk import Asset
from support import WALKME_SYSTEM

from airflow_provider_segments.assets import (
    convert_segment_asset_to_openlineage,
    walkme_segment_asset,
    zendesk_user_segment_asset,
)
from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.get_provider_info import get_provider_info

GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        # GUIDs and the system in lower case; 32 hex digits hyphenated; trailing slash dropped.
        (
            f"WalkMe-Segment://{WALKME_SYSTEM.upper()}/{GUID.upper().replace('-', '')}/",
            f"walkme-segment://{WALKME_SYSTEM}/{GUID}",
        ),
        # A name keeps its case and is percent-encoded one way, "/" and "%" included.
        (
            f"walkme-segment://{WALKME_SYSTEM}/name/Enterprise accounts / EU 50%25",
            f"walkme-segment://{WALKME_SYSTEM}/name/Enterprise%20accounts%20%2F%20EU%2050%25",
        ),
        ("zendesk-user-segment://ACME/0042", "zendesk-user-segment://acme.zendesk.com/42"),
        ("zendesk-user-segment://help.example.com:443/7", "zendesk-user-segment://help.example.com/7"),
        ("zendesk-user-segment://127.0.0.1:8080/7", "zendesk-user-segment://127.0.0.1:8080/7"),
    ],
)
def test_airflow_normalises_every_spelling_through_the_registered_handler(written, normalised):
    assert Asset(uri=written).uri == normalised


@pytest.mark.parametrize(
    "uri",
    [
        f"walkme-segment://{WALKME_SYSTEM}/not-a-guid",
        f"walkme-segment://{WALKME_SYSTEM}/name/",
        f"walkme-segment://{WALKME_SYSTEM}:8080/{GUID}",
        f"walkme-segment://user@{WALKME_SYSTEM}/{GUID}",
        f"walkme-segment://{WALKME_SYSTEM}/{GUID}?x=1",
        f"walkme-segment://bad_system!/{GUID}",
        "zendesk-user-segment://acme/",
        "zendesk-user-segment://acme/-3",
        "zendesk-user-segment://acme/section/3",
        "zendesk-user-segment://bad_host/3",
    ],
)
def test_a_malformed_uri_is_refused_saying_what_the_forms_are(uri):
    with pytest.raises(ValueError, match=r"is not valid: .* The forms? (is|are) "):
        Asset(uri=uri)


def test_helpers_build_the_normalised_asset_whose_name_is_its_uri():
    by_guid = walkme_segment_asset(WALKME_SYSTEM.upper(), GUID.upper())
    assert by_guid.uri == by_guid.name == f"walkme-segment://{WALKME_SYSTEM}/{GUID}"
    by_name = walkme_segment_asset(WALKME_SYSTEM, "Enterprise accounts")
    assert by_name.uri == by_name.name == f"walkme-segment://{WALKME_SYSTEM}/name/Enterprise%20accounts"
    # A name that looks like a GUID is a name when the caller says so.
    assert walkme_segment_asset(WALKME_SYSTEM, GUID, by="name").uri.endswith(f"/name/{GUID}")
    with pytest.raises(SegmentsValidationError, match="segment_guid 'Enterprise'"):
        walkme_segment_asset(WALKME_SYSTEM, "Enterprise", by="guid")
    for host in ("acme", "acme.zendesk.com", "https://Acme.zendesk.com/", "https://acme.zendesk.com:443"):
        assert zendesk_user_segment_asset(host, "42").uri == "zendesk-user-segment://acme.zendesk.com/42"
    with pytest.raises(SegmentsValidationError, match="without credentials, path or query"):
        zendesk_user_segment_asset("https://agent:pw@acme.zendesk.com/hc", 42)


def test_the_same_segment_spelled_twice_is_one_asset_for_airflow():
    a = walkme_segment_asset(WALKME_SYSTEM, GUID)
    b = walkme_segment_asset(WALKME_SYSTEM.upper(), GUID.replace("-", "").upper())
    assert a == b and hash(a) == hash(b)
    assert a != walkme_segment_asset(WALKME_SYSTEM, "Enterprise")  # by name: another asset


def test_provider_info_declares_both_schemes_with_handler_factory_and_converter():
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    declared = {scheme for entry in get_provider_info()["asset-uris"] for scheme in entry["schemes"]}
    assert declared == {"walkme-segment", "zendesk-user-segment"}
    manager = ProvidersManagerTaskRuntime()
    for scheme in declared:
        assert manager.asset_uri_handlers[scheme].__module__ == "airflow_provider_segments.assets"
        assert manager.asset_factories[scheme].__module__ == "airflow_provider_segments.assets"
        assert manager.asset_to_openlineage_converters[scheme] is convert_segment_asset_to_openlineage


def test_hook_lineage_builds_assets_with_the_declared_factory():
    from airflow.sdk.lineage import HookLineageCollector

    collector = HookLineageCollector()
    asset = collector.create_asset(
        scheme="walkme-segment", asset_kwargs={"system_guid": WALKME_SYSTEM, "segment": GUID}
    )
    assert asset == walkme_segment_asset(WALKME_SYSTEM, GUID)
    asset = collector.create_asset(
        scheme="zendesk-user-segment", asset_kwargs={"host": "acme", "user_segment_id": 42}
    )
    assert asset.uri == "zendesk-user-segment://acme.zendesk.com/42"


def test_openlineage_names_a_segment_like_object_storage_names_a_key():
    pytest.importorskip("airflow.providers.openlineage")
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset

    by_name = translate_airflow_asset(walkme_segment_asset(WALKME_SYSTEM, "Enterprise / EU"), None)
    assert (by_name.namespace, by_name.name) == (f"walkme-segment://{WALKME_SYSTEM}", "name/Enterprise / EU")
    by_guid = translate_airflow_asset(walkme_segment_asset(WALKME_SYSTEM, GUID), None)
    assert (by_guid.namespace, by_guid.name) == (f"walkme-segment://{WALKME_SYSTEM}", GUID)
    zendesk = translate_airflow_asset(zendesk_user_segment_asset("acme", 42), None)
    assert (zendesk.namespace, zendesk.name) == ("zendesk-user-segment://acme.zendesk.com", "42")
