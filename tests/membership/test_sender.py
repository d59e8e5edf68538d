"""The chunk sender's concurrency window (AIMD), its validation and what it calls a failed write's
outcome, as pure logic; the sending itself is tested against the sandbox in
tests/reliability/test_parallel_writes.py."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_segments.exceptions import (
    PartialUpdateError,
    SegmentsApiError,
    SegmentsConnectionError,
    SegmentsTimeoutError,
    SegmentsUnknownOutcomeError,
    SegmentsValidationError,
)
from airflow_provider_segments.membership.sender import (
    Window,
    _ranges,
    check_parallel_requests,
    outcome_unknown,
    send_chunks,
)


def test_each_congestion_signal_halves_the_window_down_to_one():
    window = Window(cap=16)
    assert window.limit == 16
    assert window.congested(1) and window.limit == 8
    assert not window.congested(1)  # the same signal is not counted twice
    assert window.congested(3) and window.limit == 2  # two new signals: two halvings
    assert window.congested(10) and window.limit == 1


def test_the_window_grows_by_one_per_round_of_successes_sent_since_the_last_halving():
    window = Window(cap=4)
    window.congested(2)  # 4 -> 1
    old_epoch = window.epoch - 1
    window.succeeded(old_epoch)  # a write sent before the halving does not count
    assert window.limit == 1
    window.succeeded(window.epoch)  # a round of 1
    assert window.limit == 2
    window.succeeded(window.epoch)
    assert window.limit == 2
    window.succeeded(window.epoch)  # a round of 2
    assert window.limit == 3
    for _ in range(10):
        window.succeeded(window.epoch)
    assert window.limit == 4  # never above the cap


@pytest.mark.parametrize("value", [1, 4, 16])
def test_max_parallel_requests_accepts_1_to_16(value):
    assert check_parallel_requests(value) == value


@pytest.mark.parametrize("value", [0, 17, None, 1.0, "2", False])
def test_max_parallel_requests_refuses_anything_else_by_name(value):
    with pytest.raises(SegmentsValidationError, match="max_parallel_requests"):
        check_parallel_requests(value)


def test_chunk_numbers_are_shown_as_ranges():
    assert _ranges([1, 2, 3, 5, 7, 8]) == "chunks 1-3, 5, 7-8"
    assert _ranges([4]) == "chunk 4"
    assert _ranges([]) == "no chunks"


def api_error(kind: type[SegmentsApiError] = SegmentsApiError, **kwargs: Any) -> SegmentsApiError:
    return kind("x", platform="WalkMe", method="PUT", endpoint="/segment", **kwargs)


@pytest.mark.parametrize(
    ("error", "unknown"),
    [
        (api_error(SegmentsUnknownOutcomeError), True),
        (api_error(SegmentsConnectionError), True),  # no answer: sent or not, it cannot tell
        (api_error(SegmentsTimeoutError), True),
        (api_error(status=500), True),  # a 500/502/504 may follow a server-side write
        (api_error(status=504), True),
        (api_error(status=400), False),  # refused
        (api_error(status=429), False),
        (api_error(status=503), False),
        (api_error(status=503, may_have_applied=True), True),  # an earlier attempt's answer was lost
        (api_error(SegmentsConnectionError, may_have_applied=False), False),  # never sent (refused)
        (SegmentsValidationError("too many ids"), False),  # refused before it was sent
    ],
)
def test_a_failed_write_is_of_unknown_outcome_unless_an_answer_or_a_check_refused_it(error, unknown):
    assert outcome_unknown(error) is unknown


class OverrideApi:
    """Answers each ``put_users`` with the next of ``answers`` (None: success, else raised)."""

    max_ids_per_request = 2
    max_parallel_requests = 1
    late_write_grace = 0.0
    log = logging.getLogger("test")

    def __init__(self, *answers: Exception | None) -> None:
        self.answers = list(answers)

    def put_users(self, system, guid, action, user_ids, *, idempotent=True):
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer

    def sleep(self, seconds: float) -> None:
        pass


def test_an_override_refused_after_a_copy_of_unknown_outcome_is_itself_of_unknown_outcome():
    api = OverrideApi(api_error(SegmentsUnknownOutcomeError), api_error(status=400))
    steps = [("override", ["a", "b"]), ("add", ["c"])]
    with pytest.raises(PartialUpdateError) as caught:
        send_chunks(api, "s", "g", steps, total_chunks=2, total_ids=3)
    err = caught.value
    assert (err.landed_chunks, err.unsent_chunks) == ([], [2])
    assert err.failed_chunks == err.unknown_chunks == [1]
    assert "2 ids of unknown outcome (may have landed), 1 ids were not sent" in str(err)
