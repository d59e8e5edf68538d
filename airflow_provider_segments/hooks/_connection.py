"""Reading a connection (``extra`` keys, base URL) the same way in every hook."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from airflow_provider_segments.exceptions import SegmentsConfigError


def normalized_extra(extra: dict[str, Any] | None, conn_type: str) -> dict[str, Any]:
    """Return ``extra`` with the legacy ``extra__<conn_type>__`` prefix dropped from its keys.

    Connection forms have stored custom fields both as ``system_guid`` and, in older UIs, as
    ``extra__walkme__system_guid``; both spellings mean the same field. A non-empty plain key wins.
    """
    prefix = f"extra__{conn_type}__"
    result = {key: value for key, value in (extra or {}).items() if not key.startswith(prefix)}
    for key, value in (extra or {}).items():
        name = key[len(prefix) :]
        if key.startswith(prefix) and result.get(name) in (None, ""):
            result[name] = value
    return result


def parse_base_url(url: str, port: int | None, *, conn_id: str, example: str) -> str:
    """Return ``scheme://host[:port][/path]`` from a connection's host URL, or refuse it.

    Only http(s) with a host and no credentials, query or fragment is accepted, so a malformed
    connection cannot send requests (and their credentials) somewhere unexpected. The connection's
    ``port`` is added when the URL has none.
    """
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
    ):
        raise SegmentsConfigError(
            f"Connection {conn_id!r}: host {url!r} is not a base URL like {example} or http://127.0.0.1:8080."
        )
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
