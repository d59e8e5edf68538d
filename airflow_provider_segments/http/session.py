"""The HTTP session and request bodies: what every call of the client shares, built once."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from airflow_provider_segments import __version__
from airflow_provider_segments.http.deadline import deadline_adapter_class
from airflow_provider_segments.http.urls import host_of, is_loopback

if TYPE_CHECKING:
    import requests

USER_AGENT = f"airflow-provider-segments/{__version__}"
#: Kept-alive connections per host: at least the most chunk writes a task may send at once
#: (``membership.sender.MAX_PARALLEL_REQUESTS``), so that none is closed and opened again.
POOL_CONNECTIONS = 16


def new_session(base_url: str) -> requests.Session:
    """A keep-alive session for ``base_url``, safe to share between the threads of one task."""
    import requests

    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    # The connection is the one source of credentials: never a .netrc entry (which would
    # replace a bearer token) nor a URL's user info. A loopback API is reached directly:
    # the environment's proxies (HTTP_PROXY, ALL_PROXY...) would receive the credentials.
    session.auth = _connection_auth_only()
    session.trust_env = _reads_environment(base_url)
    adapter = deadline_adapter_class()
    session.mount("https://", adapter(pool_maxsize=POOL_CONNECTIONS))
    session.mount("http://", adapter(pool_maxsize=POOL_CONNECTIONS))
    return session


def tls_verify(base_url: str, verify: bool | str) -> bool | str:
    """The ``verify`` a request to ``base_url`` is sent with: the connection's setting, except that a
    session that does not read the environment (a loopback API, see :func:`new_session`) still
    verifies against the CA bundle the environment names (``REQUESTS_CA_BUNDLE``, else
    ``CURL_CA_BUNDLE``), as requests does for any other host: a local TLS proxy with its own CA."""
    if verify is True and not _reads_environment(base_url):
        return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return verify


def _reads_environment(base_url: str) -> bool:
    return not is_loopback(host_of(base_url))  # the host urllib3 will send to, as check_plain_http reads it


def encode_json(value: Any) -> bytes:
    """``value`` as UTF-8 JSON bytes: with ``msgspec`` (which Airflow's task SDK and core require),
    about ten times faster than the standard library for a chunk of 25,000 ids; with ``json``
    (refusing NaN, as ``requests`` does) where it is missing."""
    try:
        import msgspec
    except ImportError:  # pragma: no cover - Airflow 3 installs it
        return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
    return msgspec.json.encode(value)


def _connection_auth_only() -> Any:
    """A session-wide auth that adds nothing: with it set, requests reads no ``.netrc`` and no user
    info from the URL; a call's own ``auth=`` still wins."""
    from requests.auth import AuthBase

    class ConnectionAuthOnly(AuthBase):
        def __call__(self, request: Any) -> Any:
            return request

    return ConnectionAuthOnly()
