"""How values are quoted in error messages and logs: short, and never more than a glance."""

from __future__ import annotations

from typing import Any

PREVIEW_CHARS = 60


def preview(value: Any, limit: int = PREVIEW_CHARS) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters, for error messages and logs."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
