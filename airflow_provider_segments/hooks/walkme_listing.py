"""WalkMe's answer to ``GET .../segment``, read only when it is the whole list.

The provider does not page WalkMe listings (the Segments document describes no paging), so a
listing is trusted only when it says nothing of more pages: a name lookup on part of the list would
miss a segment and create a duplicate, and a guard or read-back would check the wrong numbers.
Signs are looked for in the body (flags, next links and cursors, totals, page counts, "last page"
flags, also in paging objects) and in the headers (``Link: <...>; rel="next"``, ``X-Total-Count``...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_segments.exceptions import SegmentsError
from airflow_provider_segments.vocabulary import normalize_segment

#: Keys an object answer may wrap the list of segments in (the first list found is it).
LIST_KEYS = ("segments", "data", "items", "results")
#: A flag saying more pages follow when it is set.
MORE_FLAGS = ("hasMore", "has_more", "hasNextPage", "has_next_page", "hasNext", "has_next", "more")
#: A flag saying this is the last page, or that the listing is done: anything given but plainly true
#: (``true``, ``1``, ``"true"``, ``"yes"``) means more follow (``lastPage``/``last_page`` may also
#: be the number of the last page instead: see :data:`PAGE_COUNT_KEYS`).
LAST_FLAGS = ("last", "isLast", "is_last", "isLastPage", "is_last_page", "lastPage", "last_page", "done")
#: A link, page number or cursor of a next page when it is not empty.
NEXT_KEYS = (
    "next", "nextPage", "next_page", "nextCursor", "next_cursor", "cursor", "nextLink", "next_link",
    "nextUrl", "next_url", "nextPageToken", "next_page_token", "nextToken", "next_token",
    "continuationToken", "continuation_token", "@odata.nextLink", "next_page_url", "nextPageUrl",
    "next_offset", "nextOffset",
)  # fmt: skip
#: A link, page number or cursor of a previous page when it is not empty: this answer is not the
#: first page, so not the whole list (this provider never asks for a page).
PREV_KEYS = (
    "prev", "previous", "prevPage", "prev_page", "previousPage", "previous_page", "prevCursor",
    "prev_cursor", "prevLink", "prev_link", "prevUrl", "prev_url", "prev_page_url", "prevPageUrl",
    "previousPageToken", "previous_page_token",
)  # fmt: skip
#: A count of all the segments, which must not exceed the ones listed.
TOTAL_KEYS = (
    "total", "totalCount", "total_count", "totalElements", "total_elements", "totalItems", "total_items",
    "totalResults", "total_results",
)  # fmt: skip
#: A count of pages (or the number of the last one): more than one means this answer is part of the
#: list, whichever page it is (this provider never asks for a page).
PAGE_COUNT_KEYS = (
    "totalPages", "total_pages", "pageCount", "page_count", "pages", "numPages", "num_pages",
    "lastPage", "last_page",
)  # fmt: skip
#: Objects that carry paging information (also inside one another, e.g. ``meta.pagination``).
PAGING_KEYS = ("pagination", "paging", "meta", "links", "page", "pageInfo", "page_info", "_links")
#: How deep paging objects are searched for a sign (``meta.pagination.next`` is depth 2).
MAX_PAGING_DEPTH = 2
#: The same signs as HTTP headers (names in lower case), and ``Link`` with a ``rel="next"`` (RFC 8288).
NEXT_HEADERS = ("x-next-page", "x-next-cursor", "x-next", "next-page", "x-next-page-token")
MORE_HEADERS = ("x-has-more", "x-more")
TOTAL_HEADERS = ("x-total-count", "x-total", "total-count", "x-total-items", "x-pagination-total-count")
PAGE_COUNT_HEADERS = ("x-total-pages", "x-page-count", "x-pages", "x-pagination-page-count")
#: ``Content-Range: items 0-24/300`` (RFC 9110): the complete length after the slash.
_CONTENT_RANGE_TOTAL = re.compile(r"/\s*(\d+)\s*$")
_LINK_NEXT = re.compile(
    r""";\s*rel\s*=\s*(?:"[^"]*\b(?:next|prev|previous)\b[^"]*"|(?:next|prev|previous)\b)""", re.IGNORECASE
)


def listed_segments(
    body: Any, preview: Callable[[Any], str], headers: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The segments of a listing answer, normalised, each with a valid GUID.

    ``body`` is a JSON array, or an object wrapping it under one of :data:`LIST_KEYS`; ``preview``
    shows a value, cut short and redacted, for an error message; ``headers`` are the answer's.

    :raises SegmentsError: the answer has another shape, says more pages follow (in its body or its
        headers), or lists a segment without a GUID or with one that is not a GUID (see
        :func:`normalize_segment`).
    """
    items = body
    if isinstance(body, dict):
        items = next((body[key] for key in LIST_KEYS if isinstance(body.get(key), list)), None)
    if isinstance(items, list):
        sign = _sign_in_headers(headers or {}, len(items))
        if sign is None and isinstance(body, dict):
            sign = _sign_of_more(body, len(items), "", 0)
        if sign is not None:
            raise SegmentsError(
                f"WalkMe answered only part of the list of segments (more pages follow: {sign}), and "
                "this provider does not page WalkMe listings; a lookup on part of the list could "
                "miss a segment and create a duplicate, so this answer is not used. Rerun later; if "
                f"WalkMe keeps paging this listing, report this answer to the provider: {preview(body)}"
            )
    if not isinstance(items, list) or not all(isinstance(raw, dict) for raw in items):
        raise SegmentsError(f"WalkMe listed segments in an unexpected shape: {preview(body)}")
    segments = [normalize_segment(raw) for raw in items]
    for raw, segment in zip(items, segments, strict=True):
        if not segment["segment_guid"]:  # it would reach a write's URL as ".../segment/None"
            raise SegmentsError(
                f"WalkMe listed a segment without a GUID, which cannot be told apart from others or "
                f"written to, so this answer is not used. Check that the connection's host is WalkMe's API: "
                f"{preview(raw)}"
            )
    return segments


def _sign_of_more(wrapper: dict[str, Any], count: int, where: str, depth: int) -> str | None:
    """Where ``wrapper`` (or a paging object in it) says more than ``count`` segments exist, as
    ``"pagination.next names a next page"`` (values only in the redacted preview of the answer);
    ``None`` when nothing in it does."""
    for key in MORE_FLAGS:
        if _is_set(wrapper.get(key)):
            return f"{where}{key} is set"
    for keys, page in ((NEXT_KEYS, "a next"), (PREV_KEYS, "a previous")):
        for key in keys:
            value = wrapper.get(key)
            if value and not (isinstance(value, str) and not value.strip()):
                return f"{where}{key} names {page} page"
    for key in LAST_FLAGS:
        flag = wrapper.get(key)
        if flag is None or (key in ("lastPage", "last_page") and _whole_number(flag) is not None):
            continue  # not given, or the number of the last page (counted below)
        last_link = _link(flag)
        if last_link is not None:  # a link to the last page (``links.last``, HAL's ``{"href": ...}``)
            # one page when the last is the first; with no first link given, when it is this one
            # (``self``) and no previous page was named above
            first = _link(wrapper.get("first"))
            if last_link != (first if first is not None else _link(wrapper.get("self"))):
                return f"{where}{key} links to a last page that is not the first page"
            continue
        if not _plainly_true(flag):
            return f"{where}{key} is not true"
    links = wrapper.get("links")
    if isinstance(links, list) and any(
        isinstance(link, dict)
        and {"next", "prev", "previous"} & set(str(link.get("rel", "")).lower().split())
        for link in links
    ):
        return f"{where}links lists a rel next or prev"
    for key in TOTAL_KEYS:
        total = _whole_number(wrapper.get(key))
        if total is not None and total > count:
            return f"{where}{key} counts {total}, {count} listed"
    for key in PAGE_COUNT_KEYS:
        pages = _whole_number(wrapper.get(key))
        if pages is not None and pages > 1:
            return f"{where}{key} counts {pages} pages"
    if depth < MAX_PAGING_DEPTH:
        for key in PAGING_KEYS:
            inner = wrapper.get(key)
            if isinstance(inner, dict) and (sign := _sign_of_more(inner, count, f"{where}{key}.", depth + 1)):
                return sign
    return None


def _sign_in_headers(headers: Mapping[str, str], count: int) -> str | None:
    """Where the answer's headers say more than ``count`` segments exist; ``None`` when none does."""
    lowered = {str(name).lower(): str(value) for name, value in headers.items()}
    if _LINK_NEXT.search(lowered.get("link", "")):
        return 'the Link header names a rel="next" or "prev" page'
    for name in NEXT_HEADERS:
        if lowered.get(name, "").strip():
            return f"the {name} header names a next page"
    for name in MORE_HEADERS:
        if name in lowered and _is_set(lowered[name]):
            return f"the {name} header is set"
    ranged = _CONTENT_RANGE_TOTAL.search(lowered.get("content-range", ""))
    if ranged and int(ranged.group(1)) > count:
        return f"the Content-Range header counts {ranged.group(1)} segments"
    for names, limit, what in ((TOTAL_HEADERS, count, "segments"), (PAGE_COUNT_HEADERS, 1, "pages")):
        for name in names:
            total = _whole_number(lowered.get(name))
            if total is not None and total > limit:
                return f"the {name} header counts {total} {what}"
    return None


def _is_set(flag: Any) -> bool:
    """A "more follow" flag reads as unset only when it plainly says no: absent, false, 0 or "false"
    (anything else, even ``"yes"``, may mean more pages, and part of a list is never trusted)."""
    if isinstance(flag, str):
        return flag.strip().lower() not in ("", "false", "0")
    return flag is not None and flag is not False and flag != 0


def _link(value: Any) -> str | None:
    """``value`` as a link when it is one: a string naming a path or a query, or an object with an
    ``href`` (HAL); ``None`` for anything else (``True``, ``"no"``, a number)."""
    if isinstance(value, dict):
        value = value.get("href")
    if isinstance(value, str) and ("/" in value or "?" in value):
        return value.strip()
    return None


def _plainly_true(flag: Any) -> bool:
    """A "last page" or "done" flag that plainly says yes; anything else may mean more follow."""
    if isinstance(flag, str):
        return flag.strip().lower() in ("true", "1", "yes")
    return flag is True or (type(flag) is int and flag == 1)


def _whole_number(value: Any) -> int | None:
    """``value`` as an int when it is one (or a string of digits); else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        return int(value.strip())
    return None
