"""What every operator of this provider shares: the operator base of both platforms
(:class:`SegmentsOperator`: the hook, the result for XCom under ``return_value`` and named keys),
fail-fast input errors, template rendering that keeps text as text and literal ids as they are, and
strict booleans."""

from __future__ import annotations

import ast
import os
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast, overload

from airflow_provider_segments._compat import AirflowFailException, BaseOperator, Context
from airflow_provider_segments.exceptions import (
    SegmentExistsError,
    SegmentsConfigError,
    SegmentsValidationError,
)
from airflow_provider_segments.redaction import redact_known_in
from airflow_provider_segments.text import preview

#: Jinja only does something with a string holding one of these (default delimiters).
_JINJA_MARKERS = ("{{", "{%", "{#")
_TRUE_WORDS = frozenset({"true"})
_FALSE_WORDS = frozenset({"false"})

#: Which kind of template field is being rendered right now (see TemplateRenderingMixin).
_TEXT = "text"
_TEXT_ITEMS = "text items"
_field_kind: ContextVar[str | None] = ContextVar("segments_template_field_kind", default=None)
#: The literal lists being rendered as a whole field, by ``id``: their Jinja items are noted by
#: position as they render (see TemplateRenderingMixin.refuse_templates_rendered_to_nothing).
_field_lists: ContextVar[dict[int, str] | None] = ContextVar("segments_template_field_lists", default=None)


@contextmanager
def fail_fast_on_bad_input(operator: TemplateRenderingMixin | None = None) -> Iterator[None]:
    """Turn input and configuration errors into a failure that Airflow does not retry.

    Retrying cannot fix a malformed id or connection, and each retry would only wait out the
    retry delay to fail the same way; API and network errors keep the task's retry policy, and so
    does :class:`SegmentsInputMissingError` (a file of ids not there yet may still arrive). Given the
    ``operator`` whose ``execute`` this wraps, it first refuses its fields whose template rendered to
    nothing (see :meth:`TemplateRenderingMixin.refuse_templates_rendered_to_nothing`).
    """
    try:
        if operator is not None:
            operator.refuse_templates_rendered_to_nothing()
        yield
    except (SegmentsValidationError, SegmentsConfigError, SegmentExistsError) as err:
        raise AirflowFailException(str(err)) from err


def run_started_at(context: Context) -> datetime | None:
    """When this DAG run started (the same for every try of a task): a segment a create finds that
    was made since then, with this task's name (and external id), is an earlier try's own."""
    dag_run = context.get("dag_run") if hasattr(context, "get") else None
    started = getattr(dag_run, "start_date", None)
    return started if isinstance(started, datetime) else None


def may_hold_jinja(value: str, markers: tuple[str, ...] = _JINJA_MARKERS) -> bool:
    """True when rendering ``value`` could change it (it holds a Jinja delimiter: the default ones,
    or ``markers``, those of the DAG's own environment, see :func:`jinja_markers`)."""
    if markers is _JINJA_MARKERS:
        return "{" in value and any(marker in value for marker in _JINJA_MARKERS)
    return any(marker in value for marker in markers)


def jinja_markers(jinja_env: Any) -> tuple[str, ...]:
    """The strings that open a Jinja expression, statement or comment in ``jinja_env`` (a DAG may set
    its own with ``jinja_environment_kwargs``, e.g. ``[[ ... ]]``)."""
    markers = tuple(
        getattr(jinja_env, name, default) or default
        for name, default in zip(
            ("variable_start_string", "block_start_string", "comment_start_string"),
            _JINJA_MARKERS,
            strict=True,
        )
    )
    return _JINJA_MARKERS if markers == _JINJA_MARKERS else markers


def is_xcom_reference(value: Any) -> bool:
    """True for what Airflow resolves at run time instead of rendering: an XComArg (``task.output``,
    ``task.output["key"]``, a zip or concat of them); Airflow's own test (a ``resolve`` that is not a
    path's)."""
    return not isinstance(value, os.PathLike) and callable(getattr(value, "resolve", None))


def is_template(value: Any) -> bool:
    """True for a string that Airflow will render before ``execute`` (so it cannot be checked yet)."""
    return isinstance(value, str) and may_hold_jinja(value)


@overload
def coerce_bool(value: Any, field: str, *, allow_none: Literal[False] = False) -> bool: ...


@overload
def coerce_bool(value: Any, field: str, *, allow_none: bool) -> bool | None: ...


def coerce_bool(value: Any, field: str, *, allow_none: bool = False) -> bool | None:
    """Read a boolean argument strictly: ``True``/``False``, or ``"true"``/``"false"`` in any case.

    A template renders a boolean to the string ``"False"`` unless the DAG renders natively, and
    ``bool("False")`` is ``True``: anything but the four spellings (and ``None`` where allowed) is
    refused, naming the field, before anything is sent.
    """
    if isinstance(value, bool) or (value is None and allow_none):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    allowed = "True or False (or the strings 'true'/'false')" + (", or None" if allow_none else "")
    raise SegmentsValidationError(f"{field} {preview(value)} is not valid: use {allowed}.")


def is_nothing(value: Any) -> bool:
    """What a template renders to when it gives nothing: ``None`` (native rendering), or a blank
    string or ``"None"`` (plain rendering writes ``None`` as that text)."""
    return value is None or (isinstance(value, str) and (not value.strip() or value == "None"))


def collection_text(value: Any) -> str | None:
    """The kind of collection (``"list"``, ``"dict"``...) whose text ``value`` is, as plain rendering
    writes one (its ``repr()``: ``"['b', 'c']"``); ``None`` for any other value."""
    if not isinstance(value, str) or value.strip()[:1] not in ("[", "(", "{"):
        return None
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return type(parsed).__name__ if isinstance(parsed, (list, tuple, dict, set)) else None


def check_unless_templated(value: Any, check: Callable[[Any], Any]) -> Any:
    """Validate a literal argument when the DAG is parsed; a Jinja string or an XCom reference is
    checked at run time.

    Returns what ``check`` returns for a literal (e.g. the coerced value), else ``value`` unchanged.
    """
    return value if is_template(value) or is_xcom_reference(value) else check(value)


def check_literal(value: Any, check: Callable[[Any], Any]) -> Any:
    """:func:`check_unless_templated` for an optional argument (``None`` is "not given"); returns
    ``value`` unchanged."""
    if value is not None:
        check_unless_templated(value, check)
    return value


class TemplateRenderingMixin:
    """Template rendering for this provider's operators: text stays text, literal ids stay as they are.

    **Text fields.** With ``render_template_as_native_obj=True`` Airflow turns any rendered string that
    looks like a Python literal into that literal: a segment name ``"2026"`` becomes the int ``2026``,
    an external id ``"1e3"`` the float ``1000.0``. The template fields named in ``text_fields`` render
    to text instead, under either rendering mode: a string without Jinja syntax is not rendered at
    all, and a Jinja expression whose native result is a number or a boolean is rendered again as
    the string the template wrote (so ``"007"``, ``"1e3"`` and ``"1.10"`` survive as written). Other
    native results are kept: ``None`` (an optional field left unset), a datetime, an
    ``ObjectStoragePath``, or a list (which validation then refuses for a name).

    **Lists of text.** In the fields named in ``text_item_fields`` (Zendesk ``tags``), a literal list's
    Jinja items render to text in the same way, while an expression that renders the whole list
    (``"{{ ti.xcom_pull(...) }}"``) stays native, so it gives a list.

    **Literal list items.** In every templated list, strings without Jinja syntax are kept as they are
    instead of being compiled as templates: Airflow compiles each one, about 150 µs each (measured
    with Airflow 3.3.2 on the project's 2-core machine), so 60,000 literal ids cost ~10 s and
    1,000,000 ids ~3 min before the first request; and native rendering would turn ``"12345"`` into
    ``12345``. Other elements render exactly as Airflow would.

    Ids (``user_ids``, Zendesk ids) are not text fields: an id list may be an expression giving a list,
    and Zendesk ids are integers.

    **Templates that give nothing.** A field given as a template that renders to nothing (see
    :func:`is_nothing`) is refused by :meth:`refuse_templates_rendered_to_nothing`, unless named in
    ``may_render_to_nothing``: read as "not given", an upstream task that pushed nothing would change
    a segment silently (a Zendesk create clearing the tags it was restricted to, a count gate
    turned off, a change sent to the connection's default system). A literal ``None`` still means
    "not given".
    """

    #: Template fields whose value is one piece of text (a name, a GUID, a path, a timestamp...).
    text_fields: ClassVar[Collection[str]] = ()
    #: Template fields holding a list of text items (Zendesk tags).
    text_item_fields: ClassVar[Collection[str]] = ()
    #: Template fields where a template rendering to nothing means "not given" (read-only filters).
    may_render_to_nothing: ClassVar[Collection[str]] = ()

    def refuse_templates_rendered_to_nothing(self) -> None:
        """Refuse, naming it, a field (or a list item) given as a template or an XCom whose value is
        nothing now (rendered so, and not set since), and a list item whose template wrote a
        collection's text (plain rendering of a list: ``"['b', 'c']"``, which would be sent as one
        item): :class:`SegmentsValidationError`, before anything is sent."""
        for (field, index), given_as in self._templates_noted().items():
            if field in self.may_render_to_nothing:
                continue
            value = getattr(self, field, None)
            if index is not None:  # an item of a literal list
                if not isinstance(value, (list, tuple)) or index >= len(value):
                    continue
                value = value[index]
            label = field if index is None else f"{field}[{index}]"
            kind = collection_text(value) if index is not None else None
            if kind is not None:  # one item would be sent holding a whole collection's text
                raise SegmentsValidationError(
                    f"{label} was given as {given_as}, which rendered the text of a {kind} "
                    f"({preview(value)}): nothing was sent. Plain rendering writes a list as text, which "
                    "would be sent as one item. Give the whole field as one expression with "
                    "render_template_as_native_obj=True on the DAG, or render one item per template."
                )
            if is_nothing(value):
                raise SegmentsValidationError(
                    f"{label} was given as {given_as}, which rendered to {preview(value)}: nothing was "
                    'sent. Read as "not given", it would change the segment in a way the task was not '
                    "asked to (most often an upstream task pushed no value, or a param is missing). Fix "
                    f"the template's source, or give {label} as a value (or leave it out) where nothing "
                    "is meant."
                )

    def _templates_noted(self) -> dict[tuple[str, int | None], str]:
        """What each field (``(field, None)``) or item of a literal list (``(field, index)``) was given
        as, where that was a template or an XCom reference; kept across renders."""
        return self.__dict__.setdefault("_templates_given", {})

    def _note_templates_given(
        self, fields: list[str], markers: tuple[str, ...], seen_oids: set[int]
    ) -> dict[int, str]:
        """Note, before rendering replaces them, the fields that hold a template or an XCom
        reference; return the literal lists among the fields (by ``id``), whose Jinja items
        :meth:`render_template` notes as it renders them (one pass over a long list, not two)."""
        given = self._templates_noted()
        lists: dict[int, str] = {}
        for field in fields:
            value = getattr(self, field, None)
            if id(value) in seen_oids:  # a value resolved from XCom already (a mapped task's): data
                continue
            if isinstance(value, str):
                if may_hold_jinja(value, markers):
                    given[field, None] = f"the template {preview(value)}"
            elif is_xcom_reference(value):
                key = getattr(value, "key", None)
                of_key = f" (key {key!r})" if key not in (None, "return_value") else ""
                task_id = getattr(getattr(value, "operator", None), "task_id", "?")
                given[field, None] = f"the XCom of task {task_id!r}{of_key}"
            elif type(value) in (list, tuple):
                lists[id(value)] = field
        return lists

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Any,
        context: Context,
        jinja_env: Any,
        seen_oids: set[int],
    ) -> None:
        # Airflow's own hook for operators that customise rendering: BaseOperator.render_template_fields
        # and MappedOperator.render_template_fields (expanded tasks) both call it.
        render = super()._do_render_template_fields  # type: ignore[misc]
        if parent is not self:  # a nested object's own template fields: Airflow's rules
            token = _field_kind.set(None)
            try:
                render(parent, template_fields, context, jinja_env, seen_oids)
            finally:
                _field_kind.reset(token)
            return
        fields = list(template_fields)
        if jinja_env is None:
            jinja_env = self.get_template_env()
        lists = self._note_templates_given(fields, jinja_markers(jinja_env), seen_oids)
        groups = (
            (None, [f for f in fields if f not in self.text_fields and f not in self.text_item_fields]),
            (_TEXT, [f for f in fields if f in self.text_fields]),
            (_TEXT_ITEMS, [f for f in fields if f in self.text_item_fields and f not in self.text_fields]),
        )
        lists_token = _field_lists.set(lists)
        try:
            for kind, names in groups:
                if not names:
                    continue
                token = _field_kind.set(kind)
                try:
                    render(parent, names, context, jinja_env, seen_oids)
                finally:
                    _field_kind.reset(token)
        finally:
            _field_lists.reset(lists_token)

    def render_template(
        self,
        content: Any,
        context: Context,
        jinja_env: Any = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        if seen_oids is not None and id(content) in seen_oids:
            return content  # resolved from XCom (a mapped task's value): data, never a template
        kind = _field_kind.get()
        if jinja_env is None:
            jinja_env = self.get_template_env()  # type: ignore[attr-defined]
        if kind == _TEXT and isinstance(content, str):
            return self._render_text(content, context, jinja_env, seen_oids)
        if type(content) in (list, tuple, set):
            markers = jinja_markers(jinja_env)
            render = self._render_text if kind in (_TEXT, _TEXT_ITEMS) else super().render_template  # type: ignore[misc]
            field = (_field_lists.get() or {}).get(id(content))  # a field's literal list, not a nested one
            given = self._templates_noted()

            def rendered() -> Iterator[Any]:
                for index, item in enumerate(content):
                    if isinstance(item, str) and not may_hold_jinja(item, markers):
                        yield item
                        continue
                    if field is not None and type(item) is str:
                        given[field, index] = f"the template {preview(item)}"
                    yield render(item, context, jinja_env, seen_oids)

            return type(content)(rendered())
        return super().render_template(content, context, jinja_env, seen_oids)  # type: ignore[misc]

    def _render_text(self, content: Any, context: Context, jinja_env: Any, seen_oids: set[int] | None) -> Any:
        if not isinstance(content, str):
            return super().render_template(content, context, jinja_env, seen_oids)  # type: ignore[misc]
        if not may_hold_jinja(content, jinja_markers(jinja_env)):
            return content
        rendered = super().render_template(content, context, jinja_env, seen_oids)  # type: ignore[misc]
        if isinstance(rendered, (int, float, complex)):  # bool is an int: "True" comes back as text too
            return self._render_as_string(content, context)
        return rendered

    def _render_as_string(self, content: str, context: Context) -> str:
        from airflow_provider_segments._compat import render_template_to_string, string_template_env

        return render_template_to_string(string_template_env(self).from_string(content), context)


HookT = TypeVar("HookT")
ResultT = TypeVar("ResultT")


class SegmentsOperator(TemplateRenderingMixin, BaseOperator, Generic[HookT]):
    """The base of every WalkMe and Zendesk operator: the hook, built from the task's connection id
    on first use (never at DAG parse time), and the result handed to XCom.

    A platform base names its hook class and declares the connection-id argument (the hook's
    ``conn_name_attr``); an operator declares only its own arguments and passes the rest on.
    """

    #: The platform's hook class; its ``conn_name_attr`` names the operator's connection-id argument.
    hook_class: ClassVar[type[Any]]

    def __init__(self, **kwargs: Any) -> None:
        # Declared on purpose: without it, Airflow's operator metaclass stores a wrapped
        # BaseOperator.__init__ here, whose signature (inlets=None, ...) then overrides the defaults
        # of mapped (.partial().expand()) tasks, and a mapped task fails on inlets=None.
        super().__init__(**kwargs)

    @cached_property
    def hook(self) -> HookT:
        """The hook for the task's connection (no connection is read until the task runs)."""
        attr = self.hook_class.conn_name_attr
        return self.hook_class(**{attr: getattr(self, attr)})

    def publish(self, context: Context, result: ResultT, **named: Any) -> ResultT:
        """Return ``result`` (Airflow keeps it under ``return_value``) and push each of ``named``
        under its own XCom key, so a DAG can use ``task.output["segment_guid"]``; a secret an answer
        echoed into them (a listed name, a URL) is redacted first."""
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is not None:
            for key, value in named.items():
                ti.xcom_push(key=key, value=redact_known_in(value))
        return cast("ResultT", redact_known_in(result))


#: Executors that run every task on the scheduler's machine, so a local ``state_path`` is the same
#: file for every run. Any other executor (Celery, Kubernetes, Edge, ...) may pick another machine.
LOCAL_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor"})


def executor_class_name(task_executor: str | None = None) -> str:
    """The class name of the executor a task runs on: its own ``executor`` (class name, alias or
    module path) or the first of ``[core] executor`` (entries ``alias:module.path.Class`` allowed)."""
    from airflow_provider_segments._compat import conf

    configured = [
        entry.strip() for entry in str(conf.get("core", "executor") or "").split(",") if entry.strip()
    ]
    chosen = configured[0] if configured else "LocalExecutor"  # Airflow 3's default
    if task_executor:
        chosen = task_executor
        for entry in configured:
            alias, _, path = entry.rpartition(":")
            if task_executor in (alias, path, path.rpartition(".")[2]):
                chosen = path
                break
    return chosen.rpartition(":")[2].rpartition(".")[2]


def is_local_location(location: Any) -> bool:
    """True when ``location`` (a path or URI) is on this machine's disk, ``file://`` URIs included."""
    from airflow_provider_segments.locations import local_path, storage_path

    return local_path(storage_path(location)) is not None


def warn_if_state_is_per_worker(log: Any, state_path: Any, task_executor: str | None = None) -> None:
    """Log a warning when ``state_path`` is on local disk but the executor may run tasks elsewhere.

    The snapshot, its journal and its lease then live on whichever worker ran the task: a run on
    another worker does not see them. It still converges (no snapshot means a full sync) but sends
    everything, and two syncs of one segment at the same time on two workers are not detected.
    """
    try:
        local = is_local_location(state_path)
    except SegmentsValidationError:
        return  # not a path at all: the sync refuses it with the full message
    executor = executor_class_name(task_executor)
    if local and executor not in LOCAL_EXECUTORS:
        log.warning(
            "state_path %r is on this worker's local disk, but tasks run on the %s, which may pick "
            "another machine for the next run: that run will not see this snapshot, journal or lease "
            "(it falls back to a full sync, and two syncs of the segment at once on two workers are not "
            "detected). Put state_path on object storage every worker reaches, e.g. "
            "s3://<conn_id>@<bucket>/segments/<segment>.snapshot (see Deploying: several workers); "
            "ignore this if the path is on a filesystem every worker mounts.",
            str(state_path),
            executor,
        )
