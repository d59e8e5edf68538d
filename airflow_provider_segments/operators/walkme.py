"""Operators that create, update, delete and list WalkMe segments.

Thin by design: they take arguments and templates, call one :class:`WalkMeHook` method, and return
what it returns for XCom. Validation, chunking and retries live in the hook and the HTTP core.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow_provider_segments._compat import BaseOperator, Context
from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.hooks.walkme import (
    IF_EXISTS_CHOICES,
    WalkMeHook,
    validate_update_action,
)
from airflow_provider_segments.operators._base import LiteralIdsRenderingMixin, fail_fast_on_bad_input


class _WalkMeOperator(BaseOperator):
    """Shared connection handling of the WalkMe operators."""

    ui_color = "#d3e4ff"

    def __init__(
        self,
        *,
        system_guid: str | None = None,
        walkme_conn_id: str = WalkMeHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.system_guid = system_guid
        self.walkme_conn_id = walkme_conn_id

    @cached_property
    def hook(self) -> WalkMeHook:
        """The hook for ``walkme_conn_id`` (no connection is read until the task runs)."""
        return WalkMeHook(walkme_conn_id=self.walkme_conn_id)


class WalkMeCreateSegmentOperator(LiteralIdsRenderingMixin, _WalkMeOperator):
    """Create a WalkMe segment holding exactly ``user_ids``; a retried task never duplicates it.

    The name is looked up first: if a segment of that name exists, ``if_exists="update"`` (default)
    overrides its users instead, and ``"error"`` fails the task. More than 25,000 ids are sent as a
    create followed by ``add`` chunks. Returns (XCom) ``segment_guid``, ``name``, ``system_guid``,
    ``external_id``, ``user_count``, ``requests``, ``created`` and ``changed_at`` (ISO-8601 UTC).

    :param name: segment name shown in the WalkMe editor. Templated.
    :param user_ids: list of user ids (strings of at most 100 characters; duplicates are dropped).
        Templated: a list, or an expression that renders to one.
    :param system_guid: WalkMe system GUID; defaults to the connection's ``extra.system_guid``. Templated.
    :param external_id: your own id for the segment (the API's optional ``id``). Templated.
    :param if_exists: ``"update"`` or ``"error"``: what to do when the name is already taken.
    :param walkme_conn_id: Airflow connection of type ``walkme``.
    """

    template_fields: Sequence[str] = ("name", "user_ids", "system_guid", "external_id")

    def __init__(
        self,
        *,
        name: str,
        user_ids: Any,
        system_guid: str | None = None,
        external_id: str | None = None,
        if_exists: str = "update",
        walkme_conn_id: str = WalkMeHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(system_guid=system_guid, walkme_conn_id=walkme_conn_id, **kwargs)
        if if_exists not in IF_EXISTS_CHOICES:
            raise SegmentsValidationError(
                f"if_exists={if_exists!r} is not valid: use one of {', '.join(IF_EXISTS_CHOICES)}."
            )
        self.name = name
        self.user_ids = user_ids
        self.external_id = external_id
        self.if_exists = if_exists

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_fast_on_bad_input():
            result = self.hook.create_segment(
                name=self.name,
                user_ids=self.user_ids,
                system_guid=self.system_guid,
                external_id=self.external_id,
                if_exists=self.if_exists,
            )
        verb = "Created" if result["created"] else "Updated existing"
        self.log.info(
            "%s WalkMe segment %r (%s) with %s users in %d request(s).",
            verb,
            result["name"],
            result["segment_guid"],
            f"{result['user_count']:,}",
            result["requests"],
        )
        return result


class WalkMeUpdateSegmentOperator(LiteralIdsRenderingMixin, _WalkMeOperator):
    """Add, remove or override the users of a WalkMe segment, chunked to the API's 25,000 ids.

    ``override`` with more than 25,000 ids overrides with the first chunk and adds the rest, so the
    segment ends up holding exactly ``user_ids``; rerunning a failed task converges. Returns (XCom)
    ``segment_guid``, ``system_guid``, ``action``, ``user_count``, ``requests`` and ``changed_at``.

    :param segment_guid: hyphenated segment GUID. Templated.
    :param action: ``"add"``, ``"remove"`` or ``"override"``.
    :param user_ids: list of user ids. Templated.
    :param system_guid: WalkMe system GUID; defaults to the connection's. Templated.
    :param walkme_conn_id: Airflow connection of type ``walkme``.
    """

    template_fields: Sequence[str] = ("segment_guid", "user_ids", "system_guid")

    def __init__(
        self,
        *,
        segment_guid: str,
        action: str,
        user_ids: Any,
        system_guid: str | None = None,
        walkme_conn_id: str = WalkMeHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(system_guid=system_guid, walkme_conn_id=walkme_conn_id, **kwargs)
        self.segment_guid = segment_guid
        self.action = validate_update_action(action)
        self.user_ids = user_ids

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_fast_on_bad_input():
            return self.hook.update_segment(
                segment_guid=self.segment_guid,
                action=self.action,
                user_ids=self.user_ids,
                system_guid=self.system_guid,
            )


class WalkMeDeleteSegmentOperator(_WalkMeOperator):
    """Delete a WalkMe segment; one that is already gone counts as deleted unless ``missing_ok=False``.

    Returns (XCom) the deleted GUID.

    :param segment_guid: hyphenated segment GUID. Templated.
    :param system_guid: WalkMe system GUID; defaults to the connection's. Templated.
    :param missing_ok: succeed when the segment does not exist (the desired state holds).
    :param walkme_conn_id: Airflow connection of type ``walkme``.
    """

    template_fields: Sequence[str] = ("segment_guid", "system_guid")

    def __init__(
        self,
        *,
        segment_guid: str,
        system_guid: str | None = None,
        missing_ok: bool = True,
        walkme_conn_id: str = WalkMeHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(system_guid=system_guid, walkme_conn_id=walkme_conn_id, **kwargs)
        self.segment_guid = segment_guid
        self.missing_ok = missing_ok

    def execute(self, context: Context) -> str:
        with fail_fast_on_bad_input():
            return self.hook.delete_segment(
                segment_guid=self.segment_guid, system_guid=self.system_guid, missing_ok=self.missing_ok
            )


class WalkMeListSegmentsOperator(_WalkMeOperator):
    """List the segments of a WalkMe system. Returns (XCom) a list of dicts.

    Each dict has ``segment_guid``, ``name``, ``external_id``, ``user_count``, ``created_at`` and
    ``updated_at`` (``None`` where the API does not say).

    :param system_guid: WalkMe system GUID; defaults to the connection's. Templated.
    :param name_prefix: keep only segments whose name starts with this. Templated.
    :param walkme_conn_id: Airflow connection of type ``walkme``.
    """

    template_fields: Sequence[str] = ("system_guid", "name_prefix")

    def __init__(
        self,
        *,
        system_guid: str | None = None,
        name_prefix: str | None = None,
        walkme_conn_id: str = WalkMeHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(system_guid=system_guid, walkme_conn_id=walkme_conn_id, **kwargs)
        self.name_prefix = name_prefix

    def execute(self, context: Context) -> list[dict[str, Any]]:
        with fail_fast_on_bad_input():
            segments = self.hook.list_segments(system_guid=self.system_guid)
        if self.name_prefix:
            segments = [s for s in segments if str(s.get("name") or "").startswith(self.name_prefix)]
        self.log.info("WalkMe system lists %d matching segment(s).", len(segments))
        return segments
