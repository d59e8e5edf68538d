"""Reading a connection (``extra`` keys, base URL) the same way in every hook, and what every hook
reads from one (:class:`ConnectionSettings`)."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_segments.exceptions import SegmentsConfigError
from airflow_provider_segments.http import without_userinfo
from airflow_provider_segments.id_rules import describe_char, find_invisible


class ConnectionLog(Protocol):
    """What reading a connection logs through: a hook's ``self.log`` (stdlib or structlog logger)."""

    def info(self, msg: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any, **kwargs: Any) -> Any: ...


#: Why a host URL holding ``user:password@`` is refused (the part before the '@' is not shown).
USERINFO_REFUSAL = (
    "it holds user info (user:password@, not shown here); put the login and secret in the "
    "connection's login and password fields"
)


@dataclass(frozen=True)
class ConnectionSettings:
    """A connection as a hook reads it: where to send, what to send with, and the extras.

    :param base_url: scheme, host, optional port and path; validated (see ``parse_base_url``).
    :param secret: the credential every call carries; registered with the masker and the client.
    :param login: the user part of the credential, if any.
    :param extra: the connection's ``extra`` with legacy prefixes dropped (retry budget, TLS...).

    Each platform extends it with the fields it reads, typed (``walkme_connection.WalkMeConnection``,
    ``zendesk_connection.ZendeskConnection``); a subclass is declared with ``repr=False`` so that this
    ``__repr__``, which never shows the secret, stays the one used.
    """

    base_url: str
    secret: str
    login: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never the secret
        return f"ConnectionSettings(base_url={self.base_url!r}, login={self.login!r})"


def unsendable_position(value: str) -> int | None:
    """Where ``value`` first holds a character an HTTP header cannot carry: a control or invisible
    one, or one beyond Latin-1 (requests encodes Basic credentials and header values as Latin-1).
    A space separator is not one (U+00A0 is Latin-1, and may be part of a password)."""
    bad = find_invisible(value, spaces_ok=True)
    if bad:
        return bad.start()
    return next((at for at, char in enumerate(value) if ord(char) > 0xFF), None)


def check_credential(value: str | None, field_name: str, conn_id: str) -> None:
    """Refuse a login or secret that HTTP cannot carry, naming the field and the character (never the
    value): a control or invisible character (a pasted line break would be a header requests refuses,
    a zero-width space a credential that never matches), or one beyond Latin-1 (requests encodes
    Basic credentials and header values as Latin-1); in a login, a ':' (RFC 7617: a Basic user-id
    holds none, and the server would read what follows it as the password's start)."""
    if not value:
        return
    if field_name == "login" and ":" in value:
        raise SegmentsConfigError(
            f"Connection {conn_id!r}: its login field holds ':' at position {value.index(':')}, which "
            "HTTP Basic authentication cannot carry in a login (the server would read the rest as the "
            "password): copy the login again. Nothing was sent."
        )
    if value != value.strip():  # a pasted space or no-break space: a credential that never matches
        end, char = ("begins", value[0]) if value[0].isspace() else ("ends", value[-1])
        raise SegmentsConfigError(
            f"Connection {conn_id!r}: its {field_name} field {end} with whitespace, "
            f"{describe_char(char)}: copy the value again without it. Nothing was sent."
        )
    position = unsendable_position(value)
    if position is None:
        return
    invisible = find_invisible(value[position], spaces_ok=True) is not None
    kind = "a control or invisible character" if invisible else "a character beyond Latin-1"
    raise SegmentsConfigError(
        f"Connection {conn_id!r}: its {field_name} field holds {kind}, {describe_char(value[position])}, "
        f"at position {position}, which cannot be sent in an HTTP header: copy the value again without "
        "it. Nothing was sent."
    )


def check_fields_read(conn: Any, conn_id: str) -> None:
    """Refuse a connection field the provider would otherwise read wrongly or not at all, before
    anything is sent: an ``extra`` that is not a JSON object (Airflow reads a broken one as ``{}``,
    and every setting, the region's host among them, would fall back to its default; its text is
    never shown: it may hold a secret), and a ``schema`` (the form hides it, a URI's path sets it:
    the scheme and a path belong in the host URL)."""
    raw = conn.extra
    if isinstance(raw, str) and raw.strip() and raw.strip() != "null":  # (blank or null: no extra)
        try:
            value = json.loads(raw)
        except (TypeError, ValueError) as err:
            where = (
                f" ({err.msg} at line {err.lineno}, column {err.colno})"
                if isinstance(err, json.JSONDecodeError)
                else ""
            )
            raise SegmentsConfigError(
                f"Connection {conn_id!r}: its extra is not valid JSON{where}, and read as no extra every "
                "setting would fall back to its default (another region's host, say): fix it into an "
                'object such as {"region": "eu"}. Nothing was sent.'
            ) from None
        if not isinstance(value, dict):
            raise SegmentsConfigError(
                f"Connection {conn_id!r}: its extra is a JSON {type(value).__name__}, not an object of "
                'settings such as {"region": "eu"}. Nothing was sent.'
            )
    schema = (conn.schema or "").strip() if isinstance(conn.schema, str) else conn.schema
    if schema:
        raise SegmentsConfigError(
            f"Connection {conn_id!r}: its schema field is set (not shown: it may hold a secret pasted "
            "there), and this provider does not read it: a scheme or a path belongs in the host URL "
            "(https://gateway.example/walkme-api); clear the schema. Nothing was sent."
        )


def refuse_port_without_url(port: int | None, host: str, sent_to: str, conn_id: str) -> None:
    """Refuse a ``port`` beside a host that is no URL (a subdomain, a region's default): it would be
    dropped, and the credentials sent to ``sent_to`` instead of the port named."""
    if port:
        raise SegmentsConfigError(
            f"Connection {conn_id!r} sets port {port}, but its host {host or '(empty)'!r} is no URL to put "
            f"it on: the credentials would go to {sent_to} instead. Give the full URL in host "
            f"(http://localhost:{port}, https://gateway.example:{port}), or clear the port. Nothing was sent."
        )


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

    Only http(s), a host name or IP address, an optional port and an optional plain path are
    accepted: no credentials, query, fragment, backslash, percent-escape or anything else a URL
    parser might read in two ways. The result is then read back the way the HTTP stack (urllib3)
    will read it, and refused unless it names the very same scheme, host and port, so the host
    validated here is the host that receives the request and its credentials. The connection's
    ``port`` is added when the URL has none.
    """
    shown = without_userinfo(url)  # a password before an '@' is never echoed
    match = _BASE_URL.fullmatch(url)
    reason = USERINFO_REFUSAL if shown != url else _refusal(match, port)
    if match is None or reason:
        raise SegmentsConfigError(
            f"Connection {conn_id!r}: host {shown!r} is not a base URL like {example} or "
            f"http://127.0.0.1:8080: {reason or _SHAPE}."
        )
    scheme, host = match["scheme"].lower(), match["host"].lower()
    url_port = int(match["port"]) if match["port"] else None
    if url_port is not None and port and port != url_port:
        raise SegmentsConfigError(
            f"Connection {conn_id!r}: host {shown!r} names port {url_port} and the port field {port}: "
            "keep one of them. Nothing was sent."
        )
    effective_port = url_port if url_port is not None else port
    path = (match["path"] or "").rstrip("/")
    netloc = f"{host}:{effective_port}" if effective_port else host
    base = f"{scheme}://{netloc}{path}"
    if not _read_alike(base, scheme, host, effective_port, path):
        raise SegmentsConfigError(
            f"Connection {conn_id!r}: host {shown!r} would be read differently by the HTTP client; {_SHAPE}."
        )
    return base


#: A host label: letters, digits and inner hyphens (RFC 1123); no underscore, no IDN.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_BASE_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://"
    rf"(?P<host>{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<path>/[A-Za-z0-9._~/-]*)?"
)
_SHAPE = (
    "give http(s)://, a host name or IP address (letters, digits, '-', '.', or an IPv6 address in "
    "brackets), an optional :port and an optional path of letters, digits and '-._~/'"
)


def _refusal(match: re.Match[str] | None, port: int | None) -> str:
    """Why a URL matching the shape is still refused ('' when it is fine)."""
    if match is None:
        return ""
    if match["scheme"].lower() not in ("http", "https"):
        return f"the scheme must be http or https, not {match['scheme']!r}"
    host = match["host"]
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"{host} is not an IPv6 address"
    for value in (match["port"], port):
        if value not in (None, "") and not 1 <= int(value) <= 65535:
            return f"port {value} is not between 1 and 65535"
    segments = (match["path"] or "").rstrip("/").split("/")[1:]
    if any(segment in ("", ".", "..") for segment in segments):
        return "the path may not hold empty, '.' or '..' segments"
    return ""


def _read_alike(base: str, scheme: str, host: str, port: int | None, path: str) -> bool:
    """True when urllib3 (what requests sends with) reads ``base`` as the same scheme, host, port."""
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        parsed = parse_url(base)
    except (LocationParseError, ValueError):
        return False
    return (
        parsed.scheme == scheme
        and (parsed.host or "").lower() == host
        and parsed.port == port
        and (parsed.path or "") == path
        and not (parsed.auth or parsed.query or parsed.fragment)
    )
