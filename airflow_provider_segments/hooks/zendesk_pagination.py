"""Zendesk's list pagination: cursor pages (``meta.has_more`` / ``links.next``) or offset pages
(``next_page``), walked with guards against a server that never ends, loops, or points elsewhere."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_segments.exceptions import SegmentsError, SegmentsValidationError
from airflow_provider_segments.http import same_origin
from airflow_provider_segments.text import preview
from airflow_provider_segments.vocabulary import validate_user_segment_id

#: Cursor pagination page size (Zendesk's maximum).
PAGE_SIZE = 100
#: A list that has not ended after this many pages is a server bug, not data: stop with an error.
MAX_PAGES = 10_000
#: Pages in a row that hold no item yet say more follow: a list making no progress, not data.
MAX_EMPTY_PAGES = 3


def paginated_items(
    call: Callable[..., Any],
    base_url: str,
    show: Callable[[Any], str],
    path: str,
    key: str,
    params: dict[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the items under ``key`` of every page of ``GET path``, each once.

    ``call(method, url, params=...)`` sends one authenticated request; ``show`` previews a value
    for an error message. Next-page links must stay on ``base_url``'s origin (credentials go only
    there). Every item must be an object with a positive 64-bit integer ``id``: ids listed here go
    into later requests' URLs.

    Offset pages (``next_page``) shift when the list changes while they are read, hiding an item
    even where the count stays the same (one deleted, one created): a walk of more than one offset
    page is read once more, and must list the same items in the same order (see :class:`OffsetCount`).
    """
    walk = _Walk()
    listed: list[int] = []
    for item in _walked(call, base_url, show, path, key, params, walk):
        listed.append(item["id"])
        yield item
    if walk.offset_pages:
        again = [item["id"] for item in _walked(call, base_url, show, path, key, params, _Walk())]
        if again != listed:
            OffsetCount(path).changed("a second reading listed other segments than the first")


class _Walk:
    """What one walk saw of the pages: how many were offset pages."""

    offset_pages = 0


def _walked(
    call: Callable[..., Any],
    base_url: str,
    show: Callable[[Any], str],
    path: str,
    key: str,
    params: dict[str, Any] | None,
    walk: _Walk,
) -> Iterator[dict[str, Any]]:
    url: str = path
    query: dict[str, Any] | None = {**(params or {}), "page[size]": PAGE_SIZE}
    seen: set[str] = set()
    seen_ids: set[int] = set()
    empty_pages = 0
    counted = OffsetCount(path)
    for _page in range(MAX_PAGES):
        body = call("GET", url, params=query)
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            raise SegmentsError(f"Zendesk answered {path} without a {key!r} list: {show(body)}")
        counted.note(body)
        fresh = 0
        for item in body[key]:
            item_id = _listed_id(item, path, show)
            if item_id in seen_ids:
                continue  # an item shifted onto the next page (offset pagination): once is enough
            seen_ids.add(item_id)
            fresh += 1
            yield item
        if body[key] and not fresh:
            raise SegmentsError(
                f"Zendesk's pagination of {path} sent a page of items it had already sent; stopping "
                "instead of looping."
            )
        empty_pages = 0 if body[key] else empty_pages + 1
        meta, links = body.get("meta") or {}, body.get("links") or {}
        if not isinstance(meta, dict) or not isinstance(links, dict):
            raise SegmentsError(
                f"Zendesk answered {path} with 'meta' or 'links' that is not an object: "
                f"{show({'meta': meta, 'links': links})}"
            )
        if meta.get("has_more") and links.get("next"):
            next_url = links["next"]
        elif body.get("next_page"):
            next_url = body["next_page"]
            walk.offset_pages += 1
        elif meta.get("has_more"):
            raise SegmentsError(
                f"Zendesk's answer to GET {path} says more pages follow (meta.has_more is true) but "
                "gives no next link (links.next); stopping instead of returning part of the list, "
                "which could make a name lookup miss a segment and create a duplicate."
            )
        else:
            counted.check_whole(len(seen_ids))
            return
        if not isinstance(next_url, str):
            raise SegmentsError(f"Zendesk's next-page link for {path} is not a URL: {show(next_url)}")
        if not same_origin(base_url, next_url):
            raise SegmentsError(
                f"Zendesk's next-page link for {path} points at another origin "
                f"({preview(urlsplit(next_url).hostname)}); refusing to send credentials there."
            )
        if empty_pages >= MAX_EMPTY_PAGES:
            raise SegmentsError(
                f"Zendesk's pagination of {path} sent {empty_pages} pages in a row with no items that "
                "each said more follow; stopping instead of following it without end."
            )
        if next_url in seen:
            raise SegmentsError(f"Zendesk's pagination of {path} loops back to a page it already sent.")
        seen.add(next_url)
        url, query = next_url, None
    raise SegmentsError(f"Zendesk's pagination of {path} did not end after {MAX_PAGES} pages.")


class OffsetCount:
    """The ``count`` offset pages give (all the items of the list): the same on every page, and
    every one of them listed, or the list changed while it was read. Offset pages shift then
    (another client deleted an item of an earlier page: an item of the next page moves onto the
    one already read), and a lookup by name on such a walk could miss a segment and create a
    duplicate. Cursor pages give no count and do not shift."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.count: int | None = None

    def note(self, body: dict[str, Any]) -> None:
        count = body.get("count")
        if not isinstance(count, int) or isinstance(count, bool):
            return
        if self.count is not None and count != self.count:
            self.changed(f"it counted {self.count:,} items on an earlier page, {count:,} on a later one")
        self.count = count

    def check_whole(self, listed: int) -> None:
        if self.count is not None and listed < self.count:
            self.changed(f"it counts {self.count:,} items, and {listed:,} were listed")

    def changed(self, how: str) -> None:
        """Refuse the walk: the list changed while it was read (``how`` says how that shows)."""
        raise SegmentsError(
            f"Zendesk's list of {self.path} changed while it was read page by page ({how}): a lookup "
            "on it could miss a segment, so it is not used. Rerun the task (its retries apply)."
        )


def _listed_id(item: Any, path: str, show: Callable[[Any], str]) -> int:
    """The item's id, which must be a positive 64-bit integer (a bool, a string or a path is not)."""
    item_id = item.get("id") if isinstance(item, dict) else None
    if not isinstance(item_id, int) or isinstance(item_id, bool):
        what = "is not an object" if not isinstance(item, dict) else "has no integer id"
        raise SegmentsError(f"Zendesk listed an item of {path} that {what}: {show(item)}")
    try:
        return validate_user_segment_id(item_id, "id")
    except SegmentsValidationError as err:
        raise SegmentsError(f"Zendesk listed an item of {path} with an unusable id: {err}") from None
