"""Lineage of a segment change: which input went into which segment, with the counts.

Two consumers, one description (:class:`SegmentChange`):

- Airflow's hook lineage (``airflow.sdk.lineage``): the hooks report the input file and the output
  segment as assets after a change went through (:func:`report_hook_lineage`); a lineage reader
  registered as a plugin (the OpenLineage provider is one) sees them.
- The OpenLineage provider, where it is installed: the operators' ``get_openlineage_facets_on_complete``
  returns :func:`openlineage_facets`, datasets with statistics facets and a run facet of counts.

OpenLineage is imported only inside :func:`openlineage_facets`, when the provider asks for facets:
where it is not installed nothing here is imported and nothing changes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_segments.assets import (
    WalkMeSegmentRef,
    openlineage_name,
    walkme_segment_ref,
    zendesk_user_segment_ref,
)
from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.ids import IdSource
from airflow_provider_segments.locations import is_uri, shown_location
from airflow_provider_segments.redaction import redact_known_in

#: The key of this provider's run facet in OpenLineage events.
RUN_FACET_KEY = "segments"
#: What the run facet's ``_schemaURL`` says (its fields are described in docs/data-aware.md).
RUN_FACET_SCHEMA = "urn:airflow-provider-segments:openlineage:SegmentsRunFacet:1"
#: The type of the name-form identifier in a segment dataset's symlinks facet.
NAME_IDENTIFIER_TYPE = "SEGMENT_NAME"
INLINE_LIST = "inline list"


@dataclass(frozen=True)
class SegmentChange:
    """What one task did to one segment, as lineage tells it.

    :param output_uri: the segment's asset URI (``walkme-segment://system/guid``, ...); ``None``
        when nothing names a segment (a dry run that would create one).
    :param aliases: other URIs of the same segment (the by-name form of a WalkMe segment).
    :param input_uri: where the ids came from (``file:///...``, ``s3://bucket/key``); ``None`` for
        ids given inline (a list or an XCom) or no ids at all.
    :param input_kind: ``"file"``, ``"inline list"`` or ``None`` (a change without ids).
    :param ids_read: unique valid ids in the input; ``ids_sent``: ids sent in write requests.
    :param wrote: false for a dry run (nothing was sent: no output to report).
    :param facts: the run facet's other fields (mode, added, removed, requests, user_count...).
    """

    platform: str
    output_uri: str | None
    aliases: tuple[str, ...] = ()
    input_uri: str | None = None
    input_kind: str | None = None
    ids_read: int | None = None
    ids_sent: int | None = None
    wrote: bool = True
    facts: dict[str, Any] = field(default_factory=dict)


def input_uri(source: Any) -> str | None:
    """The URI of a file input (``file:///abs/path`` or the object-storage URI without its connection
    id); ``None`` for ids given inline."""
    path = source.path if isinstance(source, IdSource) else None
    if path is None:
        return None
    if not is_uri(path):
        return "file://" + os.path.abspath(os.fspath(path))
    return shown_location(path)  # no connection id (not the data's), no query (a signature)


def walkme_change(source: Any, result: dict[str, Any]) -> SegmentChange:
    """The change a WalkMe create, update or sync made, from its input and the XCom it returns."""
    system, guid, name = result.get("system_guid"), result.get("segment_guid"), result.get("name")
    if name is not None and redact_known_in(name) != name:  # a secret WalkMe echoed: no alias by it
        name = None
    refs: list[WalkMeSegmentRef] = []
    for segment, by in ((guid, "guid"), (name, "name")):
        if system and segment:
            try:
                refs.append(walkme_segment_ref(system, segment, by=by))  # type: ignore[arg-type]
            except SegmentsValidationError:  # e.g. a name WalkMe lists longer than it accepts
                continue
    wrote = not result.get("dry_run")
    mode = result.get("mode") or result.get("action") or ("create" if result.get("created") else None)
    facts = {
        key: result[key]
        for key in ("mode", "action", "created", "added", "removed", "unchanged", "requests", "user_count")
        if result.get(key) is not None
    }
    if result.get("dry_run"):
        facts["dry_run"] = True
    return SegmentChange(
        platform="walkme",
        output_uri=refs[0].uri if refs else None,
        aliases=tuple(ref.uri for ref in refs[1:]),
        input_uri=input_uri(source),
        input_kind=None if source is None else ("file" if input_uri(source) else INLINE_LIST),
        ids_read=result.get("user_count"),
        ids_sent=_ids_sent(mode, result) if wrote and result.get("requests") else 0,
        wrote=wrote,
        facts=facts,
    )


def zendesk_change(base_url: str, segment: dict[str, Any]) -> SegmentChange:
    """The change a Zendesk create or update made (its criteria, no id list) on the hook's base URL
    (a path a proxy or self-hosted server puts before ``/api`` is not part of the segment's name)."""
    ref = zendesk_user_segment_ref(urlsplit(base_url).netloc or base_url, segment["id"])
    return SegmentChange(
        platform="zendesk", output_uri=ref.uri, facts={"user_type": segment.get("user_type")}
    )


def _ids_sent(mode: str | None, result: dict[str, Any]) -> int | None:
    if isinstance(result.get("ids_sent"), int):  # a sync counts them (a recovery resends ids)
        return int(result["ids_sent"])
    if mode == "delta":
        return (result.get("added") or 0) + (result.get("removed") or 0)
    return result.get("user_count")  # full, create, override, add, remove: every id of the input


# -- Airflow's hook lineage ------------------------------------------------------------------------
def report_hook_lineage(hook: Any, describe: Callable[[], SegmentChange]) -> None:
    """Tell Airflow's hook lineage collector what ``hook`` read and wrote (nothing for a dry run).

    ``describe`` builds the :class:`SegmentChange`. A failure here is logged, never raised: the
    change itself went through.
    """
    try:
        change = describe()
        if not change.wrote:
            return
        from airflow_provider_segments._compat import get_hook_lineage_collector

        collector = get_hook_lineage_collector()
        # Airflow's ObjectStoragePath reports the object-storage files it opens itself.
        if change.input_uri and not _collected_input(collector, change.input_uri):
            collector.add_input_asset(context=hook, uri=change.input_uri)
        if change.output_uri:
            collector.add_output_asset(context=hook, uri=change.output_uri)
    except Exception as err:  # lineage is a report about the work, never a reason to fail it
        hook.log.warning("Could not report lineage to Airflow's hook lineage collector: %s", err)


def _collected_input(collector: Any, uri: str) -> bool:
    if not getattr(collector, "has_collected", False):
        return False
    return any(info.asset.uri == uri for info in collector.collected_assets.inputs)


# -- OpenLineage -----------------------------------------------------------------------------------
def openlineage_facets(change: SegmentChange | None) -> Any:
    """``OperatorLineage`` for the OpenLineage provider; ``None`` when it or the task's change is absent.

    Inputs: the file (``file`` namespace, or the object store's) with ``inputStatistics`` (unique
    valid ids read). Outputs: the segment with ``outputStatistics`` (ids sent) and, for a WalkMe
    segment, a ``symlinks`` facet naming it by name too. Run facet ``segments``: the counts.
    """
    if change is None:
        return None
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import InputDataset, OutputDataset
        from openlineage.client.facet_v2 import (
            input_statistics_input_dataset,
            output_statistics_output_dataset,
            symlinks_dataset,
        )
    except ImportError:
        return None
    inputs = []
    if change.input_uri:
        namespace, name = _file_dataset_name(change.input_uri)
        input_facets: dict[str, Any] = {}
        if change.ids_read is not None:
            input_facets["inputStatistics"] = input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
                rowCount=change.ids_read
            )
        inputs.append(InputDataset(namespace=namespace, name=name, inputFacets=input_facets))
    outputs = []
    if change.output_uri and change.wrote:
        namespace, name = openlineage_name(change.output_uri)
        facets: dict[str, Any] = {}
        if change.aliases:
            identifiers = [
                symlinks_dataset.Identifier(*openlineage_name(alias), type=NAME_IDENTIFIER_TYPE)
                for alias in change.aliases
            ]
            facets["symlinks"] = symlinks_dataset.SymlinksDatasetFacet(identifiers=identifiers)
        output_facets: dict[str, Any] = {}
        if change.ids_sent is not None:
            output_facets["outputStatistics"] = (
                output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=change.ids_sent)
            )
        outputs.append(
            OutputDataset(namespace=namespace, name=name, facets=facets, outputFacets=output_facets)
        )
    run_facet = _run_facet_class()(
        platform=change.platform,
        input=change.input_kind,
        **{key: change.facts.get(key) for key in _RUN_FACET_FIELDS},
    )
    return OperatorLineage(inputs=inputs, outputs=outputs, run_facets={RUN_FACET_KEY: run_facet})


def _file_dataset_name(uri: str) -> tuple[str, str]:
    """OpenLineage's naming of files: ``file`` + absolute path locally, ``s3://bucket`` + key..."""
    parts = urlsplit(uri)
    if parts.scheme == "file" and not parts.netloc:
        return "file", parts.path
    scheme = {"gcs": "gs", "s3a": "s3", "s3n": "s3"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}", parts.path.lstrip("/")


_RUN_FACET_FIELDS = (
    "mode",
    "action",
    "created",
    "added",
    "removed",
    "unchanged",
    "requests",
    "user_count",
    "dry_run",
    "user_type",
)


@functools.cache
def _run_facet_class() -> type:
    """The ``segments`` run facet (defined on first use: OpenLineage is an optional dependency)."""
    import attr
    from openlineage.client.facet_v2 import RunFacet

    @attr.define
    class SegmentsRunFacet(RunFacet):
        """What a segment task did: its platform, the input kind and the change's counts."""

        platform: str
        input: str | None = None
        mode: str | None = None
        action: str | None = None
        created: bool | None = None
        added: int | None = None
        removed: int | None = None
        unchanged: int | None = None
        requests: int | None = None
        user_count: int | None = None
        dry_run: bool | None = None
        user_type: str | None = None

        @staticmethod
        def _get_schema() -> str:
            return RUN_FACET_SCHEMA

    return SegmentsRunFacet


__all__ = [
    "INLINE_LIST",
    "SegmentChange",
    "input_uri",
    "openlineage_facets",
    "report_hook_lineage",
    "walkme_change",
    "zendesk_change",
]
