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

Pagination, as Zendesk's pagination document describes it:

- cursor (the default): ``page[size]`` (1-100, default 100) and ``page[after]`` / ``page[before]``;
  the answer has ``"meta": {"has_more", "after_cursor", "before_cursor"}`` and
  ``"links": {"next", "prev"}``, absolute URLs built from the request's ``Host`` header that keep
  the other query parameters (such as ``built_in``). ``links.next`` is ``null`` and ``has_more`` is
  false on the last page; the cursors are those of the page's last and first items (``null`` on an
  empty page).
- offset: when :attr:`ZendeskApp.pagination` is ``"offset"`` or the request sends ``page`` or
  ``per_page`` (1-100, default 100): ``"next_page"`` and ``"previous_page"`` (absolute URLs or
  ``null``) and ``"count"`` (all matching items).
- ``"endless"``, a fault for testing a client's loop guard: every list answers its first page with a
  next link (``has_more`` true, or a ``next_page``) forever.

An out-of-range page size or a bad cursor gets 400 ``{"error": "InvalidPaginationParameter",
"description": ...}``.

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
- ``name`` is required on create (the document marks only ``user_type`` mandatory); read-only and
  unknown fields in a body (``id``, ``built_in``, ``created_at``, ...) are ignored; list values are
  stored as given (not de-duplicated).
- Validation errors are all reported at once: 400 ``{"errors": {field: ["message"]}}``. A body that
  is not JSON, or lacks the ``user_segment`` object, is reported under ``"base"`` or
  ``"user_segment"``; a non-JSON content type gets 415 ``{"error": "UnsupportedMediaType", ...}``.
- The order of checks: 405 wrong method, 401 authentication, 404 unknown id
  (``{"error": "RecordNotFound", "description": "Not found"}``), 403 built-in segment
  (``{"error": "Forbidden", "description": "Built-in user segments cannot be modified"}``),
  415 content type, 400 body or query parameters.

Test-only endpoints (under ``/_sandbox/zendesk/``): ``GET``/``POST pagination``
(``{"style": "cursor" | "offset" | "endless"}``), ``POST sections`` and ``POST topics``
(``{"user_segment_id", "name", "locale"?}``, 201 with the created item).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from airflow_provider_segments.testing.base import (
    HttpError,
    Request,
    Response,
    empty_response,
    json_object_body,
    json_response,
    method_not_allowed,
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
USER_TYPES = ("staff", "signed_in_users")
"""The only values ``user_type`` takes."""
MAX_PAGE_SIZE = 100
"""Largest ``page[size]`` / ``per_page`` accepted; larger ones get 400."""
DEFAULT_PAGE_SIZE = 100
"""Page size when the request does not give one."""
DEFAULT_RATE_LIMIT = 700
"""Requests per minute announced in ``X-Rate-Limit`` unless configured otherwise."""
RATE_LIMIT_WINDOW = 60.0
"""Length in seconds of the window ``X-Rate-Limit-Remaining`` counts down in."""
FIRST_CUSTOM_SEGMENT_ID = 360_000_000_001
"""Id of the first segment created after start or reset; the next ones count up from it."""
PAGINATION_STYLES = ("cursor", "offset", "endless")
"""Values of :attr:`ZendeskApp.pagination`; ``"endless"`` is a fault for loop-guard tests."""
BUILT_IN_SEGMENT_IDS = (1, 2)
"""Ids of the built-in segments seeded at start and after reset."""

_BUILT_IN_SEGMENTS = (
    (1, "Signed-in users", "signed_in_users"),
    (2, "Agents and managers", "staff"),
)
_BUILT_IN_TIMESTAMP = "2017-01-01T00:00:00Z"
_FIRST_SECTION_ID = 360_100_000_001
_FIRST_TOPIC_ID = 360_200_000_001
_CONTROL_PREFIX = "/_sandbox/zendesk/"

_ID_LIST_FIELDS = ("group_ids", "organization_ids", "added_user_ids")
_TAG_LIST_FIELDS = ("tags", "or_tags")
_SEGMENT_FIELDS = (
    "id",
    "name",
    "user_type",
    *_ID_LIST_FIELDS,
    *_TAG_LIST_FIELDS,
    "created_at",
    "updated_at",
    "built_in",
)
_USER_TYPE_CHOICES = "must be either `staff` or `signed_in_users`"

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
_NOT_FOUND = {"error": "RecordNotFound", "description": "Not found"}
_BUILT_IN_FORBIDDEN = {"error": "Forbidden", "description": "Built-in user segments cannot be modified"}


@dataclass
class _Segment:
    id: int
    name: str
    user_type: str
    created_at: str
    updated_at: str
    built_in: bool = False
    group_ids: list[Any] = field(default_factory=list)
    organization_ids: list[Any] = field(default_factory=list)
    tags: list[Any] = field(default_factory=list)
    or_tags: list[Any] = field(default_factory=list)
    added_user_ids: list[Any] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "user_type": self.user_type,
            "group_ids": _copy(self.group_ids),
            "organization_ids": _copy(self.organization_ids),
            "tags": _copy(self.tags),
            "or_tags": _copy(self.or_tags),
            "added_user_ids": _copy(self.added_user_ids),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "built_in": self.built_in,
        }


class ZendeskApp:
    """The fake Zendesk Help Center User Segments API; plug it into a test server server, or read its state.

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
        self._lock = threading.Lock()
        self._initial_pagination = _valid_style(pagination)
        self._pagination = self._initial_pagination
        self._rate_limit = _valid_rate_limit(rate_limit)
        self._window_start: float | None = None
        self._window_count = 0
        self._segments: dict[int, _Segment] = {}
        self._sections: list[dict[str, Any]] = []
        self._topics: list[dict[str, Any]] = []
        self._next_segment_id = FIRST_CUSTOM_SEGMENT_ID
        self._next_section_id = _FIRST_SECTION_ID
        self._next_topic_id = _FIRST_TOPIC_ID
        self.reset()

    # -- configuration --------------------------------------------------------------------------

    @property
    def pagination(self) -> str:
        """The list style: ``"cursor"`` (default), ``"offset"`` or the ``"endless"`` fault."""
        return self._pagination

    @pagination.setter
    def pagination(self, style: str) -> None:
        self._pagination = _valid_style(style)

    @property
    def rate_limit(self) -> int:
        """Requests per minute announced in ``X-Rate-Limit``; remaining counts down from it."""
        return self._rate_limit

    @rate_limit.setter
    def rate_limit(self, value: int) -> None:
        self._rate_limit = _valid_rate_limit(value)

    # -- in-process API for tests ---------------------------------------------------------------

    def segments(self) -> list[dict[str, Any]]:
        """Every segment (built-in ones included) as the API shows it, by ascending id."""
        with self._lock:
            return [segment.to_json() for segment in self._sorted_locked()]

    def segment(self, segment_id: int) -> dict[str, Any] | None:
        """The segment with this id as the API shows it, or ``None``."""
        with self._lock:
            segment = self._segments.get(segment_id)
            return None if segment is None else segment.to_json()

    def create_segment(self, **fields: Any) -> dict[str, Any]:
        """Store a segment directly (no HTTP, no validation), e.g. to seed state; return its JSON.

        Takes the segment's JSON fields as keywords; missing ones default to a custom
        ``signed_in_users`` segment named after its id, with empty lists and the current time.
        ``id`` may be given (``ValueError`` if taken); unknown field names raise ``TypeError``.
        """
        unknown = sorted(set(fields) - set(_SEGMENT_FIELDS))
        if unknown:
            raise TypeError(f"unknown user segment field(s): {', '.join(unknown)}")
        with self._lock:
            segment_id = fields.pop("id", None)
            if segment_id is None:
                segment_id = self._next_segment_id
            elif segment_id in self._segments:
                raise ValueError(f"a user segment with id {segment_id!r} already exists")
            now = _now()
            segment = _Segment(
                id=segment_id,
                name=fields.pop("name", f"Sandbox segment {segment_id}"),
                user_type=fields.pop("user_type", "signed_in_users"),
                created_at=fields.pop("created_at", now),
                updated_at=fields.pop("updated_at", now),
                built_in=fields.pop("built_in", False),
            )
            for name, value in fields.items():
                setattr(segment, name, _copy(value))
            self._segments[segment_id] = segment
            if isinstance(segment_id, int) and segment_id >= self._next_segment_id:
                self._next_segment_id = segment_id + 1
            return segment.to_json()

    def add_section(self, segment_id: int, name: str, locale: str = "en") -> dict[str, Any]:
        """Record a Help Center section that uses the segment; return ``{"id", "name", "locale",
        "user_segment_id"}`` (the listing adds ``url`` and ``html_url``). KeyError if the segment is unknown.
        """
        with self._lock:
            self._require_segment_locked(segment_id)
            section = {"id": self._next_section_id, "name": name, "locale": locale}
            section["user_segment_id"] = segment_id
            self._next_section_id += 1
            self._sections.append(section)
            return dict(section)

    def add_topic(self, segment_id: int, name: str) -> dict[str, Any]:
        """Record a community topic that uses the segment; return ``{"id", "name", "user_segment_id"}``
        (the listing adds ``url`` and ``html_url``). KeyError if the segment is unknown.
        """
        with self._lock:
            self._require_segment_locked(segment_id)
            topic = {"id": self._next_topic_id, "name": name, "user_segment_id": segment_id}
            self._next_topic_id += 1
            self._topics.append(topic)
            return dict(topic)

    def reset(self) -> None:
        """Back to the start: only the built-in segments, no sections or topics, the pagination style
        given at construction, ids counting from the start again and a fresh rate-limit window.
        """
        with self._lock:
            self._segments = {
                segment_id: _Segment(
                    segment_id, name, user_type, _BUILT_IN_TIMESTAMP, _BUILT_IN_TIMESTAMP, built_in=True
                )
                for segment_id, name, user_type in _BUILT_IN_SEGMENTS
            }
            self._sections = []
            self._topics = []
            self._next_segment_id = FIRST_CUSTOM_SEGMENT_ID
            self._next_section_id = _FIRST_SECTION_ID
            self._next_topic_id = _FIRST_TOPIC_ID
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
            if self.oauth_token is not None and _same(token, self.oauth_token):
                return "oauth_token"
        else:
            credentials = request.basic_auth()
            if credentials is not None:
                user, secret = credentials
                if user.endswith("/token"):
                    if (
                        self.api_token is not None
                        and _same_email(user[: -len("/token")], self.email)
                        and _same(secret, self.api_token)
                    ):
                        return "api_token"
                elif (
                    self.password is not None
                    and _same_email(user, self.email)
                    and _same(secret, self.password)
                ):
                    return "password"
        raise HttpError(401, _UNAUTHENTICATED, {"WWW-Authenticate": 'Basic realm="Web Password"'})

    def _answer(self, request: Request, route: str, args: dict[str, str]) -> Response:
        if route == "segments" and request.method == "POST":
            return self._create(request)
        if route in ("segments", "applicable"):  # the test server plan allows every segment
            return self._list(request, "user_segments", self._filtered(request, self.segments()))
        if route == "user":
            user_id = _numeric_id(args["user"])
            with self._lock:
                mine = [
                    segment.to_json()
                    for segment in self._sorted_locked()
                    if (segment.built_in and segment.user_type == "signed_in_users")
                    or user_id in segment.added_user_ids
                ]
            return self._list(request, "user_segments", self._filtered(request, mine))
        segment_id = _numeric_id(args["id"])
        if route == "children":
            return self._children(request, segment_id, args["kind"])
        if request.method == "GET":
            segment = self.segment(segment_id)
            if segment is None:
                raise HttpError(404, _NOT_FOUND)
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
        fields = _segment_body(request)
        changes = _validate(fields, creating=True)
        with self._lock:
            now = _now()
            segment = _Segment(
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
        fields = _segment_body(request)
        changes = _validate(fields, creating=False)
        with self._lock:
            segment = self._modifiable_locked(segment_id)  # again: a concurrent delete or reset
            for name, value in changes.items():
                setattr(segment, name, value)
            segment.updated_at = _now()
            updated = segment.to_json()
        return json_response(200, {"user_segment": updated})

    def _children(self, request: Request, segment_id: int, kind: str) -> Response:
        base = _base_url(request)
        with self._lock:
            self._find_locked(segment_id)
            items = [
                item
                for item in (self._sections if kind == "sections" else self._topics)
                if item["user_segment_id"] == segment_id
            ]
            render = _section_json if kind == "sections" else _topic_json
            rendered = [render(item, base) for item in sorted(items, key=lambda item: item["id"])]
        return self._list(request, kind, rendered)

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

    # -- pagination -----------------------------------------------------------------------------

    def _list(self, request: Request, key: str, items: list[dict[str, Any]]) -> Response:
        """Answer one page of ``items`` (sorted by ascending id) in the style the request calls for."""
        offset_asked = "page" in request.query or "per_page" in request.query
        style = self._pagination
        request.log["pagination"] = style if style != "cursor" or not offset_asked else "offset"
        if style == "endless":
            return self._endless_page(request, key, items, offset_asked)
        if style == "offset" or offset_asked:
            return self._offset_page(request, key, items)
        return self._cursor_page(request, key, items)

    def _cursor_page(self, request: Request, key: str, items: list[dict[str, Any]]) -> Response:
        size = _page_size(request, "page[size]")
        after = request.param("page[after]")
        before = request.param("page[before]")
        if after is not None and before is not None:
            raise _pagination_error("page[after] and page[before] cannot be used together")
        if before is not None:
            limit = _decode_cursor(before, "page[before]")
            candidates = [item for item in items if item["id"] < limit]
            page = candidates[-size:]
        else:
            after_id = _decode_cursor(after, "page[after]") if after is not None else None
            candidates = [item for item in items if after_id is None or item["id"] > after_id]
            page = candidates[:size]
        more_after = bool(page) and items[-1]["id"] > page[-1]["id"]
        more_before = bool(page) and items[0]["id"] < page[0]["id"]
        after_cursor = _encode_cursor(page[-1]["id"]) if page else None
        before_cursor = _encode_cursor(page[0]["id"]) if page else None
        payload = {
            key: page,
            "meta": {
                "has_more": more_before if before is not None else more_after,
                "after_cursor": after_cursor,
                "before_cursor": before_cursor,
            },
            "links": {
                "next": _page_url(request, {"page[size]": size, "page[after]": after_cursor})
                if more_after
                else None,
                "prev": _page_url(request, {"page[size]": size, "page[before]": before_cursor})
                if more_before
                else None,
            },
        }
        return json_response(200, payload)

    def _offset_page(self, request: Request, key: str, items: list[dict[str, Any]]) -> Response:
        per_page = _page_size(request, "per_page")
        number = _page_number(request)
        start = (number - 1) * per_page
        payload = {
            key: items[start : start + per_page],
            "next_page": _page_url(request, {"page": number + 1, "per_page": per_page})
            if start + per_page < len(items)
            else None,
            "previous_page": _page_url(request, {"page": number - 1, "per_page": per_page})
            if number > 1
            else None,
            "count": len(items),
        }
        return json_response(200, payload)

    def _endless_page(
        self, request: Request, key: str, items: list[dict[str, Any]], offset_asked: bool
    ) -> Response:
        if offset_asked:
            per_page = _page_size(request, "per_page")
            number = _page_number(request)
            payload: dict[str, Any] = {
                key: items[:per_page],
                "next_page": _page_url(request, {"page": number + 1, "per_page": per_page}),
                "previous_page": None,
                "count": len(items),
            }
            return json_response(200, payload)
        size = _page_size(request, "page[size]")
        page = items[:size]
        cursor = _encode_cursor(page[-1]["id"] if page else 0)
        payload = {
            key: page,
            "meta": {
                "has_more": True,
                "after_cursor": cursor,
                "before_cursor": _encode_cursor(page[0]["id"]) if page else None,
            },
            "links": {"next": _page_url(request, {"page[size]": size, "page[after]": cursor}), "prev": None},
        }
        return json_response(200, payload)

    # -- state helpers (call with the lock held) ------------------------------------------------

    def _sorted_locked(self) -> list[_Segment]:
        return sorted(self._segments.values(), key=lambda segment: segment.id)

    def _find_locked(self, segment_id: int) -> _Segment:
        segment = self._segments.get(segment_id)
        if segment is None:
            raise HttpError(404, _NOT_FOUND)
        return segment

    def _modifiable_locked(self, segment_id: int) -> _Segment:
        segment = self._find_locked(segment_id)
        if segment.built_in:
            raise HttpError(403, _BUILT_IN_FORBIDDEN)
        return segment

    def _require_segment_locked(self, segment_id: int) -> None:
        if segment_id not in self._segments:
            raise KeyError(f"no user segment with id {segment_id!r}")

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
                    {"message": f"style must be one of {', '.join(PAGINATION_STYLES)}, got {_show(style)}"},
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
                    400, {"message": f"user_segment_id must be an integer, got {_show(segment_id)}"}
                )
            if not isinstance(name, str) or not name.strip():
                raise HttpError(400, {"message": f"name must be a non-empty string, got {_show(name)}"})
            if not isinstance(locale, str) or not locale.strip():
                raise HttpError(400, {"message": f"locale must be a non-empty string, got {_show(locale)}"})
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


def _validate(fields: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Check the writable fields of a ``user_segment`` body; return the changes or raise 400 listing all."""
    errors: dict[str, list[str]] = {}
    changes: dict[str, Any] = {}
    if "name" in fields:
        name = fields["name"]
        if isinstance(name, str) and name.strip():
            changes["name"] = name
        else:
            errors["name"] = [f"must be a non-empty string, got {_show(name)}"]
    elif creating:
        errors["name"] = ["is required"]
    if "user_type" in fields:
        user_type = fields["user_type"]
        if isinstance(user_type, str) and user_type in USER_TYPES:
            changes["user_type"] = user_type
        else:
            shown = user_type if isinstance(user_type, str) else json.dumps(user_type)
            errors["user_type"] = [f"value `{_truncate(shown)}` invalid; {_USER_TYPE_CHOICES}"]
    elif creating:
        errors["user_type"] = [f"is required; {_USER_TYPE_CHOICES}"]
    for name in _ID_LIST_FIELDS:
        if name not in fields:
            continue
        value = fields[name]
        if not isinstance(value, list):
            errors[name] = [f"must be a list of integers, got {_show(value)}"]
            continue
        bad = next(
            (i for i, item in enumerate(value) if isinstance(item, bool) or not isinstance(item, int)), None
        )
        if bad is None:
            changes[name] = list(value)
        else:
            errors[name] = [f"item {bad} must be an integer, got {_show(value[bad])}"]
    for name in _TAG_LIST_FIELDS:
        if name not in fields:
            continue
        value = fields[name]
        if not isinstance(value, list):
            errors[name] = [f"must be a list of non-empty strings, got {_show(value)}"]
            continue
        bad = next((i for i, item in enumerate(value) if not isinstance(item, str) or not item.strip()), None)
        if bad is None:
            changes[name] = list(value)
        else:
            errors[name] = [f"item {bad} must be a non-empty string, got {_show(value[bad])}"]
    if errors:
        raise HttpError(400, {"errors": errors})
    return changes


def _segment_body(request: Request) -> dict[str, Any]:
    """The ``user_segment`` object of a JSON body (415 or 400 otherwise); logs the added user id count."""
    if request.content_type != "application/json":
        raise HttpError(
            415, {"error": "UnsupportedMediaType", "description": "Content-Type must be application/json"}
        )
    try:
        payload = request.json()
    except ValueError as exc:
        raise HttpError(400, {"errors": {"base": [f"malformed JSON body: {exc}"]}}) from None
    fields = payload.get("user_segment") if isinstance(payload, dict) else None
    if not isinstance(fields, dict):
        raise HttpError(400, {"errors": {"user_segment": ["is required and must be a JSON object"]}})
    added = fields.get("added_user_ids")
    if isinstance(added, list):
        request.log["ids"] = len(added)
    return fields


def _page_size(request: Request, name: str) -> int:
    value = request.param(name)
    if value is None:
        return DEFAULT_PAGE_SIZE
    size = _int_or_none(value)
    if size is None or size < 1:
        raise _pagination_error(f"{name} must be a positive integer, got {_show(value)}")
    if size > MAX_PAGE_SIZE:
        raise _pagination_error(f"{name} is greater than the maximum of {MAX_PAGE_SIZE}")
    return size


def _page_number(request: Request) -> int:
    value = request.param("page")
    if value is None:
        return 1
    number = _int_or_none(value)
    if number is None or number < 1:
        raise _pagination_error(f"page must be a positive integer, got {_show(value)}")
    return number


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _pagination_error(description: str) -> HttpError:
    return HttpError(400, {"error": "InvalidPaginationParameter", "description": description})


def _encode_cursor(item_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{item_id}".encode()).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str, name: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    prefix, _, number = text.partition(":")
    if prefix != "id" or _int_or_none(number) is None:
        raise _pagination_error(f"{name} is not a cursor this API issued: {_show(cursor)}")
    return int(number)


def _base_url(request: Request) -> str:
    """``http://<Host header>``: the test server as the client reached it."""
    return f"http://{request.header('host') or 'localhost'}"


def _page_url(request: Request, page_params: dict[str, Any]) -> str:
    """An absolute URL to this path with the request's other query parameters and ``page_params``."""
    params = [
        (name, value)
        for name, values in request.query.items()
        if name not in ("page", "per_page") and not name.startswith("page[")
        for value in values
    ]
    params.extend((name, str(value)) for name, value in page_params.items())
    return f"{_base_url(request)}{request.path}?{urlencode(params)}"


def _section_json(section: dict[str, Any], base: str) -> dict[str, Any]:
    locale, slug = section["locale"], f"{section['id']}-{_slug(section['name'])}"
    return {
        "id": section["id"],
        "name": section["name"],
        "locale": locale,
        "url": f"{base}/api/v2/help_center/{locale}/sections/{slug}.json",
        "html_url": f"{base}/hc/{locale}/sections/{slug}",
    }


def _topic_json(topic: dict[str, Any], base: str) -> dict[str, Any]:
    return {
        "id": topic["id"],
        "name": topic["name"],
        "url": f"{base}/api/v2/community/topics/{topic['id']}.json",
        "html_url": f"{base}/hc/en/community/topics/{topic['id']}-{_slug(topic['name'])}",
    }


def _slug(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "-", name).strip("-")


def _numeric_id(text: str) -> int:
    number = _int_or_none(text)
    if number is None:
        raise HttpError(404, _NOT_FOUND)
    return number


def _valid_style(style: Any) -> str:
    if style not in PAGINATION_STYLES:
        raise ValueError(f"pagination must be one of {', '.join(PAGINATION_STYLES)}, got {style!r}")
    return str(style)


def _valid_rate_limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"rate_limit must be a positive integer, got {value!r}")
    return value


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else value


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _same_email(given: str, expected: str) -> bool:
    return _same(given.strip().casefold(), expected.strip().casefold())


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _truncate(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _show(value: Any, limit: int = 60) -> str:
    return _truncate(repr(value), limit)
