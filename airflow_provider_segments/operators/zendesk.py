"""Operators that create, update, delete and list Zendesk Help Center user segments.

Thin by design: every argument but the connection id and the mass-change guards (checked when the
DAG is parsed) is templated; validation and pagination live in the hook.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_segments._compat import Context
from airflow_provider_segments.hooks._base import check_if_exists
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.membership import DEFAULT_MAX_REMOVAL_FRACTION, Guards
from airflow_provider_segments.operators._base import (
    SegmentsOperator,
    check_unless_templated,
    coerce_bool,
    fail_fast_on_bad_input,
    run_started_at,
)

_SEGMENT_FIELDS = ("name", "user_type", "group_ids", "organization_ids", "tags", "or_tags", "added_user_ids")


class _ZendeskOperator(SegmentsOperator[ZendeskHelpCenterHook]):
    """What every Zendesk operator takes: the connection."""

    hook_class = ZendeskHelpCenterHook
    ui_color = "#d1f2eb"
    #: Template fields that are text (they render to strings under native rendering too); ids and
    #: booleans are not, and tags are lists of text.
    text_fields = ("name", "user_type")
    text_item_fields = ("tags", "or_tags")

    def __init__(
        self, *, zendesk_conn_id: str = ZendeskHelpCenterHook.default_conn_name, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.zendesk_conn_id = zendesk_conn_id

    def _segment_fields(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in _SEGMENT_FIELDS}


class _ZendeskWriteOperator(_ZendeskOperator):
    """Create and update: the mass-change guards on ``added_user_ids``, and they report the segment
    they wrote to OpenLineage."""

    def __init__(
        self,
        *,
        allow_empty: bool = False,
        max_removal_fraction: float | None = DEFAULT_MAX_REMOVAL_FRACTION,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        Guards(allow_empty, max_removal_fraction)  # a wrong value fails when the DAG is parsed
        self.allow_empty = allow_empty
        self.max_removal_fraction = max_removal_fraction

    def guard_kwargs(self) -> dict[str, Any]:
        """The mass-change guards the hook's create and update take."""
        return {"allow_empty": self.allow_empty, "max_removal_fraction": self.max_removal_fraction}

    def done(self, context: Context, segment: dict[str, Any]) -> dict[str, Any]:
        """Keep the written segment for the lineage methods; return it for XCom, with its id under
        its own key too (``task.output["segment_id"]``)."""
        self._segments_written = segment
        return self.publish(context, segment, segment_id=segment.get("id"))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """For the OpenLineage provider, where installed: the user segment as output."""
        from airflow_provider_segments.lineage import openlineage_facets, zendesk_change

        segment = getattr(self, "_segments_written", None)
        return None if segment is None else openlineage_facets(zendesk_change(self.hook.base_url, segment))


class ZendeskCreateUserSegmentOperator(_ZendeskWriteOperator):
    """Create a Help Center user segment; a retried task never creates a duplicate.

    A custom segment with the same name is updated with these fields instead (``if_exists="update"``)
    or makes the task fail (``"error"``). Returns (XCom) the segment as Zendesk returns it.

    :param name: segment name. Templated.
    :param user_type: ``"signed_in_users"`` or ``"staff"``. Templated.
    :param group_ids: ids of the groups that have access. Templated.
    :param organization_ids: ids of the organizations that have access. Templated.
    :param tags: tags a user must all have. Templated.
    :param or_tags: tags of which a user must have at least one. Templated.
    :param added_user_ids: users added regardless of the criteria. Templated.
    :param if_exists: ``"update"`` or ``"error"``. Templated (a literal is checked when the DAG is
        parsed, a template when the task runs).
    :param allow_empty: when a segment of this name exists, let an empty or left-out
        ``added_user_ids`` empty the users it lists as added; by default that fails the task before
        anything is sent (an empty export is more often a failed one). Not templated.
    :param max_removal_fraction: refuse, before any write, new ``added_user_ids`` that leave out more
        than this share of the ones Zendesk lists; default 0.5, 1.0 allows any removal, ``None``
        turns the check off. Not templated.
    :param zendesk_conn_id: Airflow connection of type ``zendesk_help_center``.
    """

    template_fields: Sequence[str] = (*_SEGMENT_FIELDS, "if_exists")

    def __init__(
        self,
        *,
        name: str,
        user_type: str,
        group_ids: Sequence[int | str] | str | None = None,
        organization_ids: Sequence[int | str] | str | None = None,
        tags: Sequence[str] | str | None = None,
        or_tags: Sequence[str] | str | None = None,
        added_user_ids: Sequence[int | str] | str | None = None,
        if_exists: str = "update",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_unless_templated(if_exists, check_if_exists)
        self.name = name
        self.user_type = user_type
        self.group_ids = group_ids
        self.organization_ids = organization_ids
        self.tags = tags
        self.or_tags = or_tags
        self.added_user_ids = added_user_ids
        self.if_exists = if_exists

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_fast_on_bad_input(self):
            segment = self.hook.create_user_segment(
                **self._segment_fields(),
                if_exists=self.if_exists,
                created_after=run_started_at(context),
                **self.guard_kwargs(),
            )
        return self.done(context, segment)


class ZendeskUpdateUserSegmentOperator(_ZendeskWriteOperator):
    """Update the given fields of a user segment: ``None`` leaves a field as is, ``[]`` clears it.

    Built-in segments are read-only: updating one fails with a clear message. Returns (XCom) the
    segment as Zendesk returns it.

    :param user_segment_id: the segment's id. Templated.
    :param name: new name. Templated. Refused (``SegmentExistsError``, no retries) when another custom
        segment has it, even when this segment is named so already: leave it out when not renaming.
    :param user_type: ``"signed_in_users"`` or ``"staff"``. Templated.
    :param group_ids: ids of the groups that have access. Templated.
    :param organization_ids: ids of the organizations that have access. Templated.
    :param tags: tags a user must all have. Templated.
    :param or_tags: tags of which a user must have at least one. Templated.
    :param added_user_ids: users added regardless of the criteria. Templated.
    :param allow_empty: let ``added_user_ids=[]`` empty the users the segment lists as added; by
        default that fails the task before anything is sent (an empty export is more often a failed
        one). Not templated.
    :param max_removal_fraction: refuse, before any write, new ``added_user_ids`` that leave out more
        than this share of the ones Zendesk lists; default 0.5, 1.0 allows any removal, ``None``
        turns the check off. Not templated.
    :param zendesk_conn_id: Airflow connection of type ``zendesk_help_center``.
    """

    template_fields: Sequence[str] = ("user_segment_id", *_SEGMENT_FIELDS)

    def __init__(
        self,
        *,
        user_segment_id: int | str,
        name: str | None = None,
        user_type: str | None = None,
        group_ids: Sequence[int | str] | str | None = None,
        organization_ids: Sequence[int | str] | str | None = None,
        tags: Sequence[str] | str | None = None,
        or_tags: Sequence[str] | str | None = None,
        added_user_ids: Sequence[int | str] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.user_segment_id = user_segment_id
        self.name = name
        self.user_type = user_type
        self.group_ids = group_ids
        self.organization_ids = organization_ids
        self.tags = tags
        self.or_tags = or_tags
        self.added_user_ids = added_user_ids

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_fast_on_bad_input(self):
            segment = self.hook.update_user_segment(
                self.user_segment_id, **self._segment_fields(), **self.guard_kwargs()
            )
        return self.done(context, segment)


class ZendeskDeleteUserSegmentOperator(_ZendeskOperator):
    """Delete a user segment; one already gone counts as deleted unless ``missing_ok=False``.

    Returns (XCom) the deleted id.

    :param user_segment_id: the segment's id. Templated.
    :param missing_ok: succeed when the segment does not exist (the desired state holds). ``True`` or
        ``False`` (the strings ``"true"``/``"false"`` too, any case); anything else fails. Templated.
    :param zendesk_conn_id: Airflow connection of type ``zendesk_help_center``.
    """

    template_fields: Sequence[str] = ("user_segment_id", "missing_ok")

    def __init__(
        self,
        *,
        user_segment_id: int | str,
        missing_ok: bool | str = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.user_segment_id = user_segment_id
        self.missing_ok = check_unless_templated(missing_ok, lambda v: coerce_bool(v, "missing_ok"))

    def execute(self, context: Context) -> int:
        with fail_fast_on_bad_input(self):
            missing_ok = coerce_bool(self.missing_ok, "missing_ok")
            deleted = self.hook.delete_user_segment(self.user_segment_id, missing_ok=missing_ok)
        return self.publish(context, deleted, segment_id=deleted)


class ZendeskListUserSegmentsOperator(_ZendeskOperator):
    """List user segments across every page. Returns (XCom) a list of dicts.

    :param built_in: ``True`` only built-in, ``False`` only custom, ``None`` both. Templated.
    :param applicable: only the segments applicable on the account's Guide plan. Templated.

    The booleans accept ``True``/``False`` or the strings ``"true"``/``"false"`` in any case (what a
    template renders to); anything else fails the task, naming the field, before a request is sent.
    :param user_id: only the segments this user belongs to. Templated.
    :param zendesk_conn_id: Airflow connection of type ``zendesk_help_center``.
    """

    template_fields: Sequence[str] = ("built_in", "applicable", "user_id")
    may_render_to_nothing = ("built_in",)  # None: both kinds, as documented

    def __init__(
        self,
        *,
        built_in: bool | str | None = None,
        applicable: bool | str = False,
        user_id: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.built_in = check_unless_templated(
            built_in, lambda v: coerce_bool(v, "built_in", allow_none=True)
        )
        self.applicable = check_unless_templated(applicable, lambda v: coerce_bool(v, "applicable"))
        self.user_id = user_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        with fail_fast_on_bad_input(self):
            segments = self.hook.list_user_segments(
                built_in=coerce_bool(self.built_in, "built_in", allow_none=True),
                applicable=coerce_bool(self.applicable, "applicable"),
                user_id=self.user_id,
            )
        self.log.info("Zendesk lists %d user segment(s).", len(segments))
        return self.publish(context, segments)


class ZendeskListUserSegmentUsageOperator(_ZendeskOperator):
    """List the Help Center sections and community topics restricted to a user segment.

    Returns (XCom) ``{"user_segment_id": id, "sections": [...], "topics": [...]}``.

    :param user_segment_id: the segment's id. Templated.
    :param zendesk_conn_id: Airflow connection of type ``zendesk_help_center``.
    """

    template_fields: Sequence[str] = ("user_segment_id",)

    def __init__(
        self,
        *,
        user_segment_id: int | str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.user_segment_id = user_segment_id

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_fast_on_bad_input(self):
            sections = self.hook.list_sections(self.user_segment_id)
            topics = self.hook.list_topics(self.user_segment_id)
        self.log.info(
            "User segment %s restricts %d section(s) and %d topic(s).",
            self.user_segment_id,
            len(sections),
            len(topics),
        )
        usage = {"user_segment_id": int(self.user_segment_id), "sections": sections, "topics": topics}
        return self.publish(context, usage)
