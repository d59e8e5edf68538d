"""A fake WalkMe Segments API (Beta) that behaves like the documented one, for tests and the demo.

Endpoints, as in WalkMe's "Segments API (Beta)" document:

- ``POST /accounts/connect/token``: OAuth2 client credentials. Form body
  ``grant_type=client_credentials``, HTTP Basic auth with the client id and secret; answers
  ``{"access_token", "expires_in", "token_type": "Bearer", "scope": "segments:write segments:read"}``.
- ``POST /public/v1/user/system/{systemGuid}/segment``: create a segment from
  ``{"id"?: <external id>, "name": <name>, "userIds": [...]}`` (201).
- ``PUT /public/v1/user/system/{systemGuid}/segment/{segmentGuid}``: ``{"action": "add" | "remove" |
  "override", "userIds": [...]}`` (200). The segment GUID must be in its hyphenated form.
- ``GET /public/v1/user/system/{systemGuid}/segment``: list the system's segments (200).

Limits enforced as documented: at most 25,000 ``userIds`` per request (counted before
de-duplication) and at most 100 characters per id.

Assumptions, because the document does not say (change them here if the real API disagrees):

- ``DELETE .../segment/{segmentGuid}`` exists (the document says segments can be deleted but does
  not show the call): 204, or 404 for an unknown segment.
- The response bodies: a segment is ``{"guid", "id", "name", "usersCount", "createdAt",
  "updatedAt"}``; errors are ``{"message": ...}`` (401 adds ``"error": "invalid_token"``; the
  token endpoint answers RFC 6749 errors ``{"error", "error_description"}``).
- Segment names need not be unique; empty ``userIds`` lists are accepted; ids are case-sensitive.
- The order of checks: 405 wrong method, 401 token, 404 system, 415 content type, 400 body,
  404 segment.

Test-only endpoints (under ``/_sandbox/walkme/``): ``POST revoke-tokens``, ``GET tokens`` (every
access token ever issued, ``{"tokens": [...]}``, so a test in another process can search its logs
for them), ``POST systems`` (``{"guid": ...}``) and
``GET systems/{systemGuid}/segments/{segmentGuid}/users`` (``{"userIds": [...]}``).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
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
from airflow_provider_segments.testing.walkme_payloads import (
    MAX_ID_LENGTH,
    MAX_IDS_PER_REQUEST,
    UPDATE_ACTIONS,
    valid_user_ids,
)

__all__ = [
    "MAX_IDS_PER_REQUEST",
    "MAX_ID_LENGTH",
    "TEST_CLIENT_ID",
    "TEST_CLIENT_SECRET",
    "TEST_SYSTEM_GUID",
    "TOKEN_PATH",
    "UPDATE_ACTIONS",
    "WalkMeApp",
]

TEST_CLIENT_ID = "sandbox-client-id"
"""Client ID the test server accepts. Test-only: it is public and grants nothing anywhere else."""
TEST_CLIENT_SECRET = "sandbox-client-secret"
"""Client secret the test server accepts. Test-only: it is public and grants nothing anywhere else."""
TEST_SYSTEM_GUID = "5f2b9c1e8d7a4b3c9e6f1a2d3c4b5a69"
"""The system GUID the test server knows by default (32 hex characters, like a real WalkMe one)."""

TOKEN_PATH = "/accounts/connect/token"
TOKEN_SCOPE = "segments:write segments:read"

_SEGMENT_PATH = re.compile(r"^/public/v1/user/system/(?P<system>[^/]+)/segment(?:/(?P<segment>[^/]+))?$")
_USERS_PATH = re.compile(r"^/_sandbox/walkme/systems/(?P<system>[^/]+)/segments/(?P<segment>[^/]+)/users$")
_HYPHENATED_GUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

_SYSTEM_NOT_FOUND = {"message": "System not found"}
_SEGMENT_NOT_FOUND = {"message": "Segment not found"}


@dataclass
class _Segment:
    guid: str
    external_id: str | None
    name: str
    members: dict[str, None]
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "guid": self.guid,
            "id": self.external_id,
            "name": self.name,
            "usersCount": len(self.members),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


class WalkMeApp:
    """The fake WalkMe Segments API; plug it into a test server server, or read its state in tests.

    :param client_id: the only client id the token endpoint accepts.
    :param client_secret: the matching secret.
    :param systems: system GUIDs that exist (others answer 404 ``System not found``).
    :param token_ttl: access-token lifetime in seconds (``expires_in``).
    :param clock: monotonic clock used for token expiry (replaceable in tests).
    """

    def __init__(
        self,
        *,
        client_id: str = TEST_CLIENT_ID,
        client_secret: str = TEST_CLIENT_SECRET,
        systems: Iterable[str] = (TEST_SYSTEM_GUID,),
        token_ttl: float = 86400,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if token_ttl <= 0:
            raise ValueError(f"token_ttl must be positive, got {token_ttl!r}")
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.clock = clock
        self._initial_systems = tuple(_normalise_system(guid) for guid in systems)
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        #: Every token ever issued (tests search logs and XComs for them).
        self.issued_tokens: list[str] = []
        self._systems: dict[str, dict[str, _Segment]] = {guid: {} for guid in self._initial_systems}

    # -- in-process API for tests -----------------------------------------------------------------

    def add_system(self, system_guid: str) -> None:
        """Make another system GUID known (no-op if it already is)."""
        guid = _normalise_system(system_guid)
        with self._lock:
            self._systems.setdefault(guid, {})

    def systems(self) -> list[str]:
        """The known system GUIDs (lower-case)."""
        with self._lock:
            return list(self._systems)

    def issue_token(self) -> str:
        """Issue a fresh access token, as the token endpoint does."""
        token = secrets.token_urlsafe(48)
        with self._lock:
            now = self.clock()
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}  # forget expired ones
            self._tokens[token] = now + self.token_ttl
            self.issued_tokens.append(token)
        return token

    def revoke_tokens(self) -> int:
        """Invalidate every issued access token; return how many were still valid."""
        with self._lock:
            now = self.clock()
            valid = sum(1 for expiry in self._tokens.values() if expiry > now)
            self._tokens.clear()
        return valid

    def segments(self, system_guid: str) -> list[dict[str, Any]]:
        """The segments of a system as the API lists them, in creation order (KeyError if unknown)."""
        with self._lock:
            return [segment.to_json() for segment in self._systems[_normalise_system(system_guid)].values()]

    def members(self, system_guid: str, segment_guid: str) -> list[str]:
        """The user ids in a segment, in first-insertion order (KeyError if unknown)."""
        with self._lock:
            segment = self._systems[_normalise_system(system_guid)][segment_guid.lower()]
            return list(segment.members)

    def create_segment(
        self,
        system_guid: str,
        name: str,
        user_ids: Iterable[str] = (),
        *,
        external_id: str | None = None,
        created_at: str | None = None,
    ) -> dict[str, Any]:
        """Create a segment directly (no HTTP, no limits), e.g. to seed state; return its JSON.

        ``created_at`` (ISO-8601) back-dates it, e.g. for housekeeping tests.
        """
        with self._lock:
            segments = self._systems[_normalise_system(system_guid)]
            created = self._create_locked(segments, name, list(user_ids), external_id)
            if created_at is not None:
                segment = segments[created["guid"]]
                segment.created_at = segment.updated_at = created_at
                created = segment.to_json()
            return created

    def reset(self) -> None:
        """Forget tokens, segments and added systems."""
        with self._lock:
            self._tokens.clear()
            self._systems = {guid: {} for guid in self._initial_systems}

    # -- HTTP -------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response | None:
        """Answer requests for the WalkMe paths; return ``None`` for any other path."""
        path = request.path
        if path == TOKEN_PATH:
            return self._token(request)
        match = _SEGMENT_PATH.match(path)
        if match:
            return self._segment_call(request, match["system"], match["segment"])
        if path.startswith("/_sandbox/walkme/"):
            return self._control(request)
        return None

    def _token(self, request: Request) -> Response:
        if request.method != "POST":
            return method_not_allowed(("POST",))
        if request.content_type != "application/x-www-form-urlencoded":
            raise HttpError(
                415,
                {
                    "error": "invalid_request",
                    "error_description": "Content-Type must be application/x-www-form-urlencoded",
                },
            )
        credentials = request.basic_auth()
        if credentials is None or not (
            same_secret(credentials[0], self.client_id) and same_secret(credentials[1], self.client_secret)
        ):
            raise HttpError(
                401,
                {"error": "invalid_client", "error_description": "Unknown client or wrong client secret"},
                {"WWW-Authenticate": 'Basic realm="WalkMe"'},
            )
        grant_type = request.form().get("grant_type")
        if grant_type != "client_credentials":
            raise HttpError(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": f"grant_type must be client_credentials, got {show(grant_type)}",
                },
            )
        ttl = self.token_ttl
        return json_response(
            200,
            {
                "access_token": self.issue_token(),
                "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
                "token_type": "Bearer",
                "scope": TOKEN_SCOPE,
            },
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def _check_token(self, request: Request) -> None:
        token = request.bearer_token()
        if token is None:
            problem = "Missing bearer token: send 'Authorization: Bearer <access_token>'"
        else:
            with self._lock:
                expiry = self._tokens.get(token)
                if expiry is None:
                    problem = "The access token is invalid or was revoked"
                elif expiry <= self.clock():
                    del self._tokens[token]
                    problem = "The access token expired"
                else:
                    return
        raise HttpError(
            401,
            {"error": "invalid_token", "message": problem},
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    def _segment_call(self, request: Request, system: str, segment: str | None) -> Response:
        allowed = ("PUT", "DELETE") if segment is not None else ("GET", "POST")
        if request.method not in allowed:
            return method_not_allowed(allowed)
        self._check_token(request)
        system = system.lower()
        with self._lock:
            known = system in self._systems
        if not known:
            raise HttpError(404, _SYSTEM_NOT_FOUND)
        if request.method == "GET":
            try:
                return json_response(200, self.segments(system))
            except KeyError:  # removed by a concurrent reset
                raise HttpError(404, _SYSTEM_NOT_FOUND) from None
        if request.method == "DELETE":
            return self._delete(system, segment or "")
        payload = json_object_body(request)
        if request.method == "POST":
            return self._create(request, system, payload)
        return self._update(request, system, segment or "", payload)

    def _create(self, request: Request, system: str, payload: dict[str, Any]) -> Response:
        request.log["action"] = "create"
        user_ids = payload.get("userIds")
        if isinstance(user_ids, list):
            request.log["ids"] = len(user_ids)
        name = payload.get("name")
        if not isinstance(name, str) or not name.strip():
            raise HttpError(
                400, {"message": f"name is required and must be a non-empty string, got {show(name)}"}
            )
        external_id = payload.get("id")
        if external_id is not None and not isinstance(external_id, str):
            raise HttpError(400, {"message": f"id must be a string when given, got {show(external_id)}"})
        user_ids = valid_user_ids(user_ids)
        with self._lock:
            segments = self._systems.get(system)
            if segments is None:  # removed by a concurrent reset
                raise HttpError(404, _SYSTEM_NOT_FOUND)
            created = self._create_locked(segments, name, user_ids, external_id)
        return json_response(201, created)

    def _update(self, request: Request, system: str, segment_guid: str, payload: dict[str, Any]) -> Response:
        action = payload.get("action")
        request.log["action"] = action if isinstance(action, str) else None
        user_ids = payload.get("userIds")
        if isinstance(user_ids, list):
            request.log["ids"] = len(user_ids)
        if action not in UPDATE_ACTIONS:
            raise HttpError(
                400, {"message": f"action must be one of 'add', 'remove', 'override', got {show(action)}"}
            )
        user_ids = valid_user_ids(user_ids)
        with self._lock:
            segment = self._find_locked(system, segment_guid)
            if action == "add":
                segment.members.update(dict.fromkeys(user_ids))
            elif action == "remove":
                members = segment.members
                for user_id in user_ids:
                    members.pop(user_id, None)
            else:
                segment.members = dict.fromkeys(user_ids)
            segment.updated_at = _after(segment.updated_at)
            updated = segment.to_json()
        return json_response(200, updated)

    def _delete(self, system: str, segment_guid: str) -> Response:
        with self._lock:
            segment = self._find_locked(system, segment_guid)
            del self._systems[system][segment.guid]
        return empty_response(204)

    def _find_locked(self, system: str, segment_guid: str) -> _Segment:
        segments = self._systems.get(system)
        if segments is None:
            raise HttpError(404, _SYSTEM_NOT_FOUND)
        # The document insists on the hyphenated form, so a bare 32-hex GUID is not found.
        segment = segments.get(segment_guid.lower()) if _HYPHENATED_GUID.match(segment_guid) else None
        if segment is None:
            raise HttpError(404, _SEGMENT_NOT_FOUND)
        return segment

    @staticmethod
    def _create_locked(
        segments: dict[str, _Segment], name: str, user_ids: list[str], external_id: str | None
    ) -> dict[str, Any]:
        now = _now()
        segment = _Segment(str(uuid.uuid4()), external_id, name, dict.fromkeys(user_ids), now, now)
        segments[segment.guid] = segment
        return segment.to_json()

    def _control(self, request: Request) -> Response | None:
        path = request.path.rstrip("/")
        if path == "/_sandbox/walkme/revoke-tokens":
            if request.method != "POST":
                return method_not_allowed(("POST",))
            return json_response(200, {"revoked": self.revoke_tokens()})
        if path == "/_sandbox/walkme/tokens":
            if request.method != "GET":
                return method_not_allowed(("GET",))
            with self._lock:
                return json_response(200, {"tokens": list(self.issued_tokens)})
        if path == "/_sandbox/walkme/systems":
            if request.method == "GET":
                return json_response(200, {"systems": self.systems()})
            if request.method != "POST":
                return method_not_allowed(("GET", "POST"))
            guid = json_object_body(request).get("guid")
            if not isinstance(guid, str) or not guid.strip() or "/" in guid:
                raise HttpError(400, {"message": f"guid must be a non-empty string, got {show(guid)}"})
            self.add_system(guid)
            return json_response(201, {"guid": _normalise_system(guid)})
        match = _USERS_PATH.match(path)
        if match:
            if request.method != "GET":
                return method_not_allowed(("GET",))
            try:
                user_ids = self.members(match["system"], match["segment"])
            except KeyError:
                raise HttpError(404, {"message": "System or segment not found"}) from None
            return json_response(200, {"userIds": user_ids})
        return None


def _normalise_system(guid: str) -> str:
    if not isinstance(guid, str) or not guid.strip() or "/" in guid:
        raise ValueError(f"a system GUID must be a non-empty string without '/', got {guid!r}")
    return guid.strip().lower()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _after(previous: str) -> str:
    """The update time of a write: now, but always later than ``previous`` (every write moves it,
    even two in one millisecond, as the provider's read-back relies on)."""
    now = _now()
    try:
        earlier = datetime.fromisoformat(previous.replace("Z", "+00:00"))
    except ValueError:  # a seeded value in another format
        return now
    if datetime.fromisoformat(now.replace("Z", "+00:00")) > earlier:
        return now
    return (earlier + timedelta(milliseconds=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
