"""What the tests of the read-back's "another client changed it" check share (hostile reviews
42-46): the sandbox's clock and time formats, a segment "Audience" created by the hook or the sync
operator, and another client's same-count swap at the read-back."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from support import outcome

from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.testing import TEST_SYSTEM_GUID
from airflow_provider_segments.testing import walkme as fake_walkme

#: The ids of "Audience": with 2 ids per request, the create (or override) and 2 adds.
WANTED = [f"u{i}" for i in range(5)]


def audience_members(sandbox: Any) -> set[str]:
    """The members of the sandbox's segment "Audience"."""
    (segment,) = [s for s in sandbox.walkme.segments(TEST_SYSTEM_GUID) if s["name"] == "Audience"]
    return set(sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]))


def another_client_swaps_after(monkeypatch: Any, writes: int) -> dict:
    """At the first listing read after the task's ``writes``-th write (POST or PUT) was answered,
    another client removes one member of "Audience" and adds "intruder": the count stays, the
    segment's update time moves (as any write of WalkMe's does)."""
    real = fake_walkme.WalkMeApp._segment_call
    seen = {"writes": 0, "swapped": False}

    def segment_call(self, request, system, segment):
        if request.method == "GET" and seen["writes"] >= writes and not seen["swapped"]:
            seen["swapped"] = True
            with self._lock:
                (audience,) = [s for s in self._systems[system.lower()].values() if s.name == "Audience"]
                audience.members.pop(next(iter(audience.members)))
                audience.members["intruder"] = None
                audience.updated_at = fake_walkme._after(audience.updated_at)
        if request.method in ("POST", "PUT"):
            seen["writes"] += 1
        return real(self, request, system, segment)

    monkeypatch.setattr(fake_walkme.WalkMeApp, "_segment_call", segment_call)
    return seen


def create_audience(path: str, parallel: int, tmp_path: Path) -> Any:
    """Create "Audience" holding :data:`WANTED` with the hook (``"hook-create"``) or the sync
    operator; what it returned, or its exception as "Type: message"."""
    if path == "hook-create":
        return outcome(
            lambda: WalkMeHook(max_parallel_requests=parallel).create_segment(
                "Audience", WANTED, system_guid=TEST_SYSTEM_GUID
            )
        )
    from airflow_provider_segments.operators.walkme import WalkMeSyncSegmentOperator

    return outcome(
        lambda: WalkMeSyncSegmentOperator(
            task_id="sync",
            name="Audience",
            state_path=str(tmp_path / "audience.snapshot"),
            user_ids=WANTED,
            max_parallel_requests=parallel,
        ).execute({})
    )


# -- the sandbox's clock and time formats ----------------------------------------------------------
def iso(moment: datetime, timespec: str) -> str:
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def clock(monkeypatch: Any, start: datetime, step_ms: int, timespec: str = "milliseconds") -> None:
    """The sandbox's clock: ``start``, then ``step_ms`` later at each write (create, then adds)."""
    ticks = itertools.count()
    monkeypatch.setattr(
        fake_walkme, "_now", lambda: iso(start + timedelta(milliseconds=step_ms * next(ticks)), timespec)
    )


def microsecond_clock(monkeypatch: Any, start: datetime, step_ms: int) -> None:
    """:func:`clock`, written in microseconds."""
    clock(monkeypatch, start, step_ms, "microseconds")


def serialize(monkeypatch: Any, answer: Callable[[str], str], listing: Callable[[str], str]) -> None:
    """WalkMe writes the create's and the PUTs' answers with ``answer``, its listing with ``listing``."""
    json_response = fake_walkme.json_response

    def serialized(status, payload, headers=None):
        if isinstance(payload, dict) and isinstance(payload.get("updatedAt"), str):
            payload = {**payload, "updatedAt": answer(payload["updatedAt"])}
        elif status == 200 and isinstance(payload, list):
            payload = [
                {**row, "updatedAt": listing(row["updatedAt"])} if isinstance(row, dict) else row
                for row in payload
            ]
        return json_response(status, payload, headers)

    monkeypatch.setattr(fake_walkme, "json_response", serialized)


def same(value: str) -> str:
    return value


def seconds_cut(value: str) -> str:  # "04.600Z" -> "04Z"
    return iso(parse(value), "seconds")


def seconds_rounded(value: str) -> str:  # "04.600Z" -> "05Z" (half up, as a MySQL DATETIME(0) column)
    return iso(parse(value) + timedelta(milliseconds=500), "seconds")


def milliseconds_cut(value: str) -> str:  # "04.600600Z" -> "04.600Z" (isoformat(timespec="milliseconds"))
    moment = parse(value)
    return iso(moment.replace(microsecond=moment.microsecond // 1000 * 1000), "milliseconds")


def milliseconds_rounded(value: str) -> str:  # "04.600600Z" -> "04.601Z" (a MySQL DATETIME(3) column)
    moment = parse(value) + timedelta(microseconds=500)
    return iso(moment.replace(microsecond=moment.microsecond // 1000 * 1000), "milliseconds")


def trimmed(value: str) -> str:
    """As a serializer that drops a fraction's trailing zeros (System.Text.Json writes a DateTime
    so): "05.300Z" -> "05.3Z", "05.000Z" -> "05Z"."""
    head, _, fraction = iso(parse(value), "milliseconds").removesuffix("Z").partition(".")
    fraction = fraction.rstrip("0")
    return f"{head}.{fraction}Z" if fraction else f"{head}Z"
