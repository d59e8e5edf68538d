"""Zendesk user segment names: the custom segments of a name, and the name checks a create or a
rename needs (the rules themselves are :mod:`..membership.names_written`'s, shared with WalkMe).

A rename is checked before (the name must be free) and after (found again, and only it: else it is
renamed back while its old name is free). Whatever fails after its PUT, the error says it may have
landed; the retry then finds the segment named so already, and refuses when it was changed during
this DAG run while another segment has the name (an earlier try's rename may have made the pair).
An update keeping a name two segments share from before the run goes through (review 9).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from airflow_provider_segments.exceptions import SegmentExistsError
from airflow_provider_segments.membership.names_written import TakingBack, check_written_name
from airflow_provider_segments.membership.writes import parse_time


class NamedSegments(Protocol):
    """What the checks need of the hook."""

    def iter_user_segments(self, built_in: bool | None = None) -> Any: ...

    def get_user_segment(self, user_segment_id: int | str) -> dict[str, Any]: ...

    def put_checked(self, segment_id: int, body: dict[str, Any]) -> dict[str, Any]: ...


def custom_segments_named(hook: NamedSegments, name: str) -> list[dict[str, Any]]:
    """The custom segments whose name is exactly ``name`` (built-in ones cannot be written)."""
    return [segment for segment in hook.iter_user_segments(built_in=False) if segment.get("name") == name]


def name_look_up(hook: NamedSegments, segment_id: int, name: str) -> Callable[[], tuple[Any, list[int]]]:
    """A look-up of the name the segment is listed under and the other custom segments of ``name``."""

    def look_up() -> tuple[Any, list[int]]:
        twins = custom_segments_named(hook, name)
        ours = [twin for twin in twins if twin.get("id") == segment_id]
        listed = name if ours else hook.get_user_segment(segment_id).get("name")
        return listed, [twin["id"] for twin in twins if twin not in ours]

    return look_up


def refuse_taken_name(
    hook: NamedSegments, segment_id: int, name: str, shown: dict[str, Any], changed_after: datetime | None
) -> None:
    """Before an update sending ``name``: refuse a rename to a name another segment has, and an
    update of a segment already named so, changed during this DAG run (``changed_after``), while
    another segment has the name too. Nothing is sent then."""
    renaming = name != shown.get("name")
    changed = parse_time(shown.get("updated_at"))
    if not renaming and not (changed_after and changed and changed >= changed_after):
        return  # a pair from before this run is not this task's (review 9)
    others = [twin["id"] for twin in custom_segments_named(hook, name) if twin["id"] != segment_id]
    if others:
        raise SegmentExistsError(
            (
                f"Cannot rename user segment {segment_id} to {name!r}: user segment {others[0]} has that name"
                if renaming
                else f"User segment {segment_id} is named {name!r}, and so is user segment {others[0]}, and "
                f"it was changed during this DAG run (an earlier try's rename may have made the pair)"
            )
            + ": two segments of one name make every later lookup by name ambiguous. Nothing was sent; "
            "rename one of them."
        )


def check_renamed(hook: NamedSegments, segment_id: int, name: str, old: str) -> None:
    """After a verified rename to ``name``: found again by it, and only it; else renamed back to
    ``old`` while no other segment has taken ``old`` meanwhile (never two of the old name)."""

    def rename_back() -> None:
        taken = [twin["id"] for twin in custom_segments_named(hook, old) if twin["id"] != segment_id]
        if taken:
            raise SegmentExistsError(f"{old!r} is the name of user segment {taken[0]} now")
        hook.put_checked(segment_id, {"name": old})

    renamed = f"user segment {segment_id} (named {old!r} before)"
    taking_back = TakingBack(rename_back, f"This task renamed it back to {old!r}.", "rename it by hand")
    look_up = name_look_up(hook, segment_id, name)
    check_written_name("Zendesk", renamed, "renamed", name, look_up, taking_back, back_if_unchecked=False)
