"""Wait out WalkMe's propagation window before content that targets a segment goes live."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from functools import cached_property
from typing import Any

import pendulum

from airflow_provider_segments._compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    Context,
    DateTimeTrigger,
    PokeReturnValue,
    conf,
    timezone,
)
from airflow_provider_segments.assets import matching_walkme_outlets
from airflow_provider_segments.exceptions import SegmentsError, SegmentsValidationError
from airflow_provider_segments.hooks.walkme import PROPAGATION_MINUTES, WalkMeHook
from airflow_provider_segments.membership.writes import parse_time
from airflow_provider_segments.operators._base import TemplateRenderingMixin, fail_fast_on_bad_input
from airflow_provider_segments.redaction import redact_known_in
from airflow_provider_segments.text import preview
from airflow_provider_segments.vocabulary import validate_segment_guid

#: The deadline of a wait whose timeout reaches past the calendar (Airflow takes up to ``timedelta.max``).
NEVER = datetime.max.replace(tzinfo=dt_timezone.utc)
#: How far past now a window may start (a sensor may run long after its DAG was parsed).
CALENDAR_MARGIN = timedelta(days=36_500)

#: How far in the future a ``changed_at`` may lie (clocks of two machines disagree a little). More
#: than this is a time-zone mistake, not skew: the sensor refuses it.
CLOCK_SKEW_TOLERANCE = timedelta(minutes=5)
#: A trigger that fires this much (or less) before its moment by this worker's clock is waited out
#: here; more, and the sensor defers again (a triggerer whose clock runs ahead fires early).
EARLY_TRIGGER_WAIT = timedelta(seconds=60)


def _utc(moment: datetime) -> str:
    return moment.astimezone(dt_timezone.utc).isoformat(timespec="seconds")


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise SegmentsValidationError(
            f"changed_at {preview(value)} must be an ISO-8601 string or a datetime, "
            f"not {type(value).__name__}."
        )
    # a time of day, extended (12:00) or basic (20260131T1200): '{{ ds }}' would read as midnight
    if not re.search(r"\d:\d\d|\d[Tt]\d\d", value):
        raise SegmentsValidationError(
            f"changed_at {value!r} has no time of day: pass the moment of the change, such as "
            "2026-01-31T12:00:00Z (the create/update/sync operators' changed_at), not a date."
        )
    try:
        parsed = pendulum.parse(value, tz=None)
    except (ValueError, pendulum.parsing.exceptions.ParserError):
        parsed = None
    if not isinstance(parsed, datetime):
        raise SegmentsValidationError(
            f"changed_at {preview(value)} is not an ISO-8601 timestamp such as 2026-01-31T12:00:00Z."
        )
    return parsed


def parse_changed_at(value: Any, *, now: datetime | None = None) -> datetime | None:
    """Read ``changed_at`` as an aware datetime; refuse one more than a clock skew in the future.

    An ISO-8601 string or a datetime. One without an offset is read in Airflow's default time zone
    (``[core] default_timezone``), as Airflow reads naive times. One more than
    :data:`CLOCK_SKEW_TOLERANCE` ahead of ``now`` is refused: a change cannot have happened in the
    future, so the value was written in another time zone than it says, and the same mistake in the
    other direction would let content go live before the window is over.
    """
    if value in (None, ""):
        return None
    moment: datetime = timezone.coerce_datetime(_as_datetime(value))  # naive: in the default time zone
    now = now or timezone.utcnow()
    ahead = moment - now
    if ahead > CLOCK_SKEW_TOLERANCE:
        raise SegmentsValidationError(
            f"changed_at {preview(value)} is {int(ahead.total_seconds() // 60)} min in the future "
            f"({_utc(moment)}, now {_utc(now)}): "
            "a change cannot lie ahead, so the value is probably in another time zone than it says. "
            "Pass it with its offset (the create/update operators' changed_at has one); a value without "
            "an offset is read in Airflow's default time zone."
        )
    return moment


class WalkMeSegmentPropagationSensor(TemplateRenderingMixin, BaseSensorOperator):
    """Hold downstream tasks until WalkMe's editor can use a changed segment.

    WalkMe needs up to 10 minutes after a change before the segment shows in the condition builder.
    This sensor waits until ``changed_at + propagation_window`` and then confirms that the system
    still lists the segment; it returns (XCom) ``{"segment_guid", "name"}`` in every mode. It also
    checks the segment at the start, so a wrong GUID fails at once rather than after the window.

    With ``deferrable=True`` it defers to a time trigger and holds no worker slot while it waits;
    otherwise it pokes, in ``reschedule`` mode unless ``mode`` says otherwise. The default of
    ``deferrable`` is Airflow's ``[operators] default_deferrable`` setting (off unless configured), as
    for Airflow's own sensors.

    The sensor's ``timeout`` (Airflow's sensor argument, default ``[sensors] default_timeout``) bounds
    the wait in every mode: a window that ends after the sensor's start plus ``timeout`` fails the task
    at once, saying when the window ends, instead of waiting to time out; a deferred wait carries
    the same deadline.

    :param segment_guid: the segment to wait for. Templated (e.g. from the create task's XCom).
    :param system_guid: WalkMe system GUID; defaults to the connection's. Templated.
    :param changed_at: when the segment was last changed (ISO-8601 or datetime; the ``changed_at``
        the create/update/sync operators return). Without an offset it is read in Airflow's default
        time zone (``[core] default_timezone``). More than 5 minutes in the future is refused (a
        time-zone mistake). Default: when the sensor started (its first poke in reschedule mode).
        Templated.
    :param propagation_window: how long WalkMe needs; default 10 minutes.
    :param expected_user_count: the gate: the number of members the segment must hold, e.g. the
        ``user_count`` a create, sync or ``override`` returned (an ``add``/``remove`` does not know the
        total). After the window the sensor compares it with the count WalkMe lists for the segment
        and fails on a mismatch with both numbers, so content never goes live on a wrong audience
        (say, after a killed try's late write). Where WalkMe lists no count it says so and only
        confirms the segment is listed. ``None`` (default): no count check. Templated.
    :param deferrable: wait in the triggerer instead of a worker slot. Default: Airflow's
        ``[operators] default_deferrable``.
    :param sync_mode: what changed the segment, for the asset event (``mode`` of the sync's XCom:
        ``delta`` or ``full``; an update's ``action``). Templated.
    :param walkme_conn_id: Airflow connection of type ``walkme``.

    **Asset events.** When the task declares the segment's asset as an outlet
    (``outlets=[walkme_segment_asset(system, guid or name)]``), the event Airflow emits on success
    carries ``extra``: ``user_count`` (as WalkMe lists it), ``changed_at`` (ISO-8601 UTC, else the
    listed ``updated_at``), ``mode`` (``sync_mode``), ``segment_guid``, ``name`` and ``system_guid``.
    """

    template_fields: Sequence[str] = (
        "segment_guid",
        "system_guid",
        "changed_at",
        "expected_user_count",
        "sync_mode",
    )
    text_fields = ("segment_guid", "system_guid", "changed_at", "sync_mode")
    may_render_to_nothing = ("sync_mode",)  # only labels the asset event
    ui_color = "#e8f0ff"

    def __init__(
        self,
        *,
        segment_guid: str,
        system_guid: str | None = None,
        changed_at: str | datetime | None = None,
        propagation_window: timedelta = timedelta(minutes=PROPAGATION_MINUTES),
        expected_user_count: int | str | None = None,
        deferrable: bool | None = None,
        sync_mode: str | None = None,
        walkme_conn_id: str = WalkMeHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        if not deferrable:
            kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        if not isinstance(propagation_window, timedelta) or propagation_window < timedelta(0):
            raise SegmentsValidationError(
                f"propagation_window must be a non-negative timedelta, got {preview(propagation_window)}."
            )
        if propagation_window > NEVER - timezone.utcnow() - CALENDAR_MARGIN:  # added to moments to come
            raise SegmentsValidationError(
                f"propagation_window {preview(propagation_window)} reaches past the year 9999: give the "
                f"time WalkMe needs ({PROPAGATION_MINUTES} minutes by default)."
            )
        self.segment_guid = segment_guid
        self.system_guid = system_guid
        self.changed_at = changed_at
        self.propagation_window = propagation_window
        self.expected_user_count = expected_user_count
        self.deferrable = deferrable
        self.sync_mode = sync_mode
        self.walkme_conn_id = walkme_conn_id

    @cached_property
    def hook(self) -> WalkMeHook:
        """The hook for ``walkme_conn_id``."""
        return WalkMeHook(walkme_conn_id=self.walkme_conn_id)

    def _started_at(self, context: Context) -> datetime:
        """When this sensor started waiting: its first poke in reschedule mode, else this try's start."""
        ti = context.get("ti")
        started = None
        if ti is not None:
            if self.reschedule:
                started = ti.get_first_reschedule_date(context)
            started = started or getattr(ti, "start_date", None)
        return timezone.coerce_datetime(started) if started else timezone.utcnow()

    def _deadline(self, started: datetime) -> datetime:
        """When the wait started at ``started`` times out; the calendar's end for a timeout that
        reaches past it (Airflow takes any up to ``timedelta.max``: such a wait never times out)."""
        try:
            return started + timedelta(seconds=self.timeout)
        except OverflowError:
            return NEVER

    def _finish(self, context: Context, segment: dict[str, Any]) -> dict[str, Any]:
        """After the window: the gate first (a failed gate emits no asset event), then the event."""
        segment = redact_known_in(segment)  # what it hands on never holds a secret WalkMe echoed
        result = self._result(segment)
        self._record_outlet_events(context, segment)
        return result

    def _result(self, segment: dict[str, Any]) -> dict[str, Any]:
        """The gate, then what the task returns."""
        listed = segment.get("user_count")
        with fail_fast_on_bad_input():  # a bad gate value: retries cannot fix it
            expected = self._expected_count()
        if expected is not None:
            if listed is None:
                self.log.warning(
                    "WalkMe lists no member count for segment %s: the gate can only confirm that the "
                    "segment is listed, not that it holds %s users.",
                    self.segment_guid,
                    f"{expected:,}",
                )
            elif listed != expected:
                raise AirflowFailException(
                    f"WalkMe lists {listed:,} members for segment {self.segment_guid}, not the "
                    f"{expected:,} the change that this sensor gates left: the segment changed after it "
                    "(a late write of a killed or timed-out try, or an edit elsewhere). Content must not "
                    "go live on this audience: rerun the sync (or create/override) task, then this sensor."
                )
            else:
                self.log.info("Gate passed: WalkMe lists %s members, as expected.", f"{listed:,}")
        return {"segment_guid": self.segment_guid, "name": segment["name"], "user_count": listed}

    def _expected_count(self) -> int | None:
        value = self.expected_user_count
        if value is None:  # only None turns the gate off: "" is refused below
            return None
        # ASCII digits only: isdigit() alone lets "1²" through to a bare ValueError in int(), and
        # int() reads other scripts' digits ("١٢" as 12)
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise SegmentsValidationError(
            f"expected_user_count {preview(value)} is not a whole number of users: give it in the digits "
            "0-9 (e.g. the user_count the create or sync task returned), or None for no count check."
        )

    def _record_outlet_events(self, context: Context, segment: dict[str, Any]) -> None:
        """Put what consumers need into the event of each outlet asset naming this segment."""
        if not self.outlets:
            return
        system = self.hook.resolve_system_guid(self.system_guid)
        guid = validate_segment_guid(self.segment_guid).lower()
        mine, others = matching_walkme_outlets(
            self.outlets, system_guid=system, segment_guid=guid, name=segment["name"]
        )
        for asset in others:
            self.log.warning(
                "Outlet %s names another WalkMe segment than %s (%s in system %s): its event carries "
                "no extra.",
                asset.uri,
                self.segment_guid,
                preview(segment["name"]),
                system,
            )
        if not mine:
            return
        changed = parse_changed_at(self.changed_at)
        extra = {
            "user_count": segment.get("user_count"),
            "changed_at": _utc(changed) if changed else segment.get("updated_at"),
            "mode": self.sync_mode or None,
            "segment_guid": guid,
            "name": segment["name"],
            "system_guid": system,
        }
        for asset in mine:
            context["outlet_events"][asset].extra.update(extra)

    def _confirm_listed(self) -> dict[str, Any]:
        with fail_fast_on_bad_input():  # a bad system GUID or connection: retries cannot fix it
            segment = self.hook.get_segment(self.segment_guid, self.system_guid)
        if segment is None:
            system = self.hook.resolve_system_guid(self.system_guid)
            raise SegmentsError(
                f"WalkMe segment {self.segment_guid} is not listed in system {system}: it was deleted "
                "or never created there, so content targeting it would never match."
            )
        return segment

    def _window_end(self, changed: datetime | None, segment: dict[str, Any] | None) -> datetime | None:
        """When WalkMe's editor can use the segment: the window after ``changed`` or after the later
        update WalkMe lists (another change since restarts the wait; the count gate cannot see a swap)."""
        listed = parse_time(segment.get("updated_at")) if segment else None
        moments = [moment for moment in (changed, listed) if moment is not None]
        try:
            return max(moments) + self.propagation_window if moments else None
        except OverflowError:  # a listed time at the calendar's end (a sentinel, a broken clock)
            listed_at = segment.get("updated_at") if segment else None
            raise SegmentsError(
                f"WalkMe lists segment {self.segment_guid} as changed at {listed_at}: its propagation "
                "window would end past the year 9999; check the segment in WalkMe."
            ) from None

    def _timed_out(self, message: str) -> Exception:
        if self.soft_fail or getattr(self, "never_fail", False):
            return AirflowSkipException(message)
        return AirflowSensorTimeout(message)

    @contextmanager
    def _as_in_poke(self) -> Iterator[None]:
        """What ``execute`` checks in poke's place fails as Airflow's poke loop lets a poke fail:
        skipped with ``never_fail``."""
        try:
            yield
        except AirflowSkipException:
            raise
        except Exception as err:
            if getattr(self, "never_fail", False):
                raise AirflowSkipException(f"Skipping due to never_fail is set to True: {err}") from err
            raise

    def execute(self, context: Context) -> Any:
        with fail_fast_on_bad_input(self):
            validate_segment_guid(self.segment_guid)
            changed = parse_changed_at(self.changed_at)
            self._expected_count()  # a bad gate value fails before any request
        started = self._started_at(context)
        ready_at = (changed or started) + self.propagation_window
        deadline = self._deadline(started)
        if ready_at > deadline:
            raise self._timed_out(
                f"The propagation window of segment {self.segment_guid} ends at "
                f"{_utc(ready_at)}, after this sensor's timeout (timeout of {self.timeout:g} s from "
                f"its start at {_utc(started)}, so at {_utc(deadline)}): "
                "it could only time out. Raise the sensor's timeout or check changed_at."
            )
        first_run = not (self.reschedule and context.get("task_reschedule_count", 0))
        with self._as_in_poke():
            segment = self._confirm_listed() if first_run else None
        ready_at = self._window_end(changed or started, segment) or ready_at
        if ready_at > deadline:
            listed = segment.get("updated_at") if segment else None
            raise self._timed_out(
                f"WalkMe lists segment {self.segment_guid} as changed at {listed}: its propagation "
                f"window ends at {_utc(ready_at)}, after this sensor's timeout ({_utc(deadline)}). "
                "Raise the sensor's timeout."
            )
        self._ready_at = ready_at
        now = timezone.utcnow()
        if now >= ready_at and segment is not None:  # (a later poke of a rescheduled one: poke() reads it)
            self.log.info(
                "Propagation window of segment %s already over (%s).", self.segment_guid, _utc(ready_at)
            )
            with self._as_in_poke():
                return self._finish(context, segment)
        if self.deferrable:
            self.log.info(
                "Segment %s is listed; deferring until %s, when WalkMe's editor can use it.",
                self.segment_guid,
                _utc(ready_at),
            )
            self._defer_until(ready_at, deadline, now)
        return super().execute(context)

    def _defer_until(self, ready_at: datetime, deadline: datetime, now: datetime) -> None:
        """Defer to a time trigger at ``ready_at``, resuming in :meth:`execute_complete`."""
        self.defer(
            trigger=DateTimeTrigger(moment=ready_at),
            method_name="execute_complete",
            # A plain timedelta: pendulum's Interval (what subtracting its datetimes gives) fails
            # the task supervisor's msgpack encoding, so the task could never defer.
            # none for a wait that never times out: Airflow adds the timeout to its own clock
            timeout=None if deadline == NEVER else timedelta(seconds=(deadline - now).total_seconds()),
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        ready_at = getattr(self, "_ready_at", None)
        if ready_at is None:  # poke() called on its own: work the window out as execute() does
            changed = parse_changed_at(self.changed_at)
            ready_at = (changed or self._started_at(context)) + self.propagation_window
        if timezone.utcnow() < ready_at:
            self.log.info("Waiting for WalkMe propagation of %s until %s.", self.segment_guid, _utc(ready_at))
            return False
        segment = self._confirm_listed()
        self._ready_at = self._window_end(ready_at - self.propagation_window, segment) or ready_at
        if timezone.utcnow() < self._ready_at:
            self.log.info(
                "WalkMe lists segment %s as changed at %s: waiting for its propagation until %s.",
                self.segment_guid,
                segment.get("updated_at"),
                _utc(self._ready_at),
            )
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._finish(context, segment))

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after the window: confirm the segment is still listed, and wait again when WalkMe
        lists a change made since the window began."""
        segment = self._confirm_listed()
        self._result(segment)  # a failed count gate fails now, not after another window
        # Wait again for a change WalkMe lists after changed_at, and until the moment the trigger
        # was set for (the event names it, by this worker's clock): another machine's clock running
        # ahead fires it early, and the window is not over here yet.
        changed, listed = parse_changed_at(self.changed_at), parse_time(segment.get("updated_at"))
        later_change = listed is not None and (changed is None or listed > changed)
        changed_again = self._window_end(None, segment) if later_change else None
        fired_for = parse_time(event)
        ready_at = max((moment for moment in (changed_again, fired_for) if moment is not None), default=None)
        why = (
            f"WalkMe lists segment {self.segment_guid} as changed again at {segment.get('updated_at')}"
            if ready_at is not None and ready_at == changed_again
            else "The trigger fired before its moment by this worker's clock (the triggerer's clock ahead?)"
        )
        now = timezone.utcnow()
        if ready_at is not None and now < ready_at:
            deadline = self._deadline(self._started_at(context))
            if ready_at > deadline:
                raise self._timed_out(
                    f"{why}: its propagation window ends at {_utc(ready_at)}, after this sensor's timeout."
                )
            if ready_at - now <= EARLY_TRIGGER_WAIT:  # waited out here, then read again
                self.log.info("%s: waiting here until %s.", why, _utc(ready_at))
                time.sleep((ready_at - now).total_seconds())
                return self.execute_complete(context, event)
            self.log.warning("%s; deferring until %s.", why, _utc(ready_at))
            self._defer_until(ready_at, deadline, now)
        self.log.info(
            "Propagation window over; segment %s (%s) is listed.", preview(segment["name"]), self.segment_guid
        )
        return self._finish(context, segment)
