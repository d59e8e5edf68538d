"""What a connection's ``extra`` says about the transport: retry budget, timeouts, TLS, plain http.

Every numeric extra must be finite and in its documented range (docs/connections.md); every refusal
is a :class:`SegmentsConfigError` naming the connection, the field and what is allowed, raised
before anything is sent.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_segments.exceptions import SegmentsConfigError
from airflow_provider_segments.http.urls import host_of, is_loopback
from airflow_provider_segments.redaction import without_userinfo
from airflow_provider_segments.text import preview


@dataclass(frozen=True)
class ExtraRange:
    """The values a numeric connection extra may take (documented in docs/connections.md)."""

    low: float
    high: float
    low_excluded: bool = False
    whole: bool = False

    def describe(self) -> str:
        if self.whole:
            return f"a whole number from {self.low:g} to {self.high:g}"
        low = f"{self.low:g} (excluded)" if self.low_excluded else f"{self.low:g}"
        return f"a number of seconds from {low} to {self.high:g}"

    def admits(self, number: float) -> bool:
        if not math.isfinite(number) or (self.whole and number != int(number)):
            return False
        above_low = number > self.low if self.low_excluded else number >= self.low
        return above_low and number <= self.high


#: Every numeric extra must be finite and in its range: an "inf" budget would let one Retry-After
#: hold a worker for a year, an "inf" timeout would never time out.
EXTRA_RANGES: dict[str, ExtraRange] = {
    "max_attempts": ExtraRange(1, 20, whole=True),
    "backoff_initial": ExtraRange(0, 60),
    "backoff_max": ExtraRange(0, 600),
    "max_total_wait": ExtraRange(0, 3600),
    "timeout": ExtraRange(0, 600, low_excluded=True),
    "connect_timeout": ExtraRange(0, 120, low_excluded=True),
}


def number_extra(extra: Mapping[str, Any], key: str, conn_id: str) -> float | None:
    """The extra ``key`` as a number within :data:`EXTRA_RANGES`; ``None`` when it is not set."""
    value = extra.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    allowed = EXTRA_RANGES[key]
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):  # True is not 1 attempt
        number = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value.strip())
    if number is None or not allowed.admits(number):
        raise SegmentsConfigError(
            f"Connection {conn_id!r}: extra field {key!r} must be {allowed.describe()}, got {preview(value)}."
        )
    return number


def verify_setting(value: Any, conn_id: str) -> bool | str:
    """The ``verify`` extra: ``True``/``False`` (as booleans or words) or a CA bundle path."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", ""):
            return True
        if lowered in ("false", "0", "no"):
            return False
        path = value.strip()
        if not os.path.exists(path):  # requests would fail at send time with a raw OSError
            raise SegmentsConfigError(
                f"Connection {conn_id!r}: extra field 'verify' is {path!r}, which is neither true/false "
                "nor the path of a CA bundle on this machine (no file or directory there): use true, "
                "false, or the path of a CA bundle that exists where the task runs."
            )
        return path
    raise SegmentsConfigError(
        f"Connection {conn_id!r}: extra field 'verify' must be true, false or a CA bundle path, "
        f"got {value!r}."
    )


def flag_setting(extra: Mapping[str, Any], key: str, conn_id: str) -> bool:
    """A true/false extra (absent or empty: false)."""
    value = extra.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise SegmentsConfigError(
        f"Connection {conn_id!r}: extra field {key!r} must be true or false, got {preview(value)}."
    )


def check_plain_http(base_url: str, extra: Mapping[str, Any], conn_id: str, logger: Any) -> None:
    """Refuse plain http beyond this machine unless the connection allows it, loudly (the flag is
    checked whatever the host, as every other extra is)."""
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    insecure_allowed = flag_setting(extra, "allow_insecure_http", conn_id)
    try:
        parsed = parse_url(base_url)
    except (LocationParseError, ValueError):
        raise SegmentsConfigError(f"Connection {conn_id!r}: {base_url!r} is not a base URL.") from None
    if parsed.scheme not in ("http", "https"):
        raise SegmentsConfigError(f"Connection {conn_id!r}: {base_url!r} is not an http(s) URL.")
    if (urlsplit(base_url).hostname or "") != host_of(base_url):  # e.g. "host\\@other"
        raise SegmentsConfigError(
            f"Connection {conn_id!r}: {without_userinfo(base_url)!r} is not a base URL: URL parsers read "
            "its host in two ways, so the host checked might not be the host that receives the request."
        )
    if parsed.scheme == "https" or is_loopback(parsed.host or ""):
        return
    if not insecure_allowed:
        raise SegmentsConfigError(
            f"Connection {conn_id!r}: host {base_url!r} uses plain http to a host that is not this "
            "machine, which would send the credentials unencrypted: use https, or set the extra "
            "allow_insecure_http to true if the network path is trusted."
        )
    logger.warning(
        "Connection %r sends its credentials over plain http to %s (extra.allow_insecure_http=true): "
        "anyone on the network path can read or change them and the data; use https.",
        conn_id,
        parsed.host,
    )
