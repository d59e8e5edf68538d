"""A name a task wrote (a create, a rename) is looked up again: the platform must list it under that
very name and no other segment of it, or the write is taken back and the task fails saying so. Left
in place, a segment a later lookup by name would not find (stored respelled), or one that shares its
name (two tries creating at once, a lookup that missed one), makes a rerun create yet another one or
find the name ambiguous. The same rules for both platforms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_segments.exceptions import SegmentExistsError, SegmentsError, SegmentsValidationError
from airflow_provider_segments.text import preview


@dataclass(frozen=True)
class TakingBack:
    """How a write of a name is taken back: ``undo`` (delete the created segment, rename it back),
    what the error then says (``undone``), and what to do by hand when that fails too."""

    undo: Callable[[], Any]
    undone: str = "This task deleted it again."
    by_hand: str = "delete it by hand"

    def outcome(self) -> str:
        """Take the write back; what the error says of it."""
        try:
            self.undo()
        except SegmentsError as err:
            return f"Undoing it failed ({err}): {self.by_hand}."
        return self.undone

    def after(self, err: SegmentsError, text: str) -> None:
        """Take the write back after ``err`` left it unverified; ``err`` then says so (``text``)."""
        err.args = (f"{text} {self.outcome()} Rerun the task. ({err})", *err.args[1:])


def check_written_name(
    platform: str,
    what: str,
    done: str,
    name: str,
    look_up: Callable[[], tuple[Any, list[Any]]],
    taking_back: TakingBack,
    *,
    back_if_unchecked: bool = True,
) -> None:
    """Look the name just written (``done``: ``"created"``, ``"renamed"``) up again and apply
    :func:`check_created_name`. ``look_up`` gives the name the segment is listed under and the ids
    of other segments of ``name``. When it fails, the error says so, and the write is taken back
    when ``back_if_unchecked`` (a create: its retry would adopt it as its own; a rename's retry
    checks the name itself instead)."""
    try:
        listed_name, others = look_up()
    except SegmentsError as err:
        unknown = "looking its name up again failed, so whether another segment has the name is not known."
        text = f"{what[:1].upper()}{what[1:]} was {done}, but {unknown}"
        if back_if_unchecked:
            taking_back.after(err, text)
        else:
            err.args = (f"{text} Rerun the task: it looks the name up again. ({err})", *err.args[1:])
        raise
    check_created_name(platform, what, name, listed_name, others, taking_back)


def check_created_name(
    platform: str, what: str, name: str, listed_name: Any, others: list[Any], taking_back: TakingBack
) -> None:
    """Undo and refuse a create (or a rename) that a later lookup by name would not find again as
    this one segment: the platform lists it under another spelling (``listed_name``), or lists other
    segments of that name too (``others``: their ids; another try of the task or another DAG made
    one at the same time, or the lookup before the write missed one). ``taking_back`` takes the
    write back: left in place, a rerun would create yet another one (the name not found), or find
    the name ambiguous. Neither is retried (the rerun looks the name up first). The same rule for
    both platforms' writes of a name."""
    respelled = listed_name != name
    if not respelled and not others:
        return
    outcome = taking_back.outcome()
    if respelled:
        raise SegmentsValidationError(
            f"{platform} stores {what} as {preview(listed_name)}, not {preview(name)} as sent: a later run "
            f"looking the name up would not find it and would create another segment. {outcome} Give "
            f"the name as {platform} stores it."
        )
    ids = ", ".join(map(str, others))
    raise SegmentExistsError(
        f"After writing {what}, {platform} lists {len(others) + 1} segments named {name!r}: {ids} too. "
        "Another try of this task or another DAG made one at the same time, or the lookup before the "
        "write missed one, and every later lookup by name would be ambiguous. "
        f"{outcome} Rerun the task: it looks the name up first."
    )
