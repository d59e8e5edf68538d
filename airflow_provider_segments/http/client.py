"""The one HTTP client every API call of every hook goes through: :class:`ApiClient`.

It owns the session (credentials from the connection only, proxies never for loopback), sends each
attempt within its deadline, and runs the retry loop; what counts as retryable is decided in
``retry``, what a failure says in ``messages``, what may be shown in ``redaction``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_segments.exceptions import SegmentsApiError, SegmentsUnknownOutcomeError
from airflow_provider_segments.http.deadline import (
    AttemptDeadlineExceeded,
    Timeouts,
    send_within_deadline,
)
from airflow_provider_segments.http.messages import (
    BODY_SNIPPET_CHARS,
    call_message,
    describe_exception,
    error_for_exception,
    error_for_status,
    extract_api_message,
    redirect_detail,
)
from airflow_provider_segments.http.retry import (
    IDEMPOTENT_METHODS,
    Failure,
    RetryPolicy,
    may_have_been_processed,
    never_sent,
    parse_retry_after,
    retryable_status,
)
from airflow_provider_segments.http.session import encode_json, new_session, tls_verify
from airflow_provider_segments.http.settings import check_plain_http, number_extra, verify_setting
from airflow_provider_segments.http.urls import describe_target, same_origin
from airflow_provider_segments.redaction import Redactor

if TYPE_CHECKING:
    import requests

#: A rate-limit header at or below this many requests left is logged as a warning.
RATE_LIMIT_LOW_WATERMARK = 10

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Call:
    """One call as the retry loop repeats it."""

    method: str
    url: str
    endpoint: str
    idempotent: bool
    send: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.method} {self.endpoint}"


@dataclass
class ApiClient:
    """A small HTTP client for one platform's API, shared by every call a hook makes.

    :param platform: name used in messages ("WalkMe", "Zendesk").
    :param base_url: scheme, host and optional port (and path prefix) the paths are joined to.
    :param retry: the retry policy.
    :param timeouts: connect and read timeouts; the read timeout also sets the deadline of one
        attempt's whole answer (see :class:`Timeouts`).
    :param verify: TLS verification: ``True``, ``False`` or the path of a CA bundle.
    :param hints: extra sentence appended to errors of a given status (e.g. which connection to fix).
    :param logger: where retries and warnings go (a hook passes its ``self.log``).
    """

    platform: str
    base_url: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    verify: bool | str = True
    hints: Mapping[int, str] = field(default_factory=dict)
    logger: Any = None
    sleep: Callable[[float], None] = time.sleep
    redactor: Redactor = field(default_factory=Redactor, repr=False)
    _session: requests.Session | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _congestion: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        if self.logger is None:
            self.logger = log

    @property
    def congestion_signals(self) -> int:
        """Failed attempts so far that said "slow down" or were retried: a 429 or 5xx answer, no
        answer at all. Counted from every thread; the chunk sender halves its concurrency on each."""
        return self._congestion

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
        :class:`RetryPolicy`), ``timeout`` (the read timeout, which also sets the deadline of one
        attempt's whole answer), ``connect_timeout``, ``verify`` (``true``/``false`` or a CA bundle
        path) and ``allow_insecure_http``. Numbers must be finite and within ``EXTRA_RANGES``. Plain
        ``http://`` is refused unless the host is this machine (localhost, 127.0.0.0/8, ::1) or
        ``allow_insecure_http`` is true, which logs a warning.
        """
        default = Timeouts()
        timeouts = Timeouts(
            connect=number_extra(extra, "connect_timeout", conn_id) or default.connect,
            read=number_extra(extra, "timeout", conn_id) or default.read,
        )
        verify = verify_setting(extra.get("verify", True), conn_id)
        client = cls(
            platform=platform,
            base_url=base_url,
            retry=RetryPolicy.from_extra(extra, conn_id=conn_id),
            timeouts=timeouts,
            verify=verify,
            hints=dict(hints or {}),
            logger=logger,
        )
        check_plain_http(client.base_url, extra, conn_id, client.logger)
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
        return self.redactor.preview(value, BODY_SNIPPET_CHARS)

    # -- transport -----------------------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        """The keep-alive session (created on first use, never at import or construction); one for
        every thread (a ``requests.Session`` with its connection pool may be shared by threads)."""
        if self._session is not None:
            return self._session
        with self._lock:
            if self._session is not None:
                return self._session
            session = new_session(self.base_url)
            self._session = session
            return session

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
                f"{describe_target(self.base_url, path)}: only the origin of {self.base_url}, with no "
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
        :raises SegmentsTimeoutError: when no whole answer came in time, once the budget is spent.
        :raises SegmentsConnectionError: when no answer came back, once the budget is spent.
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

    def request_json_and_headers(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[Any, Mapping[str, str]]:
        """Like :meth:`request_json`, with the answer's headers (where a listing may say it is paged)."""
        response, body = self._perform(method, path, parse_json=True, **kwargs)
        return body, response.headers

    # -- the retry loop ----------------------------------------------------------------------------
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
        self._remember_credentials(auth, headers)
        method = method.upper()
        url = self.url(path)
        send: dict[str, Any] = {
            "params": params,
            "data": data,
            "headers": dict(headers or {}),
            "auth": auth,
        }
        if json_body is not None:  # encoded once, not once per attempt, and faster than requests does
            send["data"] = encode_json(json_body)
            send["headers"].setdefault("Content-Type", "application/json")
        call = _Call(
            method,
            url,
            urlsplit(url).path,
            method in IDEMPOTENT_METHODS if idempotent is None else idempotent,
            send,
        )
        waited = 0.0
        may_have_applied = False  # by any attempt: the last one's refusal does not undo an earlier one
        for attempt in itertools.count(1):
            outcome = self._attempt(call, parse_json)
            if not isinstance(outcome, Failure):
                return outcome
            may_have_applied = may_have_applied or outcome.may_have_applied
            if outcome.retryable:
                with self._lock:
                    self._congestion += 1
            if outcome.outcome_unknown(call.idempotent):
                raise self._error(call, outcome, attempt, may_have_applied, unknown=True)
            delay = self.retry.delay(attempt, outcome.retry_after)
            if not (
                outcome.retryable
                and self.retry.attempts_left(attempt)
                and self.retry.wait_fits(waited, delay)
            ):
                raise self._error(call, outcome, attempt, may_have_applied)
            self._log_retry(call, outcome, attempt, delay)
            self.sleep(delay)
            waited += delay
        raise AssertionError("unreachable")  # pragma: no cover

    def _remember_credentials(self, auth: tuple[str, str] | None, headers: Mapping[str, str] | None) -> None:
        if auth is not None:
            self.add_credentials(*auth)
        for name, value in (headers or {}).items():
            if name.lower() == "authorization":  # e.g. a bearer token the hook built: never echo it
                self.add_secret(str(value).partition(" ")[2].strip())

    def _attempt(self, call: _Call, parse_json: bool) -> tuple[requests.Response, Any] | Failure:
        """Send the call once; its answer, or why it failed."""
        import requests

        started = time.monotonic()
        try:
            response = send_within_deadline(lambda: self._send(call), self.timeouts)
        except (requests.RequestException, AttemptDeadlineExceeded) as exc:
            reason = describe_exception(exc)
            return Failure(reason, reason, processed=not never_sent(exc), error=error_for_exception(exc))
        self.logger.debug(
            "%s API %s -> %s in %.2f s",
            self.platform,
            call.name,
            response.status_code,
            time.monotonic() - started,
        )
        outcome = self._read(call, response, parse_json)
        if isinstance(outcome, Failure):
            response.close()
        return outcome

    def _send(self, call: _Call) -> requests.Response:
        # Redirects are never followed: the credentials go to the validated host and nowhere else.
        return self.session.request(
            call.method,
            call.url,
            timeout=self.timeouts.for_requests(),
            verify=tls_verify(self.base_url, self.verify),
            allow_redirects=False,
            **call.send,
        )

    def _read(
        self, call: _Call, response: requests.Response, parse_json: bool
    ) -> tuple[requests.Response, Any] | Failure:
        """The answer of one attempt, or why it counts as a failure."""
        status = response.status_code
        if 300 <= status < 400:
            # Not followed and not retried: the target got nothing, so a write was not applied there.
            target = self.redact(describe_target(call.url, response.headers.get("Location")))
            return Failure(
                redirect_detail(target), "redirect", response, f"redirect to {target}", retryable=False
            )
        if status >= 400:
            api_message = extract_api_message(response, redact=self.redactor)
            return Failure(
                api_message,
                f"HTTP {status}",
                response,
                api_message,
                retryable=retryable_status(status),
                processed=may_have_been_processed(status),
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                error=error_for_status(status),
            )
        self._watch_rate_limit(response)
        if not parse_json or not response.content:
            return response, None
        try:
            return response, response.json()
        except ValueError:
            snippet = self.redactor.shorten(response.text, BODY_SNIPPET_CHARS)
            detail = f"answered with a body that is not valid JSON: {snippet!r}"
            return Failure(detail, "body is not valid JSON", response)

    # -- what a call says ------------------------------------------------------------------------
    def _log_retry(self, call: _Call, failure: Failure, attempt: int, delay: float) -> None:
        self.logger.warning(
            "%s API %s: %s; retrying in %.1f s%s (attempt %d of %d)",
            self.platform,
            call.name,
            failure.reason,
            delay,
            " (Retry-After)" if failure.retry_after is not None else "",
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

    def _error(
        self, call: _Call, failure: Failure, attempts: int, may_have_applied: bool, *, unknown: bool = False
    ) -> SegmentsApiError:
        message = call_message(
            f"{self.platform} API {call.name}",
            failure.response,
            failure.detail,
            attempts,
            outcome_unknown=unknown,
            hint=self.hints.get(failure.status or 0),
        )
        kind = SegmentsUnknownOutcomeError if unknown else failure.error
        return kind(
            self.redact(message),
            platform=self.platform,
            method=call.method,
            endpoint=call.endpoint,
            status=failure.status,
            api_message=failure.api_message,
            may_have_applied=may_have_applied,
        )
