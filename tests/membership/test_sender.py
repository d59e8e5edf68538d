"""The chunk sender's concurrency window (AIMD) and its validation, as pure logic; the sending itself
is tested against the sandbox in tests/reliability/test_parallel_writes.py."""

from __future__ import annotations

import pytest

from airflow_provider_segments.exceptions import SegmentsValidationError
from airflow_provider_segments.membership.sender import Window, _ranges, check_parallel_requests


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
