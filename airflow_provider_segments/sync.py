"""WalkMe membership changes: the one place that decides what a segment ends up holding.

* **Guards** refuse, before anything is sent, an empty input and a change that would remove more
  than a share of the known members (an export that failed silently must not take content offline).
* **The plan** says what to send: a *full* change (create, or ``override`` the first chunk then
  ``add`` the rest) or a *delta* (``add`` the new ids, ``remove`` the gone ones) against a snapshot.
* **The chunk sender** sends a plan's chunks, at most the platform's limit each, logs progress and,
  when a chunk fails, says what was applied (:class:`PartialUpdateError`).
* **The snapshot and its journal** (:class:`StateStore`). What the snapshot promises: for every id
  outside a pending journal, the segment named in it holds the id exactly when the snapshot lists
  it. Before the first write of a change the journal records, atomically, the segment and every id
  whose membership the change may alter (or that the whole membership is in play); after the last
  chunk the snapshot is replaced and the journal removed. A run that finds a journal treats its ids
  as unknown, so whatever a failed, killed or retried run applied, the next successful run leaves
  the segment holding exactly its own input. Two runs sharing one ``state_path`` at the same time
  are not supported (``max_active_runs=1``).

Creates never duplicate: the name is looked up first, a create whose outcome is unknown is looked
for (with a grace period for a slow server) instead of resent, and a segment created by an earlier
try of the same task is recognised by its creation token (sent as the segment's external id).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from airflow_provider_segments.exceptions import (
    PartialUpdateError,
    SegmentExistsError,
    SegmentsError,
    SegmentsNotFoundError,
    SegmentsUnknownOutcomeError,
    SegmentsValidationError,
)
from airflow_provider_segments.ids import UserIds, load_ids, open_text, preview, read_blocks, storage_path

#: Share of a segment's known members a change may remove unless the task allows more.
DEFAULT_MAX_REMOVAL_FRACTION = 0.5
#: After a create whose outcome is unknown, how often to look for it (a slow server may still be
#: creating it), and how long to wait between two looks: about 20 s in all.
CREATE_LOOKUPS = 6
CREATE_LOOKUP_INTERVAL = 4.0

SNAPSHOT_MAGIC = "#segments-snapshot"
JOURNAL_MAGIC = "#segments-journal"
STATE_VERSION = 2
JOURNAL_SUFFIX = ".journal"


class SegmentsApi(Protocol):
    """The plain WalkMe calls the sync needs (what :class:`~..hooks.walkme.WalkMeHook` offers)."""

    max_ids_per_request: int
    log: Any

    def get_segment(self, segment_guid: str, system_guid: str | None = None) -> dict[str, Any] | None: ...

    def find_segments_by_name(self, name: str, system_guid: str | None = None) -> list[dict[str, Any]]: ...

    def post_segment(
        self, system: str, name: str, user_ids: list[str], external_id: str | None
    ) -> dict[str, Any]: ...

    def put_users(self, system: str, segment_guid: str, action: str, user_ids: list[str]) -> None: ...

    def sleep(self, seconds: float) -> None: ...


# -- guards ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Guards:
    """Mass-change guards: what a change may do without the task saying so.

    :param allow_empty: let an empty input through (it empties the segment).
    :param max_removal_fraction: the largest share of the known members (snapshot, or the count the
        platform lists) one change may remove; ``None`` turns the check off.
    """

    allow_empty: bool = False
    max_removal_fraction: float | None = DEFAULT_MAX_REMOVAL_FRACTION

    def __post_init__(self) -> None:
        if not isinstance(self.allow_empty, bool):
            raise SegmentsValidationError(f"allow_empty {preview(self.allow_empty)} must be True or False.")
        fraction = self.max_removal_fraction
        if fraction is not None and (
            isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1
        ):
            raise SegmentsValidationError(
                f"max_removal_fraction {preview(fraction)} must be a number from 0 to 1 (or None)."
            )

    def check_input(self, ids: UserIds, source: str) -> None:
        """Refuse an empty input unless ``allow_empty``."""
        if not len(ids) and not self.allow_empty:
            raise SegmentsValidationError(
                f"The input ({source}) holds no user ids, and sending it would empty the segment. An "
                "empty export is more often a failed one: nothing was sent. Pass allow_empty=True if the "
                "segment should really be emptied."
            )

    def check_removal(self, removed: int, known: int | None, what: str) -> None:
        """Refuse removing more than ``max_removal_fraction`` of ``known`` members."""
        if self.max_removal_fraction is None or not known or removed <= 0:
            return
        if removed > self.max_removal_fraction * known:
            raise SegmentsValidationError(
                f"{what} would remove {removed:,} of its {known:,} members ({removed / known:.0%}), more "
                f"than max_removal_fraction={self.max_removal_fraction} allows: nothing was sent. If the "
                "audience really shrank, raise max_removal_fraction (1.0 allows any removal)."
            )


# -- plan ----------------------------------------------------------------------------------------
@dataclass
class Plan:
    """What a change sends. ``full``: the whole input; ``delta``: only ``adds`` and ``removes``."""

    mode: str
    ids: UserIds
    chunk_size: int
    adds: list[str] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    unchanged: int | None = None

    @property
    def requests(self) -> int:
        """Write requests the plan sends (a full change always sends at least one)."""
        if self.mode == "full":
            return max(1, _chunk_count(len(self.ids), self.chunk_size))
        size = self.chunk_size
        return _chunk_count(len(self.adds), size) + _chunk_count(len(self.removes), size)

    def counts(self) -> tuple[int | None, int | None]:
        """``(added, removed)``; ``None`` where a full change cannot know it."""
        if self.mode == "full":
            return len(self.ids), None
        return len(self.adds), len(self.removes)

    def describe(self) -> str:
        added, removed = self.counts()
        parts = [f"{_count(added)} to add"]
        if removed is not None:
            parts.append(f"{_count(removed)} to remove")
        if self.unchanged is not None:
            parts.append(f"{_count(self.unchanged)} unchanged")
        return f"Sync plan ({self.mode}): {', '.join(parts)}, {self.requests} write request(s)."

    def steps(self) -> Iterator[tuple[str, list[str]]]:
        """``(action, chunk)`` pairs: a full plan overrides with its first chunk and adds the rest."""
        if self.mode == "full":
            first = True
            for chunk in self.ids.chunks(self.chunk_size):
                yield ("override" if first else "add"), chunk
                first = False
            if first:
                yield "override", []  # an allowed empty input: one request that empties the segment
            return
        for chunk in _slices(self.adds, self.chunk_size):
            yield "add", chunk
        for chunk in _slices(self.removes, self.chunk_size):
            yield "remove", chunk


def full_plan(ids: UserIds, chunk_size: int) -> Plan:
    """Send the whole membership (the platform's membership before is unknown)."""
    return Plan("full", ids, chunk_size)


def delta_plan(ids: UserIds, known: UserIds, uncertain: UserIds | None, chunk_size: int) -> Plan:
    """Send only the difference between ``ids`` and ``known``; ids in ``uncertain`` are sent either way.

    ``uncertain`` holds the ids a failed run may or may not have changed: each is added if the input
    holds it and removed otherwise, which is right whatever the failed run applied.
    """
    wanted, before = ids.lookup, known.lookup  # set-like: `in` at C speed
    if uncertain is not None and len(uncertain):
        unknown = uncertain.lookup
        adds = [i for i in ids if i not in before or i in unknown]
        removes = [i for i in known if i not in wanted]
        removes += [i for i in uncertain if i not in wanted and i not in before]
    else:
        adds = [i for i in ids if i not in before]
        removes = [i for i in known if i not in wanted]
    return Plan("delta", ids, chunk_size, adds, removes, unchanged=len(ids) - len(adds))


# -- chunk sender --------------------------------------------------------------------------------
def send_chunks(
    api: SegmentsApi,
    system: str,
    guid: str,
    steps: Iterable[tuple[str, list[str]]],
    *,
    total_chunks: int,
    total_ids: int,
    applied_chunks: int = 0,
    applied_ids: int = 0,
    what: str = "",
) -> None:
    """Send each ``(action, chunk)``, logging progress; a failure says how much was applied."""
    for action, chunk in steps:
        try:
            api.put_users(system, guid, action, chunk)
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
        api.log.info(
            "chunk %d/%d (%s): %s/%s ids",
            applied_chunks,
            total_chunks,
            action,
            f"{applied_ids:,}",
            f"{total_ids:,}",
        )


def apply_plan(api: SegmentsApi, system: str, guid: str, plan: Plan) -> None:
    """Send a plan to an existing segment."""
    added, removed = plan.counts()
    send_chunks(
        api,
        system,
        guid,
        plan.steps(),
        total_chunks=plan.requests,
        total_ids=len(plan.ids) if plan.mode == "full" else (added or 0) + (removed or 0),
    )


# -- creates -------------------------------------------------------------------------------------
def new_creation_token() -> str:
    """A token that marks a segment as created by this call (sent as its external id)."""
    return f"airflow-{uuid.uuid4().hex[:20]}"


def find_by_name(
    api: SegmentsApi, system: str, name: str, *, creation_token: str | None, if_exists: str = "update"
) -> dict[str, Any] | None:
    """The segment named ``name``: one this task created (its token), else the only one of that name.

    :raises SegmentExistsError: the name is taken by a segment this task did not create and
        ``if_exists="error"``.
    """
    matches = api.find_segments_by_name(name, system)
    if not matches:
        return None
    own = [seg for seg in matches if creation_token and seg.get("external_id") == creation_token]
    if own:
        api.log.info(
            "Segment %r (%s) was created by an earlier try of this task; continuing with it.",
            name,
            own[0]["segment_guid"],
        )
        return own[0]
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


def create_segment(
    api: SegmentsApi,
    system: str,
    name: str,
    user_ids: Any,
    *,
    max_length: int,
    external_id: str | None = None,
    if_exists: str = "update",
    creation_token: str | None = None,
    guards: Guards = Guards(),  # frozen: one shared default is safe
) -> dict[str, Any]:
    """Make the segment named ``name`` hold exactly ``user_ids``, creating it when no segment has
    the name (see :meth:`~..hooks.walkme.WalkMeHook.create_segment`)."""
    ids = load_ids(user_ids, max_length=max_length)
    guards.check_input(ids, _source(user_ids))
    token = creation_token or new_creation_token()
    existing = find_by_name(api, system, name, creation_token=token, if_exists=if_exists)
    if existing is not None:
        guid = existing["segment_guid"]
        api.log.info(
            "Segment %r already exists in system %s (%s): overriding its users instead of creating a "
            "duplicate.",
            name,
            system,
            guid,
        )
        result = override(api, system, guid, ids, guards=guards, known_count=existing.get("user_count"))
        return {**result, "name": name, "external_id": existing.get("external_id"), "created": False}
    return _create_new(api, system, name, ids, external_id if external_id is not None else token, token)


def _create_new(
    api: SegmentsApi, system: str, name: str, ids: UserIds, external_id: str, token: str
) -> dict[str, Any]:
    """Create a segment known not to exist: the first chunk in the create, ``add`` for the rest."""
    size = api.max_ids_per_request
    total_chunks = max(1, _chunk_count(len(ids), size))
    chunks = ids.chunks(size)
    first = next(chunks, [])
    api.log.info(
        "Creating WalkMe segment %r in system %s with %s ids in %d request(s).",
        name,
        system,
        f"{len(ids):,}",
        total_chunks,
    )
    guid = _post_create(api, system, name, first, external_id, token)
    api.log.info("chunk 1/%d (create): %s/%s ids", total_chunks, f"{len(first):,}", f"{len(ids):,}")
    send_chunks(
        api,
        system,
        guid,
        (("add", chunk) for chunk in chunks),
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


def _post_create(
    api: SegmentsApi, system: str, name: str, first: list[str], external_id: str, token: str
) -> str:
    """POST a create and return the new GUID; when the outcome is unknown, look instead of resending.

    A timed-out create may still be running on the server, so the name is looked up for a grace
    period; if the segment shows up it is used (its first chunk made exact with an ``override``),
    otherwise the task fails saying the outcome is unknown. Resending could create a duplicate.
    """
    try:
        created = api.post_segment(system, name, first, external_id)
        if created.get("segment_guid"):
            return created["segment_guid"]
        api.log.warning("WalkMe answered the create of %r without a segment GUID; looking it up.", name)
        cause: SegmentsError | None = None
    except SegmentsUnknownOutcomeError as err:
        api.log.warning("%s. Looking for segment %r before deciding anything.", err, name)
        cause = err
    for lookup in range(CREATE_LOOKUPS):
        if lookup:
            api.sleep(CREATE_LOOKUP_INTERVAL)
        landed = _landed(api, system, name, external_id, token)
        if landed is not None:
            guid = landed["segment_guid"]
            api.log.info("The create had landed (%s); continuing with it.", guid)
            api.put_users(system, guid, "override", first)  # exact, whatever the lost call carried
            return guid
    raise SegmentsUnknownOutcomeError(
        f"The create of WalkMe segment {name!r} in system {system} has an unknown outcome: the server "
        f"did not confirm it and the segment was not listed after {CREATE_LOOKUPS} looks over "
        f"{(CREATE_LOOKUPS - 1) * CREATE_LOOKUP_INTERVAL:.0f} s. Nothing "
        "was resent, so no duplicate can appear; rerun the task: it looks the name up first"
        + (f". Cause: {cause}" if cause else "."),
        platform="WalkMe",
        method="POST",
        endpoint=getattr(cause, "endpoint", "") or "",
        status=getattr(cause, "status", None),
    )


def _landed(api: SegmentsApi, system: str, name: str, external_id: str, token: str) -> dict[str, Any] | None:
    matches = api.find_segments_by_name(name, system)
    mine = [seg for seg in matches if seg.get("external_id") in (external_id, token)]
    if len(mine) == 1 or (not mine and len(matches) == 1):
        return (mine or matches)[0]
    if len(matches) > 1:
        raise SegmentsError(
            f"{len(matches)} WalkMe segments are named {name!r} in system {system} after a create "
            "whose outcome was unknown; refusing to guess which is this task's."
        )
    return None


# -- updates -------------------------------------------------------------------------------------
def override(
    api: SegmentsApi,
    system: str,
    guid: str,
    ids: UserIds,
    *,
    guards: Guards,
    known_count: int | None = None,
) -> dict[str, Any]:
    """Make an existing segment hold exactly ``ids``: ``override`` the first chunk, ``add`` the rest.

    ``known_count``: the members the platform lists for it, for the removal guard (an override can
    remove at least ``known_count - len(ids)`` of them).
    """
    guards.check_removal(max(0, (known_count or 0) - len(ids)), known_count, f"Overriding segment {guid}")
    return apply_action(api, system, guid, "override", ids)


def apply_action(api: SegmentsApi, system: str, guid: str, action: str, ids: UserIds) -> dict[str, Any]:
    """``add``, ``remove`` or ``override`` ``ids`` in chunks; the result for XCom."""
    plan = full_plan(ids, api.max_ids_per_request)
    steps: Iterable[tuple[str, list[str]]]
    if action == "override":
        steps, count = plan.steps(), plan.requests
    else:
        steps = ((action, chunk) for chunk in ids.chunks(api.max_ids_per_request))
        count = _chunk_count(len(ids), api.max_ids_per_request)
    if count:
        api.log.info(
            "Updating WalkMe segment %s (%s) with %s ids in %d request(s).",
            guid,
            action,
            f"{len(ids):,}",
            count,
        )
    else:
        api.log.info("No ids to %s for segment %s: nothing sent.", action, guid)
    send_chunks(api, system, guid, steps, total_chunks=count, total_ids=len(ids))
    return {
        "segment_guid": guid,
        "system_guid": system,
        "action": action,
        "user_count": len(ids),
        "requests": count,
        "changed_at": _now_iso(),
    }


def update_segment(
    api: SegmentsApi,
    system: str,
    guid: str,
    action: str,
    user_ids: Any,
    *,
    max_length: int,
    guards: Guards = Guards(),  # frozen: one shared default is safe
) -> dict[str, Any]:
    """``add``/``remove``/``override`` (see :meth:`~..hooks.walkme.WalkMeHook.update_segment`)."""
    ids = load_ids(user_ids, max_length=max_length)
    if action != "override":
        return apply_action(api, system, guid, action, ids)
    guards.check_input(ids, _source(user_ids))
    known = _listed(api, system, guid)
    return override(api, system, guid, ids, guards=guards, known_count=known.get("user_count"))


def _listed(api: SegmentsApi, system: str, guid: str) -> dict[str, Any]:
    segment = api.get_segment(guid, system)
    if segment is not None:
        return segment
    raise SegmentsNotFoundError(
        f"WalkMe segment {guid} is not listed in system {system}; check the GUID (sync by name to create "
        "a segment).",
        platform="WalkMe",
        method="GET",
        endpoint="",
    )


# -- the sync ------------------------------------------------------------------------------------
def sync_segment(
    api: SegmentsApi,
    system: str,
    user_ids: Any,
    *,
    max_length: int,
    segment_guid: str | None = None,
    name: str | None = None,
    state_path: Any = None,
    full_refresh: bool = False,
    dry_run: bool = False,
    creation_token: str | None = None,
    guards: Guards = Guards(),  # frozen: one shared default is safe
) -> dict[str, Any]:
    """Make a segment hold exactly ``user_ids``, sending only the difference when the snapshot at
    ``state_path`` allows it (see :meth:`~..hooks.walkme.WalkMeHook.sync_segment`)."""
    if (segment_guid is None) == (name is None):
        raise SegmentsValidationError("Give exactly one of segment_guid or name of the segment to sync.")
    store = StateStore(state_path) if state_path is not None else None
    snapshot = store.read_snapshot(api.log) if store is not None and not full_refresh else None
    ids = load_ids(user_ids, max_length=max_length, share=snapshot.ids if snapshot else None)
    source = _source(user_ids)
    api.log.info("%s unique valid ids read from %s.", f"{len(ids):,}", source)
    guards.check_input(ids, source)
    journal = store.read_journal(api.log) if store is not None else None
    token = creation_token or new_creation_token()

    if segment_guid is not None:
        segment: dict[str, Any] | None = _listed(api, system, segment_guid)
    else:
        segment = find_by_name(api, system, name or "", creation_token=token)
    size = api.max_ids_per_request
    if segment is None:
        plan, known, known_what = full_plan(ids, size), None, ""
    else:
        guid = segment["segment_guid"]
        baseline = _baseline(snapshot, journal, system, guid, api.log)
        plan = full_plan(ids, size)
        known, known_what = segment.get("user_count"), "the count WalkMe lists"
        if baseline is not None:
            known_ids, uncertain = baseline
            delta = delta_plan(ids, known_ids, uncertain, size)
            # A delta never takes a member out that stays in, where override-then-add briefly does;
            # only a recovery (ids a failed run left unknown) falls back to the cheaper full change.
            if uncertain is None or delta.requests <= plan.requests:
                plan = delta
            known, known_what = len(known_ids), "the snapshot"
    added, removed = plan.counts()
    at_least_removed = removed if removed is not None else max(0, (known or 0) - len(ids))
    if segment is not None:
        what = f"Syncing segment {segment['segment_guid']} (members known from {known_what})"
        guards.check_removal(at_least_removed, known, what)
    api.log.info(plan.describe())
    summary = {
        "mode": plan.mode,
        "added": added,
        "removed": removed,
        "unchanged": plan.unchanged,
        "requests": plan.requests,
        "user_count": len(ids),
        "system_guid": system,
        "name": segment["name"] if segment else name,
        "segment_guid": segment["segment_guid"] if segment else None,
        "dry_run": dry_run,
    }
    if dry_run:
        api.log.info("Dry run: nothing was sent and the snapshot was not touched.")
        return {**summary, "changed_at": None}

    if segment is None:
        if store is not None:
            store.write_journal(Journal(None, system, "full", UserIds()))
        created = _create_new(api, system, name or "", ids, token, token)
        guid, changed_at = created["segment_guid"], created["changed_at"]
        summary.update(mode="full", added=len(ids), removed=0, unchanged=0, requests=created["requests"])
    else:
        guid = segment["segment_guid"]
        if plan.requests:
            if store is not None:
                pending = (
                    UserIds()
                    if plan.mode == "full"
                    else UserIds.from_values(plan.adds + plan.removes, max_length=max_length)
                )
                store.write_journal(Journal(guid, system, plan.mode, pending))
            apply_plan(api, system, guid, plan)
            changed_at = _now_iso()
        else:
            api.log.info("Segment %s already holds exactly the input: nothing sent.", guid)
            changed_at = (snapshot.changed_at if snapshot else None) or _now_iso()
    if store is not None:
        unchanged_state = (
            not plan.requests and journal is None and snapshot is not None and snapshot.segment_guid == guid
        )
        if not unchanged_state:
            store.write_snapshot(Snapshot(guid, system, summary["name"], ids, changed_at))
            api.log.info("Snapshot of %s ids written to %s.", f"{len(ids):,}", state_path)
        store.clear_journal()
    return {**summary, "segment_guid": guid, "changed_at": changed_at}


def _baseline(
    snapshot: Snapshot | None, journal: Journal | None, system: str, guid: str, log: Any
) -> tuple[UserIds, UserIds | None] | None:
    """What is known of segment ``guid``: ``(members per the snapshot, ids a failed run left unknown)``,
    or ``None`` when only a full change can be exact."""
    if snapshot is None:
        return None
    if snapshot.system_guid.lower() != system.lower() or snapshot.segment_guid.lower() != guid.lower():
        log.info(
            "The snapshot is of segment %s in system %s, not %s: syncing in full.",
            snapshot.segment_guid,
            snapshot.system_guid,
            guid,
        )
        return None
    if journal is None:
        return snapshot.ids, None
    if journal.mode != "delta" or (journal.segment_guid or "").lower() != guid.lower():
        log.warning("An earlier sync left the whole membership unknown (%s): syncing in full.", journal)
        return None
    log.warning(
        "An earlier sync did not finish: %s ids it was changing are treated as unknown and sent again.",
        f"{len(journal.ids):,}",
    )
    return snapshot.ids, journal.ids


# -- snapshot and journal ------------------------------------------------------------------------
@dataclass
class Snapshot:
    """The membership a sync left: segment ``segment_guid`` holds exactly ``ids`` (outside a journal)."""

    segment_guid: str
    system_guid: str
    name: str | None
    ids: UserIds
    changed_at: str | None = None


@dataclass
class Journal:
    """A change in flight on ``segment_guid``: the ``ids`` it may alter (``mode="full"``: all of them)."""

    segment_guid: str | None
    system_guid: str
    mode: str
    ids: UserIds

    def __str__(self) -> str:
        return f"{self.mode} change of segment {self.segment_guid or '(being created)'}"


class StateStore:
    """The snapshot at ``state_path`` and its journal at ``state_path + ".journal"`` (local or URI).

    Both are written to a temporary sibling and moved over the old file, so a reader never sees half
    a file: a killed task leaves the old version or the new one.
    """

    def __init__(self, state_path: Any) -> None:
        self.state_path = state_path
        self.journal_path = f"{state_path}{JOURNAL_SUFFIX}"

    def read_snapshot(self, log: Any) -> Snapshot | None:
        """The last snapshot, or ``None`` (none yet, or unreadable: then a full sync makes it exact)."""
        read = _read_state(self.state_path, SNAPSHOT_MAGIC)
        if read is None:
            return None
        header, ids = read
        if header.get("version") not in (1, STATE_VERSION) or ids is None or len(ids) != header.get("count"):
            log.warning(
                "The snapshot at %s is incomplete or of another version; syncing in full to make the "
                "segment exact.",
                self.state_path,
            )
            return None
        return Snapshot(
            segment_guid=str(header["segment_guid"]),
            system_guid=str(header["system_guid"]),
            name=header.get("name"),
            ids=ids,
            changed_at=header.get("changed_at") or header.get("synced_at"),
        )

    def write_snapshot(self, snapshot: Snapshot) -> None:
        header = {
            "version": STATE_VERSION,
            "segment_guid": snapshot.segment_guid,
            "system_guid": snapshot.system_guid,
            "name": snapshot.name,
            "count": len(snapshot.ids),
            "changed_at": snapshot.changed_at,
        }
        _write_state(self.state_path, SNAPSHOT_MAGIC, header, snapshot.ids)

    def read_journal(self, log: Any) -> Journal | None:
        """The journal of a change that did not finish, or ``None``."""
        read = _read_state(self.journal_path, JOURNAL_MAGIC)
        if read is None:
            return None
        header, ids = read
        mode = header.get("mode")
        if ids is None or len(ids) != header.get("count") or mode not in ("full", "delta"):
            log.warning("Unreadable journal %s: the whole membership counts as unknown.", self.journal_path)
            return Journal(None, str(header.get("system_guid", "")), "full", UserIds())
        return Journal(header.get("segment_guid"), str(header.get("system_guid", "")), mode, ids)

    def write_journal(self, journal: Journal) -> None:
        header = {
            "version": STATE_VERSION,
            "segment_guid": journal.segment_guid,
            "system_guid": journal.system_guid,
            "mode": journal.mode,
            "count": len(journal.ids),
            "started_at": _now_iso(),
        }
        _write_state(self.journal_path, JOURNAL_MAGIC, header, journal.ids)

    def clear_journal(self) -> None:
        target = storage_path(self.journal_path)
        if isinstance(target, str):
            if os.path.exists(target):
                os.unlink(target)
        elif target.exists():
            target.unlink()


def _read_state(path: Any, magic: str) -> tuple[dict[str, Any], UserIds | None] | None:
    target = storage_path(path)
    if not (os.path.exists(target) if isinstance(target, str) else target.exists()):
        return None
    with open_text(path) as handle:
        first = handle.readline().rstrip("\r\n")
        if not first.startswith(magic):
            raise SegmentsValidationError(
                f"state_path {str(path)!r} is not a segments {magic.removeprefix('#segments-')} (it does not "
                f"start with {magic!r}); point state_path at a file of its own."
            )
        try:
            header = json.loads(first[len(magic) :])
        except ValueError:
            return {}, None
        try:
            # Written by us from validated ids; re-validated so a damaged file is caught, not trusted.
            ids = UserIds.from_lines_text(read_blocks(handle), max_length=10**6, source=str(path))
        except SegmentsValidationError:
            ids = None
    return (header if isinstance(header, dict) else {}), ids


def _write_state(path: Any, magic: str, header: dict[str, Any], ids: UserIds) -> None:
    """Write ``magic header`` and one id per line to a temporary sibling, then move it over ``path``."""
    target = storage_path(path)
    temporary_name = f"{path}.tmp-{uuid.uuid4().hex}"
    temporary = storage_path(temporary_name)
    if isinstance(target, str):
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    else:
        temporary.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open_text(temporary_name, "w") as handle:
            handle.write(f"{magic} {json.dumps(header)}\n")
            for chunk in ids.chunks(10_000):
                handle.write("\n".join(chunk))
                handle.write("\n")
        if isinstance(target, str):
            os.replace(temporary, target)  # atomic on one filesystem
        else:
            temporary.rename(target)  # a move within one store; the old file stays until then
    except BaseException:
        if isinstance(temporary, str):
            if os.path.exists(temporary):
                os.unlink(temporary)
        elif temporary.exists():
            temporary.unlink()
        raise


# -- small helpers -------------------------------------------------------------------------------
def _source(user_ids: Any) -> str:
    describe = getattr(user_ids, "describe", None)
    return describe() if callable(describe) else "an inline list"


def _chunk_count(total: int, size: int) -> int:
    return -(-total // size)


def _slices(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _count(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
