"""What the HTTP core says when a call fails: the API's own reason read from its error body, the
transport failure in words, the exception type a DAG author catches, and the one-line message.

Every text built from an answer goes through :meth:`Redactor.shorten` (redacted, then cut).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_segments.exceptions import (
    SegmentsApiError,
    SegmentsAuthError,
    SegmentsConnectionError,
    SegmentsNotFoundError,
    SegmentsTimeoutError,
)
from airflow_provider_segments.http.deadline import AttemptDeadlineExceeded
from airflow_provider_segments.http.retry import name_not_resolved, never_sent
from airflow_provider_segments.redaction import Redactor

if TYPE_CHECKING:
    import requests

#: How much of what an API said an error quotes.
API_MESSAGE_CHARS = 500
#: How much of a 2xx body an error quotes (one that is not JSON, or of an unexpected shape).
BODY_SNIPPET_CHARS = 120


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
    # each part on its own first: a bare credential value ends with its part, not the message
    message = " - ".join(map(redact, parts)) or json.dumps(body)
    return redact.shorten(message, API_MESSAGE_CHARS)


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


def describe_exception(exc: BaseException) -> str:
    """A transport failure in words: what happened, never the operating system's wording."""
    import requests

    if isinstance(exc, AttemptDeadlineExceeded):
        timeouts = exc.timeouts
        return (
            f"the server did not send its whole answer within the {timeouts.read:g} s timeout "
            f"(extra 'timeout') plus {timeouts.attempt_deadline - timeouts.read:.1f} s: the deadline "
            "of one attempt"
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connecting timed out"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "the server did not answer within the read timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS verification failed"
    if name_not_resolved(exc):
        return "the host name could not be resolved"
    if never_sent(exc):
        return "connection refused or host unreachable"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "the connection broke before a full response arrived"
    return type(exc).__name__


def error_for_exception(exc: BaseException) -> type[SegmentsApiError]:
    """The type raised when no answer came back: a timeout, or another connection failure."""
    import requests

    if isinstance(exc, AttemptDeadlineExceeded | requests.exceptions.Timeout):
        return SegmentsTimeoutError
    return SegmentsConnectionError


def error_for_status(status: int) -> type[SegmentsApiError]:
    """The type raised for an error status: 401/403 auth, 404 not found, else the base type."""
    if status in (401, 403):
        return SegmentsAuthError
    if status == 404:
        return SegmentsNotFoundError
    return SegmentsApiError


def redirect_detail(target: str) -> str:
    """Why a 3xx is an error, naming where it points (see ``urls.describe_target``)."""
    return (
        f"the server redirects to {target}; redirects are not followed, so nothing (no credential) "
        "was sent there and the request was not applied by the redirect target. If the API has "
        "moved, set the connection's host to its new base URL"
    )


def call_message(
    call: str,
    response: requests.Response | None,
    detail: str,
    attempts: int,
    *,
    outcome_unknown: bool = False,
    hint: str | None = None,
) -> str:
    """One line for a failed call (``call`` is "WalkMe API POST /path"): the status or the failure,
    what the API said, the attempts made, whether a write may have been applied, what to fix."""
    if response is None:
        what = f"{call} failed: {detail}"
    else:
        what = f"{call} failed with HTTP {response.status_code} {response.reason or ''}".rstrip() + (
            f": {detail}" if detail else ""
        )
    if attempts > 1:
        what += f" (after {attempts} attempts)"
    if outcome_unknown:
        what += "; the server may or may not have applied it, so it was not retried blindly"
    if hint:
        what += f". {hint}"
    return what
