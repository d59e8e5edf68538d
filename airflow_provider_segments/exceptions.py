"""The exception types a DAG author may catch.

They are plain Python exceptions (no Airflow import) so the pure helpers can raise them; the
operators turn :class:`SegmentsValidationError` (and :class:`SegmentsConfigError`,
:class:`SegmentExistsError`) into a fail-fast task failure, and leave every other error to the task's
retries (``operators/_base.py``, ``fail_fast_on_bad_input``).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_segments.redaction import redact_known


class SegmentsError(Exception):
    """Base class of every error raised by this provider.

    Its message never holds a secret this process knows (a connection's password or token, a
    fetched access token): redacted when the error is made, and again when it is shown (its
    ``args`` may be set later, and a secret may become known later).
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*(redact_known(arg) if isinstance(arg, str) else arg for arg in args))

    def __str__(self) -> str:
        return redact_known(super().__str__())


class SegmentsValidationError(SegmentsError, ValueError):
    """The input was refused before anything was sent to the API."""


class SegmentsInputMissingError(SegmentsError, FileNotFoundError):
    """The file or object of ids (``user_ids_path``) does not exist, yet: not a validation error.

    On a deployment of several machines the file may be written by another one, or object storage
    may not list a new object at once, so the task's retries apply (give the task ``retries`` and a
    ``retry_delay`` long enough for the file to arrive). Also a :class:`FileNotFoundError`.
    """


class SegmentsConfigError(SegmentsError):
    """A connection is set up wrongly (unknown region, missing field, ...)."""


class SegmentsApiError(SegmentsError):
    """The API answered with an error, or could not be reached, after the retries allowed.

    :param platform: "WalkMe" or "Zendesk".
    :param method: HTTP method of the failed call.
    :param endpoint: URL path of the failed call (never a query string or a credential).
    :param status: HTTP status, or ``None`` when no response came back.
    :param api_message: what the API said, already cut to a readable length.
    :param may_have_applied: whether the server may have applied the call, by any of its attempts
        (an earlier one's answer may have been lost before the last one was refused); ``None`` when
        not known (raised outside the HTTP client's retry loop).
    """

    def __init__(
        self,
        message: str,
        *,
        platform: str,
        method: str,
        endpoint: str,
        status: int | None = None,
        api_message: str | None = None,
        may_have_applied: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.platform = platform
        self.method = method
        self.endpoint = endpoint
        self.status = status
        self.api_message = api_message
        self.may_have_applied = may_have_applied


class SegmentsAuthError(SegmentsApiError):
    """401 or 403: the credentials are wrong, revoked or lack a scope. Not retried."""


class SegmentsNotFoundError(SegmentsApiError):
    """404: the system, segment or endpoint does not exist."""


class SegmentsConnectionError(SegmentsApiError):
    """No answer came back (connection refused, host name not resolved, TLS failure, connection
    broken), after the retries allowed. ``status`` is ``None``.

    A write whose connection broke after it was sent is a :class:`SegmentsUnknownOutcomeError`
    instead: the server may have applied it.
    """


class SegmentsTimeoutError(SegmentsConnectionError):
    """No whole answer came back in time (connect or read timeout, or the per-attempt deadline of
    the extra ``timeout``), after the retries allowed."""


class SegmentsUnknownOutcomeError(SegmentsApiError):
    """A non-idempotent call failed in a way that does not tell whether the server applied it.

    Raised instead of blindly retrying a create (which could duplicate it); the caller checks the
    server's state before trying again.
    """


class SegmentExistsError(SegmentsError):
    """A name the task would give, or gave, a segment is another segment's too: a create with
    ``if_exists="error"``, an update sending a name another custom segment has, a create or rename
    found twinned afterwards (then taken back where it can be). Not retried."""


class PartialUpdateError(SegmentsError):
    """A chunked change stopped part-way: some chunks were applied, some may have been, the rest
    were not.

    Every chunk is in exactly one of ``landed_chunks``, ``failed_chunks`` and ``unsent_chunks``;
    ``unknown_chunks`` is the part of ``failed_chunks`` that may have landed all the same.

    :param applied_chunks: chunks the API acknowledged.
    :param total_chunks: chunks the change needed.
    :param applied_ids: ids in the acknowledged chunks.
    :param total_ids: ids in the whole change.
    :param landed_chunks: the numbers (from 1) of the acknowledged chunks; with parallel writes
        they need not be the first ones.
    :param failed_chunks: the numbers of the chunks that were sent and failed: those the server
        refused (not applied) and those of unknown outcome.
    :param unsent_chunks: the numbers of the chunks never sent.
    :param unknown_chunks: the numbers of the failed chunks whose outcome is unknown: no answer
        came back (a lost answer, a timeout, a broken connection; also an attempt before the one
        that was refused), so the server may have applied them.
    """

    def __init__(
        self,
        message: str,
        *,
        applied_chunks: int,
        total_chunks: int,
        applied_ids: int,
        total_ids: int,
        landed_chunks: list[int] | None = None,
        failed_chunks: list[int] | None = None,
        unsent_chunks: list[int] | None = None,
        unknown_chunks: list[int] | None = None,
    ) -> None:
        super().__init__(message)
        self.applied_chunks = applied_chunks
        self.total_chunks = total_chunks
        self.applied_ids = applied_ids
        self.total_ids = total_ids
        self.landed_chunks = (
            landed_chunks if landed_chunks is not None else list(range(1, applied_chunks + 1))
        )
        self.failed_chunks = failed_chunks or []
        self.unsent_chunks = unsent_chunks or []
        self.unknown_chunks = unknown_chunks or []


class MembershipMismatchError(SegmentsError):
    """After a change, the platform lists another member count than the change was to leave.

    Retried like a network error: the next try (or run) syncs the whole membership again.

    :param listed_count: the member count the platform lists.
    :param expected_count: the count the change was to leave (``None`` where only a bound applied).
    """

    def __init__(self, message: str, *, listed_count: int | None, expected_count: int | None) -> None:
        super().__init__(message)
        self.listed_count = listed_count
        self.expected_count = expected_count


class SegmentsBusyError(SegmentsError):
    """Another sync of the same ``state_path`` is running (it holds the lease): nothing was sent; or
    this sync lost or could not check its lease after sending: what it sent stands, but its result
    was not recorded (the next run syncs in full)."""
