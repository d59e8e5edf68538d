"""Zendesk Help Center User Segments API knowledge: auth styles, pagination, payloads, built-ins.

Source: Zendesk's "User Segments" Help Center API document. Who may see Help Center sections and
topics is defined by user segments; this hook lists, shows, creates, updates and deletes them, and
lists the sections and topics that use one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any

from airflow_provider_segments.exceptions import (
    MembershipMismatchError,
    SegmentsApiError,
    SegmentsAuthError,
    SegmentsError,
    SegmentsNotFoundError,
    SegmentsValidationError,
)
from airflow_provider_segments.hooks._base import SegmentsHook, check_if_exists
from airflow_provider_segments.hooks.zendesk_connection import ZendeskConnection
from airflow_provider_segments.hooks.zendesk_names import (
    check_renamed,
    custom_segments_named,
    name_look_up,
    refuse_taken_name,
)
from airflow_provider_segments.hooks.zendesk_pagination import paginated_items
from airflow_provider_segments.hooks.zendesk_payloads import (
    UNDOCUMENTED_FIELD,
    as_created,
    build_user_segment_payload,
    check_added_users,
    check_listing_filters,
    criteria_changes,
    differences,
)
from airflow_provider_segments.membership.guards import DEFAULT_MAX_REMOVAL_FRACTION, Guards
from airflow_provider_segments.membership.names_written import TakingBack, check_written_name
from airflow_provider_segments.membership.writes import (
    Creation,
    CreationMark,
    delete_confirmed,
    existing_segment,
    post_once,
)
from airflow_provider_segments.vocabulary import validate_user_segment_id

API_PREFIX = "/api/v2/help_center"
USER_SEGMENTS_PATH = f"{API_PREFIX}/user_segments.json"
APPLICABLE_PATH = f"{API_PREFIX}/user_segments/applicable.json"
USER_SEGMENT_PATH = f"{API_PREFIX}/user_segments/{{id}}.json"
USER_USER_SEGMENTS_PATH = f"{API_PREFIX}/users/{{user_id}}/user_segments.json"
SECTIONS_PATH = f"{API_PREFIX}/user_segments/{{id}}/sections.json"
TOPICS_PATH = f"{API_PREFIX}/user_segments/{{id}}/topics.json"


class ZendeskHelpCenterHook(SegmentsHook[ZendeskConnection]):
    """Talk to the Zendesk Help Center User Segments API through a ``zendesk_help_center`` connection.

    Connection fields: ``host`` is a bare subdomain (``acme`` means ``https://acme.zendesk.com``) or a
    full base URL; ``login`` the agent's email; ``password`` the secret, read according to
    ``extra.auth_type``: ``oauth_token`` (Bearer; login unused), ``api_token`` (Basic
    ``{email}/token:token``; the default when a login is set) or ``password`` (Basic email:password,
    which Zendesk has turned off for its cloud API: kept for self-hosted and test servers).

    :param zendesk_conn_id: the Airflow connection to use.
    """

    conn_name_attr = "zendesk_conn_id"
    default_conn_name = "zendesk_help_center_default"
    conn_type = "zendesk_help_center"
    hook_name = "Zendesk Help Center"
    platform = "Zendesk"

    def __init__(self, zendesk_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.zendesk_conn_id = zendesk_conn_id
        self._built_in_ids: set[int] = set()

    # -- connection ----------------------------------------------------------------------------
    def read_connection(self, conn: Any, extra: dict[str, Any]) -> ZendeskConnection:
        return ZendeskConnection.read(conn, extra, conn_id=self.conn_id, log=self.log)

    def error_hints(self) -> dict[int, str]:
        return {
            401: f"Check the login, secret and auth_type of Airflow connection {self.conn_id!r}.",
            403: "Built-in user segments are read-only, and managing segments needs a Help Center manager.",
        }

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.request_json(method, path, **self.settings.auth_kwargs(), **kwargs)

    # -- pagination ----------------------------------------------------------------------------
    def _paginate(
        self, path: str, key: str, params: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield the items of every page (see :func:`.zendesk_pagination.paginated_items`)."""
        for item in paginated_items(self._call, self.base_url, self.client.preview, path, key, params):
            self._remember_built_in(item)
            yield item

    def _remember_built_in(self, segment: Any) -> None:
        if isinstance(segment, dict) and segment.get("built_in") and isinstance(segment.get("id"), int):
            self._built_in_ids.add(segment["id"])

    # -- user segments -------------------------------------------------------------------------
    def iter_user_segments(
        self, built_in: bool | None = None, applicable: bool = False, user_id: int | str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield user segments page by page: all, only ``applicable`` ones, or those of ``user_id``.

        :param built_in: ``True`` only built-in segments, ``False`` only custom ones, ``None`` both.
        """
        check_listing_filters(built_in, applicable, user_id)
        if user_id is not None:
            path = USER_USER_SEGMENTS_PATH.format(user_id=validate_user_segment_id(user_id, "user_id"))
        else:
            path = APPLICABLE_PATH if applicable else USER_SEGMENTS_PATH
        params = {} if built_in is None else {"built_in": "true" if built_in else "false"}
        yield from self._paginate(path, "user_segments", params)

    def list_user_segments(
        self, built_in: bool | None = None, applicable: bool = False, user_id: int | str | None = None
    ) -> list[dict[str, Any]]:
        """Every user segment across all pages (see :meth:`iter_user_segments`)."""
        return list(self.iter_user_segments(built_in=built_in, applicable=applicable, user_id=user_id))

    def get_user_segment(self, user_segment_id: int | str) -> dict[str, Any]:
        """Show one user segment."""
        segment_id = validate_user_segment_id(user_segment_id)
        body = self._call("GET", USER_SEGMENT_PATH.format(id=segment_id))
        segment = self._unwrap(body, USER_SEGMENT_PATH)
        self._remember_built_in(segment)
        return segment

    def create_user_segment(
        self,
        name: str,
        user_type: str,
        group_ids: list[int] | None = None,
        organization_ids: list[int] | None = None,
        tags: list[str] | None = None,
        or_tags: list[str] | None = None,
        added_user_ids: list[int] | None = None,
        if_exists: str = "update",
        created_after: datetime | None = None,
        *,
        allow_empty: bool = False,
        max_removal_fraction: float | None = DEFAULT_MAX_REMOVAL_FRACTION,
    ) -> dict[str, Any]:
        """Create a custom user segment; a retried task never creates a duplicate.

        A custom segment with the same name is refused with ``if_exists="error"``; with ``"update"``
        (the default) it is made equal to what this create would make: the list fields left out
        (``None``) are cleared, and the criteria that change are logged (before -> after). The
        create follows the same rules as WalkMe's (:mod:`airflow_provider_segments.membership.writes`):
        the name is looked up first, an unanswered create is looked for during a grace period and
        never resent, and a segment of this name created after ``created_after`` (when this DAG run
        started) that holds exactly what this create sends is this task's own, even with
        ``if_exists="error"``. The segment is read back afterwards and must list the criteria sent.

        New ``added_user_ids`` that empty or shrink the ones an existing segment lists are refused,
        before anything is sent, by WalkMe's mass-change guards (``allow_empty``, ``max_removal_fraction``).
        """
        check_if_exists(if_exists)
        guards = Guards(allow_empty, max_removal_fraction)
        fields = {
            "name": name,
            "user_type": user_type,
            "group_ids": group_ids,
            "organization_ids": organization_ids,
            "tags": tags,
            "or_tags": or_tags,
            "added_user_ids": added_user_ids,
        }
        body = build_user_segment_payload(fields, creating=True)
        created = as_created(body)

        def in_full(segment: dict[str, Any]) -> dict[str, Any]:
            if segment.get(UNDOCUMENTED_FIELD) is None:  # a listing may leave it out: ask the segment
                return {**segment, **self.get_user_segment(segment["id"])}
            return segment

        def holds_this_create(segment: dict[str, Any]) -> bool:
            return not differences(in_full(segment), created)

        def contradicts(segment: dict[str, Any]) -> bool:  # a field it lists that this create did not send
            segment = in_full(segment)
            return bool(
                differences(segment, {f: v for f, v in created.items() if segment.get(f) is not None})
            )

        creation = Creation(
            platform=self.platform,
            kind="Zendesk user segment",
            name=name,
            where="in the Help Center",
            mark=CreationMark(created_after=created_after, holds=holds_this_create, contradicts=contradicts),
            find=lambda: custom_segments_named(self, name),
            post=lambda: self._unwrap(
                self._call("POST", USER_SEGMENTS_PATH, json_body={"user_segment": body}, idempotent=False),
                USER_SEGMENTS_PATH,
            ),
            segment_id=lambda segment: segment.get("id"),
            undo=lambda segment: self.delete_user_segment(segment["id"]),
            sleep=self.client.sleep,
            log=self.log,
            advice="Use ZendeskUpdateUserSegmentOperator, or if_exists='update'.",
        )
        existing = existing_segment(creation, if_exists)
        if existing is not None:  # (an earlier try's is only likely this task's: the guards apply)
            return self._replace(existing, body, "already exists", guards)
        segment, unconfirmed = post_once(creation)
        if unconfirmed:  # the lost create's content is not known for sure: make it exact. The name was
            # free before it, and the one segment of it lists nothing against it: its added users are
            # the ones this create sent (unguarded, or a Zendesk not listing them refuses every such retry)
            return self._replace(segment, body, "exists after the unanswered create", None)
        created_id = validate_user_segment_id(segment["id"], "created id")  # before a log line shows it
        self.log.info("Created Zendesk user segment %r (id %s).", name, created_id)
        new = f"the new user segment {name!r} (id {created_id})"
        taking_back = TakingBack(lambda: self.delete_user_segment(created_id))  # as WalkMe's read-back
        check_written_name("Zendesk", new, "created", name, name_look_up(self, created_id, name), taking_back)
        # read back on every criterion a create decides: those left out must be listed empty, if listed
        return self._reported(self._verified(created_id, body, cleared=as_created(body).keys() - body))

    def _replace(
        self, existing: dict[str, Any], body: dict[str, Any], reason: str, guards: Guards | None
    ) -> dict[str, Any]:
        """Make ``existing`` what a create with ``body`` would make: list fields left out are cleared.
        ``guards`` on the users it lists as added; ``None`` for the segment of this try's lost create."""
        full = as_created(body)
        segment_id = validate_user_segment_id(existing["id"], "listed id")
        if UNDOCUMENTED_FIELD not in existing:  # a list answer may leave them out: ask the segment itself
            existing = {**existing, **self.get_user_segment(segment_id)}
        if guards is not None:
            check_added_users(
                existing, full[UNDOCUMENTED_FIELD], f"Creating over user segment {segment_id}", guards
            )
        changes = criteria_changes(existing, full)
        self.log.info(
            "User segment %s %s (id %s): updating it to match instead of creating a duplicate; %s.",
            self.client.preview(existing.get("name")),
            reason,
            segment_id,
            "criteria changed: " + "; ".join(changes) if changes else "no criteria change",
        )
        return self.put_checked(segment_id, full)

    def update_user_segment(
        self,
        user_segment_id: int | str,
        name: str | None = None,
        user_type: str | None = None,
        group_ids: list[int] | None = None,
        organization_ids: list[int] | None = None,
        tags: list[str] | None = None,
        or_tags: list[str] | None = None,
        added_user_ids: list[int] | None = None,
        *,
        allow_empty: bool = False,
        max_removal_fraction: float | None = DEFAULT_MAX_REMOVAL_FRACTION,
    ) -> dict[str, Any]:
        """Update the given fields of a user segment; ``None`` leaves a field as is, ``[]`` clears it.
        New ``added_user_ids`` are guarded as in :meth:`create_user_segment`; a ``name`` another
        custom segment has is refused, even when this one is named so already: leave it out when
        not renaming."""
        guards = Guards(allow_empty, max_removal_fraction)
        segment_id = validate_user_segment_id(user_segment_id)
        fields = {
            "name": name,
            "user_type": user_type,
            "group_ids": group_ids,
            "organization_ids": organization_ids,
            "tags": tags,
            "or_tags": or_tags,
            "added_user_ids": added_user_ids,
        }
        body = build_user_segment_payload(fields, creating=False)
        if not body:
            raise SegmentsValidationError(
                f"Nothing to update on user segment {segment_id}: give at least one field."
            )
        shown = self._shown_unless_built_in(segment_id, "update")
        if "name" in body:  # the name must be this segment's alone (see zendesk_names)
            refuse_taken_name(self, segment_id, body["name"], shown)
        if "added_user_ids" in body:
            check_added_users(shown, body["added_user_ids"], f"Updating user segment {segment_id}", guards)
        if "name" not in body or body["name"] == shown.get("name"):
            return self.put_checked(segment_id, body)
        old, name = str(shown.get("name")), body["name"]
        sent = f"The rename of user segment {segment_id} from {old!r} to {name!r} may have landed, unverified"
        updated = self.put_checked(segment_id, body, unverified=f"{sent}: a rerun looks the name up again.")
        # found again by its new name, and only it; else renamed back with the criteria it had
        check_renamed(self, segment_id, name, old, {field: shown.get(field) for field in body})
        return updated

    def _shown_unless_built_in(self, segment_id: int, verb: str) -> dict[str, Any]:
        """The segment as Zendesk shows it, read before a write: a built-in one is refused, so no
        write is sent to it whichever hook sends it."""
        self._refuse_built_in(segment_id, verb)
        shown = self.get_user_segment(segment_id)
        self._refuse_built_in(segment_id, verb)
        return shown

    def put_checked(
        self, segment_id: int, body: dict[str, Any], unverified: str | None = None
    ) -> dict[str, Any]:
        """PUT ``body`` and read it back; after a failure that leaves the PUT possibly landed (its
        answer lost, its read-back failed), the error starts with ``unverified``."""
        self._refuse_built_in(segment_id, "update")
        answered = False
        try:
            answer = self._call(
                "PUT", USER_SEGMENT_PATH.format(id=segment_id), json_body={"user_segment": body}
            )
            answered = True
            self._unwrap(answer, USER_SEGMENT_PATH)
            self.log.info("Updated Zendesk user segment %s (%s).", segment_id, ", ".join(sorted(body)))
            return self._reported(self._verified(segment_id, body))
        except SegmentsError as err:
            if unverified and (answered or getattr(err, "may_have_applied", None) is not False):
                err.args = (f"{unverified} ({err})", *err.args[1:])
            elif isinstance(err, SegmentsAuthError) and not answered:
                raise self._built_in_refusal(err, segment_id, "update") from err
            raise

    def _verified(
        self, segment_id: int, body: dict[str, Any], *, cleared: Collection[str] = ()
    ) -> dict[str, Any]:
        """Read the segment back and compare every field sent with what Zendesk lists, and the
        list fields the change leaves empty (``cleared``: a create's left-out ones) where it lists them.

        :raises MembershipMismatchError: a field differs (another client changed it meanwhile, or a
            late write landed); the task fails instead of reporting a change that did not hold.
        """
        listed = self.get_user_segment(segment_id)
        if unlike := differences(listed, body, cleared):
            raise MembershipMismatchError(
                f"After the change, Zendesk lists user segment {segment_id} with "
                f"{'; '.join(unlike)}. Someone changed it meanwhile, or a late write landed; the "
                "task fails so that this is not reported as success. Rerun it.",
                listed_count=None,
                expected_count=None,
            )
        self.log.info("Read back Zendesk user segment %s: it lists the criteria sent.", segment_id)
        return listed

    def _reported(self, segment: dict[str, Any]) -> dict[str, Any]:
        """Report a created or updated segment to Airflow's hook lineage as an output."""
        from airflow_provider_segments import lineage  # only after a change: not at DAG parse time

        lineage.report_hook_lineage(self, lambda: lineage.zendesk_change(self.base_url, segment))
        return segment

    def delete_user_segment(self, user_segment_id: int | str, missing_ok: bool = True) -> int:
        """Delete a user segment; one already gone counts as deleted unless ``missing_ok=False``.

        The same rule as WalkMe's (:func:`~airflow_provider_segments.membership.writes.delete_confirmed`):
        the DELETE is not retried blindly; when its outcome is unknown the segment is looked up, and
        one that is gone was deleted.
        """
        segment_id = validate_user_segment_id(user_segment_id)
        with contextlib.suppress(SegmentsNotFoundError):  # one already gone: as delete_confirmed says
            self._shown_unless_built_in(segment_id, "delete")
        path = USER_SEGMENT_PATH.format(id=segment_id)
        try:
            delete_confirmed(
                delete=lambda: self._call("DELETE", path, idempotent=False),
                still_listed=lambda: self._exists(segment_id),
                what=f"Zendesk user segment {segment_id}",
                missing_ok=missing_ok,
                log=self.log,
                sleep=self.client.sleep,
            )
        except SegmentsAuthError as err:
            raise self._built_in_refusal(err, segment_id, "delete") from err
        return segment_id

    def _exists(self, segment_id: int) -> bool:
        """Whether Zendesk still has the segment. A 404 of its show counts as gone only when the
        listing answers without it: a wrong route or a proxy answers 404 to both (then this raises)."""
        try:
            self.get_user_segment(segment_id)
        except SegmentsNotFoundError:
            return any(segment.get("id") == segment_id for segment in self.iter_user_segments())
        return True

    def _refuse_built_in(self, segment_id: int, verb: str) -> None:
        if segment_id in self._built_in_ids:
            raise SegmentsValidationError(
                f"Zendesk user segment {segment_id} is built-in, and built-in segments are read-only: "
                f"cannot {verb} it."
            )

    def _built_in_refusal(self, err: SegmentsAuthError, segment_id: int, verb: str) -> SegmentsError:
        if err.status == 403 and "built-in" in (err.api_message or "").lower():
            return SegmentsValidationError(
                f"Zendesk refused to {verb} user segment {segment_id}: it is built-in, and built-in "
                f"segments are read-only ({err.api_message})."
            )
        return err

    # -- where a segment is used ---------------------------------------------------------------
    def iter_sections(self, user_segment_id: int | str) -> Iterator[dict[str, Any]]:
        """Yield the Help Center sections restricted to this user segment."""
        segment_id = validate_user_segment_id(user_segment_id)
        yield from self._paginate(SECTIONS_PATH.format(id=segment_id), "sections")

    def list_sections(self, user_segment_id: int | str) -> list[dict[str, Any]]:
        """The sections restricted to this user segment, across all pages."""
        return list(self.iter_sections(user_segment_id))

    def iter_topics(self, user_segment_id: int | str) -> Iterator[dict[str, Any]]:
        """Yield the community topics restricted to this user segment."""
        segment_id = validate_user_segment_id(user_segment_id)
        yield from self._paginate(TOPICS_PATH.format(id=segment_id), "topics")

    def list_topics(self, user_segment_id: int | str) -> list[dict[str, Any]]:
        """The topics restricted to this user segment, across all pages."""
        return list(self.iter_topics(user_segment_id))

    def _unwrap(self, body: Any, path: str) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("user_segment"), dict):
            raise SegmentsApiError(
                f"Zendesk answered {path} without a user_segment object: {self.client.preview(body)}",
                platform="Zendesk",
                method="",
                endpoint=path,
            )
        return body["user_segment"]

    def check_connection(self) -> str:
        """One cheap authenticated call: the first page of one user segment, in the shape a listing
        uses (any 2xx is not proof: a proxy's or another service's answer is one too)."""
        body = self._call("GET", USER_SEGMENTS_PATH, params={"page[size]": 1})
        if not (isinstance(body, dict) and isinstance(body.get("user_segments"), list)):
            raise SegmentsError(
                f"{self.base_url} answered the user segments listing without a 'user_segments' list, so "
                f"it is not Zendesk's Help Center API (check the host): {self.client.preview(body)}"
            )
        auth_type = self.settings.auth_type
        return f"Authenticated to Zendesk Help Center at {self.base_url} ({auth_type})."
