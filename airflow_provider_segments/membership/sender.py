"""The chunk sender: a plan's writes, at most the platform's limit each, in an order that holds even
when an answer is lost, with progress logs and, on failure, what was applied."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from airflow_provider_segments.exceptions import (
    PartialUpdateError,
    SegmentsError,
    SegmentsUnknownOutcomeError,
)

#: Times an ``override`` whose outcome stayed unknown is sent before the change fails.
OVERRIDE_ATTEMPTS = 3


class MembershipApi(Protocol):
    """The plain segment calls a membership change needs (what :class:`~..hooks.walkme.WalkMeHook`
    offers)."""

    max_ids_per_request: int

    @property
    def late_write_grace(self) -> float:
        """Seconds after which a write whose answer was lost can no longer land (see the hook)."""

    @property
    def log(self) -> Any: ...

    def get_segment(self, segment_guid: str, system_guid: str | None = None) -> dict[str, Any] | None: ...

    def find_segments_by_name(self, name: str, system_guid: str | None = None) -> list[dict[str, Any]]: ...

    def post_segment(
        self, system: str, name: str, user_ids: list[str], external_id: str | None
    ) -> dict[str, Any]: ...

    def put_users(
        self, system: str, segment_guid: str, action: str, user_ids: list[str], *, idempotent: bool = True
    ) -> None: ...

    def sleep(self, seconds: float) -> None: ...


def send_chunks(
    api: MembershipApi,
    system: str,
    guid: str,
    steps: Iterable[tuple[str, list[str]]],
    *,
    total_chunks: int,
    total_ids: int,
    applied_chunks: int = 0,
    applied_ids: int = 0,
    what: str = "",
) -> None:
    """Send each ``(action, chunk)``, logging progress; a failure says how much was applied."""
    for action, chunk in steps:
        try:
            if action == "override":
                send_override(api, system, guid, chunk)
            else:
                # add/remove commute with each other and with a late copy of themselves within one
                # change (a delta's adds and removes are disjoint): the client may retry them blindly.
                api.put_users(system, guid, action, chunk)
        except SegmentsError as err:
            done = f"{what}; then " if what else ""
            raise PartialUpdateError(
                f"WalkMe segment {guid}: {done}chunk {applied_chunks + 1}/{total_chunks} ({action}) "
                f"failed after {applied_chunks} of {total_chunks} chunks were applied "
                f"({applied_ids:,} of {total_ids:,} ids); {total_ids - applied_ids:,} ids were not "
                f"sent. Rerunning the task converges to the requested membership. Cause: {err}",
                applied_chunks=applied_chunks,
                total_chunks=total_chunks,
                applied_ids=applied_ids,
                total_ids=total_ids,
            ) from err
        applied_chunks += 1
        applied_ids += len(chunk)
        api.log.info(
            "chunk %d/%d (%s): %s/%s ids",
            applied_chunks,
            total_chunks,
            action,
            f"{applied_ids:,}",
            f"{total_ids:,}",
        )


def send_override(api: MembershipApi, system: str, guid: str, chunk: list[str]) -> None:
    """Send an ``override`` so that no copy of it can land after the writes that follow it.

    An override is the one order-sensitive write: a copy that lands after the ``add`` chunks wipes
    them. So it is never retried blindly: when its outcome is unknown, the earlier copy is given
    :attr:`MembershipApi.late_write_grace` seconds to land or die before the override is sent again.
    """
    for attempt in range(1, OVERRIDE_ATTEMPTS + 1):
        try:
            api.put_users(system, guid, "override", chunk, idempotent=False)
            return
        except SegmentsUnknownOutcomeError as err:
            if attempt == OVERRIDE_ATTEMPTS:
                raise
            api.log.warning(
                "%s. A copy of this override may still land; waiting %.1f s so that it cannot land after "
                "the next writes, then sending it again (attempt %d of %d).",
                err,
                api.late_write_grace,
                attempt + 1,
                OVERRIDE_ATTEMPTS,
            )
            api.sleep(api.late_write_grace)
