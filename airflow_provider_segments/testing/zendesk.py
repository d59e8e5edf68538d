"""A fake Zendesk Help Center User Segments API that behaves like the documented one, for tests and the demo.

Endpoints, as in Zendesk's "User Segments" document (all under ``/api/v2/help_center/``; the ``.json``
suffix is optional, as on the real API):

- ``GET user_segments.json``, ``GET user_segments/applicable.json`` and
  ``GET users/{user_id}/user_segments.json``: ``{"user_segments": [...]}``, paginated, with the
  optional ``built_in=true|false`` filter.
- ``GET user_segments/{id}.json``: ``{"user_segment": {...}}``.
- ``POST user_segments.json`` with ``{"user_segment": {...}}``: 201 ``{"user_segment": {...}}``.
- ``PUT user_segments/{id}.json`` with ``{"user_segment": {...}}``: 200 ``{"user_segment": {...}}``;
  only the fields present change (an empty list clears a field).
- ``DELETE user_segments/{id}.json``: 204.
- ``GET user_segments/{id}/sections.json`` and ``.../topics.json``: ``{"sections": [...]}`` and
  ``{"topics": [...]}``, paginated.

A segment is ``{"id", "name", "user_type", "group_ids", "organization_ids", "tags", "or_tags",
"added_user_ids", "created_at", "updated_at", "built_in"}``; timestamps are ISO-8601 UTC with a ``Z``
and whole seconds, like the document's. Two built-in segments exist from the start (and after
:meth:`ZendeskApp.reset`): id 1 "Signed-in users" (``signed_in_users``) and id 2 "Agents and
managers" (``staff``); custom segments get ids from :data:`FIRST_CUSTOM_SEGMENT_ID` upwards.

Authentication, three styles (every other ``Authorization`` gets 401
``{"error": "Couldn't authenticate you"}``): ``Bearer <oauth_token>``, HTTP Basic
``{email}/token:{api_token}`` and HTTP Basic ``{email}:{password}``. The request log entry of each
call says which one was used (``"auth": "oauth_token" | "api_token" | "password"``); writes also log
``"action"`` (``"create"``, ``"update"``, ``"delete"``) and ``"ids"`` (how many ``added_user_ids``
the body carried), lists log ``"pagination"`` (the style answered).

Pagination: :mod:`~airflow_provider_segments.testing.zendesk_pages`. Bodies and their validation:
:mod:`~airflow_provider_segments.testing.zendesk_payloads`.

Every answer on these paths carries ``X-Rate-Limit`` (the configured limit, 700 by default) and
``X-Rate-Limit-Remaining`` (counting down per 60-second window, never below 0). Running out does not
refuse calls: simulate Zendesk's 429 with the server's fault injection (``inject_fault(path, 429,
retry_after="5")``), which applies to these paths like any other and answers before this app is asked.

Assumptions, because the document does not say (change them here if the real API disagrees):

- ``added_user_ids`` (users in the segment regardless of the other criteria) is a list of integer
  user ids like ``group_ids``; it is the only thing that decides ``users/{user_id}/user_segments``:
  every user belongs to the built-in ``signed_in_users`` segment plus each custom segment whose
  ``added_user_ids`` contains the user id (groups, organizations and tags are not evaluated, every
  numeric user id exists, and the requesting agent's own segments are not intersected).
- ``applicable.json`` lists every segment: the test server plays an account whose plan allows staff
  segments.

Test-only endpoints (under ``/_sandbox/zendesk/``): ``GET``/``POST pagination``
(``{"style": "cursor" | "offset" | "endless"}``), ``POST sections`` and ``POST topics``
(``{"user_segment_id", "name", "locale"?}``, 201 with the created item).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from airflow_provider_segments.testing.base import (
    HttpError,
    Request,
    Response,
    empty_response,
    json_object_body,
    json_response,
    method_not_allowed,
    same_secret,
    show,
)
from airflow_provider_segments.testing.zendesk_pages import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    PAGINATION_STYLES,
    base_url,
    list_page,
    valid_style,
)
from airflow_provider_segments.testing.zendesk_payloads import (
    USER_TYPES,
    int_or_none,
    now_iso,
    section_json,
    segment_body,
    topic_json,
    validate_segment,
)
from airflow_provider_segments.testing.zendesk_store import (
    BUILT_IN_SEGMENT_IDS,
    FIRST_CUSTOM_SEGMENT_ID,
    NOT_FOUND_ERROR,
    StoredSegment,
    ZendeskStore,
)

__all__ = [
    "API_PREFIX",
    "BUILT_IN_SEGMENT_IDS",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_RATE_LIMIT",
    "FIRST_CUSTOM_SEGMENT_ID",
    "MAX_PAGE_SIZE",
    "PAGINATION_STYLES",
    "RATE_LIMIT_WINDOW",
    "TEST_ZENDESK_API_TOKEN",
    "TEST_ZENDESK_EMAIL",
    "TEST_ZENDESK_OAUTH_TOKEN",
    "TEST_ZENDESK_PASSWORD",
    "USER_TYPES",
    "ZendeskApp",
]

TEST_ZENDESK_EMAIL = "agent@sandbox.example.com"
"""The agent email the test server accepts for HTTP Basic auth. Test-only, public."""
TEST_ZENDESK_API_TOKEN = "sandbox-zendesk-api-token"
"""API token the test server accepts as ``{email}/token:{api_token}``. Test-only and public."""
TEST_ZENDESK_PASSWORD = "sandbox-zendesk-password"
"""Password the test server accepts as ``{email}:{password}``. Test-only and public."""
TEST_ZENDESK_OAUTH_TOKEN = "sandbox-zendesk-oauth-token"
"""OAuth access token the test server accepts as ``Authorization: Bearer``. Test-only and public."""

API_PREFIX = "/api/v2/help_center/"
"""Every Help Center path the app answers starts with this."""
DEFAULT_RATE_LIMIT = 700
"""Requests per minute announced in ``X-Rate-Limit`` unless configured otherwise."""
RATE_LIMIT_WINDOW = 60.0
"""Length in seconds of the window ``X-Rate-Limit-Remaining`` counts down in."""

_CONTROL_PREFIX = "/_sandbox/zendesk/"


_ROUTES = (
    ("applicable", re.compile(r"^/api/v2/help_center/user_segments/applicable(?:\.json)?$")),
    ("segments", re.compile(r"^/api/v2/help_center/user_segments(?:\.json)?$")),
    (
        "children",
        re.compile(r"^/api/v2/help_center/user_segments/(?P<id>[^/]+)/(?P<kind>sections|topics)(?:\.json)?$"),
    ),
    ("segment", re.compile(r"^/api/v2/help_center/user_segments/(?P<id>[^/]+?)(?:\.json)?$")),
    ("user", re.compile(r"^/api/v2/help_center/users/(?P<user>[^/]+?)/user_segments(?:\.json)?$")),
)
_ALLOWED = {
    "applicable": ("GET",),
    "segments": ("GET", "POST"),
    "children": ("GET",),
    "segment": ("GET", "PUT", "DELETE"),
    "user": ("GET",),
}

_UNAUTHENTICATED = {"error": "Couldn't authenticate you"}


class ZendeskApp(ZendeskStore):
    """The fake Zendesk Help Center User Segments API; plug it into a test server, or read its state.

    :param email: the agent email HTTP Basic auth must name (compared case-insensitively).
    :param api_token: the API token for ``{email}/token:{api_token}``; ``None`` disables that style.
    :param password: the password for ``{email}:{password}``; ``None`` disables that style.
    :param oauth_token: the OAuth token for ``Authorization: Bearer``; ``None`` disables that style.
    :param pagination: the list style when the request does not ask for offset pagination, one of
        :data:`PAGINATION_STYLES` (``"endless"`` is a fault for tests).
    :param rate_limit: requests per minute announced in ``X-Rate-Limit`` (make it low in a test to see
        ``X-Rate-Limit-Remaining`` reach 0).
    :param clock: monotonic clock used for the rate-limit window (replaceable in tests).
    """

    def __init__(
        self,
        *,
        email: str = TEST_ZENDESK_EMAIL,
        api_token: str | None = TEST_ZENDESK_API_TOKEN,
        password: str | None = TEST_ZENDESK_PASSWORD,
        oauth_token: str | None = TEST_ZENDESK_OAUTH_TOKEN,
        pagination: str = "cursor",
        rate_limit: int = DEFAULT_RATE_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.email = email
        self.api_token = api_token
        self.password = password
        self.oauth_token = oauth_token
        self.clock = clock
        self._initial_pagination = valid_style(pagination)
        self._pagination = self._initial_pagination
        self._rate_limit = _valid_rate_limit(rate_limit)
        self._window_start: float | None = None
        self._window_count = 0
        super().__init__()  # the state, then reset(), which needs the settings above

    # -- configuration --------------------------------------------------------------------------

    @property
    def pagination(self) -> str:
        """The list style: ``"cursor"`` (default), ``"offset"`` or the ``"endless"`` fault."""
        return self._pagination

    @pagination.setter
    def pagination(self, style: str) -> None:
        self._pagination = valid_style(style)

    @property
    def rate_limit(self) -> int:
        """Requests per minute announced in ``X-Rate-Limit``; remaining counts down from it."""
        return self._rate_limit

    @rate_limit.setter
    def rate_limit(self, value: int) -> None:
        self._rate_limit = _valid_rate_limit(value)

    def reset(self) -> None:
        """Back to the start: only the built-in segments, no sections or topics, the pagination style
        given at construction, ids counting from the start again and a fresh rate-limit window.
        """
        super().reset()
        with self._lock:
            self._pagination = self._initial_pagination
            self._window_start = None
            self._window_count = 0

    # -- HTTP -----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response | None:
        """Answer requests for the Help Center user-segment paths; return ``None`` for any other path."""
        path = request.path
        if path.startswith(_CONTROL_PREFIX):
            return self._control(request)
        if not path.startswith(API_PREFIX):
            return None
        route = _route(path)
        if route is None:
            return None
        name, args = route
        headers = self._count_request()
        try:
            allowed = _ALLOWED[name]
            if request.method not in allowed:
                response = method_not_allowed(allowed)
            else:
                request.log["auth"] = self._authenticate(request)
                response = self._answer(request, name, args)
        except HttpError as exc:
            response = exc.response()
        response.headers.update(headers)
        return response

    def _count_request(self) -> dict[str, str]:
        with self._lock:
            now = self.clock()
            if self._window_start is None or now - self._window_start >= RATE_LIMIT_WINDOW:
                self._window_start = now
                self._window_count = 0
            self._window_count += 1
            remaining = max(0, self._rate_limit - self._window_count)
            return {"X-Rate-Limit": str(self._rate_limit), "X-Rate-Limit-Remaining": str(remaining)}

    def _authenticate(self, request: Request) -> str:
        token = request.bearer_token()
        if token is not None:
            if self.oauth_token is not None and same_secret(token, self.oauth_token):
                return "oauth_token"
        else:
            credentials = request.basic_auth()
            if credentials is not None:
                user, secret = credentials
                if user.endswith("/token"):
                    if (
                        self.api_token is not None
                        and _same_email(user[: -len("/token")], self.email)
                        and same_secret(secret, self.api_token)
                    ):
                        return "api_token"
                elif (
                    self.password is not None
                    and _same_email(user, self.email)
                    and same_secret(secret, self.password)
                ):
                    return "password"
        raise HttpError(401, _UNAUTHENTICATED, {"WWW-Authenticate": 'Basic realm="Web Password"'})

    def _answer(self, request: Request, route: str, args: dict[str, str]) -> Response:
        if route == "segments" and request.method == "POST":
            return self._create(request)
        if route in ("segments", "applicable"):  # the test server plan allows every segment
            return list_page(
                request, "user_segments", self._filtered(request, self.segments()), self._pagination
            )
        if route == "user":
            user_id = _numeric_id(args["user"])
            with self._lock:
                mine = [
                    segment.to_json()
                    for segment in self._sorted_locked()
                    if (segment.built_in and segment.user_type == "signed_in_users")
                    or user_id in segment.added_user_ids
                ]
            return list_page(request, "user_segments", self._filtered(request, mine), self._pagination)
        segment_id = _numeric_id(args["id"])
        if route == "children":
            return self._children(request, segment_id, args["kind"])
        if request.method == "GET":
            segment = self.segment(segment_id)
            if segment is None:
                raise HttpError(404, NOT_FOUND_ERROR)
            return json_response(200, {"user_segment": segment})
        if request.method == "DELETE":
            request.log["action"] = "delete"
            with self._lock:
                self._modifiable_locked(segment_id)
                del self._segments[segment_id]
            return empty_response(204)
        return self._update(request, segment_id)

    def _create(self, request: Request) -> Response:
        request.log["action"] = "create"
        fields = segment_body(request)
        changes = validate_segment(fields, creating=True)
        with self._lock:
            now = now_iso()
            segment = StoredSegment(
                id=self._next_segment_id,
                name=changes.pop("name"),
                user_type=changes.pop("user_type"),
                created_at=now,
                updated_at=now,
            )
            for name, value in changes.items():
                setattr(segment, name, value)
            self._segments[segment.id] = segment
            self._next_segment_id += 1
            created = segment.to_json()
        return json_response(201, {"user_segment": created})

    def _update(self, request: Request, segment_id: int) -> Response:
        request.log["action"] = "update"
        with self._lock:
            self._modifiable_locked(segment_id)
        fields = segment_body(request)
        changes = validate_segment(fields, creating=False)
        with self._lock:
            segment = self._modifiable_locked(segment_id)  # again: a concurrent delete or reset
            for name, value in changes.items():
                setattr(segment, name, value)
            segment.updated_at = now_iso()
            updated = segment.to_json()
        return json_response(200, {"user_segment": updated})

    def _children(self, request: Request, segment_id: int, kind: str) -> Response:
        base = base_url(request)
        with self._lock:
            self._find_locked(segment_id)
            items = [
                item
                for item in (self._sections if kind == "sections" else self._topics)
                if item["user_segment_id"] == segment_id
            ]
            render = section_json if kind == "sections" else topic_json
            rendered = [render(item, base) for item in sorted(items, key=lambda item: item["id"])]
        return list_page(request, kind, rendered, self._pagination)

    def _filtered(self, request: Request, segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        value = request.param("built_in")
        if value is None:
            return segments
        wanted = {"true": True, "false": False}.get(value.strip().lower())
        if wanted is None:
            raise HttpError(
                400, {"errors": {"built_in": [f"value `{value}` invalid; must be either `true` or `false`"]}}
            )
        return [segment for segment in segments if segment["built_in"] is wanted]

    # -- test-only HTTP -------------------------------------------------------------------------

    def _control(self, request: Request) -> Response | None:
        path = request.path.rstrip("/")
        if path == "/_sandbox/zendesk/pagination":
            if request.method == "GET":
                return json_response(200, {"style": self.pagination})
            if request.method != "POST":
                return method_not_allowed(("GET", "POST"))
            style = json_object_body(request).get("style")
            if style not in PAGINATION_STYLES:
                raise HttpError(
                    400,
                    {"message": f"style must be one of {', '.join(PAGINATION_STYLES)}, got {show(style)}"},
                )
            self.pagination = style
            return json_response(200, {"style": style})
        if path in ("/_sandbox/zendesk/sections", "/_sandbox/zendesk/topics"):
            if request.method != "POST":
                return method_not_allowed(("POST",))
            body = json_object_body(request)
            segment_id, name, locale = body.get("user_segment_id"), body.get("name"), body.get("locale", "en")
            if isinstance(segment_id, bool) or not isinstance(segment_id, int):
                raise HttpError(
                    400, {"message": f"user_segment_id must be an integer, got {show(segment_id)}"}
                )
            if not isinstance(name, str) or not name.strip():
                raise HttpError(400, {"message": f"name must be a non-empty string, got {show(name)}"})
            if not isinstance(locale, str) or not locale.strip():
                raise HttpError(400, {"message": f"locale must be a non-empty string, got {show(locale)}"})
            try:
                if path.endswith("sections"):
                    created = self.add_section(segment_id, name, locale)
                else:
                    created = self.add_topic(segment_id, name)
            except KeyError:
                raise HttpError(404, {"message": f"User segment {segment_id} not found"}) from None
            return json_response(201, created)
        return None


def _route(path: str) -> tuple[str, dict[str, str]] | None:
    """Name the endpoint ``path`` belongs to, with its path arguments; ``None`` if it is not one of ours."""
    for name, pattern in _ROUTES:
        match = pattern.match(path)
        if match:
            return name, match.groupdict()
    return None


def _numeric_id(text: str) -> int:
    number = int_or_none(text)
    if number is None:
        raise HttpError(404, NOT_FOUND_ERROR)
    return number


def _valid_rate_limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"rate_limit must be a positive integer, got {value!r}")
    return value


def _same_email(given: str, expected: str) -> bool:
    return same_secret(given.strip().casefold(), expected.strip().casefold())
