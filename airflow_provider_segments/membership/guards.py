"""Mass-change guards: what a change may do without the task saying so, checked before any write."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.ids import UserIds
from airflow_provider_segments.text import preview

#: Share of a segment's known members a change may remove unless the task allows more.
DEFAULT_MAX_REMOVAL_FRACTION = 0.5


@dataclass(frozen=True)
class Guards:
    """Mass-change guards: what a change may do without the task saying so.

    :param allow_empty: let an empty input through (it empties the segment).
    :param max_removal_fraction: the largest share of the known members (snapshot, or the count the
        platform lists) one change may remove; ``1.0`` allows any removal and ``None`` turns the
        check off. Where the platform lists no member count the check cannot run, and a change that
        may remove members is refused unless the check is off (``1.0`` or ``None``).
    """

    allow_empty: bool = False
    max_removal_fraction: float | None = DEFAULT_MAX_REMOVAL_FRACTION

    def __post_init__(self) -> None:
        if not isinstance(self.allow_empty, bool):
            raise SegmentsValidationError(f"allow_empty {preview(self.allow_empty)} must be True or False.")
        fraction = self.max_removal_fraction
        if fraction is not None and (
            isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1
        ):
            raise SegmentsValidationError(
                f"max_removal_fraction {preview(fraction)} must be a number from 0 to 1 (or None)."
            )

    @property
    def limits_removal(self) -> bool:
        """True when some removal could be refused (the check is on and below 100 %)."""
        return self.max_removal_fraction is not None and self.max_removal_fraction < 1

    def check_input(self, ids: UserIds, source: str) -> None:
        """Refuse an empty input unless ``allow_empty``."""
        if not len(ids) and not self.allow_empty:
            raise SegmentsValidationError(
                f"The input ({source}) holds no user ids, and sending it would empty the segment. An "
                "empty export is more often a failed one: nothing was sent. Pass allow_empty=True if the "
                "segment should really be emptied."
            )

    def check_removal(self, removed: int, known: int | None, what: str, *, at_most: bool = False) -> None:
        """Refuse removing more than ``max_removal_fraction`` of ``known`` members.

        ``known=None`` means the platform did not say how many members there are: the check cannot
        run, so the change is refused unless removal is not limited. ``at_most``: ``removed`` is
        what the change could remove at most (a ``remove`` of ids the platform does not list).
        """
        if not self.limits_removal:
            return
        if known is None:
            raise SegmentsValidationError(
                f"{what} may remove members, but the platform lists no member count for the segment, so "
                f"max_removal_fraction={self.max_removal_fraction} cannot be checked: nothing was sent. "
                "Pass max_removal_fraction=1.0 to allow the change without that check."
            )
        if not known or removed <= 0:
            return
        assert self.max_removal_fraction is not None  # limits_removal
        if removed > self.max_removal_fraction * known:
            raise SegmentsValidationError(
                f"{what} {'could remove up to' if at_most else 'would remove'} {removed:,} of its "
                f"{known:,} members ({removed / known:.0%}), more "
                f"than max_removal_fraction={self.max_removal_fraction} allows: nothing was sent. "
                + (
                    "The platform lists how many members there are, not who: this counts the most the "
                    "change could remove. "
                    if at_most
                    else ""
                )
                + "If the audience really shrank, raise max_removal_fraction (1.0 allows any removal)."
            )

    def check_replacement(self, listed: Collection[Any], wanted: Collection[Any], what: str) -> None:
        """Refuse replacing the ``listed`` members by ``wanted`` when that empties a non-empty list
        (unless ``allow_empty``) or removes more than ``max_removal_fraction`` of them: for a
        platform that lists the members themselves, so the removal is exact."""
        members = set(listed)  # a member listed twice is one member
        if members and not wanted and not self.allow_empty:
            raise SegmentsValidationError(
                f"{what} would empty its {len(members):,} members, and an empty list is more often a "
                "failed export: nothing was sent. Pass allow_empty=True if it should really be emptied."
            )
        self.check_removal(len(members.difference(wanted)), len(members), what)


#: The guards a change has when the task sets none (frozen: one shared instance is safe).
DEFAULT_GUARDS = Guards()
