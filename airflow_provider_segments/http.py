"""The one HTTP core: every API call of every hook goes through :class:`ApiClient`.

It owns what must behave the same for every platform: the session, timeouts, TLS verification,
retries with exponential backoff that honour ``Retry-After``, a bounded retry budget, mapping error
bodies to readable exceptions, and keeping secrets out of every message it builds. The hooks own
the platform knowledge (URLs, payloads, auth) and hand it the hints that make errors actionable.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

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
RATE_LIMIT_LOW_WATERMARK = 10

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
        """Build a policy from a connection's ``extra`` (keys as the parameters); defaults otherwise."""
        values: dict[str, Any] = {}
        for key in cls.EXTRA_KEYS:
            if extra.get(key) in (None, ""):
                continue
            try:
                number = float(extra[key])
            except (TypeError, ValueError):
                raise SegmentsConfigError(
                    f"Connection {conn_id!r}: extra field {key!r} must be a number, got {extra[key]!r}."
                ) from None
            if number < 0 or (key == "max_attempts" and number < 1):
                raise SegmentsConfigError(
                    f"Connection {conn_id!r}: extra field {key!r} is out of range: {extra[key]!r}."
                )
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
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (moment - now).total_seconds())


def extract_api_message(response: requests.Response) -> str:
    """Say in one line what an error body says, whatever shape the platform gives it.

    Understands ``{"message": ...}``, OAuth's ``{"error", "error_description"}``, Zendesk's
    ``{"error", "description"}`` and ``{"errors": {field: [messages]}}``; falls back to the text.
    """
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:API_MESSAGE_CHARS]
    parts: list[str] = []
    if isinstance(body, dict):
        for key in ("error", "message", "error_description", "description", "detail", "title"):
            value = body.get(key)
            if isinstance(value, str) and value and value not in parts:
                parts.append(value)
            elif isinstance(value, dict):
                parts.append(extract_nested(value))
        errors = body.get("errors")
        if isinstance(errors, dict):
            for name, messages in errors.items():
                text = "; ".join(map(str, messages)) if isinstance(messages, list) else str(messages)
                parts.append(f"{name}: {text}")
        elif isinstance(errors, list):
            parts.extend(str(item) for item in errors)
    message = " - ".join(part for part in parts if part) or json.dumps(body)
    return message[:API_MESSAGE_CHARS]


def extract_nested(value: dict[str, Any]) -> str:
    """Flatten a nested error object (``{"title": ..., "message": ...}``) into one line."""
    return " - ".join(str(v) for k, v in value.items() if k in ("title", "message", "description") and v)


def _positive_number(extra: Mapping[str, Any], key: str, default: float, conn_id: str) -> float:
    value = extra.get(key)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if number <= 0:
        raise SegmentsConfigError(
            f"Connection {conn_id!r}: extra field {key!r} must be a positive number of seconds, "
            f"got {value!r}."
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


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached the server (refused, DNS, connect timeout)."""
    requests = _requests()
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = repr(exc)
        return any(
            marker in text
            for marker in ("NewConnectionError", "Connection refused", "Name or service not known")
        )
    return False


def _describe(exc: requests.RequestException) -> str:
    requests = _requests()
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connecting timed out"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "the server did not answer within the read timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS verification failed"
    if _never_sent(exc):
        return "connection refused or host unreachable"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "the connection broke before a full response arrived"
    return type(exc).__name__


@dataclass
class ApiClient:
    """A small HTTP client for one platform's API, shared by every call a hook makes.

    :param platform: name used in messages ("WalkMe", "Zendesk").
    :param base_url: scheme, host and optional port (and path prefix) the paths are joined to.
    :param retry: the retry policy.
    :param timeout: (connect, read) seconds.
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
    _secrets: set[str] = field(default_factory=set, repr=False)
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
        :class:`RetryPolicy`), ``timeout`` (read seconds), ``connect_timeout`` and ``verify``
        (``true``/``false`` or a CA bundle path).
        """
        timeout = (
            _positive_number(extra, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, conn_id),
            _positive_number(extra, "timeout", DEFAULT_READ_TIMEOUT, conn_id),
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
        if verify is False:
            client.logger.warning(
                "Connection %r turns TLS certificate verification off (extra.verify=false): "
                "use it only for a local test server.",
                conn_id,
            )
        return client

    # -- secrets -------------------------------------------------------------------------------
    def add_secret(self, value: str | None) -> None:
        """Remember a secret so that no message this client builds can contain it."""
        if value and len(value) >= 4:
            self._secrets.add(value)

    def redact(self, text: str) -> str:
        """Replace every known secret in ``text`` with ``***``."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    # -- transport -----------------------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        """The keep-alive session (created on first use, never at import or construction)."""
        if self._session is None:
            self._session = _requests().Session()
            self._session.headers["User-Agent"] = USER_AGENT
        return self._session

    def close(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def url(self, path: str) -> str:
        """Join ``path`` to the base URL (an absolute URL is returned as it is)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one call, retrying what is safe to retry, and return the successful response.

        :param params: query parameters. :param json_body: JSON body. :param data: form body.
        :param headers: extra headers. :param auth: HTTP Basic ``(user, password)``.
        :param idempotent: whether repeating the call is harmless; by default true for GET, PUT,
            DELETE. A non-idempotent call is retried only when the server cannot have applied it
            (connection refused, 429, 503); otherwise :class:`SegmentsUnknownOutcomeError` is raised.
        :raises SegmentsAuthError: on 401/403 (never retried).
        :raises SegmentsNotFoundError: on 404.
        :raises SegmentsApiError: on any other failure once the retry budget is spent.
        """
        return self._perform(method, path, parse_json=False, **kwargs)[0]

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Like :meth:`request`, and return the decoded JSON body (``None`` for an empty body).

        A body that is not valid JSON (truncated, an HTML page from a proxy) is retried like a
        transient error when the call is idempotent; otherwise, or once the budget is spent, it is
        an error naming the call.
        """
        return self._perform(method, path, parse_json=True, **kwargs)[1]

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
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=data,
                    headers=dict(headers or {}),
                    auth=auth,
                    timeout=self.timeout,
                    verify=self.verify,
                )
            except _requests().RequestException as exc:
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
            if status < 400:
                self._watch_rate_limit(response)
                if not parse_json or not response.content:
                    return response, None
                try:
                    return response, response.json()
                except ValueError:
                    snippet = self.redact(" ".join(response.text.split())[:120])
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
            api_message = self.redact(extract_api_message(response))
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
