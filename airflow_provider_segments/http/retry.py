"""When a failed attempt is tried again, in the spirit of urllib3's ``Retry``: a budget of attempts
and waiting, backoff with jitter, ``Retry-After`` within the budget, and named predicates for the
questions every failure raises.

- :func:`never_sent`: the request cannot have reached the server (connection refused, name not
  resolved, connect timeout), so even a create may be sent again;
- :func:`may_have_been_processed`: a status that does not rule out a server-side write;
- :func:`retryable_status`: a status that means "try again later";
- :meth:`RetryPolicy.wait_fits`: a ``Retry-After`` (or backoff) beyond what is left of the budget
  ends the call instead of sleeping.
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_segments.exceptions import SegmentsApiError
from airflow_provider_segments.http.settings import number_extra

if TYPE_CHECKING:
    import requests

#: Statuses that mean "try again later". For non-idempotent calls only 429 and 503 are retried:
#: they say the request was not processed, whereas a 500/502/504 may follow a server-side write.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
NOT_PROCESSED_STATUSES = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


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

        Each value must be finite and within ``EXTRA_RANGES``, else :class:`SegmentsConfigError`.
        """
        values: dict[str, Any] = {}
        for key in cls.EXTRA_KEYS:
            number = number_extra(extra, key, conn_id)
            if number is not None:
                values[key] = int(number) if key == "max_attempts" else number
        return cls(**values)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), with jitter."""
        step = min(self.backoff_max, self.backoff_initial * (2 ** (attempt - 1)))
        return step * random.uniform(0.5, 1.0)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before the next attempt: what the server asked, else the backoff."""
        return retry_after if retry_after is not None else self.backoff(attempt)

    def attempts_left(self, attempt: int) -> bool:
        """True when attempt number ``attempt`` (1-based) may be followed by another."""
        return attempt < self.max_attempts

    def wait_fits(self, waited: float, delay: float) -> bool:
        """True when waiting ``delay`` more seconds stays within :attr:`max_total_wait`."""
        return waited + delay <= self.max_total_wait


@dataclass(frozen=True)
class Failure:
    """Why one attempt failed, as the retry loop sees it.

    :param detail: what the error message says about it.
    :param reason: what the retry log line says about it.
    :param response: the answer, if one came back.
    :param api_message: what the API said, redacted and cut.
    :param retryable: whether another attempt may help at all.
    :param processed: whether the server may have applied the request.
    :param retry_after: seconds the server asked to wait.
    :param error: the exception type raised when no attempt is left.
    """

    detail: str
    reason: str
    response: requests.Response | None = None
    api_message: str | None = None
    retryable: bool = True
    processed: bool = True
    retry_after: float | None = None
    error: type[SegmentsApiError] = SegmentsApiError

    @property
    def status(self) -> int | None:
        return self.response.status_code if self.response is not None else None

    @property
    def may_have_applied(self) -> bool:
        """True when the server may have applied this attempt: no answer (unless never sent), a
        500/502/504, or a success whose body was unreadable. A refusal (3xx, 4xx, 429, 503) was not."""
        return self.retryable and self.processed

    def outcome_unknown(self, idempotent: bool) -> bool:
        """True when retrying could apply a write twice and failing cannot tell whether it was applied."""
        return self.may_have_applied and not idempotent


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


def retryable_status(status: int) -> bool:
    """True for 429, 500, 502, 503 and 504: statuses that mean "try again later"."""
    return status in RETRYABLE_STATUSES


def may_have_been_processed(status: int) -> bool:
    """False only for statuses that say the request was not processed (429, 503)."""
    return status not in NOT_PROCESSED_STATUSES


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
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


def never_sent(exc: BaseException) -> bool:
    """True when the request cannot have reached the server: connection refused, the host name not
    resolved, connecting timed out. Decided by exception type, as urllib3's own Retry does, not by
    the wording of the operating system's message."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    # NameResolutionError is a NewConnectionError, which is a ConnectTimeoutError.
    return any(isinstance(item, ConnectTimeoutError | NewConnectionError) for item in exception_chain(exc))


def name_not_resolved(exc: BaseException) -> bool:
    """True when the host name could not be resolved (urllib3 2.x's ``NameResolutionError``)."""
    from urllib3 import exceptions

    kind = getattr(exceptions, "NameResolutionError", None)
    return kind is not None and any(isinstance(item, kind) for item in exception_chain(exc))
