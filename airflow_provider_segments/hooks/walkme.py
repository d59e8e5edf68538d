"""WalkMe Segments API knowledge: token, URLs, payloads, limits and chunking.

Source: the WalkMe "Segments API (Beta)" document. Facts the document does not state and this
hook assumes (response shapes, DELETE) are listed in ``docs/walkme.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from airflow_provider_segments import membership
from airflow_provider_segments.exceptions import (
    SegmentsApiError,
    SegmentsAuthError,
    SegmentsError,
    SegmentsValidationError,
)
from airflow_provider_segments.hooks._base import SegmentsHook, check_if_exists
from airflow_provider_segments.hooks.walkme_connection import WalkMeConnection
from airflow_provider_segments.hooks.walkme_listing import listed_segments
from airflow_provider_segments.hooks.walkme_token import TokenCache, access_token_of, lifetime_of
from airflow_provider_segments.membership import DEFAULT_MAX_REMOVAL_FRACTION, Guards
from airflow_provider_segments.membership.sender import (
    DEFAULT_PARALLEL_REQUESTS,
    check_parallel_requests,
    parallel_requests,
)
from airflow_provider_segments.membership.writes import AnsweredTimes
from airflow_provider_segments.text import preview
from airflow_provider_segments.vocabulary import (
    normalize_segment,
    updated_at_of,
    validate_segment_guid,
    validate_segment_name,
    validate_system_guid,
    validate_update_action,
)

#: Limits stated by the Segments API document.
MAX_IDS_PER_REQUEST = 25_000
MAX_ID_LENGTH = 100
#: The editor needs up to this long before a changed segment is usable in the condition builder.
PROPAGATION_MINUTES = 10

TOKEN_PATH = "/accounts/connect/token"
SEGMENTS_PATH = "/public/v1/user/system/{system_guid}/segment"


class WalkMeHook(SegmentsHook[WalkMeConnection]):
    """Talk to the WalkMe Segments API through an Airflow connection of type ``walkme``.

    Connection fields: ``host`` is the API base URL (empty: the ``extra.region`` host, else
    ``https://api.walkme.com``; a full URL with scheme and port is honoured), ``login`` the Client ID,
    ``password`` the Client Secret, ``extra.system_guid`` the default system. Retry budget,
    timeouts and TLS settings may be tuned in ``extra`` (see :meth:`ApiClient.from_extra`).

    :param walkme_conn_id: the Airflow connection to use.
    :param max_parallel_requests: ``add``/``remove`` chunk writes in flight at once, 1 to 16 (an
        ``override`` is always sent alone); the membership methods take it per call too.
    """

    conn_name_attr = "walkme_conn_id"
    default_conn_name = "walkme_default"
    conn_type = "walkme"
    hook_name = "WalkMe"
    platform = "WalkMe"
    #: WalkMe's limit of ids in one request (the membership engine chunks to it).
    max_ids_per_request = MAX_IDS_PER_REQUEST

    def __init__(
        self,
        walkme_conn_id: str = default_conn_name,
        max_parallel_requests: int = DEFAULT_PARALLEL_REQUESTS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.walkme_conn_id = walkme_conn_id
        #: Chunk writes in flight at once (the membership engine's chunk sender reads it).
        self.max_parallel_requests = check_parallel_requests(max_parallel_requests)
        self._tokens = TokenCache()  # shared by the threads that send chunk writes
        self._answered_writes = AnsweredTimes()  # what the read-back ties to this hook's writes

    # -- connection ----------------------------------------------------------------------------
    def read_connection(self, conn: Any, extra: dict[str, Any]) -> WalkMeConnection:
        return WalkMeConnection.read(conn, extra, conn_id=self.conn_id, log=self.log)

    def secret_label(self) -> str:
        return "Client Secret"

    def error_hints(self) -> dict[int, str]:
        return {
            401: f"Check the Client ID and Client Secret of Airflow connection {self.conn_id!r}.",
            403: f"Check that the API key of connection {self.conn_id!r} has Segments API read and write "
            "access.",
        }

    def resolve_system_guid(self, system_guid: str | None = None) -> str:
        """Return the task's system GUID, else (``None``) the connection's default; refuse a bad one."""
        if system_guid is not None:  # "", 0, [] (a template rendering to nothing) is no system: refused
            return validate_system_guid(system_guid)
        if not self.settings.system_guid:  # checked when the connection was read
            raise SegmentsValidationError(
                f"No WalkMe system GUID: pass system_guid to the task or set extra.system_guid on "
                f"connection {self.walkme_conn_id!r}."
            )
        return self.settings.system_guid

    # -- token ---------------------------------------------------------------------------------
    def get_access_token(self, force_refresh: bool = False, *, refused: str | None = None) -> str:
        """Return a bearer token, fetching a new one when none is cached or it is about to expire.

        Safe from several threads: one fetches, the others wait and share its token. ``refused``:
        the token WalkMe just refused (401); a newer one another thread fetched meanwhile is reused.
        """
        return self._tokens.get(self._fetch_token, force_refresh=force_refresh, refused=refused)

    def _fetch_token(self) -> tuple[str, int]:
        settings = self.settings
        body = self.client.request_json(
            "POST",
            TOKEN_PATH,
            data={"grant_type": "client_credentials"},
            auth=(settings.login, settings.secret),
            idempotent=True,  # asking for a token changes nothing on the server
        )
        token = access_token_of(body, TOKEN_PATH)
        self.register_secret(token)
        lifetime = lifetime_of(body, self.log)
        self.log.info("Fetched a WalkMe access token valid for %d s.", lifetime)
        return token, lifetime

    def _call(self, method: str, path: str, *, json_body: Any = None, idempotent: bool | None = None) -> Any:
        """Send one Segments API call with the bearer token; on a 401 fetch a new token once."""
        return self._call_and_headers(method, path, json_body=json_body, idempotent=idempotent)[0]

    def _call_and_headers(
        self, method: str, path: str, *, json_body: Any = None, idempotent: bool | None = None
    ) -> tuple[Any, Mapping[str, str]]:
        """:meth:`_call`, with the answer's headers."""
        token, refused = None, None
        for attempt in (1, 2):
            calling = False  # a failure fetching the token is not the call's 401
            try:
                token = self.get_access_token(force_refresh=attempt == 2, refused=token)
                calling = True
                return self.client.request_json_and_headers(
                    method,
                    path,
                    json_body=json_body,
                    headers={"Authorization": f"Bearer {token}"},
                    idempotent=idempotent,
                )
            except SegmentsApiError as err:
                if not calling:  # (this thread's own error) the token call's outcome is not the call's
                    err.may_have_applied = False
                if refused is not None and refused.may_have_applied:
                    err.may_have_applied = True  # an attempt before the 401 may have landed all the same
                if not calling or not isinstance(err, SegmentsAuthError) or err.status != 401 or attempt == 2:
                    raise
                refused = err
                self.log.info("WalkMe refused the cached token (401); fetching a new one and retrying once.")
        raise AssertionError("unreachable")  # pragma: no cover

    # -- segments ------------------------------------------------------------------------------
    def list_segments(self, system_guid: str | None = None) -> list[dict[str, Any]]:
        """Return every segment of the system, as dicts with ``segment_guid``, ``name``, ..."""
        system = self.resolve_system_guid(system_guid)
        body, headers = self._call_and_headers("GET", SEGMENTS_PATH.format(system_guid=system))
        return listed_segments(body, self.client.preview, headers)  # only a whole list, valid GUIDs

    def find_segments_by_name(self, name: str, system_guid: str | None = None) -> list[dict[str, Any]]:
        """Return the segments of the system whose name is exactly ``name``."""
        return [seg for seg in self.list_segments(system_guid) if seg["name"] == name]

    def get_segment(self, segment_guid: str, system_guid: str | None = None) -> dict[str, Any] | None:
        """Return the segment with this GUID, or ``None`` when the system does not list it."""
        wanted = validate_segment_guid(segment_guid).lower()
        for seg in self.list_segments(system_guid):
            if str(seg["segment_guid"]).lower() == wanted:
                return seg
        return None

    # -- plain API calls (the membership engine builds changes out of these)  ----------------
    def post_segment(
        self, system: str, name: str, user_ids: list[str], external_id: str | None = None
    ) -> dict[str, Any]:
        """POST one create (at most 25,000 ids); the new segment, normalised.

        :raises SegmentsUnknownOutcomeError: when the server may or may not have created it.
        """
        payload: dict[str, Any] = {"name": name, "userIds": user_ids}
        if external_id is not None:
            payload["id"] = external_id
        path = SEGMENTS_PATH.format(system_guid=system)
        body = self._call("POST", path, json_body=payload, idempotent=False)
        # normalize_segment checks the GUID the next chunks' URLs are built from; an answer it cannot
        # read is one without an id (the caller looks the name up): the create landed all the same.
        try:
            segment: dict[str, Any] = (
                normalize_segment(body) if isinstance(body, dict) else {"segment_guid": None}
            )
        except SegmentsError as err:
            self.log.warning("WalkMe answered the create of %r in a way not read (%s).", name, err)
            return {"segment_guid": None}
        self._answered_writes.note(str(segment["segment_guid"]), segment.get("updated_at"), create=True)
        return segment

    def put_users(
        self, system: str, segment_guid: str, action: str, user_ids: list[str], *, idempotent: bool = True
    ) -> None:
        """PUT one ``add``/``remove``/``override`` of at most 25,000 ids.

        :param idempotent: let the HTTP client retry it when its outcome is unknown (right for one
            write on its own; the membership engine sends an ``override`` followed by other writes
            with ``False`` and handles the unknown outcome itself).
        """
        if len(user_ids) > self.max_ids_per_request:
            raise SegmentsValidationError(
                f"{len(user_ids):,} ids in one request; WalkMe allows {self.max_ids_per_request:,}."
            )
        answer = self._call(
            "PUT",
            f"{SEGMENTS_PATH.format(system_guid=system)}/{segment_guid}",
            json_body={"action": action, "userIds": user_ids},
            idempotent=idempotent,
        )
        # WalkMe's document does not say what a PUT answers: only its time is read (an error about
        # the rest would report a write that landed as refused); none makes the latest unknown
        self._answered_writes.note(segment_guid, updated_at_of(answer) if isinstance(answer, dict) else None)

    def take_answered_write_times(self, segment_guid: str) -> tuple[str, ...]:
        """The latest update times WalkMe answered this hook's writes of the segment with since the
        last call, one per precision (none: no write, or an answer carried none); a segment listed
        as updated later than each was changed by someone else since. See :class:`AnsweredTimes`."""
        return self._answered_writes.take(segment_guid)

    @property
    def late_write_grace(self) -> float:
        """Seconds after which a write whose answer was lost is taken to have landed or died: twice
        the per-attempt deadline, on top of the deadline the lost attempt already waited."""
        return 2 * self.client.timeouts.attempt_deadline

    def sleep(self, seconds: float) -> None:
        """Wait (through the client, so tests can make it instant)."""
        self.client.sleep(seconds)

    def congestion_signals(self) -> int:
        """Answers so far that said "slow down" (429, 5xx) or were retried, from every thread."""
        return self.client.congestion_signals

    # -- membership changes (delegated to the membership engine) -------------------------------------
    def create_segment(
        self,
        name: str,
        user_ids: Any,
        system_guid: str | None = None,
        external_id: str | None = None,
        if_exists: str = "update",
        *,
        allow_empty: bool = False,
        max_removal_fraction: float | None = DEFAULT_MAX_REMOVAL_FRACTION,
        max_parallel_requests: int | None = None,
        creation_token: str | None = None,
        created_after: datetime | None = None,
    ) -> dict[str, Any]:
        """Create a segment holding exactly ``user_ids``; safe to retry.

        Everything is validated before the first request. The name is looked up first: when a
        segment of that name exists, ``if_exists="update"`` overrides its users (so a retried task
        never creates a duplicate) and ``"error"`` raises :class:`SegmentExistsError`, unless the
        segment carries this task's ``creation_token`` (an earlier try of the same task created it).
        More than 25,000 ids are sent as a create with the first 25,000 followed by ``add`` chunks.
        Without ``external_id`` the segment's external id is the creation token.

        :param allow_empty: let an empty ``user_ids`` through (else refused before anything is sent).
        :param max_removal_fraction: refuse overriding an existing segment when that would remove
            more than this share of the members it lists (``None``: no limit).
        :param max_parallel_requests: for this call (``None``: the hook's, see the class).
        :param creation_token: marks the segments this task creates (the operators derive it from
            the DAG run and task); default: a new token per call.
        :param created_after: when this DAG run started: with ``external_id``, a segment of this name
            and external id created since then is this task's own (an earlier try's).
        :return: ``segment_guid``, ``name``, ``system_guid``, ``external_id``, ``user_count``,
            ``requests`` (write requests sent), ``created``, ``changed_at`` (ISO-8601 UTC), and the
            read-back: ``listed_user_count``, ``verification`` (``"exact"``; ``None`` where WalkMe lists
            no count) and ``verified`` (``True`` when exact).
        """
        validate_segment_name(name)
        check_if_exists(if_exists)
        if external_id is not None and (not isinstance(external_id, str) or not external_id.strip()):
            raise SegmentsValidationError(f"external_id {preview(external_id)} must be a non-empty string.")
        guards = Guards(allow_empty, max_removal_fraction)
        with parallel_requests(self, max_parallel_requests):
            result = membership.create_segment(
                self,
                self.resolve_system_guid(system_guid),
                name,
                user_ids,
                max_length=MAX_ID_LENGTH,
                external_id=external_id,
                if_exists=if_exists,
                creation_token=creation_token,
                created_after=created_after,
                guards=guards,
            )
        return self._reported(user_ids, result)

    def update_segment(
        self,
        segment_guid: str,
        action: str,
        user_ids: Any,
        system_guid: str | None = None,
        *,
        allow_empty: bool = False,
        max_removal_fraction: float | None = DEFAULT_MAX_REMOVAL_FRACTION,
        max_parallel_requests: int | None = None,
    ) -> dict[str, Any]:
        """Add, remove or override the users of a segment, in chunks of at most 25,000 ids.

        ``override`` with more than 25,000 ids overrides with the first chunk and adds the rest, so
        the final membership is exactly ``user_ids``; an ``override`` with no ids, or an ``override``
        or ``remove`` that could remove more than ``max_removal_fraction`` of the members WalkMe
        lists (a ``remove`` counts each id as a member), is refused unless allowed. Validated before
        the first request.

        After the change the segment is read back: an ``override`` must list exactly as many members
        as ``user_ids`` holds, an ``add`` at least that many, and the update time WalkMe lists must
        have moved, else :class:`MembershipMismatchError`. A multi-chunk ``override`` is also read
        back after its first chunk.

        :param max_parallel_requests: for this call (``None``: the hook's, see the class).
        :return: ``segment_guid``, ``system_guid``, ``action``, ``user_count``, ``requests``,
            ``changed_at``, ``listed_user_count``, ``verification`` (``"exact"``, ``"bounds"`` for an
            add or remove, ``None``: see Reliability) and ``verified`` (``True`` when exact).
        """
        guid = validate_segment_guid(segment_guid)
        validate_update_action(action)
        guards = Guards(allow_empty, max_removal_fraction)
        with parallel_requests(self, max_parallel_requests):
            result = membership.update_segment(
                self,
                self.resolve_system_guid(system_guid),
                guid,
                action,
                user_ids,
                max_length=MAX_ID_LENGTH,
                guards=guards,
            )
        return self._reported(user_ids, result)

    def sync_segment(
        self,
        user_ids: Any,
        *,
        segment_guid: str | None = None,
        name: str | None = None,
        system_guid: str | None = None,
        state_path: Any = None,
        full_refresh: bool = False,
        dry_run: bool = False,
        allow_empty: bool = False,
        max_removal_fraction: float | None = DEFAULT_MAX_REMOVAL_FRACTION,
        max_parallel_requests: int | None = None,
        creation_token: str | None = None,
        created_after: datetime | None = None,
    ) -> dict[str, Any]:
        """Make a segment's membership equal ``user_ids``, sending only the difference when possible.

        With a snapshot at ``state_path`` (written by the last successful sync of the same segment)
        that WalkMe's listed member count and update time still agree with, only ``add`` chunks for
        new ids and ``remove`` chunks for gone ones are sent ("delta"); otherwise the segment is
        created, or overridden in chunks ("full"). After the writes the segment is read back and must
        list exactly as many members as the input holds. The segment is ``segment_guid``, else the
        one named ``name`` (created when absent). ``dry_run`` logs the plan after read-only calls
        and writes nothing. What the snapshot, journal and lease promise:
        :mod:`airflow_provider_segments.membership.state`.

        :param max_parallel_requests: for this call (``None``: the hook's, see the class).
        :return: ``mode``, ``added``/``removed``/``unchanged`` (the change on the platform; ``None``
            when unknown), ``requests`` and ``ids_sent`` (sent), ``user_count``, ``segment_guid``,
            ``system_guid``, ``name``, ``changed_at`` (of the last change that sent anything),
            ``dry_run``, ``listed_user_count`` (the count WalkMe lists after the change) and
            ``verification``/``verified`` (``None``/``False`` without a listed count, or on a dry run).
        """
        if segment_guid is not None:
            segment_guid = validate_segment_guid(segment_guid)
        if name is not None:
            validate_segment_name(name)
        guards = Guards(allow_empty, max_removal_fraction)
        with parallel_requests(self, max_parallel_requests):
            result = membership.sync_segment(
                self,
                self.resolve_system_guid(system_guid),
                user_ids,
                max_length=MAX_ID_LENGTH,
                segment_guid=segment_guid,
                name=name,
                state_path=state_path,
                full_refresh=full_refresh,
                dry_run=dry_run,
                creation_token=creation_token,
                created_after=created_after,
                guards=guards,
            )
        return self._reported(user_ids, result)

    def _reported(self, user_ids: Any, result: dict[str, Any]) -> dict[str, Any]:
        """Report a change that went through to Airflow's hook lineage (input file -> segment)."""
        from airflow_provider_segments import lineage  # only after a change: not at DAG parse time

        lineage.report_hook_lineage(self, lambda: lineage.walkme_change(user_ids, result))
        return result

    def delete_segment(
        self, segment_guid: str, system_guid: str | None = None, missing_ok: bool = True
    ) -> str:
        """Delete a segment; one that is already gone counts as deleted unless ``missing_ok=False``.

        DELETE is not in WalkMe's Segments API document; this assumes
        ``DELETE .../segment/{segmentGuid}`` as the natural counterpart of update. When an attempt's
        outcome is unknown (a lost response, a 5xx), the segment is looked up before trying again,
        so a delete that landed is reported as done, not as "not found"
        (:func:`~airflow_provider_segments.membership.writes.delete_confirmed`).
        """
        guid = validate_segment_guid(segment_guid)
        system = self.resolve_system_guid(system_guid)
        path = f"{SEGMENTS_PATH.format(system_guid=system)}/{guid}"
        membership.delete_confirmed(
            # Not retried blindly: a retry after a delete that landed would answer 404.
            delete=lambda: self._call("DELETE", path, idempotent=False),
            still_listed=lambda: self.get_segment(guid, system) is not None,
            what=f"WalkMe segment {guid} of system {system}",
            missing_ok=missing_ok,
            log=self.log,
            sleep=self.client.sleep,
        )
        return guid

    def check_connection(self) -> str:
        """Fetch a token (and list the default system's segments, if one is set)."""
        self.get_access_token(force_refresh=True)
        message = f"Got a WalkMe access token from {self.base_url}"
        system = self.settings.system_guid
        if system:
            message += f"; system {system} lists {len(self.list_segments())} segment(s)"
        return message + "."
