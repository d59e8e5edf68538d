"""The chunk sender: a plan's writes, at most the platform's limit each, in an order that holds even
when an answer is lost, with progress logs and, on failure, what was applied.

**What is sent in parallel.** An ``override`` is a barrier: it is sent alone, after every earlier
write was answered, and nothing follows it before it was answered (a copy landing after the adds
would wipe them). ``add`` and ``remove`` chunks commute (a delta's adds and removes are disjoint ids,
and an add or remove landing twice or late changes nothing), so up to
:attr:`MembershipApi.max_parallel_requests` of them are in flight at once (:class:`Window`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_segments.exceptions import (
    MembershipMismatchError,
    PartialUpdateError,
    SegmentsApiError,
    SegmentsError,
    SegmentsUnknownOutcomeError,
    SegmentsValidationError,
)

#: Times an ``override`` whose outcome stayed unknown is sent before the change fails.
OVERRIDE_ATTEMPTS = 3
#: Chunk writes in flight at once by default, and the most a task may ask for (see
#: ``docs/performance.md`` for the measurements behind the default).
DEFAULT_PARALLEL_REQUESTS = 4
MAX_PARALLEL_REQUESTS = 16

#: What a failed change's message says of its rerun: WalkMe lists counts, not members, so after an
#: override that landed the rerun's removal guard cannot tell the failed run's removals from others'.
_GUARD_ON_RERUN = (
    " (the override landed: the rerun's removal guard may refuse until max_removal_fraction is "
    "raised once; its message says so)"
)


def check_parallel_requests(value: Any) -> int:
    """Return ``value`` if it is a whole number from 1 to :data:`MAX_PARALLEL_REQUESTS`; refuse
    anything else by name."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PARALLEL_REQUESTS:
        raise SegmentsValidationError(
            f"max_parallel_requests {value!r} is not valid: use a whole number from 1 (one write at a "
            f"time) to {MAX_PARALLEL_REQUESTS}."
        )
    return value


class MembershipApi(Protocol):
    """The plain segment calls a membership change needs (what :class:`~..hooks.walkme.WalkMeHook`
    offers). ``put_users`` must be safe to call from several threads at once."""

    max_ids_per_request: int
    #: Chunk writes (``add``/``remove``) in flight at once; 1 sends one at a time.
    max_parallel_requests: int

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

    def delete_segment(
        self, segment_guid: str, system_guid: str | None = None, missing_ok: bool = True
    ) -> str:
        """Delete a segment (a create that must not stay: see :func:`~.names_written.check_created_name`)."""
        ...

    def congestion_signals(self) -> int:
        """How many answers so far said "slow down" (429, 5xx) or were retried, from any thread."""
        ...

    def sleep(self, seconds: float) -> None: ...


@dataclass
class Window:
    """How many writes may be in flight: AIMD, as TCP does it.

    Each congestion signal (a 429 or 5xx answer, a retry) halves the limit, down to 1; once as many
    writes as the limit allows succeeded, all sent since the last halving, it grows by one, up to
    ``cap``. Only the sending thread uses it.
    """

    cap: int
    limit: int = 0
    epoch: int = 0
    successes: int = 0
    seen_signals: int = 0

    def __post_init__(self) -> None:
        self.limit = self.limit or self.cap

    def congested(self, signals: int) -> bool:
        """Take the API's signal count; halve once per new signal. True when it halved."""
        new, self.seen_signals = signals - self.seen_signals, signals
        if new <= 0:
            return False
        for _ in range(new):
            self.limit = max(1, self.limit // 2)
        self.epoch += 1
        self.successes = 0
        return True

    def succeeded(self, epoch: int) -> None:
        """A write sent in ``epoch`` succeeded (writes sent before the last halving do not count)."""
        if epoch != self.epoch:
            return
        self.successes += 1
        if self.successes >= self.limit and self.limit < self.cap:
            self.limit += 1
            self.successes = 0


def outcome_unknown(error: SegmentsError) -> bool:
    """True when a write that failed with ``error`` may have been applied all the same.

    Only an answer that refused it (3xx, 4xx, 429, 503) or a refusal before it was sent (a
    validation error) says it was not; no answer (a lost one, a timeout, a broken connection), a
    500/502/504, or such an attempt before the one refused leaves its outcome unknown. The HTTP
    client says which (``may_have_applied``); an error raised without its say counts as unknown
    unless its status refused the write.
    """
    if isinstance(error, SegmentsUnknownOutcomeError):
        return True
    if not isinstance(error, SegmentsApiError):
        return False
    if error.may_have_applied is not None:
        return error.may_have_applied
    return error.status is None or error.status < 300 or error.status in (500, 502, 504)


@dataclass
class _Progress:
    """Which chunks (numbered from 1 over the whole change) landed, failed (refused, or of unknown
    outcome: see :func:`outcome_unknown`), or were never sent."""

    total_chunks: int
    total_ids: int
    applied_ids: int
    landed: list[int] = field(default_factory=list)
    failed: list[tuple[int, str, int, SegmentsError]] = field(default_factory=list)
    override_landed: bool = False  # (then the rerun's removal guard may refuse: the message says so)

    def error(self, what: str, guid: str, sent_up_to: int) -> PartialUpdateError:
        number, action, _, cause = min(self.failed, key=lambda failure: failure[0])  # the first
        landed = sorted(self.landed)
        failed = sorted(n for n, *_ in self.failed)
        unknown = sorted(n for n, _, _, err in self.failed if outcome_unknown(err))
        unknown_ids = sum(size for _, _, size, err in self.failed if outcome_unknown(err))
        refused = sorted(set(failed) - set(unknown))
        refused_ids = sum(size for *_, size, _ in self.failed) - unknown_ids
        unsent = list(range(sent_up_to + 1, self.total_chunks + 1))
        unsent_ids = self.total_ids - self.applied_ids - unknown_ids - refused_ids
        done = f"{what}; then " if what else ""
        parts = [f"landed: {_ranges(landed)}"]
        counts = []  # of the ids not acknowledged: which may have landed, which cannot have
        if unknown:
            parts.append(f"outcome unknown: {_ranges(unknown)}")
            counts.append(f"{unknown_ids:,} ids of unknown outcome (may have landed)")
        if refused:
            parts.append(f"refused: {_ranges(refused)}")
            counts.append(f"{refused_ids:,} ids refused (not applied)")
        if unsent:
            parts.append(f"not sent: {_ranges(unsent)}")
        counts.append(f"{unsent_ids:,} ids were not sent")
        message = (
            f"WalkMe segment {guid}: {done}chunk {number}/{self.total_chunks} ({action}) failed after "
            f"{len(landed)} of {self.total_chunks} chunks were applied ({self.applied_ids:,} of "
            f"{self.total_ids:,} ids); {', '.join(counts)} ({'; '.join(parts)}). Rerunning the task "
            f"converges to the requested membership{_GUARD_ON_RERUN if self.override_landed else ''}. "
            f"Cause: {cause}"
        )
        return PartialUpdateError(
            message,
            applied_chunks=len(landed),
            total_chunks=self.total_chunks,
            applied_ids=self.applied_ids,
            total_ids=self.total_ids,
            landed_chunks=landed,
            failed_chunks=failed,
            unsent_chunks=unsent,
            unknown_chunks=unknown,
        )


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
    after_override: bool = False,
) -> None:
    """Send each ``(action, chunk)``, logging progress; an ``override`` alone, ``add``/``remove``
    chunks up to ``api.max_parallel_requests`` at once. A failure stops the sending of new chunks,
    waits for those in flight, and raises :class:`PartialUpdateError` naming the chunks that landed,
    failed (refused, or of unknown outcome) and were not sent.

    Chunks are numbered from ``applied_chunks + 1`` (earlier ones, e.g. a create's, count as landed).
    """
    progress = _Progress(total_chunks, total_ids, applied_ids, landed=list(range(1, applied_chunks + 1)))
    progress.override_landed = after_override
    parallel = check_parallel_requests(getattr(api, "max_parallel_requests", 1))
    numbered = enumerate(steps, start=applied_chunks + 1)
    if parallel == 1:
        sent = _send_in_order(api, system, guid, numbered, progress)
    else:
        sent = _send_in_parallel(api, system, guid, numbered, progress, Window(parallel))
    if progress.failed:
        first_failure = min(progress.failed, key=lambda failure: failure[0])
        raise progress.error(what, guid, sent) from first_failure[3]


def _send_one(api: MembershipApi, system: str, guid: str, action: str, chunk: list[str]) -> None:
    if action == "override":
        send_override(api, system, guid, chunk)
    else:
        # add/remove commute with each other and with a late copy of themselves within one change
        # (a delta's adds and removes are disjoint): the client may retry them blindly.
        api.put_users(system, guid, action, chunk)


def _landed(api: MembershipApi, progress: _Progress, number: int, action: str, size: int) -> None:
    progress.landed.append(number)
    progress.override_landed = progress.override_landed or action == "override"
    progress.applied_ids += size
    api.log.info(
        "chunk %d/%d (%s): %s/%s ids",
        len(progress.landed),
        progress.total_chunks,
        action,
        f"{progress.applied_ids:,}",
        f"{progress.total_ids:,}",
    )


def _send_in_order(
    api: MembershipApi,
    system: str,
    guid: str,
    numbered: Iterator[tuple[int, tuple[str, list[str]]]],
    progress: _Progress,
) -> int:
    """One write at a time; the number of the last chunk sent."""
    number = len(progress.landed)
    for number, (action, chunk) in numbered:
        try:
            _send_one(api, system, guid, action, chunk)
        except SegmentsError as err:
            progress.failed.append((number, action, len(chunk), err))
            return number
        _landed(api, progress, number, action, len(chunk))
    return number


def _send_in_parallel(
    api: MembershipApi,
    system: str,
    guid: str,
    numbered: Iterator[tuple[int, tuple[str, list[str]]]],
    progress: _Progress,
    window: Window,
) -> int:
    """Up to ``window.limit`` add/remove writes in flight; an override alone. The number of the last
    chunk sent. Chunks are taken from ``numbered`` only when they can be sent, so at most the
    chunks in flight are held in memory."""
    in_flight: dict[Future[None], tuple[int, str, int, int]] = {}
    number = len(progress.landed)
    signals = getattr(api, "congestion_signals", None)
    if callable(signals):  # only what happens from now on counts (not a retried look-up before)
        window.seen_signals = signals()

    def settle(done: Iterable[Future[None]]) -> None:
        if callable(signals) and window.congested(signals()):
            api.log.warning(
                "WalkMe asked to slow down (429/5xx or a retry): %d chunk write(s) in flight at most now.",
                window.limit,
            )
        for future in done:
            done_number, action, size, epoch = in_flight.pop(future)
            error = future.exception()
            if error is None:
                window.succeeded(epoch)
                _landed(api, progress, done_number, action, size)
            elif isinstance(error, SegmentsError):
                progress.failed.append((done_number, action, size, error))
            else:  # a kill (SystemExit, a timeout) or a bug: not a partial update to report
                raise error

    def drain(alone: bool) -> None:
        """Wait until nothing is in flight (``alone``), else until one more write fits the window
        (which may shrink while waiting)."""
        while len(in_flight) > (0 if alone else window.limit - 1):
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            settle(done)

    pool = ThreadPoolExecutor(max_workers=window.cap, thread_name_prefix="segments-write")
    try:
        for number, (action, chunk) in numbered:
            if action == "override":
                drain(alone=True)
                if progress.failed:
                    return number - 1
                try:
                    _send_one(api, system, guid, action, chunk)
                except SegmentsError as err:
                    progress.failed.append((number, action, len(chunk), err))
                    return number
                _landed(api, progress, number, action, len(chunk))
                continue
            drain(alone=False)
            if progress.failed:
                number -= 1
                break
            future = pool.submit(_send_one, api, system, guid, action, chunk)
            in_flight[future] = (number, action, len(chunk), window.epoch)
            del chunk
        drain(alone=True)
        return number
    except BaseException:
        # Killed (or a bug) while writes are in flight: send nothing more and let the exception go
        # up at once; the writes in flight finish on their own (the journal already covers them).
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=not in_flight)


def stopped_between_phases(
    err: SegmentsError,
    guid: str,
    done: str,
    *,
    applied: tuple[int, int],
    total: tuple[int, int],
    after_override: bool = False,
) -> SegmentsError:
    """The error of a change whose read-back between its two phases failed (see
    :func:`.engine.send_plan`): what the first phase did (``done``, acknowledged; ``applied``: its
    chunks and ids) and the chunks never sent (``total``: the change's chunks and ids). A count the
    platform lists otherwise stays a :class:`MembershipMismatchError` (the whole membership is then
    in doubt); any other failure is a :class:`PartialUpdateError`."""
    (applied_chunks, applied_ids), (total_chunks, total_ids) = applied, total
    first = applied_chunks + 1
    chunks = (
        f"chunk {first} ({total_ids - applied_ids:,} ids) was"
        if first == total_chunks
        else (f"chunks {first}-{total_chunks} ({total_ids - applied_ids:,} ids) were")
    )
    if isinstance(err, MembershipMismatchError):
        return MembershipMismatchError(
            f"{err} The rest of the change was held back: {chunks} not sent.",
            listed_count=err.listed_count,
            expected_count=err.expected_count,
        )
    return PartialUpdateError(
        f"WalkMe segment {guid}: {done} (acknowledged), but reading it back before the rest of the change "
        f"failed, so {chunks} not sent. Rerunning the task converges to the requested membership"
        f"{_GUARD_ON_RERUN if after_override else ''}. Cause: {err}",
        applied_chunks=applied_chunks,
        total_chunks=total_chunks,
        applied_ids=applied_ids,
        total_ids=total_ids,
        landed_chunks=list(range(1, first)),
        unsent_chunks=list(range(first, total_chunks + 1)),
    )


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 5]`` as ``"chunks 1-3, 5"``."""
    if not numbers:
        return "no chunks"
    spans: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        spans.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return f"chunk{'s' if len(numbers) > 1 else ''} {', '.join(spans)}"


def send_override(api: MembershipApi, system: str, guid: str, chunk: list[str]) -> None:
    """Send an ``override`` so that no copy of it can land after the writes that follow it.

    An override is the one order-sensitive write: a copy that lands after the ``add`` chunks wipes
    them. So it is never retried blindly: when its outcome is unknown, the earlier copy is given
    :attr:`MembershipApi.late_write_grace` seconds to land or die before the override is sent again;
    should that one be refused, the earlier copy may still have landed (its outcome stays unknown).
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
        except SegmentsApiError as err:
            if attempt > 1:  # refused now, but an earlier copy, of unknown outcome, may have landed
                err.may_have_applied = True
            raise


@contextlib.contextmanager
def parallel_requests(api: MembershipApi, max_parallel_requests: int | None) -> Iterator[None]:
    """For one change: ``api``'s chunk writes in flight at once (``None``: keep its setting)."""
    previous = api.max_parallel_requests
    if max_parallel_requests is not None:
        api.max_parallel_requests = check_parallel_requests(max_parallel_requests)
    try:
        yield
    finally:
        api.max_parallel_requests = previous
