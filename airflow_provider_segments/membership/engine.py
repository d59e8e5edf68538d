"""Membership changes of a WalkMe segment: create, update (``add``/``remove``/``override``) and
the read-back that verifies each of them; :mod:`.sync` builds a sync in stages out of these.

What a change promises: when it returns, the platform lists the segment with exactly as many members
as the input holds (read back after the last write), or, where the platform lists no count, the
result says the change could not be verified (``verified: False``). When the read-back disagrees,
the task fails with :class:`MembershipMismatchError`, the journal marks the whole membership unknown
and the next run (the retry) syncs in full.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from itertools import chain
from typing import Any

from airflow_provider_segments.exceptions import SegmentsError
from airflow_provider_segments.id_files import without_cyclic_gc
from airflow_provider_segments.ids import UserIds, load_ids
from airflow_provider_segments.membership.guards import DEFAULT_GUARDS, Guards
from airflow_provider_segments.membership.plan import (
    FULL,
    Plan,
    chunk_count,
    full_plan,
)
from airflow_provider_segments.membership.read_back import (
    begin_change,
    evidence_fields,
    listed_segment,
    verify,
)
from airflow_provider_segments.membership.sender import MembershipApi, send_chunks, stopped_between_phases
from airflow_provider_segments.membership.writes import (
    Creation,
    CreationMark,
    existing_segment,
    post_once,
)


def new_creation_token() -> str:
    """A token that marks a segment as created by this call (sent as its external id)."""
    return f"airflow-{uuid.uuid4().hex[:20]}"


# -- creates ---------------------------------------------------------------------------------------
def creation_of(api: MembershipApi, system: str, name: str, mark: CreationMark, first: list[str]) -> Creation:
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
        undo=lambda segment: api.delete_segment(segment["segment_guid"], system),
        sleep=api.sleep,
        log=api.log,
        advice="Use WalkMeUpdateSegmentOperator, or if_exists='update'.",
    )


@without_cyclic_gc
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
    guards.check_input(ids, source_name(user_ids))
    mark = CreationMark(creation_token or new_creation_token(), external_id, created_after)
    existing = existing_segment(creation_of(api, system, name, mark, []), if_exists)
    if existing is not None:
        guid = existing["segment_guid"]
        result = override(
            api,
            system,
            guid,
            ids,
            guards=guards,
            known_count=existing.get("user_count"),
            changed_since=existing.get("updated_at"),
        )
        return {**result, "name": name, "external_id": existing.get("external_id"), "created": False}
    return create_new_segment(api, system, name, ids, mark)[0]


def create_new_segment(
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
    segment, unconfirmed = post_once(creation_of(api, system, name, mark, first))
    guid = segment["segment_guid"]
    adds = (("add", chunk) for chunk in chunks)
    steps: Iterable[tuple[str, list[str]]]
    if unconfirmed:  # the lost create's content is not known for sure: the first chunk goes again, exact
        steps, landed = chain([("override", first)], adds), 0
        what = f"created segment {name!r} ({guid}), its content unknown after the create's answer was lost"
    else:
        api.log.info("chunk 1/%d (create): %s/%s ids", total_chunks, f"{len(first):,}", f"{len(ids):,}")
        steps, landed = adds, 1
        what = f"created segment {name!r} ({guid}) with the first {len(first):,} ids"
    send_chunks(
        api,
        system,
        guid,
        steps,
        total_chunks=total_chunks,
        total_ids=len(ids),
        applied_chunks=landed,
        applied_ids=len(first) * landed,
        what=what,
    )
    listed = verify(
        api, system, guid, expected=len(ids), what=f"the new segment {name!r} ({guid})", created_as=name
    )
    result = {
        "segment_guid": guid,
        "name": name,
        "system_guid": system,
        "external_id": segment.get("external_id")
        or (mark.external_id if mark.external_id is not None else mark.token),
        "user_count": len(ids),
        "requests": total_chunks,
        "created": True,
        "changed_at": now_iso(),
        **evidence_fields(listed),
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
    changed_since: str | None = None,
) -> dict[str, Any]:
    """Make an existing segment hold exactly ``ids``: ``override`` the first chunk, ``add`` the rest.

    ``known_count``: the members the platform lists for it, for the removal guard (an override can
    remove at least ``known_count - len(ids)`` of them); ``None`` where it lists none.
    ``changed_since``: the update time it listed before (see :func:`verify`).
    """
    guards.check_removal(
        max(0, (known_count or 0) - len(ids)), known_count, f"Overriding WalkMe segment {guid}"
    )
    return apply_action(api, system, guid, "override", ids, changed_since=changed_since)


def apply_action(
    api: MembershipApi,
    system: str,
    guid: str,
    action: str,
    ids: UserIds,
    known_count: int | None = None,
    changed_since: str | None = None,
) -> dict[str, Any]:
    """``add``, ``remove`` or ``override`` ``ids`` in chunks, then read the segment back; the result
    for XCom. ``changed_since``: the update time listed before the writes (see :func:`verify`)."""
    size = api.max_ids_per_request
    plan = full_plan(ids, size) if action == "override" else None
    count = plan.requests if plan is not None else chunk_count(len(ids), size)
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
    begin_change(api, guid)
    if plan is not None:
        send_plan(api, system, guid, plan, changed_since=changed_since)
    else:
        steps = ((action, chunk) for chunk in ids.chunks(size))
        send_chunks(api, system, guid, steps, total_chunks=count, total_ids=len(ids))
    changed_since = changed_since if count else None  # (nothing sent: nothing to see)
    if plan is not None:
        listed = verify(
            api, system, guid, expected=len(ids), what=f"segment {guid}", changed_since=changed_since
        )
    else:
        # add/remove: the members besides these ids are not known, so only bounds can be checked.
        listed = verify(
            api,
            system,
            guid,
            at_least=len(ids) if action == "add" else None,
            at_most=known_count if action == "remove" else None,
            what=f"segment {guid}",
            changed_since=changed_since,
        )
    return {
        "segment_guid": guid,
        "system_guid": system,
        "action": action,
        "user_count": len(ids),
        "requests": count,
        "changed_at": now_iso(),
        **evidence_fields(listed, exact=plan is not None),
    }


def send_plan(
    api: MembershipApi,
    system: str,
    guid: str,
    plan: Plan,
    *,
    changed_since: str | None,
    count_after_adds: int | None = None,
) -> None:
    """Send ``plan`` in two phases with a read-back between them, so that writes answered but not
    applied in one phase cannot be hidden by the other's (the final count would fit by
    coincidence): a full plan's ``override`` chunk, then its ``add`` chunks; a delta's adds, then its
    removes (``count_after_adds``: what the adds must make). ``changed_since``: the update time
    listed before the change (see :func:`verify`). Within a phase every lost write shows in the
    count; the final read-back compares with the time before the change too, not the one between
    the phases (a coarse clock could show that one unmoved).
    """
    size = api.max_ids_per_request
    total, total_ids = plan.requests, plan.total_ids
    if plan.mode == FULL:
        chunks = plan.ids.chunks(size)
        first = next(chunks, [])
        phase: Iterable[tuple[str, list[str]]] = [("override", first)]
        rest: Iterable[tuple[str, list[str]]] = (("add", chunk) for chunk in chunks)
        phase_chunks, phase_ids = 1, len(first)
        expected: int | None = len(first)
        done, label = f"overrode segment {guid} with the first {len(first):,} ids", "the override chunk"
    else:
        phase = (("add", chunk) for chunk in plan.adds.chunks(size))
        rest = (("remove", chunk) for chunk in plan.removes.chunks(size))
        phase_chunks, phase_ids = chunk_count(len(plan.adds), size), len(plan.adds)
        expected = count_after_adds
        done, label = f"added {len(plan.adds):,} ids to segment {guid}", "the members before plus the adds"
    send_chunks(api, system, guid, phase, total_chunks=total, total_ids=total_ids)
    if 0 < phase_chunks < total and expected is not None:
        what = f"segment {guid} after its {'override chunk' if plan.mode == FULL else 'adds'}"
        try:
            verify(
                api,
                system,
                guid,
                expected=expected,
                what=what,
                changed_since=changed_since,
                expected_is=label,
            )
        except SegmentsError as err:  # half-changed: say what landed and what was held back
            raise stopped_between_phases(
                err,
                guid,
                done,
                applied=(phase_chunks, phase_ids),
                total=(total, total_ids),
                after_override=plan.mode == FULL,
            ) from err
    send_chunks(
        api,
        system,
        guid,
        rest,
        total_chunks=total,
        total_ids=total_ids,
        applied_chunks=phase_chunks,
        applied_ids=phase_ids,
        what=done if phase_chunks else "",
        after_override=plan.mode == FULL and phase_chunks > 0,
    )


@without_cyclic_gc
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
    guards.check_input(ids, source_name(user_ids))  # an empty export is refused for every action
    known = listed_segment(api, system, guid)
    count, updated = known.get("user_count"), known.get("updated_at")
    if action == "remove":  # WalkMe lists how many members, not who: count every id as one
        what = f"Removing {len(ids):,} ids from WalkMe segment {guid}"
        guards.check_removal(min(len(ids), count or 0), count, what, at_most=True)
    if action != "override":
        return apply_action(api, system, guid, action, ids, known_count=count, changed_since=updated)
    return override(api, system, guid, ids, guards=guards, known_count=count, changed_since=updated)


# -- the sync --------------------------------------------------------------------------------------


def source_name(user_ids: Any) -> str:
    describe = getattr(user_ids, "describe", None)
    return describe() if callable(describe) else "an inline list"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
