"""The one HTTP core: every API call of every hook goes through :class:`ApiClient`.

It owns what must behave the same for every platform; the hooks own the platform knowledge (URLs,
payloads, auth) and hand it the hints that make errors actionable. One concern per module:

- ``client``: :class:`ApiClient`, the session and the retry loop;
- ``retry``: :class:`RetryPolicy`, ``Retry-After``, and the named predicates that decide a retry;
- ``deadline``: :class:`Timeouts` and the deadline of one attempt's whole answer;
- ``messages``: what an error body says, and the message and exception type of a failed call;
- ``settings``: what a connection's ``extra`` says about the transport;
- ``urls``: origins (:func:`same_origin`) and what counts as this machine.

Importing it imports neither ``requests`` nor ``urllib3``: DAG files import the operators at every
parse, and those are most of what importing them would otherwise cost.
"""

from __future__ import annotations

from airflow_provider_segments.http.client import ApiClient
from airflow_provider_segments.http.deadline import AttemptDeadlineExceeded, Timeouts
from airflow_provider_segments.http.messages import API_MESSAGE_CHARS, BODY_SNIPPET_CHARS, extract_api_message
from airflow_provider_segments.http.retry import RetryPolicy, never_sent, parse_retry_after
from airflow_provider_segments.http.session import USER_AGENT
from airflow_provider_segments.http.settings import EXTRA_RANGES
from airflow_provider_segments.http.urls import is_loopback, origin, same_origin
from airflow_provider_segments.redaction import Redactor, without_userinfo

__all__ = [
    "API_MESSAGE_CHARS",
    "BODY_SNIPPET_CHARS",
    "EXTRA_RANGES",
    "USER_AGENT",
    "ApiClient",
    "AttemptDeadlineExceeded",
    "Redactor",
    "RetryPolicy",
    "Timeouts",
    "extract_api_message",
    "is_loopback",
    "never_sent",
    "origin",
    "parse_retry_after",
    "same_origin",
    "without_userinfo",
]
