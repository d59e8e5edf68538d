"""What a test server app sees: the request it gets, the response it returns, and small helpers.

An *app* is any object with ``handle(request) -> Response | None``: it returns ``None`` for paths it
does not own, so the server can offer the request to the next app. Apps may raise :class:`HttpError`
instead of building an error response by hand. Nothing here knows about WalkMe or Zendesk, so a
second API plugs in as another app without touching the server.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass
class Request:
    """One HTTP request as an app sees it: fully read, with case-insensitive header lookup."""

    method: str
    """Upper-case HTTP method, e.g. ``"POST"``."""
    path: str
    """The path without the query string, not percent-decoded, e.g. ``"/accounts/connect/token"``."""
    query: dict[str, list[str]] = field(default_factory=dict)
    """Query parameters; every name maps to the list of its values (blank values kept)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Headers with lower-case names (a repeated header keeps its last value)."""
    body: bytes = b""
    """The raw request body."""
    log: dict[str, Any] = field(default_factory=dict)
    """Extra fields an app wants in this request's entry of the test server request log."""

    def header(self, name: str, default: str | None = None) -> str | None:
        """Return the value of header ``name`` (any case), or ``default``."""
        return self.headers.get(name.lower(), default)

    def param(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of query parameter ``name``, or ``default``."""
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def content_type(self) -> str:
        """The media type of the body, lower-case and without parameters (``""`` when absent)."""
        value = self.header("content-type") or ""
        return value.split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        """Parse the body as UTF-8 JSON; raise :class:`ValueError` when it is empty or malformed."""
        if not self.body:
            raise ValueError("the request body is empty")
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        """Parse an ``application/x-www-form-urlencoded`` body (first value of each field)."""
        text = self.body.decode("utf-8", errors="replace")
        return {name: values[0] for name, values in parse_qs(text, keep_blank_values=True).items()}

    def basic_auth(self) -> tuple[str, str] | None:
        """Return ``(user, password)`` from an ``Authorization: Basic`` header, or ``None``."""
        scheme, _, credentials = (self.header("authorization") or "").partition(" ")
        if scheme.lower() != "basic" or not credentials.strip():
            return None
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, colon, password = decoded.partition(":")
        return (user, password) if colon else None

    def bearer_token(self) -> str | None:
        """Return the token from an ``Authorization: Bearer`` header, or ``None``."""
        scheme, _, token = (self.header("authorization") or "").partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token else None


@dataclass
class Response:
    """What an app answers: status, headers and the raw body (the server adds Content-Length)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """Raise from an app to answer with ``status`` and a JSON ``body`` instead of returning a response."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}: {body!r}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def response(self) -> Response:
        """Render this error as a JSON response."""
        return json_response(self.status, self.body, self.headers)


@runtime_checkable
class App(Protocol):
    """A fake API plugged into the test server server."""

    def handle(self, request: Request) -> Response | None:
        """Answer ``request``, or return ``None`` when the path is not this app's."""


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    """Build a response whose body is ``payload`` serialised as compact JSON."""
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return Response(status, body, {"Content-Type": JSON_CONTENT_TYPE, **(headers or {})})


def empty_response(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    """Build a response without a body (``204 No Content`` by default)."""
    return Response(status, b"", dict(headers or {}))


def method_not_allowed(allowed: tuple[str, ...] | list[str]) -> Response:
    """Build a ``405`` JSON response with the ``Allow`` header listing ``allowed`` methods."""
    return json_response(405, {"message": "Method not allowed"}, {"Allow": ", ".join(allowed)})


def json_object_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body; 415 for another content type, 400 for bad JSON or a non-object."""
    if request.content_type != "application/json":
        raise HttpError(415, {"message": "Content-Type must be application/json"})
    try:
        payload = request.json()
    except ValueError as exc:
        raise HttpError(400, {"message": f"Malformed JSON body: {exc}"}) from None
    if not isinstance(payload, dict):
        raise HttpError(400, {"message": "The request body must be a JSON object"})
    return payload


def truncate(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters (``...`` marks the cut), for error messages."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def show(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages."""
    return truncate(repr(value), limit)


def same_secret(given: str, expected: str) -> bool:
    """Compare a credential in constant time."""
    return secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
