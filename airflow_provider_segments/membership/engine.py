"""Membership changes of a WalkMe segment, in stages: read the input, weigh the snapshot against the
platform's evidence, plan, guard, journal, send, verify, record.

What a change promises: when it returns, the platform lists the segment with exactly as many members
as the input holds (read back after the last write), or, where the platform lists no count, the
result says the change could not be verified (``verified: False``). When the read-back disagrees,
the task fails with :class:`MembershipMismatchError`, the journal marks the whole membership unknown
and the next run (the retry) syncs in full.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from airflow_provider_segments.exceptions import (
    MembershipMismatchError,
    SegmentsNotFoundError,
    SegmentsValidationError,
)
from airflow_provider_segments.ids import UserIds, load_ids
from airflow_provider_segments.membership.guards import DEFAULT_GUARDS, Guards
from airflow_provider_segments.membership.plan import (
    DELTA,
    FULL,
    Plan,
    chunk_count,
    delta_plan,
    full_plan,
)
from airflow_provider_segments.membership.sender import MembershipApi, send_chunks
from airflow_provider_segments.membership.state import Journal, Snapshot, StateStore
from airflow_provider_segments.membership.writes import (
    Creation,
    CreationMark,
    existing_segment,
    post_once,
)

#: Read-backs of a changed segment before a count that disagrees counts as a mismatch (a listing
#: may lag a moment behind the writes), and the wait between two.
VERIFY_READS = 3
VERIFY_INTERVAL = 2.0


def new_creation_token() -> str:
    """A token that marks a segment as created by this call (sent as its external id)."""
    return f"airflow-{uuid.uuid4().hex[:20]}"


# -- creates ---------------------------------------------------------------------------------------
def _creation(api: MembershipApi, system: str, name: str, mark: CreationMark, first: list[str]) -> Creation:
    external_id = mark.external_id if mark.external_id is not None else mark.token
    return Creation(
        platform="WalkMe",
        kind="WalkMe segment",
        name=name,
        where=f"in system {system}",
        mark=mark,
        find=lambda: api.find_segments_by_name(name, system),
        post=lambda: api.post_segment(system, name, first, external_id),
        segment_id=lambda segment: segment.get("segment_guid"),
        sleep=api.sleep,
        log=api.log,
        advice="Use WalkMeUpdateSegmentOperator, or if_exists='update'.",
    )


def create_segment(
    api: MembershipApi,
    system: str,
    name: str,
    user_ids: Any,
    *,
    max_length: int,
    external_id: str | None = None,
    if_exists: str = "update",
    creation_token: str | None = None,
    created_after: datetime | None = None,
    guards: Guards = DEFAULT_GUARDS,
) -> dict[str, Any]:
    """Make the segment named ``name`` hold exactly ``user_ids``, creating it when no segment has
    the name (see :meth:`~..hooks.walkme.WalkMeHook.create_segment`)."""
    ids = load_ids(user_ids, max_length=max_length)
    guards.check_input(ids, _source(user_ids))
    mark = CreationMark(creation_token or new_creation_token(), external_id, created_after)
    existing = existing_segment(_creation(api, system, name, mark, []), if_exists)
    if existing is not None:
        guid = existing["segment_guid"]
        result = override(api, system, guid, ids, guards=guards, known_count=existing.get("user_count"))
        return {**result, "name": name, "external_id": existing.get("external_id"), "created": False}
    return _create_new(api, system, name, ids, mark)[0]


def _create_new(
    api: MembershipApi, system: str, name: str, ids: UserIds, mark: CreationMark
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create a segment known not to exist: the first chunk in the create, ``add`` for the rest,
    then read it back. Returns the result for XCom and the segment as listed after the change."""
    size = api.max_ids_per_request
    total_chunks = max(1, chunk_count(len(ids), size))
    chunks = ids.chunks(size)
    first = next(chunks, [])
    api.log.info(
        "Creating WalkMe segment %r in system %s with %s ids in %d request(s).",
        name,
        system,
        f"{len(ids):,}",
        total_chunks,
    )
    segment, unconfirmed = post_once(_creation(api, system, name, mark, first))
    guid = segment["segment_guid"]
    if unconfirmed:  # the lost create's content is not known for sure: make the first chunk exact
        send_chunks(api, system, guid, [("override", first)], total_chunks=1, total_ids=len(first))
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
    listed = verify(api, system, guid, expected=len(ids), what=f"the new segment {name!r} ({guid})")
    result = {
        "segment_guid": guid,
        "name": name,
        "system_guid": system,
        "external_id": segment.get("external_id")
        or (mark.external_id if mark.external_id is not None else mark.token),
        "user_count": len(ids),
        "requests": total_chunks,
        "created": True,
        "changed_at": _now_iso(),
        **_evidence_fields(listed),
    }
    return result, listed


# -- updates ---------------------------------------------------------------------------------------
def override(
    api: MembershipApi,
    system: str,
    guid: str,
    ids: UserIds,
    *,
    guards: Guards,
    known_count: int | None = None,
) -> dict[str, Any]:
    """Make an existing segment hold exactly ``ids``: ``override`` the first chunk, ``add`` the rest.

    ``known_count``: the members the platform lists for it, for the removal guard (an override can
    remove at least ``known_count - len(ids)`` of them); ``None`` where it lists none.
    """
    guards.check_removal(
        max(0, (known_count or 0) - len(ids)), known_count, f"Overriding WalkMe segment {guid}"
    )
    return apply_action(api, system, guid, "override", ids)


def apply_action(
    api: MembershipApi,
    system: str,
    guid: str,
    action: str,
    ids: UserIds,
    known_count: int | None = None,
) -> dict[str, Any]:
    """``add``, ``remove`` or ``override`` ``ids`` in chunks, then read the segment back; the result
    for XCom."""
    size = api.max_ids_per_request
    if action == "override":
        plan = full_plan(ids, size)
        steps, count = plan.steps(), plan.requests
    else:
        steps = ((action, chunk) for chunk in ids.chunks(size))
        count = chunk_count(len(ids), size)
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
    if action == "override":
        listed = verify(api, system, guid, expected=len(ids), what=f"segment {guid}")
    else:
        # add/remove: the members besides these ids are not known, so only bounds can be checked.
        listed = verify(
            api,
            system,
            guid,
            at_least=len(ids) if action == "add" else None,
            at_most=known_count if action == "remove" else None,
            what=f"segment {guid}",
        )
    return {
        "segment_guid": guid,
        "system_guid": system,
        "action": action,
        "user_count": len(ids),
        "requests": count,
        "changed_at": _now_iso(),
        **_evidence_fields(listed),
    }


def update_segment(
    api: MembershipApi,
    system: str,
    guid: str,
    action: str,
    user_ids: Any,
    *,
    max_length: int,
    guards: Guards = DEFAULT_GUARDS,
) -> dict[str, Any]:
    """``add``/``remove``/``override`` (see :meth:`~..hooks.walkme.WalkMeHook.update_segment`)."""
    ids = load_ids(user_ids, max_length=max_length)
    known = listed_segment(api, system, guid)
    if action != "override":
        return apply_action(api, system, guid, action, ids, known_count=known.get("user_count"))
    guards.check_input(ids, _source(user_ids))
    return override(api, system, guid, ids, guards=guards, known_count=known.get("user_count"))


def listed_segment(api: MembershipApi, system: str, guid: str) -> dict[str, Any]:
    """The segment as the platform lists it now; refuse a GUID it does not list."""
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


# -- verification ------------------------------------------------------------------------------------
def verify(
    api: MembershipApi,
    system: str,
    guid: str,
    *,
    what: str,
    expected: int | None = None,
    at_least: int | None = None,
    at_most: int | None = None,
) -> dict[str, Any]:
    """Read the segment back after a change and compare its listed member count with the intent.

    :returns: the segment as listed (``user_count`` ``None`` where the platform lists no count: then
        the change is reported as not verified).
    :raises MembershipMismatchError: the listed count disagrees after :data:`VERIFY_READS` reads.
    """
    for read in range(1, VERIFY_READS + 1):
        listed = listed_segment(api, system, guid)
        count = listed.get("user_count")
        if count is None:
            api.log.warning(
                "WalkMe lists no member count for %s: the change could not be verified against the "
                "platform (the result says verified=False).",
                what,
            )
            return listed
        problem = _count_problem(count, expected, at_least, at_most)
        if not problem:
            api.log.info("Read back %s: WalkMe lists %s members, as intended.", what, f"{count:,}")
            return listed
        if read < VERIFY_READS:
            api.log.info(
                "Read back %s: %s members listed, but %s; reading again in %.0f s.",
                what,
                f"{count:,}",
                problem,
                VERIFY_INTERVAL,
            )
            api.sleep(VERIFY_INTERVAL)
    raise MembershipMismatchError(
        f"After the change, WalkMe lists {count:,} members of {what}, but {problem}. "
        "A write may have landed late, or someone changed the segment meanwhile. The task fails so that "
        "this is not reported as success; rerun it (a sync then sends the whole membership).",
        listed_count=count,
        expected_count=expected,
    )


def _count_problem(count: int, expected: int | None, at_least: int | None, at_most: int | None) -> str:
    if expected is not None and count != expected:
        return f"it should hold exactly {expected:,} (the input)"
    if at_least is not None and count < at_least:
        return f"it should hold at least the {at_least:,} ids just added"
    if at_most is not None and count > at_most:
        return f"it should hold at most the {at_most:,} listed before the removal"
    return ""


def _evidence_fields(listed: dict[str, Any]) -> dict[str, Any]:
    count = listed.get("user_count")
    return {"listed_user_count": count, "verified": count is not None}


# -- the sync --------------------------------------------------------------------------------------
def sync_segment(
    api: MembershipApi,
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
    created_after: datetime | None = None,
    guards: Guards = DEFAULT_GUARDS,
) -> dict[str, Any]:
    """Make a segment hold exactly ``user_ids``, sending only the difference when the snapshot at
    ``state_path`` agrees with the platform (see :meth:`~..hooks.walkme.WalkMeHook.sync_segment`)."""
    if (segment_guid is None) == (name is None):
        raise SegmentsValidationError("Give exactly one of segment_guid or name of the segment to sync.")
    store = StateStore(state_path) if state_path is not None else None
    mark = CreationMark(creation_token or new_creation_token(), None, created_after)
    if store is not None:
        store.check_usable()
        if not dry_run:
            store.acquire_lease(mark.token or "", api.log)
    try:
        return _sync(
            api, system, user_ids, max_length, segment_guid, name, store, full_refresh, dry_run, mark, guards
        )
    finally:
        if store is not None and not dry_run:
            store.release_lease()


def _sync(
    api: MembershipApi,
    system: str,
    user_ids: Any,
    max_length: int,
    segment_guid: str | None,
    name: str | None,
    store: StateStore | None,
    full_refresh: bool,
    dry_run: bool,
    mark: CreationMark,
    guards: Guards,
) -> dict[str, Any]:
    log = api.log
    # 1. the input, sharing the snapshot's strings (two large, mostly equal collections cost one)
    snapshot = store.read_snapshot(log) if store is not None and not full_refresh else None
    ids = load_ids(user_ids, max_length=max_length, share=snapshot.ids if snapshot else None)
    source = _source(user_ids)
    log.info("%s unique valid ids read from %s.", f"{len(ids):,}", source)
    guards.check_input(ids, source)
    journal = store.read_journal(log) if store is not None else None

    # 2. the segment as the platform lists it, and what of the snapshot its evidence confirms
    if segment_guid is not None:
        segment: dict[str, Any] | None = listed_segment(api, system, segment_guid)
    else:
        segment = existing_segment(_creation(api, system, name or "", mark, []), "update")
    size = api.max_ids_per_request
    plan = full_plan(ids, size)
    known: int | None = segment.get("user_count") if segment is not None else None
    if segment is not None:
        baseline = _baseline(snapshot, journal, segment, system, log)
        if baseline is not None:
            known_ids, uncertain = baseline
            known = len(known_ids)
            delta = delta_plan(ids, known_ids, uncertain, size)
            # A delta never takes a member out that stays in, where override-then-add briefly does;
            # only a recovery (ids a failed run left unknown) falls back to the cheaper full change.
            if uncertain is None or delta.requests <= plan.requests:
                plan = delta

    # 3. guards: nothing is sent when a change removes too much (or cannot be checked)
    if segment is not None:
        what = f"Syncing WalkMe segment {segment['segment_guid']}"
        if plan.mode == DELTA:  # members known from the snapshot the platform's evidence confirmed
            guards.check_removal(len(plan.removes), known, what)
        else:  # members known from the count the platform lists (None: it lists none)
            known = segment.get("user_count")
            guards.check_removal(max(0, (known or 0) - len(ids)), known, what)
    log.info(plan.describe())
    added, removed = plan.counts()
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
        log.info("Dry run: nothing was sent and the snapshot was not touched.")
        return {**summary, "changed_at": None, "listed_user_count": None, "verified": False}

    # 4. journal, send, verify
    if segment is None:
        if store is not None:
            store.write_journal(Journal(None, system, FULL, UserIds()))
        created, listed = _create_new(api, system, name or "", ids, mark)
        guid, changed_at = created["segment_guid"], created["changed_at"]
        summary.update(mode=FULL, added=len(ids), removed=0, unchanged=0, requests=created["requests"])
    else:
        guid = segment["segment_guid"]
        if plan.requests:
            if store is not None:
                store.write_journal(Journal(guid, system, plan.mode, _pending(plan, max_length)))
            _send_plan(api, system, guid, plan)
            try:
                listed = verify(api, system, guid, expected=len(ids), what=f"segment {guid}")
            except MembershipMismatchError:
                if store is not None:  # the whole membership is in doubt: the next run is full
                    store.write_journal(Journal(guid, system, FULL, UserIds()))
                raise
            changed_at = _now_iso()
        else:
            log.info("Segment %s already holds exactly the input: nothing sent.", guid)
            listed = segment
            changed_at = (snapshot.changed_at if snapshot else None) or _now_iso()

    # 5. record: the snapshot with the evidence read back, then the journal goes
    if store is not None:
        unchanged_state = not plan.requests and journal is None and snapshot is not None
        if not unchanged_state:
            store.write_snapshot(
                Snapshot(
                    guid,
                    system,
                    summary["name"],
                    ids,
                    changed_at,
                    listed_count=listed.get("user_count"),
                    listed_updated_at=listed.get("updated_at"),
                )
            )
            log.info("Snapshot of %s ids written to %s.", f"{len(ids):,}", store.state_path)
        store.clear_journal()
    return {**summary, "segment_guid": guid, "changed_at": changed_at, **_evidence_fields(listed)}


def _send_plan(api: MembershipApi, system: str, guid: str, plan: Plan) -> None:
    send_chunks(api, system, guid, plan.steps(), total_chunks=plan.requests, total_ids=plan.total_ids)


def _pending(plan: Plan, max_length: int) -> UserIds:
    """The ids a plan may change (a full plan: all, recorded as the mode alone)."""
    if plan.mode == FULL:
        return UserIds()
    return UserIds.from_values(plan.adds + plan.removes, max_length=max_length)


def _baseline(
    snapshot: Snapshot | None, journal: Journal | None, listed: dict[str, Any], system: str, log: Any
) -> tuple[UserIds, UserIds | None] | None:
    """What is known of the listed segment: ``(members per the snapshot, ids a failed run left
    unknown)``, or ``None`` when only a full change can be exact.

    The snapshot is used only while the platform's evidence agrees with it: the member count it
    lists, and its update time, must be those read back after the snapshot's change.
    """
    if snapshot is None:
        return None
    guid = str(listed["segment_guid"])
    if snapshot.system_guid.lower() != system.lower() or snapshot.segment_guid.lower() != guid.lower():
        log.info(
            "The snapshot is of segment %s in system %s, not %s: syncing in full.",
            snapshot.segment_guid,
            snapshot.system_guid,
            guid,
        )
        return None
    count, updated = listed.get("user_count"), listed.get("updated_at")
    if updated is not None and updated != snapshot.listed_updated_at:
        reason = "an earlier sync did not finish" if journal is not None else "it was changed since"
        log.warning(
            "WalkMe lists segment %s as updated at %s, the snapshot was taken after the update of %s: "
            "%s, so the snapshot is not used; syncing in full.",
            guid,
            updated,
            snapshot.listed_updated_at or "(unknown)",
            reason,
        )
        return None
    if journal is None:
        if count is not None and count != len(snapshot.ids):
            log.warning(
                "WalkMe lists %s members of segment %s, the snapshot %s: it was changed outside this "
                "sync, so the snapshot is not used; syncing in full.",
                f"{count:,}",
                guid,
                f"{len(snapshot.ids):,}",
            )
            return None
        if count is None and updated is None:
            log.warning(
                "WalkMe lists neither a member count nor an update time for segment %s: the snapshot "
                "cannot be checked against the platform and is trusted as it is (full_refresh=True "
                "resets it).",
                guid,
            )
        return snapshot.ids, None
    if journal.mode != DELTA or (journal.segment_guid or "").lower() != guid.lower():
        log.warning("An earlier sync left the whole membership unknown (%s): syncing in full.", journal)
        return None
    log.warning(
        "An earlier sync did not finish: %s ids it was changing are treated as unknown and sent again.",
        f"{len(journal.ids):,}",
    )
    return snapshot.ids, journal.ids


# -- small helpers -----------------------------------------------------------------------------------
def _source(user_ids: Any) -> str:
    describe = getattr(user_ids, "describe", None)
    return describe() if callable(describe) else "an inline list"


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
