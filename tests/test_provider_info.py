"""The provider registers with Airflow: entry point, connection type, form, and the real CLI sees it."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distribution, entry_points

from airflow_provider_segments.get_provider_info import get_provider_info
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.hooks.walkme_connection import REGION_HOSTS
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.hooks.zendesk_connection import AUTH_TYPES


def test_entry_point_points_at_get_provider_info():
    eps = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_provider_")
    ]
    assert [ep.load() for ep in eps] == [get_provider_info]


def test_get_provider_info_lives_in_its_own_light_module():
    code = (
        "import sys; import airflow_provider_segments.get_provider_info as m; m.get_provider_info(); "
        "print(sorted(n for n in sys.modules if n.startswith(('airflow_provider_segments', 'airflow.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['airflow_provider_segments', 'airflow_provider_segments.get_provider_info']"


def _conn_fields(conn_type: str) -> dict:
    (conn,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == conn_type]
    return conn["conn-fields"]


def test_region_is_a_dropdown_of_the_regions_the_hook_knows():
    schema = _conn_fields("walkme")["region"]["schema"]
    assert schema["enum"] == list(REGION_HOSTS)
    assert "null" in schema["type"]  # may stay empty: the host (or the US default) decides


def test_auth_type_is_a_dropdown_of_the_auth_types_the_hook_knows():
    schema = _conn_fields("zendesk_help_center")["auth_type"]["schema"]
    assert sorted(schema["enum"]) == sorted(AUTH_TYPES)
    assert "null" in schema["type"]  # may stay empty: api_token with a login, else oauth_token


def test_package_name_is_the_distribution_name():
    info = get_provider_info()
    assert info["package-name"] == distribution("airflow-provider-segments").metadata["Name"]
    assert info["name"] and info["description"]


def test_hook_attributes_match_the_declared_connection_type():
    (conn,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "walkme"]
    assert conn["hook-class-name"] == f"{WalkMeHook.__module__}.{WalkMeHook.__qualname__}"
    assert WalkMeHook.conn_type == "walkme" and WalkMeHook.default_conn_name == "walkme_default"
    assert WalkMeHook.conn_name_attr == "walkme_conn_id" and WalkMeHook.hook_name == conn["hook-name"]
    behaviour = conn["ui-field-behaviour"]
    assert behaviour["relabeling"] == {
        "host": "API base URL",
        "login": "Client ID",
        "password": "Client Secret",
    }
    assert {"schema", "port"} <= set(behaviour["hidden-fields"])
    assert {f["label"] for f in conn["conn-fields"].values()} == {"System GUID", "Region"}


def test_zendesk_hook_matches_its_connection_type_and_does_not_collide():
    (conn,) = [
        c for c in get_provider_info()["connection-types"] if c["connection-type"] == "zendesk_help_center"
    ]
    hook = ZendeskHelpCenterHook
    assert conn["hook-class-name"] == f"{hook.__module__}.{hook.__qualname__}"
    assert hook.conn_type == "zendesk_help_center" != "zendesk"
    assert (
        hook.default_conn_name == "zendesk_help_center_default" and hook.conn_name_attr == "zendesk_conn_id"
    )
    assert conn["ui-field-behaviour"]["relabeling"]["login"] == "Agent email"
    assert conn["conn-fields"]["auth_type"]["label"] == "Auth type"


def test_airflow_providers_manager_knows_the_walkme_connection_form():
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManager()
    assert "airflow-provider-segments" in manager.providers
    # Where tasks look hooks up (ProvidersManager.hooks is deprecated for that in Airflow 3).
    hooks = ProvidersManagerTaskRuntime().hooks
    assert hooks["walkme"].hook_class_name == "airflow_provider_segments.hooks.walkme.WalkMeHook"
    assert manager.field_behaviours["walkme"]["relabeling"]["login"] == "Client ID"
    widgets = manager.connection_form_widgets
    assert widgets["extra__walkme__system_guid"].field["schema"]["title"] == "System GUID"
    assert widgets["extra__walkme__region"].field["schema"]["enum"] == list(REGION_HOSTS)
    assert widgets["extra__zendesk_help_center__auth_type"].field["schema"]["enum"] == list(
        get_provider_info()["connection-types"][1]["conn-fields"]["auth_type"]["schema"]["enum"]
    )


def test_airflow_cli_lists_the_provider_and_its_connection_type():
    def cli(*args: str) -> list[dict]:
        out = subprocess.run(
            [sys.executable, "-m", "airflow", "providers", *args, "-o", "json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (line,) = [line for line in out.splitlines() if line.startswith("[")]
        return json.loads(line)

    packages = {p["package_name"] for p in cli("list")}
    assert {"airflow-provider-segments", "apache-airflow-providers-zendesk"} <= packages
    hooks = {h["connection_type"]: h for h in cli("hooks")}
    assert hooks["walkme"]["class"] == "airflow_provider_segments.hooks.walkme.WalkMeHook"
    # Side by side with the official Zendesk provider: each keeps its own connection type.
    assert hooks["zendesk_help_center"]["package_name"] == "airflow-provider-segments"
    assert hooks["zendesk"]["package_name"] == "apache-airflow-providers-zendesk"
