"""WalkMe Segments API knowledge: token, URLs, payloads, limits and chunking.

Source: the WalkMe "Segments API (Beta)" document. Facts the document does not state and this
hook assumes (response shapes, DELETE) are listed in ``docs/walkme.md``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any, Literal

from airflow_provider_segments._compat import BaseHook, mask_secret, timezone
from airflow_provider_segments.exceptions import (
    PartialUpdateError,
    SegmentExistsError,
    SegmentsApiError,
    SegmentsAuthError,
    SegmentsConfigError,
    SegmentsError,
    SegmentsNotFoundError,
    SegmentsUnknownOutcomeError,
    SegmentsValidationError,
)
from airflow_provider_segments.hooks._connection import normalized_extra, parse_base_url
from airflow_provider_segments.http import ApiClient
from airflow_provider_segments.user_ids import chunk_count, chunked, normalize_user_ids, preview

#: Limits stated by the Segments API document.
MAX_IDS_PER_REQUEST = 25_000
MAX_ID_LENGTH = 100
#: The editor needs up to this long before a changed segment is usable in the condition builder.
PROPAGATION_MINUTES = 10

DEFAULT_HOST = "https://api.walkme.com"
#: WalkMe's publicly listed data centres; the token endpoint lives on the same host.
REGION_HOSTS = {
    "us": "https://api.walkme.com",
    "eu": "https://eu-api.walkme.com",
    "ca": "https://api-ca1.walkmedap.com",
    "fedramp": "https://api.walkmegov.com",
}
TOKEN_PATH = "/accounts/connect/token"
SEGMENTS_PATH = "/public/v1/user/system/{system_guid}/segment"
#: Refresh a cached token this many seconds before WalkMe says it expires.
TOKEN_REFRESH_MARGIN = 300

UpdateAction = Literal["add", "remove", "override"]
UPDATE_ACTIONS: tuple[str, ...] = ("add", "remove", "override")
IF_EXISTS_CHOICES = ("update", "error")
SEGMENT_GUID_PATTERN = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
SYSTEM_GUID_PATTERN = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,63}")
MAX_NAME_LENGTH = 255


def validate_segment_guid(value: Any) -> str:
    """Return ``value`` if it is a hyphenated GUID, the form WalkMe puts in segment URLs."""
    if not isinstance(value, str) or not SEGMENT_GUID_PATTERN.fullmatch(value):
        raise SegmentsValidationError(
            f"segment_guid {preview(value)} is not a hyphenated GUID like "
            "12345aeb-123c-4d83-8b38-a5a456789d0a."
        )
    return value


def validate_update_action(value: Any) -> str:
    """Return ``value`` if it is one of WalkMe's update actions."""
    if value not in UPDATE_ACTIONS:
        raise SegmentsValidationError(
            f"action {preview(value)} is not valid: use one of {', '.join(UPDATE_ACTIONS)}."
        )
    return value


def validate_segment_name(value: Any) -> str:
    """Return ``value`` if it is a usable segment name."""
    if not isinstance(value, str) or not value.strip():
        raise SegmentsValidationError(f"name {preview(value)} is not valid: give a non-empty string.")
    if len(value) > MAX_NAME_LENGTH:
        raise SegmentsValidationError(
            f"name {preview(value)} is too long: {len(value)} characters, at most {MAX_NAME_LENGTH}."
        )
    return value


def normalize_segment(raw: Any) -> dict[str, Any]:
    """Turn one segment as the API returns it into the small dict this provider hands to XCom.

    The document shows no response bodies; the GUID is read from ``guid``, ``segmentGuid``,
    ``segmentId`` or a GUID-shaped ``id`` (``id`` is otherwise the caller's external id).
    """
    if not isinstance(raw, dict):
        raise SegmentsError(f"WalkMe returned a segment that is not an object: {preview(raw)}")
    guid = raw.get("guid") or raw.get("segmentGuid") or raw.get("segment_guid") or raw.get("segmentId")
    external_id = raw.get("id") if raw.get("id") != guid else None
    if not guid and isinstance(raw.get("id"), str) and SEGMENT_GUID_PATTERN.fullmatch(raw["id"]):
        guid, external_id = raw["id"], raw.get("externalId")
    count = raw.get("usersCount", raw.get("userCount", raw.get("user_count")))
    return {
        "segment_guid": guid,
        "name": raw.get("name"),
        "external_id": external_id if external_id is not None else raw.get("externalId"),
        "user_count": count,
        "created_at": raw.get("createdAt") or raw.get("created_at"),
        "updated_at": raw.get("updatedAt") or raw.get("updated_at"),
    }


class WalkMeHook(BaseHook):
    """Talk to the WalkMe Segments API through an Airflow connection of type ``walkme``.

    Connection fields: ``host`` is the API base URL (empty: the ``extra.region`` host, else
    ``https://api.walkme.com``; a full URL with scheme and port is honoured), ``login`` the Client ID,
    ``password`` the Client Secret, ``extra.system_guid`` the default system. Retry budget,
    timeouts and TLS settings may be tuned in ``extra`` (see :meth:`ApiClient.from_extra`).

    :param walkme_conn_id: the Airflow connection to use.
    """

    conn_name_attr = "walkme_conn_id"
    default_conn_name = "walkme_default"
    conn_type = "walkme"
    hook_name = "WalkMe"

    def __init__(self, walkme_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.walkme_conn_id = walkme_conn_id
        self._token: str | None = None
        self._token_expires_at = 0.0

    def __repr__(self) -> str:
        return f"WalkMeHook(walkme_conn_id={self.walkme_conn_id!r})"

    # -- connection ----------------------------------------------------------------------------
    @cached_property
    def _settings(self) -> dict[str, Any]:
        conn = self.get_connection(self.walkme_conn_id)
        extra = normalized_extra(conn.extra_dejson, self.conn_type)
        if not conn.login:
            raise SegmentsConfigError(
                f"Connection {self.walkme_conn_id!r} has no Client ID: set its login field."
            )
        if not conn.password:
            raise SegmentsConfigError(
                f"Connection {self.walkme_conn_id!r} has no Client Secret: set its password field."
            )
        mask_secret(conn.password)
        return {
            "base_url": self._base_url(conn.host, conn.port, extra.get("region")),
            "client_id": conn.login,
            "client_secret": conn.password,
            "system_guid": extra.get("system_guid") or None,
            "extra": extra,
        }

    def _base_url(self, host: str | None, port: int | None, region: Any) -> str:
        region_url = None
        if region not in (None, ""):
            key = str(region).strip().lower()
            if key not in REGION_HOSTS:
                raise SegmentsConfigError(
                    f"Connection {self.walkme_conn_id!r}: extra field 'region' is {region!r}; "
                    f"known regions are {', '.join(REGION_HOSTS)} (or set the host to a full URL)."
                )
            region_url = REGION_HOSTS[key]
        host = (host or "").strip()
        if not host:
            return region_url or DEFAULT_HOST
        if region_url:
            self.log.info("Connection %r sets both host and region; the host wins.", self.walkme_conn_id)
        url = host if "://" in host else f"https://{host}"
        return parse_base_url(url, port, conn_id=self.walkme_conn_id, example=DEFAULT_HOST)

    @cached_property
    def client(self) -> ApiClient:
        """The HTTP client (built on first use: nothing is read or sent at construction)."""
        settings = self._settings
        client = ApiClient.from_extra(
            platform="WalkMe",
            base_url=settings["base_url"],
            extra=settings["extra"],
            conn_id=self.walkme_conn_id,
            hints={
                401: f"Check the Client ID and Client Secret of Airflow connection {self.walkme_conn_id!r}.",
                403: f"Check that the API key of connection {self.walkme_conn_id!r} has Segments API "
                "read and write access.",
            },
            logger=self.log,
        )
        client.add_secret(settings["client_secret"])
        return client

    @property
    def base_url(self) -> str:
        """The API base URL this hook talks to."""
        return self._settings["base_url"]

    def resolve_system_guid(self, system_guid: str | None = None) -> str:
        """Return the task's system GUID, else the connection's default; refuse a malformed one."""
        value = system_guid or self._settings["system_guid"]
        if not value:
            raise SegmentsValidationError(
                f"No WalkMe system GUID: pass system_guid to the task or set extra.system_guid on "
                f"connection {self.walkme_conn_id!r}."
            )
        if not isinstance(value, str) or not SYSTEM_GUID_PATTERN.fullmatch(value):
            raise SegmentsValidationError(
                f"system_guid {preview(value)} is not valid: expected letters, digits and hyphens only "
                "(copy it from Editor > Snippet)."
            )
        return value

    # -- token ---------------------------------------------------------------------------------
    def get_access_token(self, force_refresh: bool = False) -> str:
        """Return a bearer token, fetching a new one when none is cached or it is about to expire."""
        if not force_refresh and self._token and time.monotonic() < self._token_expires_at:
            return self._token
        settings = self._settings
        body = self.client.request_json(
            "POST",
            TOKEN_PATH,
            data={"grant_type": "client_credentials"},
            auth=(settings["client_id"], settings["client_secret"]),
            idempotent=True,  # asking for a token changes nothing on the server
        )
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token or not isinstance(token, str):
            raise SegmentsApiError(
                "WalkMe token endpoint answered without an access_token.",
                platform="WalkMe",
                method="POST",
                endpoint=TOKEN_PATH,
            )
        mask_secret(token)
        self.client.add_secret(token)
        try:
            lifetime = float(body.get("expires_in", 86400))
        except (TypeError, ValueError):
            lifetime = 86400.0
        self._token = token
        self._token_expires_at = time.monotonic() + max(0.0, lifetime - TOKEN_REFRESH_MARGIN)
        self.log.info("Fetched a WalkMe access token valid for %d s.", int(lifetime))
        return token

    def _call(self, method: str, path: str, *, json_body: Any = None, idempotent: bool | None = None) -> Any:
        """Send one Segments API call with the bearer token; on a 401 fetch a new token once."""
        for attempt in (1, 2):
            token = self.get_access_token(force_refresh=attempt == 2)
            try:
                return self.client.request_json(
                    method,
                    path,
                    json_body=json_body,
                    headers={"Authorization": f"Bearer {token}"},
                    idempotent=idempotent,
                )
            except SegmentsAuthError as err:
                if err.status != 401 or attempt == 2:
                    raise
                self.log.info("WalkMe refused the cached token (401); fetching a new one and retrying once.")
        raise AssertionError("unreachable")  # pragma: no cover

    # -- segments ------------------------------------------------------------------------------
    def list_segments(self, system_guid: str | None = None) -> list[dict[str, Any]]:
        """Return every segment of the system, as dicts with ``segment_guid``, ``name``, ..."""
        system = self.resolve_system_guid(system_guid)
        body = self._call("GET", SEGMENTS_PATH.format(system_guid=system))
        if isinstance(body, dict):
            for key in ("segments", "data", "items", "results"):
                if isinstance(body.get(key), list):
                    body = body[key]
                    break
        if not isinstance(body, list):
            raise SegmentsError(f"WalkMe listed segments in an unexpected shape: {preview(body)}")
        return [normalize_segment(raw) for raw in body]

    def find_segments_by_name(self, name: str, system_guid: str | None = None) -> list[dict[str, Any]]:
        """Return the segments of the system whose name is exactly ``name``."""
        return [seg for seg in self.list_segments(system_guid) if seg["name"] == name]

    def get_segment(self, segment_guid: str, system_guid: str | None = None) -> dict[str, Any] | None:
        """Return the segment with this GUID, or ``None`` when the system does not list it."""
        validate_segment_guid(segment_guid)
        wanted = segment_guid.lower()
        for seg in self.list_segments(system_guid):
            if str(seg["segment_guid"]).lower() == wanted:
                return seg
        return None

    def create_segment(
        self,
        name: str,
        user_ids: Any,
        system_guid: str | None = None,
        external_id: str | None = None,
        if_exists: str = "update",
    ) -> dict[str, Any]:
        """Create a segment holding exactly ``user_ids``; safe to retry.

        Everything is validated before the first request. The name is looked up first: when a
        segment of that name exists, ``if_exists="update"`` overrides its users (so a retried task
        never creates a duplicate) and ``"error"`` raises :class:`SegmentExistsError`. More than
        25,000 ids are sent as a create with the first 25,000 followed by ``add`` chunks.

        :return: ``segment_guid``, ``name``, ``system_guid``, ``external_id``, ``user_count``,
            ``requests`` (write requests sent), ``created`` and ``changed_at`` (ISO-8601 UTC).
        """
        validate_segment_name(name)
        if if_exists not in IF_EXISTS_CHOICES:
            raise SegmentsValidationError(
                f"if_exists {preview(if_exists)} is not valid: use one of {', '.join(IF_EXISTS_CHOICES)}."
            )
        if external_id is not None and (not isinstance(external_id, str) or not external_id.strip()):
            raise SegmentsValidationError(f"external_id {preview(external_id)} must be a non-empty string.")
        ids = normalize_user_ids(user_ids, max_length=MAX_ID_LENGTH)
        system = self.resolve_system_guid(system_guid)

        existing = self._existing_by_name(name, system, if_exists)
        if existing is not None:
            guid = existing["segment_guid"]
            self.log.info(
                "Segment %r already exists in system %s (%s): overriding its users instead of creating "
                "a duplicate (if_exists='update').",
                name,
                system,
                guid,
            )
            result = self._apply(system, guid, "override", ids)
            return {**result, "name": name, "external_id": existing.get("external_id"), "created": False}
        return self._create_new(system, name, ids, external_id)

    def _create_new(
        self, system: str, name: str, ids: Sequence[str], external_id: str | None = None
    ) -> dict[str, Any]:
        """Create a segment known not to exist: the first chunk in the create, ``add`` for the rest."""
        total_chunks = max(1, chunk_count(len(ids), MAX_IDS_PER_REQUEST))
        first = ids[:MAX_IDS_PER_REQUEST]
        payload: dict[str, Any] = {"name": name, "userIds": first}
        if external_id is not None:
            payload["id"] = external_id
        self.log.info(
            "Creating WalkMe segment %r in system %s with %s ids in %d request(s).",
            name,
            system,
            f"{len(ids):,}",
            total_chunks,
        )
        segment = self._post_create(system, name, payload)
        guid = segment["segment_guid"]
        self.log.info("chunk 1/%d (create): %s/%s ids", total_chunks, f"{len(first):,}", f"{len(ids):,}")
        steps = [("add", chunk) for chunk in chunked(ids[MAX_IDS_PER_REQUEST:], MAX_IDS_PER_REQUEST)]
        self._send_chunks(
            system,
            guid,
            steps,
            total_chunks=total_chunks,
            total_ids=len(ids),
            applied_chunks=1,
            applied_ids=len(first),
            what=f"created segment {name!r} ({guid}) with the first {len(first):,} ids",
        )
        return {
            "segment_guid": guid,
            "name": name,
            "system_guid": system,
            "external_id": external_id,
            "user_count": len(ids),
            "requests": total_chunks,
            "created": True,
            "changed_at": _now_iso(),
        }

    def _existing_by_name(self, name: str, system: str, if_exists: str) -> dict[str, Any] | None:
        matches = self.find_segments_by_name(name, system)
        if not matches:
            return None
        guids = ", ".join(str(seg["segment_guid"]) for seg in matches)
        if if_exists == "error":
            raise SegmentExistsError(
                f"A WalkMe segment named {name!r} already exists in system {system} ({guids}) and "
                "if_exists='error'. Use WalkMeUpdateSegmentOperator, or if_exists='update'."
            )
        if len(matches) > 1:
            raise SegmentsError(
                f"{len(matches)} WalkMe segments are named {name!r} in system {system} ({guids}); "
                "refusing to guess which to update. Delete the extras or update one by segment_guid."
            )
        return matches[0]

    def _post_create(self, system: str, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST a create; when its outcome is unknown, look before sending it again."""
        path = SEGMENTS_PATH.format(system_guid=system)
        try:
            return normalize_segment(self._call("POST", path, json_body=payload, idempotent=False))
        except SegmentsUnknownOutcomeError as err:
            self.log.warning("%s. Checking whether segment %r was created before trying again.", err, name)
        landed = self._existing_by_name(name, system, "update")  # raises if two share the name
        if landed is None:
            return normalize_segment(self._call("POST", path, json_body=payload, idempotent=False))
        self.log.info("The create had landed (%s); continuing with it.", landed["segment_guid"])
        # The lost response may hide a partial write; override makes the first chunk exact.
        self._call(
            "PUT",
            f"{path}/{landed['segment_guid']}",
            json_body={"action": "override", "userIds": payload["userIds"]},
        )
        return landed

    def update_segment(
        self,
        segment_guid: str,
        action: str,
        user_ids: Any,
        system_guid: str | None = None,
    ) -> dict[str, Any]:
        """Add, remove or override the users of a segment, in chunks of at most 25,000 ids.

        ``override`` with more than 25,000 ids overrides with the first chunk and adds the rest, so
        the final membership is exactly ``user_ids``. Validated before the first request.

        :return: ``segment_guid``, ``system_guid``, ``action``, ``user_count``, ``requests``,
            ``changed_at``.
        """
        validate_segment_guid(segment_guid)
        validate_update_action(action)
        ids = normalize_user_ids(user_ids, max_length=MAX_ID_LENGTH)
        system = self.resolve_system_guid(system_guid)
        return self._apply(system, segment_guid, action, ids)

    def sync_segment(
        self,
        user_ids: Any,
        *,
        segment_guid: str | None = None,
        name: str | None = None,
        system_guid: str | None = None,
        previous: Sequence[str] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Make a segment's membership equal ``user_ids``, sending only the difference when possible.

        With ``previous`` (the membership the last successful sync left) only ``add`` chunks for the
        new ids and ``remove`` chunks for the gone ones are sent ("delta"); without it the segment is
        created, or overridden in chunks ("full"). The segment is ``segment_guid``, else the one
        named ``name`` (created when absent). ``dry_run`` computes and logs the plan and contacts
        nothing: the plan then assumes the segment exists exactly when ``previous`` is given.

        :return: ``mode`` (``delta``/``full``), ``added``, ``removed``, ``unchanged`` (``None`` when
            unknown: a full override of a segment whose membership was not known), ``requests``
            (write requests), ``user_count``, ``segment_guid``, ``system_guid``, ``name``,
            ``changed_at``, ``dry_run``.
        """
        if segment_guid is None and name is None:
            raise SegmentsValidationError("Give segment_guid or name of the segment to sync.")
        if segment_guid is not None:
            validate_segment_guid(segment_guid)
        if name is not None:
            validate_segment_name(name)
        ids = normalize_user_ids(user_ids, max_length=MAX_ID_LENGTH)
        system = self.resolve_system_guid(system_guid)
        plan = _sync_plan(ids, previous)
        summary = {
            "mode": plan["mode"],
            "added": plan["added_count"],
            "removed": plan["removed_count"],
            "unchanged": plan["unchanged"],
            "requests": plan["requests"],
            "user_count": len(ids),
            "system_guid": system,
            "name": name,
            "dry_run": dry_run,
        }
        self.log.info(
            "Sync plan (%s): %s to add, %s to remove, %s unchanged, %d write request(s).",
            plan["mode"],
            _count(plan["added_count"]),
            _count(plan["removed_count"]),
            _count(plan["unchanged"]),
            plan["requests"],
        )
        if dry_run:
            self.log.info("Dry run: nothing was sent.")
            return {**summary, "segment_guid": segment_guid, "changed_at": None}

        segment = self._sync_target(system, segment_guid, name)
        if segment is None:  # a name nobody uses yet: create it, whatever the snapshot said
            created = self._create_new(system, name, ids)
            return {
                **summary,
                "mode": "full",
                "added": len(ids),
                "removed": 0,
                "unchanged": 0,
                "requests": created["requests"],
                "segment_guid": created["segment_guid"],
                "changed_at": created["changed_at"],
            }
        guid = segment["segment_guid"]
        if plan["mode"] == "full":
            applied = self._apply(system, guid, "override", ids)
            return {
                **summary,
                "segment_guid": guid,
                "name": segment["name"],
                "changed_at": applied["changed_at"],
            }
        steps = [("add", c) for c in chunked(plan["added"], MAX_IDS_PER_REQUEST)]
        steps += [("remove", c) for c in chunked(plan["removed"], MAX_IDS_PER_REQUEST)]
        total = len(plan["added"]) + len(plan["removed"])
        self._send_chunks(system, guid, steps, total_chunks=len(steps), total_ids=total)
        return {**summary, "segment_guid": guid, "name": segment["name"], "changed_at": _now_iso()}

    def _sync_target(self, system: str, segment_guid: str | None, name: str | None) -> dict[str, Any] | None:
        if segment_guid is not None:
            segment = self.get_segment(segment_guid, system)
            if segment is None:
                raise SegmentsNotFoundError(
                    f"WalkMe segment {segment_guid} is not listed in system {system}; sync by name to "
                    "create it.",
                    platform="WalkMe",
                    method="GET",
                    endpoint=SEGMENTS_PATH.format(system_guid=system),
                    status=None,
                )
            return segment
        return self._existing_by_name(name, system, "update")

    def _apply(self, system: str, guid: str, action: str, ids: Sequence[str]) -> dict[str, Any]:
        chunks = list(chunked(ids, MAX_IDS_PER_REQUEST))
        if action == "override":
            # An empty override is one request that empties the segment.
            steps = [("override" if i == 0 else "add", c) for i, c in enumerate(chunks or [[]])]
        else:
            steps = [(action, c) for c in chunks]
        if not steps:
            self.log.info("No ids to %s for segment %s: nothing sent.", action, guid)
        else:
            self.log.info(
                "Updating WalkMe segment %s (%s) with %s ids in %d request(s).",
                guid,
                action,
                f"{len(ids):,}",
                len(steps),
            )
        self._send_chunks(system, guid, steps, total_chunks=len(steps), total_ids=len(ids))
        return {
            "segment_guid": guid,
            "system_guid": system,
            "action": action,
            "user_count": len(ids),
            "requests": len(steps),
            "changed_at": _now_iso(),
        }

    def _send_chunks(
        self,
        system: str,
        guid: str,
        steps: Sequence[tuple[str, Sequence[str]]],
        *,
        total_chunks: int,
        total_ids: int,
        applied_chunks: int = 0,
        applied_ids: int = 0,
        what: str = "",
    ) -> None:
        path = f"{SEGMENTS_PATH.format(system_guid=system)}/{guid}"
        for action, chunk in steps:
            try:
                self._call("PUT", path, json_body={"action": action, "userIds": list(chunk)})
            except SegmentsError as err:
                done = f"{what}; then " if what else ""
                raise PartialUpdateError(
                    f"WalkMe segment {guid}: {done}chunk {applied_chunks + 1}/{total_chunks} ({action}) "
                    f"failed after {applied_chunks} of {total_chunks} chunks were applied "
                    f"({applied_ids:,} of {total_ids:,} ids); {total_ids - applied_ids:,} ids were not "
                    f"sent. Rerunning the task converges to the requested membership. Cause: {err}",
                    applied_chunks=applied_chunks,
                    total_chunks=total_chunks,
                    applied_ids=applied_ids,
                    total_ids=total_ids,
                ) from err
            applied_chunks += 1
            applied_ids += len(chunk)
            self.log.info(
                "chunk %d/%d (%s): %s/%s ids",
                applied_chunks,
                total_chunks,
                action,
                f"{applied_ids:,}",
                f"{total_ids:,}",
            )

    def delete_segment(
        self, segment_guid: str, system_guid: str | None = None, missing_ok: bool = True
    ) -> str:
        """Delete a segment; one that is already gone counts as deleted unless ``missing_ok=False``.

        DELETE is not in WalkMe's Segments API document; this assumes
        ``DELETE .../segment/{segmentGuid}`` as the natural counterpart of update.
        """
        validate_segment_guid(segment_guid)
        system = self.resolve_system_guid(system_guid)
        try:
            self._call("DELETE", f"{SEGMENTS_PATH.format(system_guid=system)}/{segment_guid}")
        except SegmentsNotFoundError:
            if not missing_ok:
                raise
            self.log.info("WalkMe segment %s was already gone from system %s.", segment_guid, system)
        else:
            self.log.info("Deleted WalkMe segment %s from system %s.", segment_guid, system)
        return segment_guid

    def test_connection(self) -> tuple[bool, str]:
        """Fetch a token (and list the default system's segments, if one is set); never echo a secret."""
        try:
            self.get_access_token(force_refresh=True)
            message = f"Got a WalkMe access token from {self.base_url}"
            if self._settings["system_guid"]:
                count = len(self.list_segments())
                message += f"; system {self._settings['system_guid']} lists {count} segment(s)"
            return True, message + "."
        except SegmentsError as err:
            return False, str(err)


def _now_iso() -> str:
    return timezone.utcnow().isoformat()


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _sync_plan(ids: Sequence[str], previous: Sequence[str] | None) -> dict[str, Any]:
    """What a sync sends: the whole list (no previous membership) or only the difference."""
    if previous is None:
        requests = max(1, chunk_count(len(ids), MAX_IDS_PER_REQUEST))
        return {
            "mode": "full",
            "added": [],
            "removed": [],
            "added_count": len(ids),
            "removed_count": None,
            "unchanged": None,
            "requests": requests,
        }
    before = previous if isinstance(previous, (set, frozenset, dict)) else set(previous)
    wanted = getattr(ids, "index", None) or set(ids)
    added = [i for i in ids if i not in before]
    removed = [i for i in previous if i not in wanted]
    return {
        "mode": "delta",
        "added": added,
        "removed": removed,
        "added_count": len(added),
        "removed_count": len(removed),
        "unchanged": len(ids) - len(added),
        "requests": chunk_count(len(added), MAX_IDS_PER_REQUEST)
        + chunk_count(len(removed), MAX_IDS_PER_REQUEST),
    }
