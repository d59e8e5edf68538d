"""The words both platforms' code shares: what a segment GUID, a system GUID, a segment name, an
update action and a Zendesk user segment id look like, and a WalkMe segment as this provider hands it on.

The layer below the hooks: hooks, assets, lineage, sensors and operators all import it, and it imports
nothing of theirs (nor Airflow), so nothing that needs these words has to import a hook.
"""

from __future__ import annotations

import re
from typing import Any

from airflow_provider_segments.exceptions import SegmentsError, SegmentsValidationError
from airflow_provider_segments.id_rules import decomposed, describe_char, find_invisible, fix_hint
from airflow_provider_segments.redaction import redact_known
from airflow_provider_segments.text import preview

# -- WalkMe --------------------------------------------------------------------------------------
UPDATE_ACTIONS: tuple[str, ...] = ("add", "remove", "override")
SEGMENT_GUID_PATTERN = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
BARE_GUID_PATTERN = re.compile(r"[0-9a-fA-F]{32}")
SYSTEM_GUID_PATTERN = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,63}")
MAX_NAME_LENGTH = 255


def validate_segment_guid(value: Any) -> str:
    """Return ``value`` as a hyphenated GUID, the form WalkMe puts in segment URLs.

    32 hex digits without hyphens (which one version of WalkMe's reference page shows) are accepted
    and hyphenated.
    """
    if isinstance(value, str) and BARE_GUID_PATTERN.fullmatch(value):
        value = f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    if not isinstance(value, str) or not SEGMENT_GUID_PATTERN.fullmatch(value):
        raise SegmentsValidationError(
            f"segment_guid {preview(value)} is not a hyphenated GUID like "
            "12345aeb-123c-4d83-8b38-a5a456789d0a (or its 32 hex digits)."
        )
    return value


def validate_system_guid(value: Any) -> str:
    """Return ``value`` if it is a WalkMe system GUID (letters, digits and hyphens); refuse anything
    else, ``""``, ``0`` and ``[]`` included: only ``None`` means "the connection's system"."""
    if not isinstance(value, str) or not SYSTEM_GUID_PATTERN.fullmatch(value):
        raise SegmentsValidationError(
            f"system_guid {preview(value)} is not valid: a WalkMe system GUID is letters, digits and "
            "hyphens (copy it from Editor > Snippet); leave it out (None) for the connection's "
            "extra.system_guid."
        )
    return value


def validate_name_prefix(value: Any) -> str:
    """Return ``value`` if it is a usable name prefix: non-blank text (``None`` is no filter, checked
    by the caller); ``""`` or ``[]`` would keep every segment, and a clean-up deletes what it lists."""
    if not isinstance(value, str) or not value.strip():
        raise SegmentsValidationError(
            f"name_prefix {preview(value)} is not valid: give the non-blank text segment names must start "
            "with, or leave it out (None) to list every segment."
        )
    return value


def validate_update_action(value: Any) -> str:
    """Return ``value`` if it is one of WalkMe's update actions."""
    if value not in UPDATE_ACTIONS:
        raise SegmentsValidationError(
            f"action {preview(value)} is not valid: use one of {', '.join(UPDATE_ACTIONS)}."
        )
    return value


def check_visible_name(value: str) -> None:
    """Refuse a segment name that looks like another (either platform): one holding an invisible,
    blank or control character ("VIP\u200b" looks like "VIP"; U+0020 SPACE is allowed inside),
    beginning or ending with whitespace, or not in composed form (NFC: "Cafe" + combining accent
    looks like "Café"). The next lookup by name would miss the other spelling and create a second
    segment that looks the same."""
    invisible = find_invisible(value)
    if invisible:
        raise SegmentsValidationError(
            f"name {preview(value)} holds the invisible, blank or control character "
            f"{describe_char(invisible.group())} at position {invisible.start()}: "
            f"{fix_hint(value, invisible.start())}."
        )
    if value != value.strip():
        char = value[0] if value[0].isspace() else value[-1]
        raise SegmentsValidationError(
            f"name {preview(value)} begins or ends with whitespace ({describe_char(char)}): it looks like "
            "the name without it, so a lookup by name would miss that one; remove it."
        )
    refuse_decomposed(f"name {preview(value)}", value, "so a lookup by name would miss that one")


def refuse_decomposed(label: str, value: str, consequence: str) -> None:
    """Refuse ``value`` (``label`` names it) unless it is in composed form (Unicode NFC): "Cafe" + a
    combining accent looks like "Café" but is another string; ``consequence`` says what that breaks."""
    composed = decomposed(value)
    if composed is not None:
        raise SegmentsValidationError(
            f"{label} is not in composed form (Unicode NFC): it looks like {preview(composed)} but is "
            f"another string, {consequence}; write it as {preview(composed)}."
        )


def validate_segment_name(value: Any) -> str:
    """Return ``value`` if it is a usable segment name."""
    if not isinstance(value, str) or not value.strip():
        raise SegmentsValidationError(f"name {preview(value)} is not valid: give a non-empty string.")
    check_visible_name(value)
    if len(value) > MAX_NAME_LENGTH:
        raise SegmentsValidationError(
            f"name {preview(value)} is too long: {len(value)} characters, at most {MAX_NAME_LENGTH}."
        )
    return value


def normalize_segment(raw: Any) -> dict[str, Any]:
    """Turn one segment as the API returns it into the small dict this provider hands to XCom.

    The document shows no response bodies; the GUID is read from ``guid``, ``segmentGuid``,
    ``segmentId`` or a GUID-shaped ``id`` (``id`` is otherwise the caller's external id). Every
    answer a GUID is taken from passes through here, so a GUID given is checked here
    (:func:`answered_segment_guid`) and handed on in the hyphenated form; ``None`` when none is given.
    """
    if not isinstance(raw, dict):
        raise SegmentsError(f"WalkMe returned a segment that is not an object: {preview(raw)}")
    guid = raw.get("guid") or raw.get("segmentGuid") or raw.get("segment_guid") or raw.get("segmentId")
    external_id = raw.get("id") if raw.get("id") != guid else None
    if not guid and isinstance(raw.get("id"), str) and SEGMENT_GUID_PATTERN.fullmatch(raw["id"]):
        guid, external_id = raw["id"], raw.get("externalId")
    guid = answered_segment_guid(guid) if guid else None
    count = raw.get("usersCount", raw.get("userCount", raw.get("user_count")))
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise SegmentsError(
            f"WalkMe lists segment {preview(guid)} with a member count (usersCount) of {preview(count)}, "
            "not a whole number: the guards and the read-back cannot be checked against it."
        )
    return {
        "segment_guid": guid,
        "name": raw.get("name"),
        "external_id": external_id if external_id is not None else raw.get("externalId"),
        "user_count": count,
        "created_at": raw.get("createdAt") or raw.get("created_at"),
        "updated_at": updated_at_of(raw),
    }


def answered_segment_guid(value: Any) -> str:
    """A segment GUID WalkMe answered with, checked before it can reach a URL (hyphenated).

    Answers are not trusted with URLs: a "GUID" such as ``../../<system>/segment/<guid>`` would
    send a write to another segment, even one of another system. Refused as the answer's fault
    (:class:`SegmentsError`, so the task's retries apply), not as a mistake in the task's input.
    """
    try:
        return validate_segment_guid(value)
    except SegmentsValidationError:
        raise SegmentsError(
            f"WalkMe answered a segment GUID {preview(value)} that is not a GUID (like "
            "12345aeb-123c-4d83-8b38-a5a456789d0a); it was not put in any URL, so nothing was written "
            "to it. Check that the connection's host is WalkMe's API."
        ) from None


def updated_at_of(raw: dict[str, Any]) -> Any:
    """The update time a WalkMe answer carries (``updatedAt``), or ``None``; a known secret echoed in
    it is redacted here, the one place every use reads it (logs, the snapshot, results)."""
    value = raw.get("updatedAt") or raw.get("updated_at")
    return redact_known(value) if isinstance(value, str) else value


# -- Zendesk Help Center -------------------------------------------------------------------------
SUBDOMAIN_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)


#: Zendesk ids are 64-bit signed integers: a larger number cannot name anything there.
MAX_ZENDESK_ID = 2**63 - 1


def validate_user_segment_id(value: Any, field: str = "user_segment_id") -> int:
    """Return ``value`` as a positive 64-bit int (a digit string is accepted); refuse anything else."""
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isdigit() and value.isascii():
        number = int(value)
    else:
        number = None
    if number is None or not 0 < number <= MAX_ZENDESK_ID:
        raise SegmentsValidationError(
            f"{field} {preview(value)} is not valid: expected a positive integer id (at most 2**63 - 1)."
        )
    return number
