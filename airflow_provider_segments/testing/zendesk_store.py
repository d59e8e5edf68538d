"""The state of the fake Zendesk Help Center: user segments (two built-ins from the start), and the
sections and topics that use them, readable and seedable in-process by tests (no HTTP here)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_segments.testing.base import HttpError
from airflow_provider_segments.testing.zendesk_payloads import SEGMENT_FIELDS, copy_value, now_iso

__all__ = [
    "BUILT_IN_SEGMENT_IDS",
    "FIRST_CUSTOM_SEGMENT_ID",
    "NOT_FOUND_ERROR",
    "StoredSegment",
    "ZendeskStore",
]

FIRST_CUSTOM_SEGMENT_ID = 360_000_000_001
"""Id of the first segment created after start or reset; the next ones count up from it."""

BUILT_IN_SEGMENT_IDS = (1, 2)
"""Ids of the built-in segments seeded at start and after reset."""

_BUILT_IN_SEGMENTS = (
    (1, "Signed-in users", "signed_in_users"),
    (2, "Agents and managers", "staff"),
)

_BUILT_IN_TIMESTAMP = "2017-01-01T00:00:00Z"

_FIRST_SECTION_ID = 360_100_000_001

_FIRST_TOPIC_ID = 360_200_000_001

NOT_FOUND_ERROR = {"error": "RecordNotFound", "description": "Not found"}

_BUILT_IN_FORBIDDEN = {"error": "Forbidden", "description": "Built-in user segments cannot be modified"}


@dataclass
class StoredSegment:
    id: int
    name: str
    user_type: str
    created_at: str
    updated_at: str
    built_in: bool = False
    group_ids: list[Any] = field(default_factory=list)
    organization_ids: list[Any] = field(default_factory=list)
    tags: list[Any] = field(default_factory=list)
    or_tags: list[Any] = field(default_factory=list)
    added_user_ids: list[Any] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "user_type": self.user_type,
            "group_ids": copy_value(self.group_ids),
            "organization_ids": copy_value(self.organization_ids),
            "tags": copy_value(self.tags),
            "or_tags": copy_value(self.or_tags),
            "added_user_ids": copy_value(self.added_user_ids),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "built_in": self.built_in,
        }


class ZendeskStore:
    """User segments, sections and topics behind one lock; :class:`~.zendesk.ZendeskApp` serves them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._segments: dict[int, StoredSegment] = {}
        self._sections: list[dict[str, Any]] = []
        self._topics: list[dict[str, Any]] = []
        self._next_segment_id = FIRST_CUSTOM_SEGMENT_ID
        self._next_section_id = _FIRST_SECTION_ID
        self._next_topic_id = _FIRST_TOPIC_ID
        self.reset()

    def segments(self) -> list[dict[str, Any]]:
        """Every segment (built-in ones included) as the API shows it, by ascending id."""
        with self._lock:
            return [segment.to_json() for segment in self._sorted_locked()]

    def segment(self, segment_id: int) -> dict[str, Any] | None:
        """The segment with this id as the API shows it, or ``None``."""
        with self._lock:
            segment = self._segments.get(segment_id)
            return None if segment is None else segment.to_json()

    def create_segment(self, **fields: Any) -> dict[str, Any]:
        """Store a segment directly (no HTTP, no validation), e.g. to seed state; return its JSON.

        Takes the segment's JSON fields as keywords; missing ones default to a custom
        ``signed_in_users`` segment named after its id, with empty lists and the current time.
        ``id`` may be given (``ValueError`` if taken); unknown field names raise ``TypeError``.
        """
        unknown = sorted(set(fields) - set(SEGMENT_FIELDS))
        if unknown:
            raise TypeError(f"unknown user segment field(s): {', '.join(unknown)}")
        with self._lock:
            segment_id = fields.pop("id", None)
            if segment_id is None:
                segment_id = self._next_segment_id
            elif segment_id in self._segments:
                raise ValueError(f"a user segment with id {segment_id!r} already exists")
            now = now_iso()
            segment = StoredSegment(
                id=segment_id,
                name=fields.pop("name", f"Test segment {segment_id}"),
                user_type=fields.pop("user_type", "signed_in_users"),
                created_at=fields.pop("created_at", now),
                updated_at=fields.pop("updated_at", now),
                built_in=fields.pop("built_in", False),
            )
            for name, value in fields.items():
                setattr(segment, name, copy_value(value))
            self._segments[segment_id] = segment
            if isinstance(segment_id, int) and segment_id >= self._next_segment_id:
                self._next_segment_id = segment_id + 1
            return segment.to_json()

    def delete_segment(self, segment_id: int) -> bool:
        """Remove a segment directly (no HTTP), as another client would; whether it was there."""
        with self._lock:
            return self._segments.pop(segment_id, None) is not None

    def add_section(self, segment_id: int, name: str, locale: str = "en") -> dict[str, Any]:
        """Record a Help Center section that uses the segment; return ``{"id", "name", "locale",
        "user_segment_id"}`` (the listing adds ``url`` and ``html_url``). KeyError if the segment is unknown.
        """
        with self._lock:
            self._require_segment_locked(segment_id)
            section = {"id": self._next_section_id, "name": name, "locale": locale}
            section["user_segment_id"] = segment_id
            self._next_section_id += 1
            self._sections.append(section)
            return dict(section)

    def add_topic(self, segment_id: int, name: str) -> dict[str, Any]:
        """Record a community topic that uses the segment; return ``{"id", "name", "user_segment_id"}``
        (the listing adds ``url`` and ``html_url``). KeyError if the segment is unknown.
        """
        with self._lock:
            self._require_segment_locked(segment_id)
            topic = {"id": self._next_topic_id, "name": name, "user_segment_id": segment_id}
            self._next_topic_id += 1
            self._topics.append(topic)
            return dict(topic)

    def reset(self) -> None:
        """Back to the start: only the built-in segments, no sections or topics, ids counting from
        the start again."""
        with self._lock:
            self._segments = {
                segment_id: StoredSegment(
                    segment_id, name, user_type, _BUILT_IN_TIMESTAMP, _BUILT_IN_TIMESTAMP, built_in=True
                )
                for segment_id, name, user_type in _BUILT_IN_SEGMENTS
            }
            self._sections = []
            self._topics = []
            self._next_segment_id = FIRST_CUSTOM_SEGMENT_ID
            self._next_section_id = _FIRST_SECTION_ID
            self._next_topic_id = _FIRST_TOPIC_ID
            self._window_count = 0

    # -- state helpers (call with the lock held) ------------------------------------------------

    def _sorted_locked(self) -> list[StoredSegment]:
        return sorted(self._segments.values(), key=lambda segment: segment.id)

    def _find_locked(self, segment_id: int) -> StoredSegment:
        segment = self._segments.get(segment_id)
        if segment is None:
            raise HttpError(404, NOT_FOUND_ERROR)
        return segment

    def _modifiable_locked(self, segment_id: int) -> StoredSegment:
        segment = self._find_locked(segment_id)
        if segment.built_in:
            raise HttpError(403, _BUILT_IN_FORBIDDEN)
        return segment

    def _require_segment_locked(self, segment_id: int) -> None:
        if segment_id not in self._segments:
            raise KeyError(f"no user segment with id {segment_id!r}")
