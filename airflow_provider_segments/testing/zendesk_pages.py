"""Pagination of the fake Zendesk Help Center API's lists.

Pagination, as Zendesk's pagination document describes it:

- cursor (the default): ``page[size]`` (1-100, default 100) and ``page[after]`` / ``page[before]``;
  the answer has ``"meta": {"has_more", "after_cursor", "before_cursor"}`` and
  ``"links": {"next", "prev"}``, absolute URLs built from the request's ``Host`` header that keep
  the other query parameters (such as ``built_in``). ``links.next`` is ``null`` and ``has_more`` is
  false on the last page; the cursors are those of the page's last and first items (``null`` on an
  empty page).
- offset: when :attr:`ZendeskApp.pagination` is ``"offset"`` or the request sends ``page`` or
  ``per_page`` (1-100, default 100): ``"next_page"`` and ``"previous_page"`` (absolute URLs or
  ``null``) and ``"count"`` (all matching items).
- ``"endless"``, a fault for testing a client's loop guard: every list answers its first page with a
  next link (``has_more`` true, or a ``next_page``) forever.

An out-of-range page size or a bad cursor gets 400 ``{"error": "InvalidPaginationParameter",
"description": ...}``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import urlencode

from airflow_provider_segments.testing.base import HttpError, Request, Response, json_response, show
from airflow_provider_segments.testing.zendesk_payloads import int_or_none

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "PAGINATION_STYLES",
    "base_url",
    "list_page",
    "pagination_error",
    "valid_style",
]


MAX_PAGE_SIZE = 100
"""Largest ``page[size]`` / ``per_page`` accepted; larger ones get 400."""


DEFAULT_PAGE_SIZE = 100
"""Page size when the request does not give one."""


PAGINATION_STYLES = ("cursor", "offset", "endless")
"""Values of :attr:`ZendeskApp.pagination`; ``"endless"`` is a fault for loop-guard tests."""


def _page_size(request: Request, name: str) -> int:
    value = request.param(name)
    if value is None:
        return DEFAULT_PAGE_SIZE
    size = int_or_none(value)
    if size is None or size < 1:
        raise pagination_error(f"{name} must be a positive integer, got {show(value)}")
    if size > MAX_PAGE_SIZE:
        raise pagination_error(f"{name} is greater than the maximum of {MAX_PAGE_SIZE}")
    return size


def _page_number(request: Request) -> int:
    value = request.param("page")
    if value is None:
        return 1
    number = int_or_none(value)
    if number is None or number < 1:
        raise pagination_error(f"page must be a positive integer, got {show(value)}")
    return number


def pagination_error(description: str) -> HttpError:
    return HttpError(400, {"error": "InvalidPaginationParameter", "description": description})


def _encode_cursor(item_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{item_id}".encode()).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str, name: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    prefix, _, number = text.partition(":")
    if prefix != "id" or int_or_none(number) is None:
        raise pagination_error(f"{name} is not a cursor this API issued: {show(cursor)}")
    return int(number)


def base_url(request: Request) -> str:
    """``http://<Host header>``: the test server as the client reached it."""
    return f"http://{request.header('host') or 'localhost'}"


def _page_url(request: Request, page_params: dict[str, Any]) -> str:
    """An absolute URL to this path with the request's other query parameters and ``page_params``."""
    params = [
        (name, value)
        for name, values in request.query.items()
        if name not in ("page", "per_page") and not name.startswith("page[")
        for value in values
    ]
    params.extend((name, str(value)) for name, value in page_params.items())
    return f"{base_url(request)}{request.path}?{urlencode(params)}"


def valid_style(style: Any) -> str:
    if style not in PAGINATION_STYLES:
        raise ValueError(f"pagination must be one of {', '.join(PAGINATION_STYLES)}, got {style!r}")
    return str(style)


def list_page(request: Request, key: str, items: list[dict[str, Any]], style: str) -> Response:
    """Answer one page of ``items`` (sorted by ascending id): in ``style`` (the app's setting), or
    offset pagination when the request asks for it."""
    offset_asked = "page" in request.query or "per_page" in request.query

    request.log["pagination"] = style if style != "cursor" or not offset_asked else "offset"
    if style == "endless":
        return _endless_page(request, key, items, offset_asked)
    if style == "offset" or offset_asked:
        return _offset_page(request, key, items)
    return _cursor_page(request, key, items)


def _cursor_page(request: Request, key: str, items: list[dict[str, Any]]) -> Response:
    size = _page_size(request, "page[size]")
    after = request.param("page[after]")
    before = request.param("page[before]")
    if after is not None and before is not None:
        raise pagination_error("page[after] and page[before] cannot be used together")
    if before is not None:
        limit = _decode_cursor(before, "page[before]")
        candidates = [item for item in items if item["id"] < limit]
        page = candidates[-size:]
    else:
        after_id = _decode_cursor(after, "page[after]") if after is not None else None
        candidates = [item for item in items if after_id is None or item["id"] > after_id]
        page = candidates[:size]
    more_after = bool(page) and items[-1]["id"] > page[-1]["id"]
    more_before = bool(page) and items[0]["id"] < page[0]["id"]
    after_cursor = _encode_cursor(page[-1]["id"]) if page else None
    before_cursor = _encode_cursor(page[0]["id"]) if page else None
    payload = {
        key: page,
        "meta": {
            "has_more": more_before if before is not None else more_after,
            "after_cursor": after_cursor,
            "before_cursor": before_cursor,
        },
        "links": {
            "next": _page_url(request, {"page[size]": size, "page[after]": after_cursor})
            if more_after
            else None,
            "prev": _page_url(request, {"page[size]": size, "page[before]": before_cursor})
            if more_before
            else None,
        },
    }
    return json_response(200, payload)


def _offset_page(request: Request, key: str, items: list[dict[str, Any]]) -> Response:
    per_page = _page_size(request, "per_page")
    number = _page_number(request)
    start = (number - 1) * per_page
    payload = {
        key: items[start : start + per_page],
        "next_page": _page_url(request, {"page": number + 1, "per_page": per_page})
        if start + per_page < len(items)
        else None,
        "previous_page": _page_url(request, {"page": number - 1, "per_page": per_page})
        if number > 1
        else None,
        "count": len(items),
    }
    return json_response(200, payload)


def _endless_page(request: Request, key: str, items: list[dict[str, Any]], offset_asked: bool) -> Response:
    if offset_asked:
        per_page = _page_size(request, "per_page")
        number = _page_number(request)
        payload: dict[str, Any] = {
            key: items[:per_page],
            "next_page": _page_url(request, {"page": number + 1, "per_page": per_page}),
            "previous_page": None,
            "count": len(items),
        }
        return json_response(200, payload)
    size = _page_size(request, "page[size]")
    page = items[:size]
    cursor = _encode_cursor(page[-1]["id"] if page else 0)
    payload = {
        key: page,
        "meta": {
            "has_more": True,
            "after_cursor": cursor,
            "before_cursor": _encode_cursor(page[0]["id"]) if page else None,
        },
        "links": {"next": _page_url(request, {"page[size]": size, "page[after]": cursor}), "prev": None},
    }
    return json_response(200, payload)
