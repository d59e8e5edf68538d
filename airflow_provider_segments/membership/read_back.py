"""The read-back after a change of a WalkMe segment: what the platform lists is evidence of the
change only when it shows it (the member count intended, an update time moved forward by the
change's writes and not past the last of them).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow_provider_segments.exceptions import (
    MembershipMismatchError,
    SegmentsError,
    SegmentsNotFoundError,
)
from airflow_provider_segments.membership.names_written import TakingBack, check_created_name
from airflow_provider_segments.membership.sender import MembershipApi
from airflow_provider_segments.membership.writes import has_fraction, parse_time

#: Read-backs of a changed segment before a count that disagrees counts as a mismatch (a listing
#: may lag a moment behind the writes), and the wait between two.
VERIFY_READS = 3
VERIFY_INTERVAL = 2.0


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


def begin_change(api: MembershipApi, guid: str) -> None:
    """Start a change of segment ``guid``: the update times answered to earlier writes of it (of a
    change that failed before its read-back) are not this change's evidence, so they are dropped."""
    answered = getattr(api, "take_answered_write_times", None)  # where the API offers it (WalkMeHook)
    if callable(answered):
        answered(guid)


def verify(
    api: MembershipApi,
    system: str,
    guid: str,
    *,
    what: str,
    expected: int | None = None,
    at_least: int | None = None,
    at_most: int | None = None,
    changed_since: str | None = None,
    expected_is: str = "the input",
    created_as: str | None = None,
) -> dict[str, Any]:
    """Read the segment back after a change and compare its listed member count with the intent
    (``expected_is`` says what ``expected`` counts, for the error).

    ``created_as``: the name a create sent. The first read then looks the name up (the same one
    request): the platform must list the new segment under exactly that name, and no other.

    ``changed_since``: the update time WalkMe listed before this change's writes. Every write moves
    it, so a segment still listed with it was not changed: writes answered but not applied (a count
    that fits by coincidence proves nothing then).

    :returns: the segment as listed (``user_count`` ``None`` where the platform lists no count: then
        the change is reported as not verified).
    :raises MembershipMismatchError: the listed count disagrees after :data:`VERIFY_READS` reads.
    """
    answered = getattr(api, "take_answered_write_times", None)  # where the API offers it (WalkMeHook)
    last_writes = answered(guid) if callable(answered) else ()  # (no write happens while reading back)
    for read in range(1, VERIFY_READS + 1):
        named = created_as if read == 1 else None
        try:
            twins = api.find_segments_by_name(named, system) if named is not None else []
            ours = [segment for segment in twins if str(segment["segment_guid"]).lower() == guid.lower()]
            listed = ours[0] if ours else listed_segment(api, system, guid)
        except SegmentsError as err:  # same error, same retry policy; it says what the writes did
            err.args = (
                f"Every write sent for {what} was acknowledged, but reading it back failed, so its "
                f"membership is not verified (rerun the task): {err}",
                *err.args[1:],
            )
            raise
        if named is not None:
            others = [segment["segment_guid"] for segment in twins if segment not in ours]
            taking_back = TakingBack(lambda: api.delete_segment(guid, system))  # the create's own segment
            check_created_name("WalkMe", what, named, listed.get("name"), others, taking_back)
        count = listed.get("user_count")
        if last_writes and all(_is_later(listed.get("updated_at"), answer) for answer in last_writes):
            raise MembershipMismatchError(
                f"After the change, WalkMe lists {what} as updated at {listed.get('updated_at')}, after "
                f"this task's last write was answered ({' / '.join(last_writes)}): another client changed "
                "it since (or a late copy of a write landed), so the "
                f"{count if count is not None else 'unknown'} members it lists are not known to be the "
                "input. The task fails so that this is not reported as success; rerun it (a sync then "
                "sends the whole membership).",
                listed_count=count,
                expected_count=expected,
            )
        problem = "" if count is None else _count_problem(count, expected, at_least, at_most, expected_is)
        unmoved = changed_since is not None and not _moved_since(listed.get("updated_at"), changed_since)
        if not problem and unmoved:  # with or without a count: a snapshot keeps this listing as evidence
            problem = (
                f"it lists the update time {listed.get('updated_at')}, not later than the update time read "
                f"before this change's writes ({changed_since}): they did not take effect (or WalkMe keeps "
                "update times too coarse to show them, or a replica behind answered)"
            )
        listed_members = "no member count" if count is None else f"{count:,} members"
        if not problem and count is None:
            api.log.warning(
                "WalkMe lists no member count for %s: the change could not be verified against the "
                "platform (the result says verified=False).",
                what,
            )
            return listed
        if not problem:
            api.log.info("Read back %s: WalkMe lists %s, as intended.", what, listed_members)
            return listed
        if read < VERIFY_READS:
            api.log.info(
                "Read back %s: %s listed, but %s; reading again in %.0f s.",
                what,
                listed_members,
                problem,
                VERIFY_INTERVAL,
            )
            api.sleep(VERIFY_INTERVAL)
    raise MembershipMismatchError(
        f"After the change, WalkMe lists {listed_members} for {what}, but {problem}. "
        "A write may have landed late, or someone changed the segment meanwhile. The task fails so that "
        "this is not reported as success; rerun it (a sync then sends the whole membership).",
        listed_count=count,
        expected_count=expected,
    )


def _is_later(listed: Any, answered: str | None) -> bool:
    """Whether the listed update time is later than the one a write of this task was answered with.

    Both with a fraction of a second: compared as they are, to the millisecond (a server may drop
    trailing zeros, so the number of digits says nothing of its precision; a listing may keep more
    digits than the answer, or round to fewer: under a millisecond apart proves nothing). Either in
    whole seconds (cut or rounded, as another serializer or a store may keep them): only a whole
    second more is surely later.
    """
    listed_at, answered_at = parse_time(listed), parse_time(answered)
    if listed_at is None or answered_at is None:
        return False
    if has_fraction(listed) and has_fraction(answered):  # (a millisecond: one may be cut, one rounded)
        return listed_at - answered_at >= timedelta(milliseconds=1)
    return listed_at - answered_at >= timedelta(seconds=1)


def _moved_since(listed: Any, before: str) -> bool:
    """Whether the listed update time is later than the one listed before a change's writes (every
    write moves it forward; one that stayed or went back shows writes that did not take effect). Not
    listed: nothing to compare (the result is then not verified); unreadable: compared as written."""
    if listed is None:
        return True
    listed_at, before_at = parse_time(listed), parse_time(before)
    if listed_at is None or before_at is None:
        return listed != before
    return listed_at > before_at


def _count_problem(
    count: int, expected: int | None, at_least: int | None, at_most: int | None, expected_is: str
) -> str:
    if expected is not None and count != expected:
        return f"it should hold exactly {expected:,} ({expected_is})"
    if at_least is not None and count < at_least:
        return f"it should hold at least the {at_least:,} ids just added"
    if at_most is not None and count > at_most:
        return f"it should hold at most the {at_most:,} listed before the removal"
    return ""


def evidence_fields(listed: dict[str, Any], *, exact: bool = True) -> dict[str, Any]:
    """What the read-back showed, for XCom: ``verified`` only where the platform's evidence pins the
    membership (``exact``: an override, a create, a sync); an ``add`` or ``remove`` can only be
    checked against bounds, since WalkMe lists how many members there are, not who."""
    count = listed.get("user_count")
    # without an update time a write answered but not applied can hide behind a count that fits
    exact = exact and listed.get("updated_at") is not None
    verification = None if count is None else "exact" if exact else "bounds"
    return {"listed_user_count": count, "verified": verification == "exact", "verification": verification}
