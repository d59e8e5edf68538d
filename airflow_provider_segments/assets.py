"""Airflow assets for segments: the URI forms, their normalisers, helpers and OpenLineage names.

A task that changes a segment, or the sensor that lets content go live, can name the segment as an
Airflow asset; a DAG scheduled on that asset then runs when it changes. Two URI forms:

``walkme-segment://<system guid>/<segment guid>``
    A WalkMe segment by its GUID. ``walkme-segment://<system guid>/name/<segment name>`` names it by
    its name instead (percent-encoded), for a DAG that only knows the name at parse time (the GUID
    exists once the first run created the segment).
``zendesk-user-segment://<host>/<user segment id>``
    A Zendesk Help Center user segment; a bare subdomain ``acme`` means ``acme.zendesk.com``.

Every form is normalised (Airflow calls :func:`sanitize_walkme_segment_uri` and
:func:`sanitize_zendesk_user_segment_uri`, registered in the provider info), so two spellings of one
segment are one asset: GUIDs and hosts in lower case, a 32-digit GUID hyphenated, a name encoded one
way. The full description, with examples, is ``docs/data-aware.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import SplitResult, quote, unquote, urlsplit

from airflow_provider_segments._compat import Asset
from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.text import preview
from airflow_provider_segments.vocabulary import (
    BARE_GUID_PATTERN,
    SEGMENT_GUID_PATTERN,
    SUBDOMAIN_PATTERN,
    SYSTEM_GUID_PATTERN,
    validate_segment_guid,
    validate_segment_name,
    validate_user_segment_id,
)

if TYPE_CHECKING:
    from openlineage.client.event_v2 import Dataset

WALKME_SEGMENT_SCHEME = "walkme-segment"
ZENDESK_USER_SEGMENT_SCHEME = "zendesk-user-segment"
#: The path segment that says "by name" in a WalkMe segment URI (a GUID never reads like this).
BY_NAME = "name"
#: A bare subdomain ``acme`` means ``acme.zendesk.com``, as for the connection's host.
ZENDESK_DOMAIN = "zendesk.com"
_HOST_PATTERN = re.compile(
    r"(?P<host>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
    r"|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?"
)


@dataclass(frozen=True)
class WalkMeSegmentRef:
    """A WalkMe segment as an asset names it: its system and its GUID, or its name."""

    system_guid: str
    segment_guid: str | None = None
    name: str | None = None

    @property
    def uri(self) -> str:
        """The normalised asset URI."""
        if self.segment_guid is not None:
            return f"{WALKME_SEGMENT_SCHEME}://{self.system_guid}/{self.segment_guid}"
        return f"{WALKME_SEGMENT_SCHEME}://{self.system_guid}/{BY_NAME}/{quote(self.name or '', safe='')}"

    def names(self, system_guid: str, segment_guid: str | None, name: str | None) -> bool:
        """True when this reference names that segment (GUIDs and systems compare case-insensitively)."""
        if self.system_guid != system_guid.lower():
            return False
        if self.segment_guid is not None:
            return segment_guid is not None and self.segment_guid == segment_guid.lower()
        return self.name == name


@dataclass(frozen=True)
class ZendeskUserSegmentRef:
    """A Zendesk Help Center user segment as an asset names it: the account's host and the id."""

    host: str
    user_segment_id: int

    @property
    def uri(self) -> str:
        """The normalised asset URI."""
        return f"{ZENDESK_USER_SEGMENT_SCHEME}://{self.host}/{self.user_segment_id}"


# -- building references ---------------------------------------------------------------------------
def walkme_segment_ref(
    system_guid: str, segment: str, *, by: Literal["guid", "name"] | None = None
) -> WalkMeSegmentRef:
    """The reference to ``segment`` of ``system_guid``: by GUID when ``segment`` is one, else by name.

    ``by="name"`` names a segment whose name happens to look like a GUID; ``by="guid"`` refuses
    anything that is not one.
    """
    system = _system_guid(system_guid)
    if by not in (None, "guid", "name"):
        raise SegmentsValidationError(f"by {preview(by)} is not valid: use 'guid', 'name' or None.")
    is_guid = isinstance(segment, str) and (
        SEGMENT_GUID_PATTERN.fullmatch(segment) or BARE_GUID_PATTERN.fullmatch(segment)
    )
    if by == "guid" or (by is None and is_guid):
        return WalkMeSegmentRef(system, segment_guid=validate_segment_guid(segment).lower())
    return WalkMeSegmentRef(system, name=validate_segment_name(segment))


def zendesk_user_segment_ref(host_or_subdomain: str, user_segment_id: int | str) -> ZendeskUserSegmentRef:
    """The reference to a user segment: ``acme``, ``acme.zendesk.com`` or a base URL, and the id."""
    return ZendeskUserSegmentRef(_zendesk_host(host_or_subdomain), validate_user_segment_id(user_segment_id))


def _system_guid(value: Any) -> str:
    if not isinstance(value, str) or not SYSTEM_GUID_PATTERN.fullmatch(value):
        raise SegmentsValidationError(
            f"system_guid {preview(value)} is not valid: expected letters, digits and hyphens only "
            "(copy it from Editor > Snippet)."
        )
    return value.lower()


def _zendesk_host(value: Any) -> str:
    """``host[:port]`` in lower case: a bare subdomain gets ``.zendesk.com``; a URL gives its host."""
    if not isinstance(value, str) or not value.strip():
        raise SegmentsValidationError(
            f"host {preview(value)} is not valid: give a Zendesk subdomain (acme), a host "
            "(acme.zendesk.com) or a base URL (https://acme.zendesk.com)."
        )
    text = value.strip().lower()
    if "://" in text:
        parts = urlsplit(text)
        if parts.username or parts.password or parts.path.strip("/") or parts.query or parts.fragment:
            raise SegmentsValidationError(
                f"host {preview(value)} is not valid: give the base URL only, without credentials, "
                "path or query (https://acme.zendesk.com)."
            )
        text = parts.netloc
    match = _HOST_PATTERN.fullmatch(text)
    if match is None or (match["port"] and not 1 <= int(match["port"]) <= 65535):
        raise SegmentsValidationError(
            f"host {preview(value)} is not valid: expected a subdomain (acme), a host name with an "
            "optional port (help.example.com:8443) or a base URL."
        )
    host, port = match["host"], match["port"]
    if port is None and SUBDOMAIN_PATTERN.fullmatch(host) and "." not in host:
        host = f"{host}.{ZENDESK_DOMAIN}"
    return host if port in (None, "443") else f"{host}:{port}"


# -- reading URIs ------------------------------------------------------------------------------------
def parse_walkme_segment_uri(uri: str | SplitResult) -> WalkMeSegmentRef:
    """Read a ``walkme-segment://`` URI (any spelling Airflow accepts); refuse anything else."""
    parts = urlsplit(uri) if isinstance(uri, str) else uri
    if parts.scheme.lower() != WALKME_SEGMENT_SCHEME:
        raise SegmentsValidationError(f"{preview(str(uri))} is not a {WALKME_SEGMENT_SCHEME}:// URI.")
    path = parts.path.strip("/")
    try:
        if "@" in parts.netloc or ":" in parts.netloc or parts.query:
            raise SegmentsValidationError("it has credentials, a port or a query.")
        if path.startswith(f"{BY_NAME}/"):
            return walkme_segment_ref(parts.netloc, unquote(path[len(BY_NAME) + 1 :]), by="name")
        return walkme_segment_ref(parts.netloc, path, by="guid")
    except SegmentsValidationError as err:
        raise SegmentsValidationError(
            f"{WALKME_SEGMENT_SCHEME} URI {preview(parts.geturl())} is not valid: {err} The forms are "
            f"{WALKME_SEGMENT_SCHEME}://<system guid>/<segment guid> and .../{BY_NAME}/<segment name>."
        ) from None


def parse_zendesk_user_segment_uri(uri: str | SplitResult) -> ZendeskUserSegmentRef:
    """Read a ``zendesk-user-segment://`` URI (any spelling Airflow accepts); refuse anything else."""
    parts = urlsplit(uri) if isinstance(uri, str) else uri
    if parts.scheme.lower() != ZENDESK_USER_SEGMENT_SCHEME:
        raise SegmentsValidationError(f"{preview(str(uri))} is not a {ZENDESK_USER_SEGMENT_SCHEME}:// URI.")
    try:
        if "@" in parts.netloc or parts.query:
            raise SegmentsValidationError("it has credentials or a query.")
        return zendesk_user_segment_ref(parts.netloc, parts.path.strip("/"))
    except SegmentsValidationError as err:
        raise SegmentsValidationError(
            f"{ZENDESK_USER_SEGMENT_SCHEME} URI {preview(parts.geturl())} is not valid: {err} The form is "
            f"{ZENDESK_USER_SEGMENT_SCHEME}://<subdomain or host>/<user segment id>."
        ) from None


# -- what Airflow calls (registered under "asset-uris" in the provider info) --------------------------
def sanitize_walkme_segment_uri(parts: SplitResult) -> SplitResult:
    """Airflow's normaliser for ``walkme-segment://``: the one spelling of the segment, or ValueError."""
    return urlsplit(parse_walkme_segment_uri(parts).uri)


def sanitize_zendesk_user_segment_uri(parts: SplitResult) -> SplitResult:
    """Airflow's normaliser for ``zendesk-user-segment://``: the one spelling, or ValueError."""
    return urlsplit(parse_zendesk_user_segment_uri(parts).uri)


def create_walkme_segment_asset(
    *,
    system_guid: str,
    segment: str,
    by: Literal["guid", "name"] | None = None,
    extra: dict[str, Any] | None = None,
) -> Asset:
    """Airflow's asset factory for ``walkme-segment`` (hook lineage calls it with keyword arguments)."""
    return Asset(uri=walkme_segment_ref(system_guid, segment, by=by).uri, extra=extra)


def create_zendesk_user_segment_asset(
    *, host: str, user_segment_id: int | str, extra: dict[str, Any] | None = None
) -> Asset:
    """Airflow's asset factory for ``zendesk-user-segment``."""
    return Asset(uri=zendesk_user_segment_ref(host, user_segment_id).uri, extra=extra)


def openlineage_name(uri: str) -> tuple[str, str]:
    """``(namespace, name)`` of a segment's OpenLineage dataset.

    As for object storage (``s3://bucket`` + key): the namespace is the scheme and the system or
    host, the name the segment: its GUID, ``name/<segment name>`` (not encoded) or the Zendesk id.
    """
    scheme = urlsplit(uri).scheme.lower()
    if scheme == WALKME_SEGMENT_SCHEME:
        ref = parse_walkme_segment_uri(uri)
        name = ref.segment_guid if ref.segment_guid is not None else f"{BY_NAME}/{ref.name}"
        return f"{WALKME_SEGMENT_SCHEME}://{ref.system_guid}", name
    zendesk = parse_zendesk_user_segment_uri(uri)
    return f"{ZENDESK_USER_SEGMENT_SCHEME}://{zendesk.host}", str(zendesk.user_segment_id)


def convert_segment_asset_to_openlineage(asset: Asset, lineage_context: Any = None) -> Dataset:
    """Airflow's OpenLineage converter for both schemes (called only where the OpenLineage provider is)."""
    from openlineage.client.event_v2 import Dataset

    namespace, name = openlineage_name(asset.uri)
    return Dataset(namespace=namespace, name=name)


# -- for DAG authors -------------------------------------------------------------------------------
def walkme_segment_asset(
    system_guid: str,
    segment: str,
    *,
    by: Literal["guid", "name"] | None = None,
    extra: dict[str, Any] | None = None,
) -> Asset:
    """The Airflow asset of a WalkMe segment, for ``outlets=[...]`` and ``schedule=[...]``.

    :param system_guid: the WalkMe system GUID (Editor > Snippet).
    :param segment: the segment's GUID, or its name when the DAG does not know the GUID at parse
        time (a segment the first run creates). A GUID gives
        ``walkme-segment://<system>/<guid>``, anything else ``walkme-segment://<system>/name/<name>``:
        two different assets, so producer and consumer must name the segment the same way.
    :param by: ``"name"`` for a segment whose name looks like a GUID; ``"guid"`` to insist on one.
    :param extra: the asset's own ``extra`` (not the event's).
    """
    return create_walkme_segment_asset(system_guid=system_guid, segment=segment, by=by, extra=extra)


def zendesk_user_segment_asset(
    host_or_subdomain: str, user_segment_id: int | str, *, extra: dict[str, Any] | None = None
) -> Asset:
    """The Airflow asset of a Zendesk Help Center user segment: ``zendesk-user-segment://<host>/<id>``.

    :param host_or_subdomain: ``acme`` (meaning ``acme.zendesk.com``), a host such as
        ``help.example.com`` or the connection's base URL ``https://acme.zendesk.com``.
    :param user_segment_id: the user segment's id.
    :param extra: the asset's own ``extra`` (not the event's).
    """
    return create_zendesk_user_segment_asset(
        host=host_or_subdomain, user_segment_id=user_segment_id, extra=extra
    )


def matching_walkme_outlets(
    outlets: Any, *, system_guid: str, segment_guid: str, name: str | None
) -> tuple[list[Asset], list[Asset]]:
    """Split a task's ``walkme-segment`` outlets into ``(those naming this segment, the others)``.

    Outlets of other kinds (other schemes, aliases) are in neither list.
    """
    mine: list[Asset] = []
    others: list[Asset] = []
    for outlet in outlets or ():
        if not isinstance(outlet, Asset) or urlsplit(outlet.uri).scheme != WALKME_SEGMENT_SCHEME:
            continue
        try:
            ref = parse_walkme_segment_uri(outlet.uri)
        except SegmentsValidationError:
            others.append(outlet)
            continue
        (mine if ref.names(system_guid, segment_guid, name) else others).append(outlet)
    return mine, others
