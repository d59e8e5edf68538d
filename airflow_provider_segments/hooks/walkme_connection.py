"""A ``walkme`` connection, read once into typed settings: base URL (host, else region, else the US
host), Client ID and Secret, the default system GUID.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_segments.exceptions import SegmentsConfigError
from airflow_provider_segments.hooks._connection import (
    ConnectionLog,
    ConnectionSettings,
    parse_base_url,
    refuse_port_without_url,
)
from airflow_provider_segments.text import preview
from airflow_provider_segments.vocabulary import SYSTEM_GUID_PATTERN

DEFAULT_HOST = "https://api.walkme.com"
#: WalkMe's publicly listed data centres; the token endpoint lives on the same host.
REGION_HOSTS = {
    "us": "https://api.walkme.com",
    "eu": "https://eu-api.walkme.com",
    "ca": "https://api-ca1.walkmedap.com",
    "fedramp": "https://api.walkmegov.com",
}


@dataclass(frozen=True, repr=False)
class WalkMeConnection(ConnectionSettings):
    """What a ``walkme`` connection says, validated.

    :param system_guid: ``extra.system_guid``, the system a task uses when it names none.
    :param region: ``extra.region`` in lower case (``None`` when not set).
    """

    system_guid: str | None = None
    region: str | None = None

    @classmethod
    def read(cls, conn: Any, extra: dict[str, Any], *, conn_id: str, log: ConnectionLog) -> WalkMeConnection:
        """Read an Airflow connection (and its normalised ``extra``); refuse what cannot work."""
        if not conn.login:
            raise SegmentsConfigError(f"Connection {conn_id!r} has no Client ID: set its login field.")
        region = _region(extra.get("region"), conn_id)
        return cls(
            base_url=_base_url(conn.host, conn.port, region, conn_id, log),
            secret=conn.password,
            login=conn.login,
            extra=extra,
            system_guid=_system_guid(extra.get("system_guid"), conn_id),
            region=region,
        )


def _system_guid(value: Any, conn_id: str) -> str | None:
    """Checked when the connection is read, so that a secret pasted here is redacted from the error."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not SYSTEM_GUID_PATTERN.fullmatch(value):
        raise SegmentsConfigError(
            f"Connection {conn_id!r}: extra field 'system_guid' is {preview(value)}, not a system GUID: "
            "expected letters, digits and hyphens only (copy it from Editor > Snippet)."
        )
    return value


def _region(value: Any, conn_id: str) -> str | None:
    if value in (None, ""):
        return None
    key = str(value).strip().lower()
    if key not in REGION_HOSTS:
        raise SegmentsConfigError(
            f"Connection {conn_id!r}: extra field 'region' is {value!r}; "
            f"known regions are {', '.join(REGION_HOSTS)} (or set the host to a full URL)."
        )
    return key


def _base_url(
    host: str | None, port: int | None, region: str | None, conn_id: str, log: ConnectionLog
) -> str:
    region_url = REGION_HOSTS[region] if region else None
    host = (host or "").strip()
    if not host:
        refuse_port_without_url(port, host, region_url or DEFAULT_HOST, conn_id)
        return region_url or DEFAULT_HOST
    if region_url:
        log.info("Connection %r sets both host and region; the host wins.", conn_id)
    url = host if "://" in host else f"https://{host}"
    return parse_base_url(url, port, conn_id=conn_id, example=DEFAULT_HOST)
