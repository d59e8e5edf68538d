"""The write-safety core both platforms use: create-or-adopt and delete-despite-a-lost-answer.

**Create or adopt.** The name is looked up first. A segment this task created on an earlier try is
its own and is adopted; another segment of that name is updated (``if_exists="update"``) or refused
(``"error"``). Only then is the create sent, once: when its outcome is unknown (a lost answer, a
timeout, a 5xx) the name is looked up for a grace period (a slow server may still be creating it),
and if it never shows up the task fails saying so. A create is never resent blindly, so a retried
task never makes a duplicate.

*This task's own segment* is recognised by the creation token this task sends as the segment's
external id (WalkMe, when the task gives no external id of its own: then nothing else counts), else
by the task's external id (when given) together with a creation time after this DAG run started
(in whole seconds: platforms list creation times to the second). Zendesk segments carry no external
id, so there it is the creation time together with the content: a segment made since the run
started that holds exactly what this create sends (another task's segment of that name holds
something else, and is not taken for this task's).

**Delete despite a lost answer.** A DELETE whose outcome is unknown is followed by a look-up: a
segment that is gone was deleted (reported as done, not as "not found"), one still listed is
deleted again, a bounded number of times.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_segments.exceptions import (
    SegmentExistsError,
    SegmentsApiError,
    SegmentsError,
    SegmentsNotFoundError,
    SegmentsUnknownOutcomeError,
)
from airflow_provider_segments.membership.names_written import TakingBack, check_created_name

#: After a create whose outcome is unknown, how often to look for it (a slow server may still be
#: creating it), and how long to wait between two looks: about 20 s in all.
CREATE_LOOKUPS = 6
CREATE_LOOKUP_INTERVAL = 4.0
#: DELETE attempts whose outcome is unknown before giving up (each followed by a look-up).
DELETE_ATTEMPTS = 3
#: Reads of a deleted segment before one still listed means the delete did not apply (a listing may
#: lag a moment behind a write), and the wait between two.
DELETE_READS = 3
DELETE_READ_INTERVAL = 2.0
#: How far the platform's clock may be behind Airflow's before a segment created "before the run"
#: surely is: only older ones are disowned after a lost create.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class CreationMark:
    """How a task recognises the segment it created on an earlier try.

    :param token: sent as the segment's external id when the task gives none (WalkMe).
    :param external_id: the task's own external id for the segment, if any.
    :param created_after: when this DAG run started: a segment of this name (and external id) created
        since then is this task's.
    :param holds: where segments carry no external id (Zendesk): whether a segment holds exactly what
        this create sends; one made since the run started that holds something else is not this task's.
    :param contradicts: whether a segment lists a field that differs from what this create sends:
        then it cannot be this create's (a field it does not list proves nothing either way).
    """

    token: str | None = None
    external_id: str | None = None
    created_after: datetime | None = None
    holds: Callable[[dict[str, Any]], bool] | None = None
    contradicts: Callable[[dict[str, Any]], bool] | None = None

    def owns(self, segment: dict[str, Any]) -> bool:
        """True when ``segment`` (normalised: ``external_id``, ``created_at``) is this task's."""
        if self.token and self.external_id is None:  # the token went out as the external id: proof
            return segment.get("external_id") == self.token
        if self.created_after is None:
            return False
        if self.external_id is not None and segment.get("external_id") != self.external_id:
            return False
        created = parse_time(segment.get("created_at"))
        # to the second, no slack for clock skew: with a user's external id (the same in every run) a
        # slack would let a later run take an earlier run's segment for its own under if_exists="error"
        if created is None or created < self.created_after.replace(microsecond=0):
            return False
        return self.holds is None or self.holds(segment)

    def proves(self, segment: dict[str, Any]) -> bool:
        """True when ``segment`` carries this task's creation token as its external id: proof it is
        this task's (what :meth:`owns` reads from a creation time and a content is only likely)."""
        return bool(self.token) and self.external_id is None and segment.get("external_id") == self.token

    def disowns(self, segment: dict[str, Any]) -> bool:
        """True when ``segment`` cannot be this task's: it lists another external id than the one
        this create sends, or none (the create's went with it), lists a field that differs from what
        it sends (``contradicts``), or was created before this run started."""
        sent_external_id = self.external_id if self.external_id is not None else self.token
        if sent_external_id and segment.get("external_id") != sent_external_id:  # none listed: not it either
            return True
        if self.contradicts is not None and self.contradicts(segment):
            return True
        created = parse_time(segment.get("created_at"))
        return (
            self.created_after is not None
            and created is not None
            and created < self.created_after - CLOCK_SKEW  # the platform's clock against Airflow's
        )


@dataclass
class Creation:
    """One create on one platform: how to look the name up, send the create, and name things.

    :param find: the segments (normalised dicts) whose name is exactly ``name``.
    :param post: send the create once; the created segment, or ``None`` when the answer did not
        say which; raises :class:`SegmentsUnknownOutcomeError` when it may or may not have landed.
    :param segment_id: a segment's id (WalkMe GUID, Zendesk number).
    :param undo: delete a segment this task created (one that shares its name with another).
    """

    platform: str
    kind: str
    name: str
    where: str
    mark: CreationMark
    find: Callable[[], list[dict[str, Any]]]
    post: Callable[[], dict[str, Any] | None]
    segment_id: Callable[[dict[str, Any]], Any]
    undo: Callable[[dict[str, Any]], Any]
    sleep: Callable[[float], None]
    log: Any
    advice: str = ""


def existing_segment(creation: Creation, if_exists: str) -> dict[str, Any] | None:
    """The segment a create should use instead of creating: this task's own, else the only one of
    that name (``if_exists="update"``); ``None`` when the name is free.

    :raises SegmentExistsError: the name is taken by a segment this task did not create and
        ``if_exists="error"``.
    """
    matches = creation.find()
    if not matches:
        return None
    own = [segment for segment in matches if creation.mark.owns(segment)]
    if len(own) == 1:
        _refuse_twins(creation, own[0], matches)
        creation.log.info(
            "%s %r (%s) was created by an earlier try of this task; continuing with it.",
            creation.kind,
            creation.name,
            creation.segment_id(own[0]),
        )
        return own[0]
    ids = ", ".join(str(creation.segment_id(segment)) for segment in matches)
    if if_exists == "error" and not own:
        raise SegmentExistsError(
            f"A {creation.kind} named {creation.name!r} already exists {creation.where} (id {ids}) and "
            f"if_exists='error'.{' ' + creation.advice if creation.advice else ''}"
        )
    if len(matches) > 1:
        raise SegmentsError(
            f"{len(matches)} {creation.kind}s are named {creation.name!r} {creation.where} ({ids}); "
            "refusing to guess which one to change. Delete the extras, or change one by its id."
        )
    creation.log.info(
        "%s %r already exists %s (%s): changing it instead of creating a duplicate.",
        creation.kind,
        creation.name,
        creation.where,
        ids,
    )
    return matches[0]


def _refuse_twins(
    creation: Creation, own: dict[str, Any], matches: list[dict[str, Any]], *, this_try_created: bool = False
) -> None:
    """An earlier try's segment (or, ``this_try_created``, this try's create whose answer was lost)
    is this task's only while no other segment has its name (that try may have failed before it
    looked the name up again): else it is deleted, and the task fails. Only one proven this task's
    is deleted (its creation token); one only likely this task's (a Zendesk segment made since the
    run started holding what this create sends) is left, with the other, and the task fails naming
    both."""
    others = [creation.segment_id(segment) for segment in matches if segment is not own]
    if not others:
        return
    if not creation.mark.proves(own):
        ids = ", ".join(str(creation.segment_id(segment)) for segment in matches)
        written = (
            "This try's create, whose answer was lost, may have made either; neither was changed"
            if this_try_created
            else "Nothing was written"
        )
        raise SegmentExistsError(
            f"{len(matches)} {creation.kind}s are named {creation.name!r} {creation.where} ({ids}); one "
            f"({creation.segment_id(own)}) was made since this DAG run started and holds what this "
            "create sends, but that does not prove it is this task's: refusing to guess which to keep. "
            f"{written}; delete the one that is not this task's, then rerun."
        )
    made_by = "this try's create, whose answer was lost" if this_try_created else "an earlier try"
    what = f"{creation.kind} {creation.name!r} ({creation.segment_id(own)}), made by {made_by}"
    name = creation.name
    check_created_name(creation.platform, what, name, name, others, TakingBack(lambda: creation.undo(own)))


def post_once(creation: Creation) -> tuple[dict[str, Any], bool]:
    """Send the create once and return ``(segment, landed_unconfirmed)``.

    ``landed_unconfirmed`` is true when the answer was lost and the segment was found by a look-up:
    the caller must then make it exact (the lost call's content is not known for sure).

    :raises SegmentsUnknownOutcomeError: the segment did not show up within the grace period; nothing
        was resent, so a rerun (which looks the name up first) cannot duplicate it.
    """
    cause: SegmentsUnknownOutcomeError | None = None
    failed_lookup: SegmentsApiError | None = None
    try:
        created = creation.post()
        if created is not None and creation.segment_id(created):
            return created, False
        creation.log.warning(
            "%s answered the create of %r without an id; looking it up.", creation.platform, creation.name
        )
    except SegmentsUnknownOutcomeError as err:
        creation.log.warning("%s. Looking for %r before deciding anything.", err, creation.name)
        cause = err
    for lookup in range(CREATE_LOOKUPS):
        if lookup:
            creation.sleep(CREATE_LOOKUP_INTERVAL)
        try:
            landed = _landed(creation)
        except SegmentsUnknownOutcomeError:
            raise
        except SegmentsApiError as err:  # a failed look-up is no answer: look again while looks remain
            creation.log.warning("Looking for %r failed (%s); looking again.", creation.name, err)
            failed_lookup = err
            continue
        failed_lookup = None  # this look-up answered: an earlier failure says nothing more
        if landed is not None:
            creation.log.info(
                "The create of %r had landed (%s); continuing with it.",
                creation.name,
                creation.segment_id(landed),
            )
            return landed, True
    looked = f"{CREATE_LOOKUPS} looks over {(CREATE_LOOKUPS - 1) * CREATE_LOOKUP_INTERVAL:.0f} s"
    unseen = (
        f"it was not listed after {looked}"
        if failed_lookup is None
        else f"it may exist: it was not found in {looked}, the last of which failed ({failed_lookup})"
    )
    raise SegmentsUnknownOutcomeError(
        f"The create of {creation.kind} {creation.name!r} {creation.where} has an unknown outcome: the "
        f"server did not confirm it and {unseen}. Nothing was resent, so no duplicate can appear; rerun "
        "the task: it looks the name up first" + (f". Cause: {cause}" if cause else "."),
        platform=creation.platform,
        method="POST",
        endpoint=getattr(cause, "endpoint", "") or "",
        status=getattr(cause, "status", None),
    )


def _landed(creation: Creation) -> dict[str, Any] | None:
    """After an unanswered create: the segment it made, if listed (the name was free before)."""
    matches = creation.find()
    own = [segment for segment in matches if creation.mark.owns(segment)]
    if len(own) == 1:
        _refuse_twins(creation, own[0], matches, this_try_created=True)
        return own[0]
    if len(matches) == 1 and creation.mark.disowns(matches[0]):
        # the name was free when looked up: a segment of it that cannot be this create's came from
        # elsewhere. Never adopted (it would be overwritten); a rerun looks the name up and applies
        # if_exists to it.
        raise SegmentsUnknownOutcomeError(
            f"The create of {creation.kind} {creation.name!r} {creation.where} has an unknown outcome, "
            f"and the only segment of that name ({creation.segment_id(matches[0])}, created "
            f"{matches[0].get('created_at') or '(unknown)'}) was made before this run or by another "
            "client: it was left alone. Rerun the task: it looks the name up first and applies if_exists.",
            platform=creation.platform,
            method="POST",
            endpoint="",
        )
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise SegmentsError(
            f"{len(matches)} {creation.kind}s are named {creation.name!r} {creation.where} after a create "
            "whose outcome was unknown; refusing to guess which is this task's."
        )
    return None


def delete_confirmed(
    *,
    delete: Callable[[], None],
    still_listed: Callable[[], bool],
    what: str,
    missing_ok: bool,
    log: Any,
    sleep: Callable[[float], None],
) -> None:
    """Delete ``what``, sending the DELETE without blind retries and looking it up when its outcome
    is unknown; a segment already gone counts as deleted unless ``missing_ok=False``.

    Every answer is read back: one of 204 or 404 ("not found") counts only once the segment is no
    longer listed (a wrong route, a proxy or a firewall answers 404 for a segment that is there).

    :raises SegmentsNotFoundError: it did not exist and ``missing_ok=False``.
    """
    for attempt in range(DELETE_ATTEMPTS):
        missing: SegmentsNotFoundError | None = None
        try:
            delete()
        except SegmentsNotFoundError as err:
            missing = err
        except SegmentsUnknownOutcomeError as err:
            if not still_listed():
                log.info("%s is gone: the delete landed (%s).", what, err)
                return
            log.warning("%s; %s is still listed, deleting it again.", err, what)
            continue
        if _gone_after_reads(still_listed, sleep):
            if missing is None:
                log.info("Deleted %s (read back: no longer listed).", what)
            elif attempt:  # an earlier attempt's answer was lost and the segment was listed after it
                log.info("%s is gone: an earlier attempt of the delete landed.", what)
            elif not missing_ok:
                raise missing
            else:
                log.info("%s was already gone.", what)
            return
        # answered, not applied (a proxy's 204, a 404 from another route): the task must not say deleted
        answered = "not found (404)" if missing is not None else "as done"
        raise SegmentsError(
            f"The delete of {what} was answered {answered}, but it is still listed after {DELETE_READS} "
            "reads: the platform may apply it late, or a proxy, firewall or wrong base URL answered "
            "instead of it (check the connection's host). Nothing is reported deleted; rerun the task, "
            "and delete it in the platform's UI if this repeats."
        )
    raise SegmentsError(
        f"{what} is still listed after {DELETE_ATTEMPTS} delete attempts whose outcome was unknown; "
        "rerun the task."
    )


def _gone_after_reads(still_listed: Callable[[], bool], sleep: Callable[[float], None]) -> bool:
    """Whether the segment is no longer listed within :data:`DELETE_READS` reads (a listing may lag
    a moment behind a write)."""
    for read in range(1, DELETE_READS + 1):
        if not still_listed():
            return True
        if read < DELETE_READS:
            sleep(DELETE_READ_INTERVAL)
    return False


class AnsweredTimes:
    """The latest update times the platform answered the writes of each segment with, since that
    segment's last read-back; several threads note theirs (chunk writes go out in parallel).

    A time with a fraction of a second is a moment; one in whole seconds is any moment of its
    second where it was cut or rounded, so neither can stand for the other (adds answered "05" after
    a create answered "05.100" may have landed at 05.700). Once a chunk write was answered with a
    fraction (in any change: a server's format), one answered without is read as exact (its
    serializer dropped the zeros of ".000": "05" beside "05.2" is 05.000). A create's time counts
    only where no chunk write followed (they all do, so theirs say more). The read-back takes the
    latest of each precision and judges the listed time later than the last write only when it is
    later than each, by its own precision.

    Kept per segment, dropped when a change of the segment begins (one that failed before its
    read-back leaves its record) and taken by the read-back: one change is judged on its own writes,
    and a hook used for several changes or segments carries neither an earlier change's times nor
    its "unknown" into the next one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: segment GUID (lower case) -> {kind: (latest time, as written)}, kinds "create", "fraction"
        #: and "whole" (chunk writes); ``None``: a chunk write was answered without a time, so the
        #: latest is not known
        self._latest: dict[str, dict[str, tuple[datetime, str]] | None] = {}
        #: a chunk write was answered with a fraction: this server writes them (whatever the change)
        self._fractions_written = False

    def note(self, segment_guid: str, value: Any, *, create: bool = False) -> None:
        """Keep ``value`` (an update time as the platform wrote it) if it is the segment's latest of
        its kind so far. A chunk write answered without one makes the latest unknown (that write
        moved the time too); a create, which precedes every later write, keeps only a readable one."""
        when, key = parse_time(value), segment_guid.lower()
        with self._lock:
            latest = self._latest.setdefault(key, {})
            if when is None and create:
                return
            if when is None or latest is None:  # (unknown stays unknown)
                self._latest[key] = None
                return
            kind = "create" if create else "fraction" if has_fraction(value) else "whole"
            self._fractions_written = self._fractions_written or kind == "fraction"
            if kind not in latest or when > latest[kind][0]:
                latest[kind] = (when, str(value))

    def take(self, segment_guid: str) -> tuple[str, ...]:
        """The segment's latest times noted since the last take, one per precision, as the platform
        wrote them (an exact whole-second one as a time with a fraction); none when no write was
        noted or one answer carried no time. The record starts over."""
        with self._lock:
            latest = self._latest.pop(segment_guid.lower(), None)
            fractions_written = self._fractions_written
        if not latest:
            return ()
        if latest.keys() - {"create"}:  # every chunk write follows the create: its time says more
            latest.pop("create", None)
        if fractions_written and "whole" in latest:  # chunk writes carry fractions: zeros dropped
            when = latest.pop("whole")[0]
            latest["exact"] = (when, when.isoformat(timespec="microseconds"))
        by_precision: dict[bool, tuple[datetime, str]] = {}
        for when, value in latest.values():
            precision = has_fraction(value)
            if precision not in by_precision or when > by_precision[precision][0]:
                by_precision[precision] = (when, value)
        return tuple(value for _, value in by_precision.values())


def has_fraction(moment: Any) -> bool:
    """Whether an update time as written holds a fraction of a second."""
    return isinstance(moment, str) and re.search(r"\d:\d\d[.,]\d", moment) is not None


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time the platform gave (``Z`` or an offset; naive means UTC), or ``None``."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
