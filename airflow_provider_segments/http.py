"""The one HTTP core: every API call of every hook goes through :class:`ApiClient`.

It owns what must behave the same for every platform: the session, timeouts, TLS verification,
retries with exponential backoff that honour ``Retry-After``, a bounded retry budget, mapping error
bodies to readable exceptions, and keeping secrets out of every message it builds. The hooks own
the platform knowledge (URLs, payloads, auth) and hand it the hints that make errors actionable.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import email.utils
import functools
import heapq
import ipaddress
import json
import logging
import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, urljoin, urlsplit

from airflow_provider_segments import __version__

if TYPE_CHECKING:
    import requests

from airflow_provider_segments.exceptions import (
    SegmentsApiError,
    SegmentsAuthError,
    SegmentsConfigError,
    SegmentsNotFoundError,
    SegmentsUnknownOutcomeError,
)

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
USER_AGENT = f"airflow-provider-segments/{__version__}"
#: Statuses that mean "try again later". For non-idempotent calls only 429 and 503 are retried:
#: they say the request was not processed, whereas a 500/502/504 may follow a server-side write.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
NOT_PROCESSED_STATUSES = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
API_MESSAGE_CHARS = 500
#: How much of a 2xx body that is not JSON an error quotes.
BODY_SNIPPET_CHARS = 120
RATE_LIMIT_LOW_WATERMARK = 10
#: The deadline of one attempt's whole answer is the read timeout plus this share of it (at least
#: DEADLINE_GRACE_MIN seconds), so a server that is merely silent still shows as a read timeout.
DEADLINE_GRACE = 0.1
DEADLINE_GRACE_MIN = 0.1
#: Shorter values are not treated as secrets: redacting them would blank out ordinary words.
MIN_SECRET_CHARS = 4
#: The port a scheme means when a URL gives none.
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Hosts plain http may reach without ``allow_insecure_http``: nothing leaves the machine.
LOOPBACK_NAMES = frozenset({"localhost"})


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

log = logging.getLogger(__name__)


def _requests() -> Any:
    """The ``requests`` module, imported on first use: DAG files import the operators at every parse,
    and ``requests`` (with urllib3) is most of what importing them would otherwise cost."""
    import requests

    return requests


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a failing call.

    :param max_attempts: attempts in all, the first one included (1 disables retries).
    :param backoff_initial: seconds before the first retry when the server gives no ``Retry-After``.
    :param backoff_max: cap of one backoff step.
    :param max_total_wait: cap of all the waiting for one call; a ``Retry-After`` beyond what is
        left of it ends the call with an error instead of sleeping.
    """

    max_attempts: int = 5
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    max_total_wait: float = 300.0

    EXTRA_KEYS = ("max_attempts", "backoff_initial", "backoff_max", "max_total_wait")

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any], *, conn_id: str) -> RetryPolicy:
        """Build a policy from a connection's ``extra`` (keys as the parameters); defaults otherwise.

        Each value must be finite and within :data:`EXTRA_RANGES`, else :class:`SegmentsConfigError`.
        """
        values: dict[str, Any] = {}
        for key in cls.EXTRA_KEYS:
            number = _number_extra(extra, key, conn_id)
            if number is not None:
                values[key] = int(number) if key == "max_attempts" else number
        return cls(**values)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), with jitter."""
        step = min(self.backoff_max, self.backoff_initial * (2 ** (attempt - 1)))
        return step * random.uniform(0.5, 1.0)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds asked by a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` if absent."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "nan" is no answer; "inf" is more than any budget, so the call gives up.
        return None if math.isnan(seconds) else max(0.0, seconds)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (moment - now).total_seconds())


def extract_api_message(response: requests.Response, redact: Redactor | None = None) -> str:
    """Say in one line what an error body says, whatever shape the platform gives it.

    Understands ``{"message": ...}``, OAuth's ``{"error", "error_description"}``, Zendesk's
    ``{"error", "description"}`` with field-level ``details`` (``{field: [{"description", "error"}]}``),
    ``{"errors": {field: [messages]}}``, lists of ``{"title", "message"}`` objects and nested error
    objects; falls back to the text. ``redact`` runs on the whole message before it is cut to
    :data:`API_MESSAGE_CHARS`, so a secret straddling the cut cannot leave its prefix behind.
    """
    redact = redact or Redactor()
    try:
        body = response.json()
    except ValueError:
        return redact.shorten(response.text, API_MESSAGE_CHARS)
    parts: list[str] = []
    if isinstance(body, dict):
        for key in ("error", "message", "error_description", "description", "detail", "title"):
            _add_part(parts, _reason_text(body.get(key)))
        for key in ("errors", "details"):
            value = body.get(key)
            if isinstance(value, dict):
                for name, reasons in value.items():
                    items = reasons if isinstance(reasons, list) else [reasons]
                    _add_part(parts, f"{name}: " + "; ".join(filter(None, map(_reason_text, items))))
            elif isinstance(value, list):
                _add_part(parts, "; ".join(filter(None, map(_reason_text, value))))
            else:
                _add_part(parts, _reason_text(value))
    elif isinstance(body, list):
        _add_part(parts, "; ".join(filter(None, map(_reason_text, body))))
    message = " - ".join(parts) or json.dumps(body)
    return redact.shorten(message, API_MESSAGE_CHARS)


def extract_nested(value: dict[str, Any]) -> str:
    """Flatten a nested error object (``{"title": ..., "message": ...}``) into one line."""
    return _reason_text(value)


def _reason_text(value: Any) -> str:
    """One reason as text: a string as it is; an object as its texts, its error code in brackets."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        texts = [
            str(value[key])
            for key in ("title", "message", "description", "detail")
            if value.get(key) not in (None, "")
        ]
        code = next((value[key] for key in ("error", "code") if isinstance(value.get(key), str)), "")
        text = " - ".join(texts)
        if text and code and code not in texts:
            return f"{text} ({code})"
        return text or code or json.dumps(value)
    if isinstance(value, list):
        return "; ".join(filter(None, map(_reason_text, value)))
    return json.dumps(value)


def _add_part(parts: list[str], text: str) -> None:
    if text and text not in parts:
        parts.append(text)


def _cut(text: str, limit: int) -> str:
    return text[:limit]


def _preview(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _number_extra(extra: Mapping[str, Any], key: str, conn_id: str) -> float | None:
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
            f"Connection {conn_id!r}: extra field {key!r} must be {allowed.describe()}, "
            f"got {_preview(value)}."
        )
    return number


def _verify_setting(value: Any, conn_id: str) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", ""):
            return True
        if lowered in ("false", "0", "no"):
            return False
        return value.strip()  # a CA bundle path
    raise SegmentsConfigError(
        f"Connection {conn_id!r}: extra field 'verify' must be true, false or a CA bundle path, "
        f"got {value!r}."
    )


def _flag_setting(extra: Mapping[str, Any], key: str, conn_id: str) -> bool:
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
        f"Connection {conn_id!r}: extra field {key!r} must be true or false, got {_preview(value)}."
    )


def origin(url: str) -> tuple[str, str, int] | None:
    """The origin of an absolute http(s) URL as a browser compares it: scheme and host in lower
    case, the scheme's default port when none is given; ``None`` for anything else (a relative
    link, another scheme, an unreadable URL). User info, path, query and fragment are not part of it.
    Read by urllib3, as the HTTP stack will read the URL when it sends."""
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


def same_origin(first: str, second: str) -> bool:
    """True when both URLs name the same scheme, host and port (``HTTPS://Host:443`` is
    ``https://host``); every check of "is this link still our API?" goes through it."""
    mine = origin(first)
    return mine is not None and mine == origin(second)


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_plain_http(base_url: str, extra: Mapping[str, Any], conn_id: str, logger: Any) -> None:
    """Refuse plain http beyond this machine unless the connection allows it, loudly."""
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        parsed = parse_url(base_url)
    except (LocationParseError, ValueError):
        raise SegmentsConfigError(f"Connection {conn_id!r}: {base_url!r} is not a base URL.") from None
    if parsed.scheme not in ("http", "https"):
        raise SegmentsConfigError(f"Connection {conn_id!r}: {base_url!r} is not an http(s) URL.")
    if parsed.scheme == "https" or _is_loopback(parsed.host or ""):
        return
    if not _flag_setting(extra, "allow_insecure_http", conn_id):
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


def without_userinfo(url: str) -> str:
    """``url`` with everything between its scheme and its last ``@`` shown as ``***``: a user name and
    password (raw or URL-encoded, holding ``/`` or ``@`` or not) never reach a message, whole or cut."""
    if "@" not in url:
        return url
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    return f"{scheme}{separator}***@{rest.rpartition('@')[2]}"


def _secret_forms(secret: str) -> set[str]:
    """The ways a secret may come back in an error body: raw, URL-encoded, JSON-escaped, base64."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
    }
    data = secret.encode()
    forms.add(base64.b64encode(data).decode())
    forms.add(base64.urlsafe_b64encode(data).decode())
    # The base64 of a longer string holding the secret (an unknown user name before it) contains one
    # of three cores, depending on where the secret starts modulo 3: register the long-enough ones.
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        core = encoded[4 if offset else 0 : 4 * ((offset + len(data)) // 3)]
        if len(core) >= 8:
            forms.add(core)
    return {form for form in forms if len(form) >= MIN_SECRET_CHARS}


class Redactor:
    """The secrets one client knows, and the one way text quoting an answer is made safe to show."""

    def __init__(self) -> None:
        self._forms: set[str] = set()
        self._registered: set[Any] = set()

    def add_secret(self, value: str | None) -> None:
        """Remember ``value`` and its URL-encoded, JSON-escaped and base64 forms."""
        if value and len(value) >= MIN_SECRET_CHARS and value not in self._registered:
            self._registered.add(value)
            self._forms.update(_secret_forms(value))

    def add_credentials(self, user: str, password: str) -> None:
        """Remember HTTP Basic credentials: the password, and the header value built from both."""
        if (user, password) in self._registered:
            return
        self._registered.add((user, password))
        self.add_secret(password)
        if password:
            pair = f"{user}:{password}"
            self._forms.update({pair, base64.b64encode(pair.encode()).decode()})

    def __call__(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        for form in sorted(self._forms, key=len, reverse=True):
            text = text.replace(form, "***")
        return text

    def shorten(self, text: str, limit: int) -> str:
        """``text`` on one line, redacted, then cut to ``limit`` characters.

        Redacted before the cut (and again once its whitespace is folded, which could join a secret
        split across lines), so a secret cut in half cannot leave its prefix behind; what the cut
        leaves at its edge is redacted too when it is the start of a secret (an echo the server
        itself cut short).
        """
        text = self(" ".join(self(text).split()))
        if len(text) <= limit:
            return text
        return self._edge(text[: limit - 3]) + "..."

    def _edge(self, text: str) -> str:
        for form in sorted(self._forms, key=len, reverse=True):
            for size in range(min(len(form) - 1, len(text)), MIN_SECRET_CHARS - 1, -1):
                if text.endswith(form[:size]):
                    return text[:-size] + "***"
        return text


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: causes, contexts, exception args and urllib3's ``reason``."""
    seen: set[int] = set()
    pending = [exc]
    while pending and len(seen) < 64:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, *current.args]
        linked += [getattr(current, "reason", None), getattr(current, "original_error", None)]
        pending.extend(item for item in linked if isinstance(item, BaseException))


def _never_sent(exc: BaseException) -> bool:
    """True when the request cannot have reached the server: connection refused, the host name not
    resolved, connecting timed out. Decided by exception type, as urllib3's own Retry does, not by
    the wording of the operating system's message."""
    requests = _requests()
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    # NameResolutionError is a NewConnectionError, which is a ConnectTimeoutError.
    return any(isinstance(item, ConnectTimeoutError | NewConnectionError) for item in _exception_chain(exc))


def _name_not_resolved(exc: BaseException) -> bool:
    from urllib3 import exceptions

    kind = getattr(exceptions, "NameResolutionError", None)  # urllib3 2.x
    return kind is not None and any(isinstance(item, kind) for item in _exception_chain(exc))


class AttemptDeadlineExceeded(Exception):
    """One attempt did not receive its whole answer within its deadline (the read timeout)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"no whole answer within {timeout:g} s")
        self.timeout = timeout


def _describe(exc: BaseException) -> str:
    requests = _requests()
    if isinstance(exc, AttemptDeadlineExceeded):
        return (
            f"the server did not send its whole answer within the {exc.timeout:g} s timeout "
            "(extra 'timeout', a deadline per attempt)"
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connecting timed out"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "the server did not answer within the read timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS verification failed"
    if _name_not_resolved(exc):
        return "the host name could not be resolved"
    if _never_sent(exc):
        return "connection refused or host unreachable"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "the connection broke before a full response arrived"
    return type(exc).__name__


# -- the per-attempt deadline ------------------------------------------------------------------------
# A read timeout bounds each socket read, not the answer: a server sending one byte per second holds
# a worker for as long as it likes. Each attempt therefore arms a watchdog when the request has been
# sent; when it fires it shuts the socket down, so the blocked read returns at once (headers or body).
_ATTEMPT = threading.local()


class _AttemptDeadline:
    """The deadline of one attempt: when it passes, the sockets the answer is read from are shut down."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._done = False
        self._armed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def watch(self, sock: socket.socket) -> None:
        """Called by the connection when it starts reading an answer from ``sock``."""
        with self._lock:
            if self._done:
                return
            if self.fired:
                _shut(sock)
                return
            self._sockets.append(sock)
            if not self._armed:
                self._armed = True
                _WATCHDOG.arm(time.monotonic() + self.seconds, self)

    def fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            for sock in self._sockets:
                _shut(sock)

    def finish(self) -> bool:
        """Disarm; True when the deadline fired during the attempt."""
        with self._lock:
            self._done = True
            return self.fired


class _Watchdog:
    """One thread for every attempt's deadline: a thread per request costs milliseconds each on a
    busy two-core worker (its start handshake), a heap entry costs nothing. Entries of finished
    attempts are dropped when they come due."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, _AttemptDeadline]] = []
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._serial = 0
        if hasattr(os, "register_at_fork"):  # a forked task process has no watchdog thread yet
            os.register_at_fork(after_in_child=self._forget_thread)

    def _forget_thread(self) -> None:
        self._thread = None
        self._due = []
        self._condition = threading.Condition()

    def arm(self, when: float, deadline: _AttemptDeadline) -> None:
        with self._condition:
            self._serial += 1
            heapq.heappush(self._due, (when, self._serial, deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="segments-deadlines", daemon=True)
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._due:
                    self._condition.wait()
                when, _, deadline = self._due[0]
                wait = when - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                heapq.heappop(self._due)
            deadline.fire()


_WATCHDOG = _Watchdog()


def _shut(sock: Any) -> None:
    # The plain socket's shutdown, also for a TLS socket: ssl.SSLSocket.shutdown would tear down
    # the TLS state under the reading thread; this only ends the stream, so the read returns.
    # (TLS through an https proxy reads through urllib3's SSLTransport, which wraps the socket.)
    raw = sock if isinstance(sock, socket.socket) else getattr(sock, "socket", None)
    if isinstance(raw, socket.socket):
        with contextlib.suppress(OSError):
            socket.socket.shutdown(raw, socket.SHUT_RDWR)


def _connection_auth_only() -> Any:
    """A session-wide auth that adds nothing: with it set, requests reads no ``.netrc`` and no user
    info from the URL; a call's own ``auth=`` still wins."""
    from requests.auth import AuthBase

    class ConnectionAuthOnly(AuthBase):
        def __call__(self, request: Any) -> Any:
            return request

    return ConnectionAuthOnly()


@functools.cache
def _deadline_adapter_class() -> type:
    """A requests adapter whose connections report to the current attempt's deadline (built on
    first use: requests and urllib3 are not imported at DAG parse time)."""
    import urllib3.connection
    import urllib3.connectionpool
    import urllib3.poolmanager
    from requests.adapters import HTTPAdapter

    class _Watched:
        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            deadline = getattr(_ATTEMPT, "deadline", None)
            sock = getattr(self, "sock", None)
            if deadline is not None and sock is not None:
                deadline.watch(sock)
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]

    class WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
        pass

    class WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
        pass

    class WatchedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = WatchedHTTPConnection

    class WatchedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
        ConnectionCls = WatchedHTTPSConnection

    pools = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}

    class DeadlineAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            if type(manager) is urllib3.poolmanager.ProxyManager:  # not SOCKS: it has its own pools
                manager.pool_classes_by_scheme = pools
            return manager

    return DeadlineAdapter


@dataclass
class ApiClient:
    """A small HTTP client for one platform's API, shared by every call a hook makes.

    :param platform: name used in messages ("WalkMe", "Zendesk").
    :param base_url: scheme, host and optional port (and path prefix) the paths are joined to.
    :param retry: the retry policy.
    :param timeout: (connect, read) seconds. The read timeout is also the deadline of one attempt's
        whole answer, counted from when the request has been sent.
    :param verify: TLS verification: ``True``, ``False`` or the path of a CA bundle.
    :param hints: extra sentence appended to errors of a given status (e.g. which connection to fix).
    :param logger: where retries and warnings go (a hook passes its ``self.log``).
    """

    platform: str
    base_url: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: tuple[float, float] = (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT)
    verify: bool | str = True
    hints: Mapping[int, str] = field(default_factory=dict)
    logger: Any = None
    sleep: Callable[[float], None] = time.sleep
    redactor: Redactor = field(default_factory=lambda: Redactor(), repr=False)
    _session: requests.Session | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        if self.logger is None:
            self.logger = log

    def __repr__(self) -> str:
        return f"ApiClient(platform={self.platform!r}, base_url={self.base_url!r})"

    @classmethod
    def from_extra(
        cls,
        *,
        platform: str,
        base_url: str,
        extra: Mapping[str, Any],
        conn_id: str,
        hints: Mapping[int, str] | None = None,
        logger: Any = None,
    ) -> ApiClient:
        """Build a client whose retry budget, timeouts and TLS settings come from a connection's extra.

        Keys: ``max_attempts``, ``backoff_initial``, ``backoff_max``, ``max_total_wait`` (see
        :class:`RetryPolicy`), ``timeout`` (read seconds, and the deadline of one attempt's whole
        answer), ``connect_timeout``, ``verify`` (``true``/``false`` or a CA bundle path) and
        ``allow_insecure_http``. Numbers must be finite and within :data:`EXTRA_RANGES`. Plain
        ``http://`` is refused unless the host is this machine (localhost, 127.0.0.0/8, ::1) or
        ``allow_insecure_http`` is true, which logs a warning.
        """
        timeout = (
            _number_extra(extra, "connect_timeout", conn_id) or DEFAULT_CONNECT_TIMEOUT,
            _number_extra(extra, "timeout", conn_id) or DEFAULT_READ_TIMEOUT,
        )
        verify = _verify_setting(extra.get("verify", True), conn_id)
        client = cls(
            platform=platform,
            base_url=base_url,
            retry=RetryPolicy.from_extra(extra, conn_id=conn_id),
            timeout=timeout,
            verify=verify,
            hints=dict(hints or {}),
            logger=logger,
        )
        _check_plain_http(client.base_url, extra, conn_id, client.logger)
        if verify is False:
            client.logger.warning(
                "Connection %r turns TLS certificate verification off (extra.verify=false): "
                "use it only for a local test server.",
                conn_id,
            )
        return client

    # -- secrets -------------------------------------------------------------------------------
    def add_secret(self, value: str | None) -> None:
        """Remember a secret so that no message this client builds can contain it: neither the
        value, nor its URL-encoded, JSON-escaped or base64 forms."""
        self.redactor.add_secret(value)

    def add_credentials(self, user: str, password: str) -> None:
        """Remember HTTP Basic credentials: the password, and the header value built from both."""
        self.redactor.add_credentials(user, password)

    def redact(self, text: str) -> str:
        """Replace every known secret in ``text`` with ``***``."""
        return self.redactor(text)

    def preview(self, value: Any) -> str:
        """``repr(value)`` for an error message that quotes what an API answered: redacted as a
        whole, then cut to :data:`BODY_SNIPPET_CHARS`."""
        return self.redactor.shorten(repr(value), BODY_SNIPPET_CHARS)

    # -- transport -----------------------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        """The keep-alive session (created on first use, never at import or construction)."""
        if self._session is None:
            session = _requests().Session()
            session.headers["User-Agent"] = USER_AGENT
            # The connection is the one source of credentials: never a .netrc entry (which would
            # replace a bearer token) nor a URL's user info. A loopback API is reached directly:
            # the environment's proxies (HTTP_PROXY, ALL_PROXY...) would receive the credentials.
            session.auth = _connection_auth_only()
            session.trust_env = not _is_loopback(urlsplit(self.base_url).hostname or "")
            adapter = _deadline_adapter_class()
            session.mount("https://", adapter())
            session.mount("http://", adapter())
            self._session = session
        return self._session

    @contextlib.contextmanager
    def single_attempt(self) -> Iterator[None]:
        """Within the block, every call makes one attempt: no retry, no backoff (the Test button)."""
        policy = self.retry
        self.retry = dataclasses.replace(policy, max_attempts=1)
        try:
            yield
        finally:
            self.retry = policy

    def close(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def url(self, path: str) -> str:
        """Join ``path`` to the base URL; an absolute URL (a next-page link) is returned as it is
        when it has the base URL's origin and holds no user info, and refused otherwise."""
        if "://" not in path:
            return f"{self.base_url}/{path.lstrip('/')}"
        if not same_origin(self.base_url, path) or "@" in urlsplit(path).netloc:
            raise SegmentsApiError(
                f"{self.platform} API: refusing to send a request (and its credentials) to "
                f"{_redirect_target(self.base_url, path)}: only the origin of {self.base_url}, with no "
                "user info in the URL, receives them.",
                platform=self.platform,
                method="",
                endpoint=urlsplit(path).path,
            )
        return path

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one call, retrying what is safe to retry, and return the successful response.

        :param params: query parameters. :param json_body: JSON body. :param data: form body.
        :param headers: extra headers. :param auth: HTTP Basic ``(user, password)``; the password
            and the header built from it are redacted from every message.
        :param idempotent: whether repeating the call is harmless; by default true for GET, PUT,
            DELETE. A non-idempotent call is retried only when the server cannot have applied it
            (connection refused, name not resolved, 429, 503); otherwise
            :class:`SegmentsUnknownOutcomeError` is raised.
        :raises SegmentsAuthError: on 401/403 (never retried).
        :raises SegmentsNotFoundError: on 404.
        :raises SegmentsApiError: on a redirect (3xx: never followed, never retried), and on any
            other failure once the retry budget is spent.
        """
        return self._perform(method, path, parse_json=False, **kwargs)[0]

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Like :meth:`request`, and return the decoded JSON body (``None`` for an empty body).

        A body that is not valid JSON (truncated, an HTML page from a proxy) is retried like a
        transient error when the call is idempotent; otherwise, or once the budget is spent, it is
        an error naming the call.
        """
        return self._perform(method, path, parse_json=True, **kwargs)[1]

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One attempt, cut off when its whole answer has not arrived within the read timeout.

        Redirects are never followed: the credentials go to the validated host and nowhere else.
        """
        read_timeout = self.timeout[1]
        deadline = _AttemptDeadline(read_timeout + max(DEADLINE_GRACE_MIN, read_timeout * DEADLINE_GRACE))
        _ATTEMPT.deadline = deadline
        try:
            response = self.session.request(
                method, url, timeout=self.timeout, verify=self.verify, allow_redirects=False, **kwargs
            )
        except Exception as exc:
            if deadline.finish():
                raise AttemptDeadlineExceeded(read_timeout) from exc
            raise
        finally:
            _ATTEMPT.deadline = None
        if deadline.finish():  # a body read until the connection closed ends early, not in error
            response.close()
            raise AttemptDeadlineExceeded(read_timeout)
        return response

    def _perform(
        self,
        method: str,
        path: str,
        *,
        parse_json: bool,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> tuple[requests.Response, Any]:
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        if auth is not None:
            self.add_credentials(*auth)
        for name, value in (headers or {}).items():
            if name.lower() == "authorization":  # e.g. a bearer token the hook built: never echo it
                self.add_secret(str(value).partition(" ")[2].strip())
        url = self.url(path)
        endpoint = urlsplit(url).path
        waited = 0.0
        attempt = 0

        def backed_off(reason: str, retry_after: float | None = None) -> bool:
            """Sleep before the next attempt if the budget allows it; False when it is spent."""
            nonlocal waited
            delay = retry_after if retry_after is not None else self.retry.backoff(attempt)
            if not self._retry_allowed(attempt, waited, delay):
                return False
            self._log_retry(method, endpoint, reason, attempt, delay, retry_after)
            self.sleep(delay)
            waited += delay
            return True

        while True:
            attempt += 1
            started = time.monotonic()
            try:
                response = self._send(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=data,
                    headers=dict(headers or {}),
                    auth=auth,
                )
            except (_requests().RequestException, AttemptDeadlineExceeded) as exc:
                reason = _describe(exc)
                if not (idempotent or _never_sent(exc)):
                    raise SegmentsUnknownOutcomeError(
                        self._message(method, endpoint, None, reason, attempt, outcome_unknown=True),
                        platform=self.platform,
                        method=method,
                        endpoint=endpoint,
                    ) from None
                if backed_off(reason):
                    continue
                raise SegmentsApiError(
                    self._message(method, endpoint, None, reason, attempt),
                    platform=self.platform,
                    method=method,
                    endpoint=endpoint,
                ) from None

            status = response.status_code
            self.logger.debug(
                "%s API %s %s -> %s in %.2f s",
                self.platform,
                method,
                endpoint,
                status,
                time.monotonic() - started,
            )
            if 300 <= status < 400:
                # Not followed and not retried: the target got nothing, so a write was not applied there.
                response.close()
                raise self._redirect_error(method, endpoint, url, response, attempt)
            if status < 400:
                self._watch_rate_limit(response)
                if not parse_json or not response.content:
                    return response, None
                try:
                    return response, response.json()
                except ValueError:
                    # Redact the whole body first: a secret cut in half would no longer match.
                    snippet = self.redactor.shorten(response.text, BODY_SNIPPET_CHARS)
                    detail = f"answered with a body that is not valid JSON: {snippet!r}"
                    if not idempotent:
                        raise SegmentsUnknownOutcomeError(
                            self._message(method, endpoint, response, detail, attempt, outcome_unknown=True),
                            platform=self.platform,
                            method=method,
                            endpoint=endpoint,
                            status=status,
                        ) from None
                    if backed_off("body is not valid JSON"):
                        continue
                    raise SegmentsApiError(
                        self._message(method, endpoint, response, detail, attempt),
                        platform=self.platform,
                        method=method,
                        endpoint=endpoint,
                        status=status,
                    ) from None
            api_message = extract_api_message(response, redact=self.redactor)
            if status in RETRYABLE_STATUSES:
                if not idempotent and status not in NOT_PROCESSED_STATUSES:
                    raise SegmentsUnknownOutcomeError(
                        self._message(method, endpoint, response, api_message, attempt, outcome_unknown=True),
                        platform=self.platform,
                        method=method,
                        endpoint=endpoint,
                        status=status,
                        api_message=api_message,
                    )
                response.close()
                if backed_off(f"HTTP {status}", parse_retry_after(response.headers.get("Retry-After"))):
                    continue
            raise self._error(method, endpoint, response, api_message, attempt)

    # -- helpers -------------------------------------------------------------------------------
    def _retry_allowed(self, attempt: int, waited: float, delay: float) -> bool:
        return attempt < self.retry.max_attempts and waited + delay <= self.retry.max_total_wait

    def _log_retry(
        self,
        method: str,
        endpoint: str,
        reason: str,
        attempt: int,
        delay: float,
        retry_after: float | None = None,
    ) -> None:
        source = " (Retry-After)" if retry_after is not None else ""
        self.logger.warning(
            "%s API %s %s: %s; retrying in %.1f s%s (attempt %d of %d)",
            self.platform,
            method,
            endpoint,
            reason,
            delay,
            source,
            attempt + 1,
            self.retry.max_attempts,
        )

    def _watch_rate_limit(self, response: requests.Response) -> None:
        remaining = response.headers.get("X-Rate-Limit-Remaining") or response.headers.get(
            "RateLimit-Remaining"
        )
        if remaining is not None and remaining.isdigit() and int(remaining) <= RATE_LIMIT_LOW_WATERMARK:
            self.logger.warning(
                "%s API rate limit nearly used up: %s requests left in this window",
                self.platform,
                remaining,
            )

    def _message(
        self,
        method: str,
        endpoint: str,
        response: requests.Response | None,
        detail: str,
        attempts: int,
        *,
        outcome_unknown: bool = False,
    ) -> str:
        if response is None:
            what = f"{self.platform} API {method} {endpoint} failed: {detail}"
        else:
            what = (
                f"{self.platform} API {method} {endpoint} failed with HTTP {response.status_code}"
                f" {response.reason or ''}".rstrip()
                + (f": {detail}" if detail else "")
            )
        if attempts > 1:
            what += f" (after {attempts} attempts)"
        if outcome_unknown:
            what += "; the server may or may not have applied it, so it was not retried blindly"
        hint = self.hints.get(response.status_code if response is not None else 0)
        if hint:
            what += f". {hint}"
        return self.redact(what)

    def _redirect_error(
        self, method: str, endpoint: str, url: str, response: requests.Response, attempts: int
    ) -> SegmentsApiError:
        target = self.redact(_redirect_target(url, response.headers.get("Location")))
        detail = (
            f"the server redirects to {target}; redirects are not followed, so nothing (no credential) "
            "was sent there and the request was not applied by the redirect target. If the API has "
            "moved, set the connection's host to its new base URL"
        )
        return SegmentsApiError(
            self._message(method, endpoint, response, detail, attempts),
            platform=self.platform,
            method=method,
            endpoint=endpoint,
            status=response.status_code,
            api_message=f"redirect to {target}",
        )

    def _error(
        self, method: str, endpoint: str, response: requests.Response, api_message: str, attempts: int
    ) -> SegmentsApiError:
        status = response.status_code
        cls: type[SegmentsApiError] = SegmentsApiError
        if status in (401, 403):
            cls = SegmentsAuthError
        elif status == 404:
            cls = SegmentsNotFoundError
        return cls(
            self._message(method, endpoint, response, api_message, attempts),
            platform=self.platform,
            method=method,
            endpoint=endpoint,
            status=status,
            api_message=api_message,
        )


def _redirect_target(url: str, location: str | None) -> str:
    """Name the host a redirect points at (never its path or query: they may carry a token), and
    whether it is the origin of ``url``."""
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
    return f"host {_cut(netloc, 100)!r} ({target.scheme or 'no scheme'}, {where})"
