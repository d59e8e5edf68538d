"""Operators that create, update, delete and list WalkMe segments.

Thin by design: they take arguments and templates, call one :class:`WalkMeHook` method, and return
what it returns for XCom. Validation, chunking and retries live in the hook and the HTTP core.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from airflow_provider_segments._compat import Context
from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.hooks._base import check_if_exists
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.ids import IdSource, checked_column, contradictory_column
from airflow_provider_segments.membership import DEFAULT_MAX_REMOVAL_FRACTION, Guards
from airflow_provider_segments.membership.sender import DEFAULT_PARALLEL_REQUESTS, check_parallel_requests
from airflow_provider_segments.operators._base import (
    SegmentsOperator,
    check_literal,
    check_unless_templated,
    coerce_bool,
    fail_fast_on_bad_input,
    run_started_at,
    warn_if_state_is_per_worker,
)
from airflow_provider_segments.text import preview
from airflow_provider_segments.vocabulary import (
    validate_name_prefix,
    validate_system_guid,
    validate_update_action,
)


class _WalkMeOperator(SegmentsOperator[WalkMeHook]):
    """What every WalkMe operator takes: the connection and the system (``system_guid``)."""

    hook_class = WalkMeHook
    ui_color = "#d3e4ff"
    #: The template fields that are text: they render to strings under native rendering too.
    text_fields = (
        "name",
        "name_prefix",
        "segment_guid",
        "system_guid",
        "external_id",
        "user_ids_path",
        "user_ids_column",
        "state_path",
    )
    #: Ids are text too: a Jinja item keeps what its template wrote ("+49151...", "007", "0x1F"),
    #: while an expression giving the whole list (an XCom pull) stays a list.
    text_item_fields = ("user_ids",)

    def __init__(
        self,
        *,
        system_guid: str | None = None,
        walkme_conn_id: str = WalkMeHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.system_guid = check_literal(system_guid, validate_system_guid)
        self.walkme_conn_id = walkme_conn_id


class _WalkMeIdsOperator(_WalkMeOperator):
    """Operators that take ids: a list (``user_ids``) or a file (``user_ids_path``), exactly one, the
    mass-change guards (``allow_empty``, ``max_removal_fraction``) and ``max_parallel_requests``."""

    def __init__(
        self,
        *,
        user_ids: Any = None,
        user_ids_path: Any = None,
        user_ids_column: str | None = None,
        allow_empty: bool = False,
        max_removal_fraction: float | None = DEFAULT_MAX_REMOVAL_FRACTION,
        max_parallel_requests: int = DEFAULT_PARALLEL_REQUESTS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (user_ids is None) == (user_ids_path is None):
            raise SegmentsValidationError(
                f"Task {kwargs.get('task_id')!r}: give exactly one of user_ids (a list) or user_ids_path "
                "(a file of ids)."
            )
        if user_ids is not None and user_ids_column is not None:
            raise SegmentsValidationError(
                f"Task {kwargs.get('task_id')!r}: {contradictory_column(user_ids_column)}"
            )
        Guards(allow_empty, max_removal_fraction)  # a wrong value fails when the DAG is parsed
        self.max_parallel_requests = check_parallel_requests(max_parallel_requests)
        self.user_ids = user_ids
        self.user_ids_path = user_ids_path
        # A literal that is no column name fails when the DAG is parsed; a template, once rendered
        # (one rendering to nothing is refused as such: see refuse_templates_rendered_to_nothing).
        self.user_ids_column = check_unless_templated(user_ids_column, checked_column)
        self.allow_empty = allow_empty
        self.max_removal_fraction = max_removal_fraction

    def id_source(self) -> IdSource:
        """The task's input, read when the change runs."""
        if self.user_ids_path is None:
            return IdSource(values=self.user_ids, column=self.user_ids_column)
        return IdSource(path=self.user_ids_path, column=self.user_ids_column)

    def guard_kwargs(self) -> dict[str, Any]:
        """The guards and the sending settings every change of ids takes."""
        return {
            "allow_empty": self.allow_empty,
            "max_removal_fraction": self.max_removal_fraction,
            "max_parallel_requests": self.max_parallel_requests,
        }

    def done(self, context: Context, result: dict[str, Any]) -> dict[str, Any]:
        """Keep what the change did for the lineage methods; return it for XCom, with the segment's
        GUID under its own key too (``task.output["segment_guid"]``)."""
        self._segments_change = (self.id_source(), result)
        return self.publish(context, result, segment_guid=result.get("segment_guid"))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """For the OpenLineage provider, where installed: the input (file or object-storage URI), the
        segment as output and the counts as facets (see the "Data-aware pipelines" docs page)."""
        from airflow_provider_segments.lineage import openlineage_facets, walkme_change

        change = getattr(self, "_segments_change", None)
        return None if change is None else openlineage_facets(walkme_change(*change))


def creation_token(context: Context) -> str | None:
    """A token naming this task in this DAG run (the same for every try): a segment created with it
    as its external id is known to be this task's own when a retry finds it."""
    ti = context.get("ti") if hasattr(context, "get") else None
    run_id = context.get("run_id") if hasattr(context, "get") else None
    if ti is None or not run_id:
        return None
    key = f"{ti.dag_id}/{ti.task_id}/{run_id}/{getattr(ti, 'map_index', -1)}"
    return f"airflow-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


class WalkMeCreateSegmentOperator(_WalkMeIdsOperator):
    """Create a WalkMe segment holding exactly ``user_ids``; a retried task never duplicates it.

    The name is looked up first: if a segment of that name exists, ``if_exists="update"`` (default)
    overrides its users instead, and ``"error"`` fails the task. More than 25,000 ids are sent as a
    create followed by ``add`` chunks. Returns (XCom) ``segment_guid``, ``name``, ``system_guid``,
    ``external_id``, ``user_count``, ``requests``, ``created`` and ``changed_at`` (ISO-8601 UTC).

    :param name: segment name shown in the WalkMe editor. Templated.
    :param user_ids: list of user ids (strings of at most 100 characters; duplicates are dropped).
        Templated: a list, or an expression that renders to one.
    :param user_ids_path: instead of ``user_ids``: a local path or object-storage URI (``s3://``,
        ``gs://``, ``file://``...) of a file with one id per line, or a CSV (see ``user_ids_column``).
        Read as a stream and validated before the first request; a file that does not exist raises
        ``SegmentsInputMissingError``, which the task's retries apply to. Templated.
    :param user_ids_column: the CSV column holding the ids, when ``user_ids_path`` is a CSV (read
        strictly: one line per record, as many fields as the header). Without it, a file whose first
        line holds a comma, semicolon, tab or pipe is refused as a CSV. Templated.
    :param system_guid: WalkMe system GUID; defaults to the connection's ``extra.system_guid``. Templated.
    :param external_id: your own id for the segment (the API's optional ``id``). Templated.
    :param if_exists: ``"update"`` or ``"error"``: what to do when the name is already taken (a segment
        an earlier try of this task created counts as this task's own). Without ``external_id``, the
        segment's external id is a creation token of this task in this DAG run.
    :param allow_empty: let an empty input through (it empties the segment); by default an empty list
        or file fails the task before anything is sent: an empty export is more often a failed one.
    :param max_removal_fraction: refuse, before any write, a change that would remove more than this
        share of the members known before (snapshot, or the count WalkMe lists); default 0.5, 1.0
        allows any removal, ``None`` turns the check off.
    :param max_parallel_requests: chunk writes sent at once where their order does not matter (the
        ``add`` chunks after the first ``override``, a sync's adds and removes), 1 to 16; default 4.
        Halved on every 429/5xx answer or retry, grown back by one after a round of successes; 1
        sends one write at a time.
    :param walkme_conn_id: Airflow connection of type ``walkme``.
    """

    template_fields: Sequence[str] = (
        "name",
        "user_ids",
        "user_ids_path",
        "user_ids_column",
        "system_guid",
        "external_id",
    )

    def __init__(
        self,
        *,
        name: str,
        external_id: str | None = None,
        if_exists: str = "update",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_if_exists(if_exists)  # a wrong literal fails when the DAG is parsed
        self.name = name
        self.external_id = external_id
        self.if_exists = if_exists

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_fast_on_bad_input(self):
            result = self.hook.create_segment(
                name=self.name,
                user_ids=self.id_source(),
                system_guid=self.system_guid,
                external_id=self.external_id,
                if_exists=self.if_exists,
                creation_token=creation_token(context),
                created_after=run_started_at(context),
                **self.guard_kwargs(),
            )
        verb = "Created" if result["created"] else "Updated existing"
        self.log.info(
            "%s WalkMe segment %s (%s) with %s users in %d request(s).",
            verb,
            preview(result["name"]),
            result["segment_guid"],
            f"{result['user_count']:,}",
            result["requests"],
        )
        return self.done(context, result)


class WalkMeUpdateSegmentOperator(_WalkMeIdsOperator):
    """Add, remove or override the users of a WalkMe segment, chunked to the API's 25,000 ids.

    ``override`` with more than 25,000 ids overrides with the first chunk and adds the rest, so the
    segment ends up holding exactly ``user_ids``; rerunning a failed task converges. Returns (XCom)
    ``segment_guid``, ``system_guid``, ``action``, ``user_count``, ``requests`` and ``changed_at``.

    :param segment_guid: hyphenated segment GUID. Templated.
    :param action: ``"add"``, ``"remove"`` or ``"override"``.
    :param user_ids: list of user ids. Templated.
    :param user_ids_path: instead of ``user_ids``: a local path or object-storage URI of a file of ids
        (one per line, or a CSV with ``user_ids_column``), streamed and validated first. Templated.
    :param user_ids_column: the CSV column holding the ids, when ``user_ids_path`` is a CSV (read
        strictly: one line per record, as many fields as the header). Without it, a file whose first
        line holds a comma, semicolon, tab or pipe is refused as a CSV. Templated.
    :param system_guid: WalkMe system GUID; defaults to the connection's. Templated.
    :param allow_empty: let an empty input through (an ``override`` with it empties the segment, an
        ``add`` or ``remove`` sends nothing); by default an empty list or file fails the task before
        anything is sent, whatever the action: an empty export is more often a failed one.
    :param max_removal_fraction: refuse, before any write, an ``override`` or ``remove`` that could
        remove more than this share of the members WalkMe lists (a ``remove`` counts each id as a
        member: WalkMe lists how many, not who); default 0.5, 1.0 allows any removal, ``None`` turns
        the check off.
    :param max_parallel_requests: chunk writes sent at once where their order does not matter (the
        ``add`` chunks after the first ``override``, a sync's adds and removes), 1 to 16; default 4.
        Halved on every 429/5xx answer or retry, grown back by one after a round of successes; 1
        sends one write at a time.
    :param walkme_conn_id: Airflow connection of type ``walkme``.
    """

    template_fields: Sequence[str] = (
        "segment_guid",
        "user_ids",
        "user_ids_path",
        "user_ids_column",
        "system_guid",
    )

    def __init__(
        self,
        *,
        segment_guid: str,
        action: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.segment_guid = segment_guid
        self.action = validate_update_action(action)

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_fast_on_bad_input(self):
            result = self.hook.update_segment(
                segment_guid=self.segment_guid,
                action=self.action,
                user_ids=self.id_source(),
                system_guid=self.system_guid,
                **self.guard_kwargs(),
            )
        return self.done(context, result)


class WalkMeSyncSegmentOperator(_WalkMeIdsOperator):
    """Make a segment's membership equal the input, sending only what changed since the last sync.

    A snapshot of the last successfully synced membership is kept at ``state_path`` (a local path or
    an object-storage URI). With a snapshot of the same segment, only ``add`` chunks for new ids and
    ``remove`` chunks for gone ones are sent; without one (or with ``full_refresh=True``) the segment
    is created, or overridden in chunks. Before the first write a journal beside the snapshot records
    what the change may alter; the snapshot is replaced only after every chunk succeeded. A run after
    a failed, killed or retried one treats the journal's ids as unknown, so it leaves the segment
    holding exactly its own input, whatever input the failed run had. Changes made to the segment
    outside this task are not seen by a delta sync: run with ``full_refresh=True`` to reset. Two runs
    sharing one ``state_path`` at the same time are not supported (use ``max_active_runs=1``).

    Returns (XCom) ``mode`` (``delta``/``full``), ``added``, ``removed``, ``unchanged`` (of the
    membership on the platform), ``requests``, ``ids_sent`` (a recovery resends ids it changes
    nothing for), ``user_count``, ``segment_guid``, ``name``, ``system_guid``, ``changed_at``, ``dry_run``.

    :param name: the segment's name; created when no segment has it. Templated.
    :param segment_guid: or the segment's GUID (it must exist). Templated.
    :param user_ids: list of user ids. Templated.
    :param user_ids_path: or a local path / object-storage URI of a file of ids (one per line, or a
        CSV with ``user_ids_column``), streamed and validated before the first request. Templated.
    :param user_ids_column: the CSV column holding the ids, when ``user_ids_path`` is a CSV (read
        strictly: one line per record, as many fields as the header). Without it, a file whose first
        line holds a comma, semicolon, tab or pipe is refused as a CSV. Templated.
    :param state_path: where the snapshot lives (local path or URI). Templated. With an executor that
        may run tasks on several machines (Celery, Kubernetes), use object storage every worker
        reaches (``s3://<conn_id>@bucket/key``); a local path then logs a warning.
    :param full_refresh: ignore the snapshot and override the whole membership.
    :param dry_run: compute and log the plan (counts, requests) after read-only calls (the token and
        the segment list) and write nothing; the snapshot is not touched.
    :param allow_empty: let an empty input through (it empties the segment); by default an empty list
        or file fails the task before anything is sent: an empty export is more often a failed one.
    :param max_removal_fraction: refuse, before any write, a change that would remove more than this
        share of the members known before (snapshot, or the count WalkMe lists); default 0.5, 1.0
        allows any removal, ``None`` turns the check off.
    :param system_guid: WalkMe system GUID; defaults to the connection's. Templated.
    :param max_parallel_requests: chunk writes sent at once where their order does not matter (the
        ``add`` chunks after the first ``override``, a sync's adds and removes), 1 to 16; default 4.
        Halved on every 429/5xx answer or retry, grown back by one after a round of successes; 1
        sends one write at a time.
    :param walkme_conn_id: Airflow connection of type ``walkme``.
    """

    template_fields: Sequence[str] = (
        "name",
        "segment_guid",
        "user_ids",
        "user_ids_path",
        "user_ids_column",
        "state_path",
        "system_guid",
    )

    def __init__(
        self,
        *,
        state_path: Any,
        name: str | None = None,
        segment_guid: str | None = None,
        full_refresh: bool = False,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (name is None) == (segment_guid is None):
            raise SegmentsValidationError(
                f"Task {kwargs.get('task_id')!r}: give exactly one of name or segment_guid."
            )
        self.name = name
        self.segment_guid = segment_guid
        self.state_path = state_path
        self.full_refresh = coerce_bool(full_refresh, "full_refresh")
        # Not ``self.dry_run``: that is BaseOperator's method (render and log the templates).
        self.plan_only = coerce_bool(dry_run, "dry_run")

    def execute(self, context: Context) -> dict[str, Any]:
        warn_if_state_is_per_worker(self.log, self.state_path, self.executor)
        with fail_fast_on_bad_input(self):
            result = self.hook.sync_segment(
                self.id_source(),
                segment_guid=self.segment_guid,
                name=self.name,
                system_guid=self.system_guid,
                state_path=self.state_path,
                full_refresh=self.full_refresh,
                dry_run=self.plan_only,
                creation_token=creation_token(context),
                created_after=run_started_at(context),
                **self.guard_kwargs(),
            )
        return self.done(context, result)


class WalkMeDeleteSegmentOperator(_WalkMeOperator):
    """Delete a WalkMe segment; one that is already gone counts as deleted unless ``missing_ok=False``.

    Returns (XCom) the deleted GUID.

    :param segment_guid: hyphenated segment GUID. Templated.
    :param system_guid: WalkMe system GUID; defaults to the connection's. Templated.
    :param missing_ok: succeed when the segment does not exist (the desired state holds). ``True`` or
        ``False`` (the strings ``"true"``/``"false"`` too, any case); anything else fails. Templated.
    :param walkme_conn_id: Airflow connection of type ``walkme``.
    """

    template_fields: Sequence[str] = ("segment_guid", "system_guid", "missing_ok")

    def __init__(
        self,
        *,
        segment_guid: str,
        missing_ok: bool | str = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.segment_guid = segment_guid
        self.missing_ok = check_unless_templated(missing_ok, lambda v: coerce_bool(v, "missing_ok"))

    def execute(self, context: Context) -> str:
        with fail_fast_on_bad_input(self):
            deleted = self.hook.delete_segment(
                segment_guid=self.segment_guid,
                system_guid=self.system_guid,
                missing_ok=coerce_bool(self.missing_ok, "missing_ok"),
            )
        return self.publish(context, deleted, segment_guid=deleted)


class WalkMeListSegmentsOperator(_WalkMeOperator):
    """List the segments of a WalkMe system. Returns (XCom) a list of dicts.

    Each dict has ``segment_guid``, ``name``, ``external_id``, ``user_count``, ``created_at`` and
    ``updated_at`` (``None`` where the API does not say).

    :param system_guid: WalkMe system GUID; defaults to the connection's. Templated.
    :param name_prefix: keep only segments whose name starts with this (non-blank text; ``None``:
        every segment). Templated.
    :param walkme_conn_id: Airflow connection of type ``walkme``.
    """

    template_fields: Sequence[str] = ("system_guid", "name_prefix")

    def __init__(
        self,
        *,
        name_prefix: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name_prefix = check_literal(name_prefix, validate_name_prefix)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        with fail_fast_on_bad_input(self):
            prefix = None if self.name_prefix is None else validate_name_prefix(self.name_prefix)
            segments = self.hook.list_segments(system_guid=self.system_guid)
        if prefix is not None:  # not `if prefix:`: a prefix rendering to [] would list every segment
            segments = [s for s in segments if str(s.get("name") or "").startswith(prefix)]
        self.log.info("WalkMe system lists %d matching segment(s).", len(segments))
        return self.publish(context, segments)
