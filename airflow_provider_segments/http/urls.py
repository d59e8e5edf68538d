"""Where a request may go: origins compared as a browser does, and what counts as this machine.

URLs are read with urllib3, as the HTTP stack will read them when it sends: the host checked is the
host that receives the request.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urljoin

from airflow_provider_segments.text import preview

#: The port a scheme means when a URL gives none.
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Host names that are this machine (besides the loopback addresses).
LOOPBACK_NAMES = frozenset({"localhost"})
#: How much of a host name a message shows.
SHOWN_HOST_CHARS = 100


def origin(url: str) -> tuple[str, str, int] | None:
    """The origin of an absolute http(s) URL as a browser compares it: scheme and host in lower
    case, the scheme's default port when none is given; ``None`` for anything else (a relative
    link, another scheme, an unreadable URL). User info, path, query and fragment are not part of it.
    """
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        parsed = parse_url(url.strip())
    except (LocationParseError, ValueError):
        return None
    scheme, host = (parsed.scheme or "").lower(), (parsed.host or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host, parsed.port or DEFAULT_PORTS[scheme]


def host_of(url: str) -> str:
    """The host urllib3 sends a request for ``url`` to, in lower case without IPv6 brackets ("" when
    it cannot read one)."""
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        return (parse_url(url.strip()).host or "").strip("[]").lower()
    except (LocationParseError, ValueError):
        return ""


def same_origin(first: str, second: str) -> bool:
    """True when both URLs name the same scheme, host and port (``HTTPS://Host:443`` is
    ``https://host``); every check of "is this link still our API?" goes through it."""
    mine = origin(first)
    return mine is not None and mine == origin(second)


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (brackets allowed), also written as IPv4-mapped
    IPv6 (``::ffff:127.0.0.1``, which Python before 3.13 does not call loopback): nothing leaves the
    machine."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def describe_target(url: str, location: str | None) -> str:
    """Name where ``location`` (relative to ``url``) points: its host and port (quoted by
    :func:`~..text.preview`: redacted, then cut), its scheme and whether it is the origin of
    ``url``; never its path or query, which may carry a token."""
    if not location or not location.strip():
        return "nowhere (no Location header)"
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    absolute = urljoin(url, location.strip())
    try:
        target = parse_url(absolute)
    except (LocationParseError, ValueError):
        return "an unreadable Location"
    host = target.host or "?"
    netloc = f"{host}:{target.port}" if target.port else host
    where = "the same origin" if same_origin(url, absolute) else "another origin"
    return f"host {preview(netloc, SHOWN_HOST_CHARS)} ({target.scheme or 'no scheme'}, {where})"
