"""What Airflow reads to discover the provider: hooks, connection types and their UI forms.

The ``apache_airflow_provider`` entry point names :func:`get_provider_info`. Airflow calls it at every
start, so this module imports nothing heavy (no hook, no Airflow): the dropdown choices below are
plain copies that ``tests/test_provider_info.py`` compares with the hooks' own lists.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_segments import WALKME_CONN_TYPE, ZENDESK_CONN_TYPE, __version__

#: The choices of the WalkMe connection's "Region" dropdown (the keys of the hook's region table).
WALKME_REGIONS = ("us", "eu", "ca", "fedramp")
#: The choices of the Zendesk Help Center connection's "Auth type" dropdown.
ZENDESK_AUTH_TYPES = ("api_token", "oauth_token", "password")


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow: hooks, connection types and their UI forms."""
    return {
        "package-name": "airflow-provider-segments",
        "name": "Segments",
        "description": "Manage user segments on WalkMe (Segments API) and Zendesk Help Center "
        "(User Segments API) from Airflow DAGs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "WalkMe",
                "external-doc-url": "https://www.walkme.com/",
                "tags": ["software"],
            },
            {
                "integration-name": "Zendesk Help Center",
                "external-doc-url": "https://developer.zendesk.com/api-reference/help_center/help-center-api/user_segments/",
                "tags": ["software"],
            },
        ],
        "operators": [
            {
                "integration-name": "WalkMe",
                "python-modules": ["airflow_provider_segments.operators.walkme"],
            },
            {
                "integration-name": "Zendesk Help Center",
                "python-modules": ["airflow_provider_segments.operators.zendesk"],
            },
        ],
        "sensors": [
            {
                "integration-name": "WalkMe",
                "python-modules": ["airflow_provider_segments.sensors.walkme"],
            },
        ],
        "hooks": [
            {
                "integration-name": "WalkMe",
                "python-modules": ["airflow_provider_segments.hooks.walkme"],
            },
            {
                "integration-name": "Zendesk Help Center",
                "python-modules": ["airflow_provider_segments.hooks.zendesk"],
            },
        ],
        # Asset URIs (docs/data-aware.md): Airflow normalises them with the handler, hook lineage
        # builds them with the factory, and the OpenLineage provider names them with the converter.
        "asset-uris": [
            {
                "schemes": ["walkme-segment"],
                "handler": "airflow_provider_segments.assets.sanitize_walkme_segment_uri",
                "factory": "airflow_provider_segments.assets.create_walkme_segment_asset",
                "to_openlineage_converter": "airflow_provider_segments.assets."
                "convert_segment_asset_to_openlineage",
            },
            {
                "schemes": ["zendesk-user-segment"],
                "handler": "airflow_provider_segments.assets.sanitize_zendesk_user_segment_uri",
                "factory": "airflow_provider_segments.assets.create_zendesk_user_segment_asset",
                "to_openlineage_converter": "airflow_provider_segments.assets."
                "convert_segment_asset_to_openlineage",
            },
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_segments.hooks.walkme.WalkMeHook",
                "hook-name": "WalkMe",
                "connection-type": WALKME_CONN_TYPE,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "API base URL",
                        "login": "Client ID",
                        "password": "Client Secret",
                    },
                    "placeholders": {
                        "host": "https://api.walkme.com (empty: the region's host, else US)",
                        "login": "Client ID from Admin Center > API Keys",
                        "password": "Client Secret (shown once when the key is created)",
                    },
                },
                "conn-fields": {
                    "system_guid": {
                        "label": "System GUID",
                        "schema": {"type": ["string", "null"]},
                        "description": "Default system GUID (Editor > Snippet), e.g. "
                        "5f2b9c1e8d7a4b3c9e6f1a2d3c4b5a69; tasks may override it.",
                    },
                    "region": {
                        "label": "Region",
                        # A dropdown: the UI renders a schema with an "enum" as a select.
                        "schema": {"type": ["string", "null"], "enum": list(WALKME_REGIONS)},
                        "description": "Data centre shortcut used when the API base URL is empty: "
                        "us, eu, ca or fedramp.",
                    },
                },
            },
            {
                "hook-class-name": "airflow_provider_segments.hooks.zendesk.ZendeskHelpCenterHook",
                "hook-name": "Zendesk Help Center",
                "connection-type": ZENDESK_CONN_TYPE,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "Subdomain or base URL",
                        "login": "Agent email",
                        "password": "API token / OAuth token / password",
                    },
                    "placeholders": {
                        "host": "acme (for https://acme.zendesk.com) or a full URL",
                        "login": "agent@example.com (not used with an OAuth token)",
                        "password": "the secret for the chosen auth type",
                    },
                },
                "conn-fields": {
                    "auth_type": {
                        "label": "Auth type",
                        "schema": {"type": ["string", "null"], "enum": list(ZENDESK_AUTH_TYPES)},
                        "description": "api_token (Basic email/token, default with a login), oauth_token "
                        "(Bearer) or password (deprecated by Zendesk; self-hosted and test servers).",
                    },
                },
            },
        ],
    }
