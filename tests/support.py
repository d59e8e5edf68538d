"""Constants and helpers the tests share (importable: tests/ is on the pytest pythonpath)."""

from __future__ import annotations

import json

WALKME_TEST_URL = "https://walkme.test"
WALKME_SYSTEM = "5f2b9c1e8d7a4b3c9e6f1a2d3c4b5a69"
WALKME_CLIENT_ID = "client-id-123"
WALKME_CLIENT_SECRET = "s3cr3t-client-secret-value"


def walkme_conn_json(
    host: str = WALKME_TEST_URL,
    login: str = WALKME_CLIENT_ID,
    password: str = WALKME_CLIENT_SECRET,
    **extra: object,
) -> str:
    """An AIRFLOW_CONN_... value for a walkme connection (fast retries for tests)."""
    extra = {"system_guid": WALKME_SYSTEM, "backoff_initial": 0.01, **extra}
    return json.dumps(
        {"conn_type": "walkme", "host": host, "login": login, "password": password, "extra": extra}
    )


ZENDESK_TEST_URL = "https://acme.zendesk.com"
ZENDESK_EMAIL = "agent@acme.example.com"
ZENDESK_SECRET = "zd-s3cr3t-token-value"


def zendesk_conn_json(
    host: str = "acme",
    login: str | None = ZENDESK_EMAIL,
    password: str = ZENDESK_SECRET,
    **extra: object,
) -> str:
    """An AIRFLOW_CONN_... value for a zendesk_help_center connection (fast retries for tests)."""
    extra = {"backoff_initial": 0.01, **extra}
    conn = {
        "conn_type": "zendesk_help_center",
        "host": host,
        "login": login,
        "password": password,
        "extra": extra,
    }
    return json.dumps(conn)
