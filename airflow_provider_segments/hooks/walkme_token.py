"""WalkMe access tokens: how long one may be reused, and a cache several threads share (chunk
writes go out in parallel; one of them fetches a new token, the others wait and take it)."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from airflow_provider_segments.exceptions import SegmentsApiError
from airflow_provider_segments.hooks._connection import unsendable_position
from airflow_provider_segments.text import preview

#: Refresh a cached token this many seconds before WalkMe says it expires (at most a tenth of its
#: lifetime, so that a short-lived token is still reused).
TOKEN_REFRESH_MARGIN = 300
#: A token's lifetime when WalkMe's answer gives none, or gives something that is not a number.
TOKEN_LIFETIME = 86400
#: A cached token is reused for at most this long, whatever ``expires_in`` says (``1e999``, ``"inf"``).
MAX_TOKEN_LIFETIME = 86400


def token_lifetime(expires_in: Any) -> tuple[int, bool]:
    """Whole seconds a token may be reused, from the ``expires_in`` of WalkMe's token answer, and
    whether that value had to be replaced by the rule.

    The rule: a number of seconds is clamped to 0..:data:`MAX_TOKEN_LIFETIME` (``-inf`` means 0,
    ``1e999`` and ``"inf"`` the maximum); ``NaN``, a boolean or words mean :data:`TOKEN_LIFETIME`,
    as a missing value does (which is not a replacement).
    """
    if expires_in is None:
        return TOKEN_LIFETIME, False
    number = None
    if isinstance(expires_in, int | float | str) and not isinstance(expires_in, bool):
        with contextlib.suppress(ValueError):
            number = float(expires_in)
    if number is None or math.isnan(number):
        return TOKEN_LIFETIME, True
    clamped = min(max(number, 0.0), MAX_TOKEN_LIFETIME)
    return int(clamped), clamped != number


def lifetime_of(answer: dict[str, Any], log: Any) -> int:
    """Seconds the token of WalkMe's ``answer`` may be reused (:func:`token_lifetime`); an
    ``expires_in`` the rule replaced is logged."""
    lifetime, replaced = token_lifetime(answer.get("expires_in"))
    if replaced:
        log.warning(
            "WalkMe's token answer says expires_in=%s; using %d s (the rule: a number of seconds "
            "from 0 to %d; more, or infinity, counts as %d; not a number counts as %d).",
            preview(answer.get("expires_in"), 40),
            lifetime,
            MAX_TOKEN_LIFETIME,
            MAX_TOKEN_LIFETIME,
            TOKEN_LIFETIME,
        )
    return lifetime


def access_token_of(answer: Any, endpoint: str) -> str:
    """The ``access_token`` of WalkMe's token answer; refused, never quoted, when it is missing or
    HTTP cannot carry it in a header (requests would fail or send another header)."""
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not token or not isinstance(token, str):
        problem = "without an access_token"
    elif unsendable_position(token) is not None or any(char.isspace() for char in token):
        problem = (
            "with an access_token holding a space, a control or invisible character, or one beyond "
            "Latin-1, which cannot be sent in an HTTP header (nothing was sent with it)"
        )
    else:
        return token
    raise SegmentsApiError(
        f"WalkMe token endpoint answered {problem}.", platform="WalkMe", method="POST", endpoint=endpoint
    )


class TokenCache:
    """The current bearer token and when to stop reusing it, behind a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def get(self, fetch: Callable[[], tuple[str, int]], *, force_refresh: bool, refused: str | None) -> str:
        """The cached token, or a new one from ``fetch`` (``(token, lifetime in seconds)``).

        ``force_refresh`` asks for a new one, unless the token WalkMe just ``refused`` (a 401) was
        already replaced by another thread: that newer one is reused.
        """
        with self._lock:
            token = self._token
            fresh = token is not None and time.monotonic() < self._expires_at
            if (
                token is not None
                and fresh
                and (not force_refresh or (refused is not None and token != refused))
            ):
                return token
            token, lifetime = fetch()
            margin = min(TOKEN_REFRESH_MARGIN, lifetime / 10)
            self._token = token
            self._expires_at = time.monotonic() + max(0.0, lifetime - margin)
            return token
