"""The plan: what a membership change sends, *full* (override the first chunk, add the rest) or
*delta* (add the new ids, remove the gone ones) against a snapshot the platform's evidence agrees with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain

from airflow_provider_segments.id_files import BLOCK_IDS, IdCollector, aligned_windows
from airflow_provider_segments.ids import UserIds

FULL = "full"
DELTA = "delta"


@dataclass
class Plan:
    """What a change sends. ``full``: the whole input; ``delta``: only ``adds`` and ``removes``."""

    mode: str
    ids: UserIds
    chunk_size: int
    adds: UserIds = field(default_factory=UserIds)
    removes: UserIds = field(default_factory=UserIds)
    unchanged: int | None = None

    @property
    def requests(self) -> int:
        """Write requests the plan sends (a full change always sends at least one)."""
        if self.mode == FULL:
            return max(1, chunk_count(len(self.ids), self.chunk_size))
        size = self.chunk_size
        return chunk_count(len(self.adds), size) + chunk_count(len(self.removes), size)

    @property
    def total_ids(self) -> int:
        """Ids the plan sends, over all its requests."""
        return len(self.ids) if self.mode == FULL else len(self.adds) + len(self.removes)

    def counts(self) -> tuple[int | None, int | None]:
        """``(added, removed)``; ``None`` where a full change cannot know it."""
        if self.mode == FULL:
            return len(self.ids), None
        return len(self.adds), len(self.removes)

    def describe(self) -> str:
        added, removed = self.counts()
        parts = [f"{show_count(added)} to add"]
        if removed is not None:
            parts.append(f"{show_count(removed)} to remove")
        if self.unchanged is not None:
            parts.append(f"{show_count(self.unchanged)} unchanged")
        return f"Sync plan ({self.mode}): {', '.join(parts)}, {self.requests} write request(s)."

    def steps(self) -> Iterator[tuple[str, list[str]]]:
        """``(action, chunk)`` pairs: a full plan overrides with its first chunk and adds the rest."""
        if self.mode == FULL:
            first = True
            for chunk in self.ids.chunks(self.chunk_size):
                yield ("override" if first else "add"), chunk
                first = False
            if first:
                yield "override", []  # an allowed empty input: one request that empties the segment
            return
        yield from (("add", chunk) for chunk in self.adds.chunks(self.chunk_size))
        yield from (("remove", chunk) for chunk in self.removes.chunks(self.chunk_size))

    def changed_ids(self) -> UserIds:
        """The ids a delta may change (adds and removes): what its journal records."""
        return UserIds.from_validated(chain(self.adds.chunks(BLOCK_IDS), self.removes.chunks(BLOCK_IDS)))


def full_plan(ids: UserIds, chunk_size: int) -> Plan:
    """Send the whole membership (the platform's membership before is unknown)."""
    return Plan(FULL, ids, chunk_size)


def delta_plan(ids: UserIds, known: UserIds, uncertain: UserIds | None, chunk_size: int) -> Plan:
    """Send only the difference between ``ids`` and ``known``; ids in ``uncertain`` are sent either way.

    ``uncertain`` holds the ids a failed run may or may not have changed: each is added if the input
    holds it and removed otherwise, which is right whatever the failed run applied.
    """
    # The three collections are compared in sorted windows (each id in the same window of all three),
    # so none is held whole: a spilled input and snapshot of millions of ids stay on disk.
    unsure = uncertain if uncertain is not None else UserIds()
    streams = (ids.sorted_chunks(BLOCK_IDS), known.sorted_chunks(BLOCK_IDS), unsure.sorted_chunks(BLOCK_IDS))
    adds, removes = IdCollector(), IdCollector()  # a large difference spills too
    try:
        for wanted_ids, known_ids, unknown_ids in aligned_windows(*streams):
            wanted, before, unknown = set(wanted_ids), set(known_ids), set(unknown_ids)
            adds.add([i for i in wanted_ids if i not in before or i in unknown])
            removes.add([i for i in known_ids if i not in wanted])
            removes.add([i for i in unknown_ids if i not in wanted and i not in before])
    except BaseException:
        adds.discard()
        removes.discard()
        raise
    add_ids, remove_ids = UserIds.collected(adds), UserIds.collected(removes)
    return Plan(DELTA, ids, chunk_size, add_ids, remove_ids, unchanged=len(ids) - len(add_ids))


def left_out_count(ids: UserIds, known: UserIds) -> int:
    """How many of ``known`` are not in ``ids`` (compared in sorted windows, as :func:`delta_plan`)."""
    streams = (ids.sorted_chunks(BLOCK_IDS), known.sorted_chunks(BLOCK_IDS))
    return sum(
        len(known_ids) - len(set(known_ids).intersection(wanted_ids))
        for wanted_ids, known_ids in aligned_windows(*streams)
    )


def chunk_count(total: int, size: int) -> int:
    """Requests needed for ``total`` ids at ``size`` a request."""
    return -(-total // size)


def show_count(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"
