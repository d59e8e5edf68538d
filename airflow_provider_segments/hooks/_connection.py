"""Reading a connection's ``extra`` the same way in every hook."""

from __future__ import annotations

from typing import Any


def normalized_extra(extra: dict[str, Any] | None, conn_type: str) -> dict[str, Any]:
    """Return ``extra`` with the legacy ``extra__<conn_type>__`` prefix dropped from its keys.

    Connection forms have stored custom fields both as ``system_guid`` and, in older UIs, as
    ``extra__walkme__system_guid``; both spellings mean the same field. A non-empty plain key wins.
    """
    prefix = f"extra__{conn_type}__"
    result = {key: value for key, value in (extra or {}).items() if not key.startswith(prefix)}
    for key, value in (extra or {}).items():
        name = key[len(prefix) :]
        if key.startswith(prefix) and result.get(name) in (None, ""):
            result[name] = value
    return result
