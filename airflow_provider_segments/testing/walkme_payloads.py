"""What the fake WalkMe Segments API accepts in a body: the documented limits, checked as the API
would (400 naming the first offending entry)."""

from __future__ import annotations

from typing import Any

from airflow_provider_segments.testing.base import HttpError, show

__all__ = ["MAX_IDS_PER_REQUEST", "MAX_ID_LENGTH", "UPDATE_ACTIONS", "valid_user_ids"]

MAX_IDS_PER_REQUEST = 25_000
"""Documented limit: "Up to 25k users per request"."""
MAX_ID_LENGTH = 100
"""Documented limit: "Up to 100 characters per ID value"."""
UPDATE_ACTIONS = ("add", "remove", "override")
"""The only values the update call accepts for ``action``."""


def valid_user_ids(value: Any) -> list[str]:
    """Return ``value`` if it is a list of 1-100 character strings, at most 25,000; else raise 400."""
    if not isinstance(value, list):
        raise HttpError(
            400, {"message": f"userIds is required and must be a list of strings, got {show(value)}"}
        )
    if len(value) > MAX_IDS_PER_REQUEST:
        raise HttpError(
            400,
            {
                "message": f"userIds has {len(value):,} entries; at most {MAX_IDS_PER_REQUEST:,} are allowed "
                "per request"
            },
        )
    if not value:
        return value
    # C-speed checks first; a slow scan only runs to name the offending entry.
    if set(map(type, value)) != {str}:
        index = next(i for i, item in enumerate(value) if not isinstance(item, str))
        raise HttpError(400, {"message": f"userIds[{index}] must be a string, got {show(value[index])}"})
    lengths = list(map(len, value))
    if min(lengths) == 0:
        raise HttpError(400, {"message": f"userIds[{lengths.index(0)}] is empty; ids must not be empty"})
    if max(lengths) > MAX_ID_LENGTH:
        index = next(i for i, length in enumerate(lengths) if length > MAX_ID_LENGTH)
        raise HttpError(
            400,
            {
                "message": f"userIds[{index}] has {lengths[index]} characters; at most {MAX_ID_LENGTH} are "
                f"allowed per id: {show(value[index])}"
            },
        )
    return value
