"""The body of a Zendesk user segment: the fields that decide who belongs, validated before anything
is sent, and how a field's value reads in a log line.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.id_rules import describe_char, find_invisible
from airflow_provider_segments.ids import as_list
from airflow_provider_segments.membership.guards import Guards
from airflow_provider_segments.text import preview
from airflow_provider_segments.vocabulary import (
    check_visible_name,
    refuse_decomposed,
    validate_user_segment_id,
)

USER_TYPES = ("signed_in_users", "staff")
ID_LIST_FIELDS = ("group_ids", "organization_ids", "added_user_ids")
TAG_LIST_FIELDS = ("tags", "or_tags")
#: What each list field holds, for error messages.
LIST_MEANINGS = {
    "group_ids": "group ids",
    "organization_ids": "organization ids",
    "added_user_ids": "user ids",
    "tags": "tags",
    "or_tags": "tags",
}
#: A list longer than this is logged as its length (no long id lists in logs).
SHOWN_LIST_ITEMS = 10
#: The fields that decide who belongs to a segment (all but its name).
CRITERIA_FIELDS = ("user_type", *ID_LIST_FIELDS, *TAG_LIST_FIELDS)
#: The one field Zendesk's User Segments document does not name: a Zendesk may not list it.
UNDOCUMENTED_FIELD = "added_user_ids"


def _coerce_list(field: str, value: Any) -> list[Any]:
    """``value`` as a list (a JSON/Python list literal string is parsed); refuse other shapes."""
    return as_list(value, field, LIST_MEANINGS[field])


def _validate_id_list(field: str, value: Any) -> list[int]:
    """The ids, each once (``"3"`` and ``3`` are one id), in the order given."""
    result: dict[int, None] = {}
    for position, item in enumerate(_coerce_list(field, value)):
        try:
            result[validate_user_segment_id(item, f"{field}[{position}]")] = None
        except SegmentsValidationError:
            raise SegmentsValidationError(
                f"{field}[{position}] = {preview(item)} is not valid: {field} holds positive integer ids."
            ) from None
    return list(result)


def _validate_tag_list(field: str, value: Any) -> list[str]:
    """The tags, each once, in the order given."""
    result: dict[str, None] = {}
    for position, item in enumerate(_coerce_list(field, value)):
        if not isinstance(item, str) or not item.strip():
            raise SegmentsValidationError(
                f"{field}[{position}] = {preview(item)} is not valid: {field} holds non-empty strings."
            )
        invisible = find_invisible(item)
        if invisible:  # "vip\u200b" looks like "vip" but matches no user tagged "vip"
            raise SegmentsValidationError(
                f"{field}[{position}] = {preview(item)} holds the invisible, blank or control character "
                f"{describe_char(invisible.group())} at position {invisible.start()}: remove it."
            )
        space = next((char for char in item if char.isspace()), None)
        if space is not None:  # Zendesk tags are single words: "vip " matches no user tagged "vip"
            raise SegmentsValidationError(
                f"{field}[{position}] = {preview(item)} holds whitespace ({describe_char(space)}): "
                "a Zendesk tag is one word; give each tag on its own."
            )
        refuse_decomposed(f"{field}[{position}] = {preview(item)}", item, "which no user tagged so matches")
        result[item] = None
    return list(result)


def build_user_segment_payload(fields: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Validate the given fields and return the ``user_segment`` body; ``None`` means "not given".

    Raises :class:`SegmentsValidationError` naming the field and value; nothing is sent then.
    """
    body: dict[str, Any] = {}
    name = fields.get("name")
    if name is not None or creating:
        if not isinstance(name, str) or not name.strip():
            raise SegmentsValidationError(f"name {preview(name)} is not valid: give a non-empty string.")
        check_visible_name(name)
        body["name"] = name
    user_type = fields.get("user_type")
    if user_type is not None or creating:
        if user_type not in USER_TYPES:
            raise SegmentsValidationError(
                f"user_type {preview(user_type)} is not valid: use one of {', '.join(USER_TYPES)}."
            )
        body["user_type"] = user_type
    for field in ID_LIST_FIELDS:
        if fields.get(field) is not None:
            body[field] = _validate_id_list(field, fields[field])
    for field in TAG_LIST_FIELDS:
        if fields.get(field) is not None:
            body[field] = _validate_tag_list(field, fields[field])
    return body


def as_created(body: dict[str, Any]) -> dict[str, Any]:
    """What a create with ``body`` makes: the list fields it leaves out are empty."""
    return {**{field: [] for field in (*ID_LIST_FIELDS, *TAG_LIST_FIELDS)}, **body}


def same_value(before: Any, after: Any) -> bool:
    """Whether a field reads the same before and after (lists in any order)."""
    if isinstance(before, list) and isinstance(after, list):
        return sorted(before, key=repr) == sorted(after, key=repr)
    return before == after


def show_value(value: Any) -> str:
    """A field's value for a log line: a long list as its length, nothing listed as such."""
    if value is None:
        return "(not listed)"
    if isinstance(value, list) and len(value) > SHOWN_LIST_ITEMS:
        return f"[{len(value):,} items]"
    return preview(value, 120)


def check_listing_filters(built_in: Any, applicable: Any, user_id: Any) -> None:
    """Refuse a listing's filters that would list other segments than asked: a flag that is not a
    bool (``built_in`` may be ``None``: both), or ``applicable`` together with a ``user_id``."""
    for flag, value in (("built_in", built_in), ("applicable", applicable)):
        if not isinstance(value, bool) and not (flag == "built_in" and value is None):
            raise SegmentsValidationError(
                f"{flag} {preview(value)} is not valid: use True or False"
                + (" (or None for both)." if flag == "built_in" else ".")
            )
    if applicable and user_id is not None:
        raise SegmentsValidationError("Pass either applicable=True or user_id, not both.")


def criteria_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Each criterion that differs, for a log line: ``"tags ['a'] -> ['b']"``."""
    return [
        f"{field} {show_value(before.get(field))} -> {show_value(after[field])}"
        for field in CRITERIA_FIELDS
        if not same_value(before.get(field), after[field])
    ]


def differences(listed: dict[str, Any], sent: dict[str, Any], cleared: Collection[str] = ()) -> list[str]:
    """Each field ``sent`` (and each of ``cleared``, left empty, where listed) that the segment as
    ``listed`` does not hold: ``"tags ['a'] (sent ['b'])"``. ``added_user_ids``, which Zendesk's
    document does not name, may go unlisted: then it holds an empty list sent, never a non-empty one.
    Every field the document names must be listed as sent."""
    expected = {**{field: [] for field in cleared if listed.get(field) is not None}, **sent}
    return [
        f"{field} {show_value(listed.get(field))} (sent {show_value(value)})"
        for field, value in expected.items()
        if not same_value(listed.get(field), value)
        and not (field == UNDOCUMENTED_FIELD and value == [] and listed.get(field) is None)
    ]


def check_added_users(listed: dict[str, Any], wanted: list[int], what: str, guards: Guards) -> None:
    """The mass-change guards on replacing the ``added_user_ids`` Zendesk lists by ``wanted``."""
    what = f"{what} with {len(wanted):,} added_user_ids"
    current = listed.get("added_user_ids")
    if isinstance(current, list):
        guards.check_replacement(current, wanted, what)
    elif guards.limits_removal:  # not listed is unknown, never "none": who would go cannot be counted
        raise SegmentsValidationError(
            f"{what}: Zendesk does not list the segment's added_user_ids "
            f"({'not listed' if current is None else preview(current)}), so the users this change would "
            f"remove cannot be counted and max_removal_fraction={guards.max_removal_fraction} cannot be "
            "checked: nothing was sent. Pass max_removal_fraction=1.0 to replace them without that check."
        )
