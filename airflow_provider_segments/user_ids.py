"""Pure helpers for lists of user ids: coerce, validate, dedupe and chunk.

No I/O and no Airflow here; the platform limits are passed in by the hook that owns them.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from airflow_provider_segments.exceptions import SegmentsValidationError

PREVIEW_CHARS = 60


def preview(value: Any, limit: int = PREVIEW_CHARS) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters, for error messages and logs."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def coerce_id_list(value: Any, *, field: str = "user_ids") -> Iterable[Any]:
    """Return ``value`` as an iterable of ids, refusing shapes that would be silently wrong.

    A string is the usual sign of a templated XCom pull rendered without
    ``render_template_as_native_obj=True``: a string that holds a JSON or Python list literal is
    parsed; any other string is refused (iterating it would send one id per character).
    """
    if value is None:
        raise SegmentsValidationError(f"{field} is required: pass a list of user ids (it was None).")
    if isinstance(value, (str, bytes)):
        text = value.decode() if isinstance(value, bytes) else value
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                parsed = json.loads(stripped)
            except ValueError:
                try:
                    parsed = ast.literal_eval(stripped)
                except (ValueError, SyntaxError):
                    parsed = None
            if isinstance(parsed, list):
                return parsed
        raise SegmentsValidationError(
            f"{field} must be a list of user ids, got the string {preview(text)}. If it comes from a "
            "template, set render_template_as_native_obj=True on the DAG or pass a list."
        )
    if isinstance(value, dict):
        raise SegmentsValidationError(f"{field} must be a list of user ids, got a dict: {preview(value)}.")
    if not isinstance(value, Iterable):
        raise SegmentsValidationError(
            f"{field} must be a list of user ids, got {type(value).__name__}: {preview(value)}."
        )
    return value


def normalize_user_ids(user_ids: Any, *, max_length: int, field: str = "user_ids") -> list[str]:
    """Validate every id and drop duplicates, keeping the first occurrence's order.

    An id is a non-empty string (an ``int`` is accepted and turned into its decimal string) of at
    most ``max_length`` characters with no surrounding whitespace. The error names the position
    and the (truncated) value of the first bad id, so a DAG author can find it in the source data.
    """
    seen: dict[str, None] = {}
    for position, raw in enumerate(coerce_id_list(user_ids, field=field)):
        if isinstance(raw, str):
            user_id = raw
        elif isinstance(raw, int) and not isinstance(raw, bool):
            user_id = str(raw)
        else:
            raise SegmentsValidationError(
                f"{field}[{position}] = {preview(raw)} is not a valid user id: expected a string, "
                f"got {type(raw).__name__}."
            )
        if not user_id.strip():
            raise SegmentsValidationError(
                f"{field}[{position}] = {preview(raw)} is not a valid user id: it is empty."
            )
        if len(user_id) > max_length:
            raise SegmentsValidationError(
                f"{field}[{position}] = {preview(raw)} is not a valid user id: it has {len(user_id)} "
                f"characters, the limit is {max_length}."
            )
        if user_id != user_id.strip():
            raise SegmentsValidationError(
                f"{field}[{position}] = {preview(raw)} is not a valid user id: it has leading or "
                "trailing whitespace (strip it at the source if it is not part of the id)."
            )
        seen[user_id] = None
    return list(seen)


def chunked(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Yield consecutive slices of ``items`` of at most ``size`` elements (nothing for no items)."""
    if size < 1:
        raise ValueError(f"chunk size must be positive, got {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def chunk_count(total: int, size: int) -> int:
    """Number of chunks :func:`chunked` yields for ``total`` items."""
    return -(-total // size)
