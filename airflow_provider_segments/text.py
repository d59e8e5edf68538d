"""How values are quoted in error messages and logs: short, and never more than a glance."""

from __future__ import annotations

from typing import Any

from airflow_provider_segments.redaction import preview_known

PREVIEW_CHARS = 60


def preview(value: Any, limit: int = PREVIEW_CHARS) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters, for error messages and logs: redacted of
    every secret this process knows before the cut (a value may come from an answer echoing one)."""
    return preview_known(value, limit)
