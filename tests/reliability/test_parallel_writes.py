"""Parallel chunk writes (``max_parallel_requests``): what may overlap does, what must stay ordered
does not, a 429 storm slows the writes down (AIMD), and a failure or a kill in the middle of a batch
still ends, after a rerun, with exactly the requested membership. Against the sandbox over HTTP; every
assertion is on what the sandbox holds or received (its request log counts the requests in flight)."""

from __future__ import annotations

import pytest
from support import sandbox_conn_env

from airflow_provider_segments.exceptions import PartialUpdateError, SegmentsValidationError
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.operators.walkme import (
    WalkMeSyncSegmentOperator,
    WalkMeUpdateSegmentOperator,
)
from airflow_provider_segments.testing import TEST_SYSTEM_GUID, SegmentsTestServer

SEGMENTS = f"/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"
CHUNK = 10
IDS = [f"user{i:04d}@example.com" for i in range(200)]  # 20 chunks of 10


@pytest.fixture
def sandbox(monkeypatch):
    with SegmentsTestServer() as server:
        for name, value in sandbox_conn_env(server.url, timeout=5).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(WalkMeHook, "max_ids_per_request", CHUNK)
        yield server


def sync(state, user_ids, **kwargs):
    kwargs.setdefault("max_removal_fraction", 1.0)  # the guards have tests of their own
    return WalkMeSyncSegmentOperator(
        task_id="sync", name="Audience", state_path=str(state), user_ids=user_ids, **kwargs
    ).execute({})


def members(sandbox) -> set[str]:
    (segment,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    return set(sandbox.walkme.members(TEST_SYSTEM_GUID, segment["guid"]))


def puts(sandbox) -> list[dict]:
    """The segment writes (PUT) the sandbox received, in the order it answered them."""
    return [r for r in sandbox.requests if r["method"] == "PUT" and r["path"].startswith(SEGMENTS)]


def chunk_ids(chunks: list[int]) -> set[str]:
    """The ids of the numbered chunks (1-based) of a full sync of IDS."""
    return {i for n in chunks for i in IDS[(n - 1) * CHUNK : n * CHUNK]}


def test_adds_after_the_override_overlap_up_to_max_parallel_requests(sandbox, tmp_path):
    sync(tmp_path / "s", IDS[:5])  # the segment exists: the next sync overrides it, then adds
    sandbox.clear_request_log()
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", delay=0.1, count=100)  # each write takes 0.1 s

    result = sync(tmp_path / "s", IDS, full_refresh=True, max_parallel_requests=4)

    assert members(sandbox) == set(IDS) and result["requests"] == 20
    writes = puts(sandbox)
    assert [w["action"] for w in writes].count("override") == 1
    assert writes[0]["action"] == "override" and writes[0]["in_flight"] == 1  # nothing overlaps it
    assert max(w["in_flight"] for w in writes) == 4  # never above the cap, and the cap is used
    assert len(writes) == 20  # one request a chunk: nothing was sent twice


def test_a_delta_sends_its_adds_and_removes_in_parallel_and_converges(sandbox, tmp_path):
    state = tmp_path / "s"
    sync(state, IDS[:100])
    sandbox.clear_request_log()
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", delay=0.1, count=100)

    result = sync(state, IDS[50:], max_parallel_requests=8)  # 100 adds, 50 removes: 15 chunks

    assert result["mode"] == "delta" and result["requests"] == 15
    assert members(sandbox) == set(IDS[50:])
    writes = puts(sandbox)
    assert {w["action"] for w in writes} == {"add", "remove"}
    assert max(w["in_flight"] for w in writes) == 8


def test_max_parallel_requests_1_sends_one_write_at_a_time(sandbox, tmp_path):
    sync(tmp_path / "s", IDS, max_parallel_requests=1)
    assert members(sandbox) == set(IDS)
    assert max(w["in_flight"] for w in puts(sandbox)) == 1


def test_parallel_writes_reuse_kept_alive_connections(sandbox, tmp_path):
    """The connection pool holds every parallel connection: none is discarded and opened again."""
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", delay=0.05, count=100)
    sync(tmp_path / "s", IDS, max_parallel_requests=12)
    assert members(sandbox) == set(IDS)
    # 12 writers, plus the connection of the calls before the writes
    assert len({r["connection"] for r in sandbox.requests}) <= 13


def test_a_429_storm_halves_the_concurrency_and_the_sync_still_converges(sandbox, tmp_path):
    sync(tmp_path / "s", IDS[:5])
    sandbox.clear_request_log()
    # The override goes through; the 8 adds sent at once all get a 429 (held 0.1 s, so the server
    # sees them together); then every write takes 0.1 s.
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", delay=0.1, count=1)
    sandbox.inject_fault(f"{SEGMENTS}/", 429, method="PUT", delay=0.1, count=8)
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", delay=0.1, count=100)

    sync(tmp_path / "s", IDS, full_refresh=True, max_parallel_requests=8)

    assert members(sandbox) == set(IDS)
    writes = puts(sandbox)  # in the order they were answered
    storm = [w for w in writes if w["status"] == 429]
    assert len(storm) == 8 and max(w["in_flight"] for w in storm) == 8
    ok = [w for w in writes if w["status"] == 200]
    assert len(ok) == 20  # each chunk landed once: the 8 refused ones were retried
    # After the storm (once the 8 retried writes were answered) the writes start again one at a
    # time (8 halvings: 8 -> 1) and grow back by one per round of successes: 1, 2, 3, ...
    after = ok[1 + 8 :]
    assert len(after) == 11
    assert after[0]["in_flight"] <= 2  # 1, or 2 while the server is still counting the last one out
    assert max(w["in_flight"] for w in after[:6]) <= 4  # at most half the cap


def test_one_failing_chunk_among_parallel_ones_says_exactly_what_landed(sandbox, tmp_path):
    state = tmp_path / "s"
    sync(state, IDS[:5])
    sandbox.clear_request_log()
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", delay=0.1, count=4)  # override + 3 adds
    sandbox.inject_fault(f"{SEGMENTS}/", 400, method="PUT", delay=0.05, count=1)  # one add refused
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", delay=0.1, count=100)

    with pytest.raises(PartialUpdateError) as caught:
        sync(state, IDS, full_refresh=True, max_parallel_requests=4)

    err = caught.value
    landed, failed, unsent = err.landed_chunks, err.failed_chunks, err.unsent_chunks
    assert len(failed) == 1 and 1 in landed  # the override came first and landed
    assert sorted(landed + failed + unsent) == list(range(1, 21))
    assert unsent, "the sender stopped sending new chunks after the failure"
    # What the error says landed is exactly what the server holds: nothing more, nothing less.
    assert members(sandbox) == chunk_ids(landed)
    assert err.applied_chunks == len(landed) and err.applied_ids == len(chunk_ids(landed))
    message = str(err)
    assert f"chunk {failed[0]}/20 (add) failed" in message
    assert "landed: chunks " in message and "not sent: chunks " in message

    sandbox.clear_faults()
    sync(state, IDS, max_parallel_requests=4)  # the rerun repairs
    assert members(sandbox) == set(IDS)


class Killed(BaseException):
    """Stands for the task being killed (SIGTERM's exception, a timeout) in the middle of a batch."""


def test_a_kill_in_the_middle_of_a_parallel_delta_then_a_rerun_converge(sandbox, tmp_path, monkeypatch):
    state = tmp_path / "s"
    sync(state, IDS[:100])
    snapshot = state.read_bytes()
    sandbox.clear_request_log()
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", delay=0.05, count=100)
    real_put = WalkMeHook.put_users
    sent: list[int] = []

    def put_then_die(self, *args, **kwargs):
        sent.append(1)
        if len(sent) == 6:
            raise Killed
        return real_put(self, *args, **kwargs)

    monkeypatch.setattr(WalkMeHook, "put_users", put_then_die)
    with pytest.raises(Killed):
        sync(state, IDS[60:], max_parallel_requests=4)  # 100 adds and 60 removes in 16 chunks
    assert members(sandbox) != set(IDS[60:])  # the kill left it half-way
    assert state.read_bytes() == snapshot  # the snapshot never runs ahead of the API

    monkeypatch.setattr(WalkMeHook, "put_users", real_put)
    sync(state, IDS[60:], max_parallel_requests=4)
    assert members(sandbox) == set(IDS[60:])


def test_an_update_sends_its_add_chunks_in_parallel(sandbox, tmp_path):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Plain", ["x"])["guid"]
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", delay=0.1, count=100)
    WalkMeUpdateSegmentOperator(
        task_id="u", segment_guid=guid, action="add", user_ids=IDS, max_parallel_requests=4
    ).execute({})
    assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) == set(IDS) | {"x"}
    assert max(w["in_flight"] for w in puts(sandbox)) == 4


@pytest.mark.parametrize("value", [0, -1, 17, 2.5, "4", True])
def test_max_parallel_requests_out_of_range_is_refused_when_the_dag_is_parsed(value):
    with pytest.raises(SegmentsValidationError, match="max_parallel_requests"):
        WalkMeSyncSegmentOperator(
            task_id="s", name="n", state_path="/tmp/x", user_ids=["a"], max_parallel_requests=value
        )


# -- what a PartialUpdateError says, against what the server holds ------------------------------
def add_all(sandbox, parallel: int) -> tuple[PartialUpdateError, set[str]]:
    """Add IDS (20 chunks) to a segment holding only "seed"; the error and the ids the server then
    holds (the seed left out)."""
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Audience", ["seed"])["guid"]
    with pytest.raises(PartialUpdateError) as caught:
        WalkMeUpdateSegmentOperator(
            task_id="add", segment_guid=guid, action="add", user_ids=IDS, max_parallel_requests=parallel
        ).execute({})
    return caught.value, set(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) - {"seed"}


def assert_the_error_tells_the_truth(err: PartialUpdateError, held: set[str]) -> None:
    """Landed chunks are held, refused and unsent ones are not, every held id is in a landed chunk
    or one of unknown outcome, and the counts in the message are those of the chunks."""
    landed, unknown = err.landed_chunks, getattr(err, "unknown_chunks", [])
    refused = sorted(set(err.failed_chunks) - set(unknown))
    unsent = err.unsent_chunks
    report = (sorted(held), landed, unknown, err.failed_chunks, unsent, str(err))
    assert sorted(landed + err.failed_chunks + unsent) == list(range(1, 21)), report
    assert set(unknown) <= set(err.failed_chunks), report  # failed_chunks: every chunk sent that failed
    assert chunk_ids(landed) <= held, report
    assert held <= chunk_ids(landed + unknown), report  # nothing held is called refused or not sent
    assert not held & chunk_ids(refused), report
    assert not held & chunk_ids(unsent), report
    assert err.applied_chunks == len(landed) and err.applied_ids == len(chunk_ids(landed)), report
    message = str(err)
    assert f"{len(chunk_ids(unsent)):,} ids were not sent" in message, report
    if unknown:
        assert f"{len(chunk_ids(unknown)):,} ids of unknown outcome (may have landed)" in message, report


@pytest.mark.parametrize("parallel", [1, 4])
def test_chunks_whose_answers_were_lost_are_of_unknown_outcome_not_failed_or_unsent(sandbox, parallel):
    # chunk writes 1-3 answered; every later one applied by the server, its answer lost (each retry too)
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", skip=3, lose_response=True, count=1000)
    err, held = add_all(sandbox, parallel)
    assert_the_error_tells_the_truth(err, held)
    assert err.unknown_chunks and held == chunk_ids(err.landed_chunks + err.unknown_chunks)


@pytest.mark.parametrize("parallel", [1, 4])
def test_a_refused_chunk_is_not_applied_and_the_rest_are_told_apart(sandbox, parallel):
    sandbox.inject_fault(f"{SEGMENTS}/", 400, method="PUT", skip=3, count=1)
    err, held = add_all(sandbox, parallel)
    assert_the_error_tells_the_truth(err, held)
    assert err.unknown_chunks == [] and len(err.failed_chunks) == 1
    assert "refused" in str(err)


@pytest.mark.parametrize("parallel", [1, 4])
def test_a_chunk_whose_new_token_cannot_be_fetched_was_not_applied(sandbox, parallel):
    """The 4th write is refused with a 401 and the token endpoint then fails with 500s: that
    chunk was not applied (the token call's unknown outcome is not the write's), and is not
    reported as 'may have landed'."""
    sandbox.inject_fault(f"{SEGMENTS}/", 401, method="PUT", skip=3, count=1)
    sandbox.inject_fault("/accounts/connect/token", 500, skip=1, count=1000)
    err, held = add_all(sandbox, parallel)
    assert_the_error_tells_the_truth(err, held)
    assert err.unknown_chunks == [] and len(err.failed_chunks) == 1 and "may have landed" not in str(err)


@pytest.mark.parametrize("parallel", [1, 4])
def test_a_chunk_retried_to_503s_after_a_lost_answer_is_of_unknown_outcome(sandbox, parallel):
    # the 4th write is applied and its answer lost; every retry (and every later write) gets a 503:
    # the last answer says "not applied", but the first attempt was
    sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", skip=3, lose_response=True, count=1)
    sandbox.inject_fault(f"{SEGMENTS}/", 503, method="PUT", count=1000)
    err, held = add_all(sandbox, parallel)
    assert_the_error_tells_the_truth(err, held)
    assert len(held) == 4 * CHUNK and len(err.unknown_chunks) == 1


def test_a_chunk_that_landed_before_a_token_refresh_is_of_unknown_outcome(sandbox):
    """(review 9) The add is applied but its answer lost; the retry gets a 401, the hook fetches a
    new token and calls again, and that call is refused with 429s: the chunk may have landed (it
    did), so it is of unknown outcome, never "refused"."""
    hook = WalkMeHook()
    guid = hook.create_segment("Audience", ["a", "b"], max_removal_fraction=1.0)["segment_guid"]
    put = "/public/v1/user/system/"
    sandbox.inject_fault(put, lose_response=True, method="PUT")
    sandbox.inject_fault(put, 401, method="PUT")
    sandbox.inject_fault(put, 429, retry_after="0", count=5, method="PUT")
    with pytest.raises(PartialUpdateError) as caught:
        hook.update_segment(guid, action="add", user_ids=["x", "y"])
    assert set(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) == {"a", "b", "x", "y"}
    assert caught.value.unknown_chunks == [1]
    assert "refused (not applied)" not in str(caught.value)
