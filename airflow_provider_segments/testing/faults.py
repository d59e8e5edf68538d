"""Injected faults: what the test server answers instead of the API (a status, a delay, a dropped
connection), for a request that matches a path prefix and a method, a given number of times."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from http import HTTPStatus
from typing import Any

from airflow_provider_segments.testing.base import Response, json_response

__all__ = ["Fault"]


@dataclass
class Fault:
    """One injected fault: how the next ``count`` requests matching it misbehave."""

    path_prefix: str
    status: int | None = None
    count: int = 1
    retry_after: str | None = None
    body: str | None = None
    delay: float = 0.0
    drop_connection: bool = False
    method: str | None = None
    lose_response: bool = False
    truncate_body: bool = False
    skip: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.path_prefix, str) or not self.path_prefix.startswith("/"):
            raise ValueError(f"path_prefix must be a path starting with '/', got {self.path_prefix!r}")
        if self.status is not None and (
            isinstance(self.status, bool) or not isinstance(self.status, int) or not 100 <= self.status <= 599
        ):
            raise ValueError(f"status must be an HTTP status code between 100 and 599, got {self.status!r}")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"count must be a positive integer, got {self.count!r}")
        if isinstance(self.retry_after, int | float) and not isinstance(self.retry_after, bool):
            self.retry_after = str(self.retry_after)
        if self.retry_after is not None and not isinstance(self.retry_after, str):
            raise ValueError(f"retry_after must be a string (seconds or HTTP date), got {self.retry_after!r}")
        if self.body is not None and not isinstance(self.body, str):
            raise ValueError("body must be a string")
        if isinstance(self.delay, bool) or not isinstance(self.delay, int | float) or self.delay < 0:
            raise ValueError(f"delay must be a number of seconds >= 0, got {self.delay!r}")
        if not isinstance(self.drop_connection, bool):
            raise ValueError(f"drop_connection must be true or false, got {self.drop_connection!r}")
        if self.method is not None:
            if not isinstance(self.method, str) or not self.method.strip():
                raise ValueError(f"method must be an HTTP method name, got {self.method!r}")
            self.method = self.method.strip().upper()
        if isinstance(self.skip, bool) or not isinstance(self.skip, int) or self.skip < 0:
            raise ValueError(f"skip must be a whole number >= 0, got {self.skip!r}")
        for flag in ("lose_response", "truncate_body"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        if not (
            self.status is not None
            or self.delay
            or self.drop_connection
            or self.lose_response
            or self.truncate_body
        ):
            raise ValueError(
                "a fault needs a status, a delay > 0, drop_connection, lose_response or truncate_body"
            )

    @classmethod
    def from_json(cls, payload: Any) -> Fault:
        """Build a fault from the JSON object posted to ``/_sandbox/faults``; raise ValueError if bad."""
        if not isinstance(payload, dict):
            raise ValueError("the fault must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(
                f"unknown fault field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        if "path_prefix" not in payload:
            raise ValueError("path_prefix is required")
        return cls(**payload)

    def matches(self, method: str, path: str) -> bool:
        """Tell whether a request with this method and path triggers the fault."""
        return path.startswith(self.path_prefix) and (self.method is None or self.method == method)

    def to_json(self) -> dict[str, Any]:
        """Describe the fault (with its remaining ``count``) as a JSON-ready dict."""
        return asdict(self)

    def response(self) -> Response:
        """The response sent instead of the real one when the fault has a status."""
        if self.status is None:
            raise ValueError("this fault has no status to answer with")
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        if self.body is not None:
            content_type = "application/json" if _looks_like_json(self.body) else "text/plain"
            headers["Content-Type"] = f"{content_type}; charset=utf-8"
            return Response(self.status, self.body.encode("utf-8"), headers)
        try:
            message = HTTPStatus(self.status).phrase
        except ValueError:
            message = "Injected fault"
        return json_response(self.status, {"message": message}, headers)


def _looks_like_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
