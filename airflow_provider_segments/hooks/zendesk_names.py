"""Zendesk user segment names: the custom segments of a name, and the name checks a create or a
rename needs (the rules themselves are :mod:`..membership.names_written`'s, shared with WalkMe).

An update that sends a name is refused when another custom segment has that name: before a rename
(two segments of one name make every later lookup by name ambiguous), and also when the segment is
named so already, since nothing tells a pair made in the admin UI from one an earlier try's rename
made (its check unfinished: a lost answer, a failed look-up). Leave ``name`` out of an update that
does not rename. After a rename the name is looked up again: a twin found then makes the task
rename its segment back, while its old name is still free. Whatever fails after a rename's PUT, the
error says it may have landed; the rerun then meets the pair and refuses it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from airflow_provider_segments.exceptions import SegmentExistsError
from airflow_provider_segments.membership.names_written import TakingBack, check_written_name


class NamedSegments(Protocol):
    """What the checks need of the hook."""

    def iter_user_segments(self, built_in: bool | None = None) -> Any: ...

    def get_user_segment(self, user_segment_id: int | str) -> dict[str, Any]: ...

    def put_checked(
        self, segment_id: int, body: dict[str, Any], unverified: str | None = None
    ) -> dict[str, Any]: ...


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


def refuse_taken_name(hook: NamedSegments, segment_id: int, name: str, shown: dict[str, Any]) -> None:
    """Before an update sending ``name``: refuse it when another custom segment has that name
    (nothing is sent then)."""
    others = [twin["id"] for twin in custom_segments_named(hook, name) if twin["id"] != segment_id]
    if not others:
        return
    renaming = name != shown.get("name")
    raise SegmentExistsError(
        (
            f"Cannot rename user segment {segment_id} to {name!r}: user segment {others[0]} has that name"
            if renaming
            else f"User segment {segment_id} is named {name!r}, and so is user segment {others[0]} (made in "
            "the admin UI, or by an earlier try of this task whose rename was not checked)"
        )
        + ": two segments of one name make every later lookup by name ambiguous. Nothing was sent; "
        + (
            f"choose a name no other segment has, or rename or delete user segment {others[0]} first."
            if renaming
            else "rename one of them, or leave name out of an update that does not rename."
        )
    )


def check_renamed(hook: NamedSegments, segment_id: int, name: str, old: str, before: dict[str, Any]) -> None:
    """After a verified rename to ``name``: found again by it, and only it; else renamed back to
    ``old`` while no other segment has taken ``old`` meanwhile (never two of the old name), with the
    other fields the update sent put back as Zendesk listed them before (``before``: each field
    sent, as it was listed; one it did not list stays as sent, and the error says so)."""
    restored = {field: value for field, value in before.items() if field != "name" and value is not None}
    kept = sorted(field for field, value in before.items() if field != "name" and value is None)

    def rename_back() -> None:
        taken = [twin["id"] for twin in custom_segments_named(hook, old) if twin["id"] != segment_id]
        if taken:
            raise SegmentExistsError(f"{old!r} is the name of user segment {taken[0]} now")
        back = f"The rename of user segment {segment_id} back to {old!r} may have landed, unverified"
        hook.put_checked(segment_id, {"name": old, **restored}, unverified=back)

    undone = f"This task renamed it back to {old!r}" + (
        f" and put back its {', '.join(sorted(restored))}" if restored else ""
    )
    if kept:
        undone += f"; its {', '.join(kept)} (not listed before) stay as this task sent them"
    renamed = f"user segment {segment_id} (named {old!r} before)"
    sent_with_it = sorted(field for field in before if field != "name")
    by_hand = "check it, and rename it by hand" + (
        f" and put back its {', '.join(sent_with_it)} (sent with the rename)" if sent_with_it else ""
    )
    taking_back = TakingBack(rename_back, f"{undone}.", by_hand)
    look_up = name_look_up(hook, segment_id, name)
    check_written_name("Zendesk", renamed, "renamed", name, look_up, taking_back, back_if_unchecked=False)
