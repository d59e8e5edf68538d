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


def sandbox_conn_env(url: str, **extra: object) -> dict[str, str]:
    """AIRFLOW_CONN_* values pointing both default connections at a sandbox, with fast retries (the
    testing kit's own helper, which users' DAG tests call too)."""
    from airflow_provider_segments.sandbox.pytest_plugin import sandbox_connection_env

    return sandbox_connection_env(url, **{"backoff_initial": 0.01, "backoff_max": 0.05, **extra})


#: Airflow's own supervisor prints the secrets a task registers with the masker at DEBUG
#: ("Sending request ... msg=MaskSecret(value='...')") in dag.test runs; that line is Airflow's,
#: not the provider's, so leak scans skip it (see docs/reliability.md).
AIRFLOW_MASK_SECRET_DEBUG_LINE = "msg=MaskSecret("


def leaked_secrets(output: str, secrets: list[str]) -> list[str]:
    """The secrets that appear in ``output`` outside Airflow's own MaskSecret debug lines."""
    lines = [line for line in output.splitlines() if AIRFLOW_MASK_SECRET_DEBUG_LINE not in line]
    text = "\n".join(lines)
    return [secret for secret in secrets if secret and secret in text]


def leaked_secrets_in_files(root, secrets: list[str], skip: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Secrets found in any file under ``root`` (metadata DB with XComs and rendered fields, task logs)."""
    from pathlib import Path

    found: dict[str, list[str]] = {}
    for path in Path(root).rglob("*"):
        if not path.is_file() or path.name in skip:
            continue
        data = path.read_bytes()
        hits = [s for s in secrets if s and s.encode() in data]
        if path.suffix == ".log" and hits:  # task logs: the same Airflow DEBUG line applies
            hits = leaked_secrets(data.decode(errors="replace"), hits)
        if hits:
            found[str(path)] = hits
    return found
