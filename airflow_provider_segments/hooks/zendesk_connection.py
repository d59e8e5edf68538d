"""A ``zendesk_help_center`` connection, read once into typed settings: base URL (a subdomain, its
``<subdomain>.zendesk.com`` host, or a full URL), the auth style and what each style sends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from airflow_provider_segments.exceptions import SegmentsConfigError
from airflow_provider_segments.hooks._connection import (
    USERINFO_REFUSAL,
    ConnectionLog,
    ConnectionSettings,
    parse_base_url,
    refuse_port_without_url,
)
from airflow_provider_segments.http import without_userinfo
from airflow_provider_segments.vocabulary import SUBDOMAIN_PATTERN

AUTH_TYPES = ("oauth_token", "api_token", "password")
#: A host stored without a scheme as Zendesk shows it: ``acme.zendesk.com`` (a trailing ``/`` too).
_ZENDESK_HOST = re.compile(rf"(?P<subdomain>{SUBDOMAIN_PATTERN.pattern})\.zendesk\.com/?", re.IGNORECASE)


@dataclass(frozen=True, repr=False)
class ZendeskConnection(ConnectionSettings):
    """What a ``zendesk_help_center`` connection says, validated.

    :param auth_type: ``oauth_token``, ``api_token`` or ``password`` (``extra.auth_type``; default
        ``api_token`` with a login, else ``oauth_token``).
    """

    auth_type: str = "api_token"

    @classmethod
    def read(cls, conn: Any, extra: dict[str, Any], *, conn_id: str, log: ConnectionLog) -> ZendeskConnection:
        """Read an Airflow connection (and its normalised ``extra``); refuse what cannot work."""
        auth_type = extra.get("auth_type") or ("api_token" if conn.login else "oauth_token")
        if auth_type not in AUTH_TYPES:
            raise SegmentsConfigError(
                f"Connection {conn_id!r}: extra field 'auth_type' is {auth_type!r}; use one of "
                f"{', '.join(AUTH_TYPES)}."
            )
        if auth_type in ("api_token", "password") and not conn.login:
            raise SegmentsConfigError(
                f"Connection {conn_id!r}: auth_type {auth_type!r} needs the agent's email in the login field."
            )
        if auth_type == "api_token" and conn.login.lower().endswith("/token"):
            raise SegmentsConfigError(
                f"Connection {conn_id!r}: its login ends in '/token', which the provider adds for "
                "auth_type 'api_token' (it would send '.../token/token'): give the agent's email alone."
            )
        if auth_type == "password":
            log.warning(
                "Connection %r uses auth_type 'password': Zendesk has turned password access off for "
                "its API; use 'api_token' or 'oauth_token' (password is kept for self-hosted and test "
                "servers).",
                conn_id,
            )
        return cls(
            base_url=_base_url(conn.host, conn.port, conn_id),
            secret=conn.password,
            login=conn.login if auth_type != "oauth_token" else None,  # (an OAuth token goes alone)
            extra=extra,
            auth_type=auth_type,
        )

    def auth_kwargs(self) -> dict[str, Any]:
        """What every call carries for this auth style (``auth=`` or an ``Authorization`` header)."""
        if self.auth_type == "oauth_token":
            return {"headers": {"Authorization": f"Bearer {self.secret}"}}
        if self.auth_type == "api_token":
            return {"auth": (f"{self.login}/token", self.secret)}
        return {"auth": (self.login, self.secret)}


def _base_url(host: str | None, port: int | None, conn_id: str) -> str:
    host = (host or "").strip()
    if not host:
        raise SegmentsConfigError(
            f"Connection {conn_id!r} has no host: set it to your subdomain (acme) or a "
            "base URL (https://acme.zendesk.com)."
        )
    if "://" not in host:
        subdomain = host if SUBDOMAIN_PATTERN.fullmatch(host) else None
        if subdomain is None and (match := _ZENDESK_HOST.fullmatch(host)):
            subdomain = match["subdomain"]
        if subdomain is not None:
            url = f"https://{subdomain.lower()}.zendesk.com"
            refuse_port_without_url(port, host, url, conn_id)
            return url
        shown = without_userinfo(host)  # never echo a password before an '@'
        raise SegmentsConfigError(
            f"Connection {conn_id!r}: host {shown!r} is neither a Zendesk subdomain "
            "(letters, digits, hyphens) nor a base URL with a scheme (https://acme.zendesk.com)"
            + (f": {USERINFO_REFUSAL}." if shown != host else ".")
        )
    return parse_base_url(host, port, conn_id=conn_id, example="https://acme.zendesk.com")
