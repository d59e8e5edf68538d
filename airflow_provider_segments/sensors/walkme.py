"""Wait out WalkMe's propagation window before content that targets a segment goes live."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import pendulum

from airflow_provider_segments._compat import BaseSensorOperator, Context, DateTimeTrigger, timezone
from airflow_provider_segments.exceptions import SegmentsError, SegmentsValidationError
from airflow_provider_segments.hooks.walkme import PROPAGATION_MINUTES, WalkMeHook, validate_segment_guid
from airflow_provider_segments.ids import preview
from airflow_provider_segments.operators._base import fail_fast_on_bad_input


def parse_changed_at(value: Any) -> datetime | None:
    """Read ``changed_at`` (ISO-8601 string or datetime; naive means UTC) as an aware datetime."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = pendulum.parse(value)
        except (ValueError, pendulum.parsing.exceptions.ParserError):
            moment = None
        if not isinstance(moment, datetime):
            raise SegmentsValidationError(
                f"changed_at {preview(value)} is not an ISO-8601 timestamp such as 2026-01-31T12:00:00Z."
            )
    else:
        raise SegmentsValidationError(
            f"changed_at {preview(value)} must be an ISO-8601 string or a datetime, "
            f"not {type(value).__name__}."
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=pendulum.UTC)
    return moment


class WalkMeSegmentPropagationSensor(BaseSensorOperator):
    """Hold downstream tasks until WalkMe's editor can use a changed segment.

    WalkMe needs up to 10 minutes after a change before the segment shows in the condition builder.
    This sensor waits until ``changed_at + propagation_window`` and then confirms that the system
    still lists the segment. It also checks the segment at the start, so a wrong GUID fails at once
    rather than after the window. With ``deferrable=True`` (default) it defers to a time trigger
    and holds no worker slot while it waits; with ``deferrable=False`` it pokes in reschedule mode.

    :param segment_guid: the segment to wait for. Templated (e.g. from the create task's XCom).
    :param system_guid: WalkMe system GUID; defaults to the connection's. Templated.
    :param changed_at: when the segment was last changed (ISO-8601 or datetime; the ``changed_at``
        the create/update operators return). Default: when this sensor starts. Templated.
    :param propagation_window: how long WalkMe needs; default 10 minutes.
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param walkme_conn_id: Airflow connection of type ``walkme``.
    """

    template_fields: Sequence[str] = ("segment_guid", "system_guid", "changed_at")
    ui_color = "#e8f0ff"

    def __init__(
        self,
        *,
        segment_guid: str,
        system_guid: str | None = None,
        changed_at: str | datetime | None = None,
        propagation_window: timedelta = timedelta(minutes=PROPAGATION_MINUTES),
        deferrable: bool = True,
        walkme_conn_id: str = WalkMeHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        if not deferrable:
            kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        if not isinstance(propagation_window, timedelta) or propagation_window < timedelta(0):
            raise SegmentsValidationError(
                f"propagation_window must be a non-negative timedelta, got {preview(propagation_window)}."
            )
        self.segment_guid = segment_guid
        self.system_guid = system_guid
        self.changed_at = changed_at
        self.propagation_window = propagation_window
        self.deferrable = deferrable
        self.walkme_conn_id = walkme_conn_id

    @cached_property
    def hook(self) -> WalkMeHook:
        """The hook for ``walkme_conn_id``."""
        return WalkMeHook(walkme_conn_id=self.walkme_conn_id)

    def _ready_at(self, context: Context) -> datetime:
        changed = parse_changed_at(self.changed_at)
        if changed is None:
            # In reschedule mode every poke is a fresh run: count from the first one.
            first = None
            if self.reschedule:
                first = context["ti"].get_first_reschedule_date(context)
            changed = first or timezone.utcnow()
        return changed + self.propagation_window

    def _confirm_listed(self) -> dict[str, Any]:
        segment = self.hook.get_segment(self.segment_guid, self.system_guid)
        if segment is None:
            system = self.hook.resolve_system_guid(self.system_guid)
            raise SegmentsError(
                f"WalkMe segment {self.segment_guid} is not listed in system {system}: it was deleted "
                "or never created there, so content targeting it would never match."
            )
        return segment

    def execute(self, context: Context) -> Any:
        with fail_fast_on_bad_input():
            validate_segment_guid(self.segment_guid)
            ready_at = self._ready_at(context)
        segment = self._confirm_listed()
        if timezone.utcnow() >= ready_at:
            self.log.info("Propagation window of segment %s already over (%s).", self.segment_guid, ready_at)
            return {"segment_guid": self.segment_guid, "name": segment["name"]}
        if self.deferrable:
            self.log.info(
                "Segment %s is listed; deferring until %s, when WalkMe's editor can use it.",
                self.segment_guid,
                ready_at.isoformat(),
            )
            self.defer(
                trigger=DateTimeTrigger(moment=ready_at),
                method_name="execute_complete",
            )
        return super().execute(context)

    def poke(self, context: Context) -> bool:
        ready_at = self._ready_at(context)
        if timezone.utcnow() < ready_at:
            self.log.info("Waiting for WalkMe propagation of %s until %s.", self.segment_guid, ready_at)
            return False
        self._confirm_listed()
        return True

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after the window: confirm the segment is still listed."""
        segment = self._confirm_listed()
        self.log.info(
            "Propagation window over; segment %r (%s) is listed.", segment["name"], self.segment_guid
        )
        return {"segment_guid": self.segment_guid, "name": segment["name"]}
