"""User segment bodies of the fake Zendesk Help Center API: validation, and the JSON of sections
and topics.

Assumptions, because the document does not say (change them here if the real API disagrees):

- ``name`` is required on create (the document marks only ``user_type`` mandatory); read-only and
  unknown fields in a body (``id``, ``built_in``, ``created_at``, ...) are ignored; list values are
  stored as given (not de-duplicated).
- Validation errors are all reported at once: 400 ``{"errors": {field: ["message"]}}``. A body that
  is not JSON, or lacks the ``user_segment`` object, is reported under ``"base"`` or
  ``"user_segment"``; a non-JSON content type gets 415 ``{"error": "UnsupportedMediaType", ...}``.
- The order of checks: 405 wrong method, 401 authentication, 404 unknown id
  (``{"error": "RecordNotFound", "description": "Not found"}``), 403 built-in segment
  (``{"error": "Forbidden", "description": "Built-in user segments cannot be modified"}``),
  415 content type, 400 body or query parameters.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from airflow_provider_segments.testing.base import HttpError, Request, show, truncate

__all__ = [
    "SEGMENT_FIELDS",
    "USER_TYPES",
    "copy_value",
    "int_or_none",
    "now_iso",
    "section_json",
    "segment_body",
    "topic_json",
    "validate_segment",
]


USER_TYPES = ("staff", "signed_in_users")
"""The only values ``user_type`` takes."""


_ID_LIST_FIELDS = ("group_ids", "organization_ids", "added_user_ids")


_TAG_LIST_FIELDS = ("tags", "or_tags")


SEGMENT_FIELDS = (
    "id",
    "name",
    "user_type",
    *_ID_LIST_FIELDS,
    *_TAG_LIST_FIELDS,
    "created_at",
    "updated_at",
    "built_in",
)


_USER_TYPE_CHOICES = "must be either `staff` or `signed_in_users`"


#: Zendesk's ids are 64-bit signed integers.
_MAX_ID = 2**63 - 1


def validate_segment(fields: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Check the writable fields of a ``user_segment`` body; return the changes or raise 400 listing all."""
    errors: dict[str, list[str]] = {}
    changes: dict[str, Any] = {}
    if "name" in fields:
        name = fields["name"]
        if isinstance(name, str) and name.strip():
            changes["name"] = name
        else:
            errors["name"] = [f"must be a non-empty string, got {show(name)}"]
    elif creating:
        errors["name"] = ["is required"]
    if "user_type" in fields:
        user_type = fields["user_type"]
        if isinstance(user_type, str) and user_type in USER_TYPES:
            changes["user_type"] = user_type
        else:
            shown = user_type if isinstance(user_type, str) else json.dumps(user_type)
            errors["user_type"] = [f"value `{truncate(shown)}` invalid; {_USER_TYPE_CHOICES}"]
    elif creating:
        errors["user_type"] = [f"is required; {_USER_TYPE_CHOICES}"]
    for name in _ID_LIST_FIELDS:
        if name not in fields:
            continue
        value = fields[name]
        if not isinstance(value, list):
            errors[name] = [f"must be a list of integers, got {show(value)}"]
            continue
        bad = next(
            (i for i, item in enumerate(value) if isinstance(item, bool) or not isinstance(item, int)), None
        )
        out_of_range = (
            None
            if bad is not None
            else next((i for i, item in enumerate(value) if not 0 < item <= _MAX_ID), None)
        )
        if bad is not None:
            errors[name] = [f"item {bad} must be an integer, got {show(value[bad])}"]
        elif out_of_range is not None:
            errors[name] = [
                f"item {out_of_range} must be a positive 64-bit integer, got {value[out_of_range]}"
            ]
        else:
            changes[name] = list(value)
    for name in _TAG_LIST_FIELDS:
        if name not in fields:
            continue
        value = fields[name]
        if not isinstance(value, list):
            errors[name] = [f"must be a list of non-empty strings, got {show(value)}"]
            continue
        bad = next((i for i, item in enumerate(value) if not isinstance(item, str) or not item.strip()), None)
        if bad is None:
            changes[name] = list(value)
        else:
            errors[name] = [f"item {bad} must be a non-empty string, got {show(value[bad])}"]
    if errors:
        raise HttpError(400, {"errors": errors})
    return changes


def segment_body(request: Request) -> dict[str, Any]:
    """The ``user_segment`` object of a JSON body (415 or 400 otherwise); logs the added user id count."""
    if request.content_type != "application/json":
        raise HttpError(
            415, {"error": "UnsupportedMediaType", "description": "Content-Type must be application/json"}
        )
    try:
        payload = request.json()
    except ValueError as exc:
        raise HttpError(400, {"errors": {"base": [f"malformed JSON body: {exc}"]}}) from None
    fields = payload.get("user_segment") if isinstance(payload, dict) else None
    if not isinstance(fields, dict):
        raise HttpError(400, {"errors": {"user_segment": ["is required and must be a JSON object"]}})
    added = fields.get("added_user_ids")
    if isinstance(added, list):
        request.log["ids"] = len(added)
    return fields


def section_json(section: dict[str, Any], base: str) -> dict[str, Any]:
    locale, slug = section["locale"], f"{section['id']}-{_slug(section['name'])}"
    return {
        "id": section["id"],
        "name": section["name"],
        "locale": locale,
        "url": f"{base}/api/v2/help_center/{locale}/sections/{slug}.json",
        "html_url": f"{base}/hc/{locale}/sections/{slug}",
    }


def topic_json(topic: dict[str, Any], base: str) -> dict[str, Any]:
    return {
        "id": topic["id"],
        "name": topic["name"],
        "url": f"{base}/api/v2/community/topics/{topic['id']}.json",
        "html_url": f"{base}/hc/en/community/topics/{topic['id']}-{_slug(topic['name'])}",
    }


def _slug(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "-", name).strip("-")


def int_or_none(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def copy_value(value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else value


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
