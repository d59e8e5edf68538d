"""WalkMe's answer to ``GET .../segment``, read only when it is the whole list.

The provider does not page WalkMe listings (the Segments document describes no paging), so a
listing is trusted only when it says nothing of more pages: a name lookup on part of the list would
miss a segment and create a duplicate, and a guard or read-back would check the wrong numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_provider_segments.exceptions import SegmentsError
from airflow_provider_segments.vocabulary import normalize_segment

#: Keys an object answer may wrap the list of segments in (the first list found is it).
LIST_KEYS = ("segments", "data", "items", "results")
#: A flag saying more pages follow when it is set.
MORE_FLAGS = ("hasMore", "has_more")
#: A link, page number or cursor of a next page when it is not empty.
NEXT_KEYS = ("next", "nextPage", "next_page", "nextCursor", "cursor")
#: A count of all the segments, which must not exceed the ones listed.
TOTAL_KEYS = ("total", "totalCount", "total_count")
#: Objects that carry paging information (also inside one another, e.g. ``meta.pagination``).
PAGING_KEYS = ("pagination", "paging", "meta", "links")
#: How deep paging objects are searched for a sign (``meta.pagination.next`` is depth 2).
MAX_PAGING_DEPTH = 2


def listed_segments(body: Any, preview: Callable[[Any], str]) -> list[dict[str, Any]]:
    """The segments of a listing answer, normalised, each with a valid GUID.

    ``body`` is a JSON array, or an object wrapping it under one of :data:`LIST_KEYS`; ``preview``
    shows a value, cut short and redacted, for an error message.

    :raises SegmentsError: the answer has another shape, says more pages follow, or lists a segment
        without a GUID or with one that is not a GUID (see :func:`normalize_segment`).
    """
    items = body
    if isinstance(body, dict):
        items = next((body[key] for key in LIST_KEYS if isinstance(body.get(key), list)), None)
        sign = None if items is None else _sign_of_more(body, len(items), "", 0)
        if sign is not None:
            raise SegmentsError(
                f"WalkMe answered only part of the list of segments (more pages follow: {sign}), and "
                "this provider does not page WalkMe listings; a lookup on part of the list could "
                "miss a segment and create a duplicate, so nothing was written. Rerun later; if "
                f"WalkMe keeps paging this listing, report this answer to the provider: {preview(body)}"
            )
    if not isinstance(items, list) or not all(isinstance(raw, dict) for raw in items):
        raise SegmentsError(f"WalkMe listed segments in an unexpected shape: {preview(body)}")
    segments = [normalize_segment(raw) for raw in items]
    for raw, segment in zip(items, segments, strict=True):
        if not segment["segment_guid"]:  # it would reach a write's URL as ".../segment/None"
            raise SegmentsError(
                f"WalkMe listed a segment without a GUID, which cannot be told apart from others or "
                f"written to; nothing was written. Check that the connection's host is WalkMe's API: "
                f"{preview(raw)}"
            )
    return segments


def _sign_of_more(wrapper: dict[str, Any], count: int, where: str, depth: int) -> str | None:
    """Where ``wrapper`` (or a paging object in it) says more than ``count`` segments exist, as
    ``"pagination.next names a next page"`` (values only in the redacted preview of the answer);
    ``None`` when nothing in it does."""
    for key in MORE_FLAGS:
        if _is_set(wrapper.get(key)):
            return f"{where}{key} is set"
    for key in NEXT_KEYS:
        value = wrapper.get(key)
        if value and not (isinstance(value, str) and not value.strip()):
            return f"{where}{key} names a next page"
    for key in TOTAL_KEYS:
        total = _whole_number(wrapper.get(key))
        if total is not None and total > count:
            return f"{where}{key} counts {total}, {count} listed"
    if depth < MAX_PAGING_DEPTH:
        for key in PAGING_KEYS:
            inner = wrapper.get(key)
            if isinstance(inner, dict) and (sign := _sign_of_more(inner, count, f"{where}{key}.", depth + 1)):
                return sign
    return None


def _is_set(flag: Any) -> bool:
    """A "more follow" flag reads as unset only when it plainly says no: absent, false, 0 or "false"
    (anything else, even ``"yes"``, may mean more pages, and part of a list is never trusted)."""
    if isinstance(flag, str):
        return flag.strip().lower() not in ("", "false", "0")
    return flag is not None and flag is not False and flag != 0


def _whole_number(value: Any) -> int | None:
    """``value`` as an int when it is one (or a string of digits); else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        return int(value.strip())
    return None
