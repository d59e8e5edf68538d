"""WalkMe's answer to ``GET .../segment``: the segments it lists, normalised.

Apart from the hook so that what a listing must show before it is used has one place (the hook
module was at the house's size limit).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_provider_segments.exceptions import SegmentsError
from airflow_provider_segments.vocabulary import normalize_segment

#: Keys an object answer may wrap the list of segments in (the first list found is it).
LIST_KEYS = ("segments", "data", "items", "results")


def listed_segments(body: Any, preview: Callable[[Any], str]) -> list[dict[str, Any]]:
    """The segments of a listing answer, normalised.

    ``body`` is a JSON array, or an object wrapping it under one of :data:`LIST_KEYS`; ``preview``
    shows a value, cut short and redacted, for an error message.

    :raises SegmentsError: the answer has another shape.
    """
    items = body
    if isinstance(body, dict):
        items = next((body[key] for key in LIST_KEYS if isinstance(body.get(key), list)), None)
    if not isinstance(items, list) or not all(isinstance(raw, dict) for raw in items):
        raise SegmentsError(f"WalkMe listed segments in an unexpected shape: {preview(body)}")
    return [normalize_segment(raw) for raw in items]
