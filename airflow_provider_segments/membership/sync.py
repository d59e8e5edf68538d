"""A sync of a WalkMe segment, in stages: read the input, weigh the snapshot against the platform's
evidence, plan, guard, journal, send, verify (:func:`.read_back.verify`), record.

The snapshot is a cache: it is used for a delta only while the member count and update time the
platform lists agree with it; anything else means a full sync, and the log says why.
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime
from typing import Any

from airflow_provider_segments.exceptions import (
    MembershipMismatchError,
    SegmentsError,
    SegmentsValidationError,
)
from airflow_provider_segments.id_files import without_cyclic_gc
from airflow_provider_segments.ids import UserIds, load_ids
from airflow_provider_segments.membership.engine import (
    create_new_segment,
    creation_of,
    new_creation_token,
    now_iso,
    send_plan,
    source_name,
)
from airflow_provider_segments.membership.guards import DEFAULT_GUARDS, Guards
from airflow_provider_segments.membership.plan import (
    DELTA,
    FULL,
    delta_plan,
    full_plan,
    left_out_count,
)
from airflow_provider_segments.membership.read_back import (
    begin_change,
    evidence_fields,
    listed_segment,
    verify,
)
from airflow_provider_segments.membership.sender import MembershipApi
from airflow_provider_segments.membership.state import Journal, Snapshot, StateStore
from airflow_provider_segments.membership.writes import CreationMark, existing_segment


@without_cyclic_gc
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
        with store.lease_kept() if store is not None and not dry_run else nullcontext():
            return _sync(
                api,
                system,
                user_ids,
                max_length,
                segment_guid,
                name,
                store,
                full_refresh,
                dry_run,
                mark,
                guards,
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
    source = source_name(user_ids)
    log.info("%s unique valid ids read from %s.", f"{len(ids):,}", source)
    guards.check_input(ids, source)
    journal = store.read_journal(log) if store is not None else None

    # 2. the segment as the platform lists it, and what of the snapshot its evidence confirms
    if segment_guid is not None:
        segment: dict[str, Any] | None = listed_segment(api, system, segment_guid)
    else:
        segment = existing_segment(creation_of(api, system, name or "", mark, []), "update")
    size = api.max_ids_per_request
    plan = full_plan(ids, size)
    confirmed_members: int | None = None  # a delta's: the snapshot the platform's evidence confirmed
    count_after_adds: int | None = None  # what a clean delta's adds must make (checked before removes)
    membership_change: tuple[int, int] | None = None  # a delta's (added, removed) on the platform
    if segment is not None:
        baseline = _baseline(snapshot, journal, segment, system, log)
        if baseline is not None:
            known_ids, uncertain = baseline
            delta = delta_plan(ids, known_ids, uncertain, size)
            # A delta never takes a member out that stays in, where override-then-add briefly does;
            # only a recovery (ids a failed run left unknown) falls back to the cheaper full change.
            if uncertain is None or delta.requests <= plan.requests:
                plan = delta
                # (a retry's adds may hold ids a failed run was adding, already in the snapshot)
                new = len(delta.adds) if uncertain is None else left_out_count(known_ids, delta.adds)
                confirmed_members = len(known_ids)
                count_after_adds = confirmed_members + new
                # a recovery resends ids the failed run left unknown: count what the platform sees
                gone = len(delta.removes)
                if uncertain is not None:
                    gone -= left_out_count(known_ids, delta.removes)
                membership_change = (new, gone)

    # 3. guards: nothing is sent when a change removes too much (or cannot be checked)
    if segment is not None:
        what = f"Syncing WalkMe segment {segment['segment_guid']}"
        if membership_change is not None:  # members known from the snapshot the evidence confirmed
            guards.check_removal(membership_change[1], confirmed_members, what)
        else:  # at least count - len(input) go; a snapshot of this segment shows who was there
            listed_members: int | None = segment.get("user_count")
            removing, at_most = max(0, (listed_members or 0) - len(ids)), False
            if snapshot is not None and _is_of(snapshot, segment, system) and guards.limits_removal:
                if listed_members is None:
                    listed_members = len(snapshot.ids)
                    log.info(
                        "WalkMe lists no member count: the removal guard counts the snapshot's %s.",
                        listed_members,
                    )
                # a swap keeps the count; the snapshot (even one WalkMe's evidence no longer
                # confirms for a delta) names the members the input leaves out.
                # Once members left elsewhere (or an unfinished run's override took them out: WalkMe's
                # count cannot tell which), which are still there is unknown: count the most.
                removing = min(listed_members, max(removing, left_out_count(ids, snapshot.ids)))
                at_most = len(snapshot.ids) > listed_members
            try:
                guards.check_removal(removing, listed_members, what, at_most=at_most)
            except SegmentsValidationError as err:
                if not (at_most and _unfinished_here(journal, segment)):  # (fewer listed than before)
                    raise
                raise SegmentsValidationError(  # fail closed, and say what a person can check
                    f"{err} An earlier run of this task left a change of this segment unfinished (its "
                    "journal is beside state_path): the members WalkMe lists may be what that run "
                    "left. If nobody else changed the segment since, rerun once with "
                    "max_removal_fraction=1.0, then set it back."
                ) from None
    log.info(plan.describe())
    added, removed = membership_change or plan.counts()
    unchanged = len(ids) - membership_change[0] if membership_change is not None else plan.unchanged
    summary: dict[str, Any] = {
        "mode": plan.mode,
        "added": added,
        "removed": removed,
        "unchanged": unchanged,
        "requests": plan.requests,
        "ids_sent": plan.total_ids if plan.requests else 0,
        "user_count": len(ids),
        "system_guid": system,
        "name": segment["name"] if segment else name,
        "segment_guid": segment["segment_guid"] if segment else None,
        "dry_run": dry_run,
    }
    if dry_run:
        log.info("Dry run: nothing was sent and the snapshot was not touched.")
        return {
            **summary,
            "ids_sent": 0,
            "changed_at": None,
            "listed_user_count": None,
            "verified": False,
            "verification": None,
        }

    # 4. journal, send, verify; meanwhile a thread writes the snapshot's body beside it
    body = store.snapshot_body(ids) if store is not None and (segment is None or plan.requests) else None
    try:
        if segment is None:
            if store is not None:
                store.write_journal(Journal(None, system, FULL, UserIds()))
            created, listed = create_new_segment(api, system, name or "", ids, mark)
            guid, changed_at = created["segment_guid"], created["changed_at"]
            summary.update(mode=FULL, added=len(ids), removed=0, unchanged=0, requests=created["requests"])
        else:
            guid = segment["segment_guid"]
            if plan.requests:
                if store is not None:
                    # a delta's changed ids; a full change puts every member in play (by its mode)
                    pending = plan.changed_ids() if plan.mode == DELTA else UserIds()
                    store.write_journal(Journal(guid, system, plan.mode, pending))
                try:
                    changed_since = segment.get("updated_at")
                    begin_change(api, guid)
                    send_plan(
                        api,
                        system,
                        guid,
                        plan,
                        changed_since=changed_since,
                        count_after_adds=count_after_adds,
                    )
                    what = f"segment {guid}"
                    listed = verify(
                        api, system, guid, expected=len(ids), what=what, changed_since=changed_since
                    )
                except MembershipMismatchError:
                    if store is not None:  # the whole membership is in doubt: the next run is full
                        store.write_journal(Journal(guid, system, FULL, UserIds()))
                    raise
                changed_at = now_iso()
            else:
                log.info("Segment %s already holds exactly the input: nothing sent.", guid)
                listed = segment
                changed_at = (snapshot.changed_at if snapshot else None) or now_iso()

        # 5. record: the snapshot with the evidence read back, then the journal goes (only while this
        # sync still holds the lease: one that another sync took over may have mixed both's writes)
        if store is not None:
            store.confirm_lease()
            unchanged_state = not plan.requests and journal is None and snapshot is not None
            if not unchanged_state:
                snapshot_now = Snapshot(
                    guid,
                    system,
                    summary["name"],
                    ids,
                    changed_at,
                    listed_count=listed.get("user_count"),
                    listed_updated_at=listed.get("updated_at"),
                )
                try:
                    store.write_snapshot(snapshot_now, body)
                except OSError as err:  # the change stands, verified: say so, not just the disk's error
                    raise SegmentsError(
                        f"WalkMe segment {guid} holds the input ({len(ids):,} ids, verified), but the "
                        f"snapshot could not be written to {store.shown_path}: {type(err).__name__}: "
                        f"{err.strerror or err}. The journal stays, so the next run syncs in full."
                    ) from err
                log.info("Snapshot of %s ids written to %s.", f"{len(ids):,}", store.shown_path)
            store.clear_journal()
        return {**summary, "segment_guid": guid, "changed_at": changed_at, **evidence_fields(listed)}
    finally:
        if body is not None:  # (after a commit: nothing left to remove)
            body.discard()


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
    if not _is_of(snapshot, listed, system):
        log.info(
            "The snapshot is of segment %s in system %s, not %s: syncing in full.",
            snapshot.segment_guid,
            snapshot.system_guid,
            guid,
        )
        return None
    count, updated = listed.get("user_count"), listed.get("updated_at")
    if updated is None:  # the count alone cannot show one member swapped for another elsewhere
        log.warning(
            "WalkMe lists no update time for segment %s: a change made elsewhere that kept the member "
            "count cannot be ruled out, so the snapshot is not used; syncing in full.",
            guid,
        )
        return None
    if updated != snapshot.listed_updated_at:
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
        return snapshot.ids, None
    if journal.mode != DELTA or not _unfinished_here(journal, listed):
        log.warning("An earlier sync left the whole membership unknown (%s): syncing in full.", journal)
        return None
    log.warning(
        "An earlier sync did not finish: %s ids it was changing are treated as unknown and sent again.",
        f"{len(journal.ids):,}",
    )
    return snapshot.ids, journal.ids


# -- small helpers -----------------------------------------------------------------------------------


def _is_of(snapshot: Snapshot, listed: dict[str, Any], system: str) -> bool:
    """Whether ``snapshot`` was taken of the listed segment (same system, same GUID)."""
    guid = str(listed["segment_guid"]).lower()
    return snapshot.system_guid.lower() == system.lower() and snapshot.segment_guid.lower() == guid


def _unfinished_here(journal: Journal | None, listed: dict[str, Any]) -> bool:
    """Whether ``journal`` is of an unfinished change of the listed segment (this state's own run)."""
    guid = str(listed["segment_guid"]).lower()
    return journal is not None and (journal.segment_guid or "").lower() == guid
