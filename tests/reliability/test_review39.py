"""Hostile review 39: the fixes of review 38 (the sync guard's rerun exemption, redaction, shown_location).

Each test failed on the code as reviewed; each asserts what the sandbox holds, what a local server
received, or what a text (error, log, lineage URI) holds."""

from __future__ import annotations

import json

import pytest
from support import impatient_sandbox
from support import only_segment_members as _members
from support import outcome as _outcome
from support import sync_audience as _sync

from airflow_provider_segments.exceptions import SegmentsError
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.testing import TEST_SYSTEM_GUID
from airflow_provider_segments.testing import walkme as fake_walkme

SEGMENTS = f"/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"


# == 1. the rerun exemption (journal's last_write_updated_at) =============================================
@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.0)


BEFORE = [f"a{i}" for i in range(10)]
WANTED = BEFORE[:6] + [f"n{i}" for i in range(6)]  # leaves out 4 of the 10 (40 %: the guard allows it)


def _rerun_fails_closed_then_converges(sandbox, state, left: set[str]) -> None:
    """What the owner chose after this review (the journal cannot prove who took the members out:
    WalkMe lists counts, not members): the plain rerun is refused, nothing sent, saying why and what
    to do; the rerun it asks for converges."""
    refused = _outcome(lambda: _sync(state, WANTED, max_parallel_requests=1))
    assert "left a change of this segment unfinished" in refused, refused
    assert "max_removal_fraction=1.0" in refused, refused
    assert _members(sandbox) == left
    _sync(state, WANTED, max_parallel_requests=1, max_removal_fraction=1.0)
    assert _members(sandbox) == set(WANTED)


def _failed_full_run_left_collapsed(sandbox, state, fail) -> None:
    """Review 37's setup: a snapshot of BEFORE, an out-of-band add (so the next run is full), then a
    full sync of WANTED whose override landed and whose next write ``fail`` breaks."""
    _sync(state, BEFORE, max_parallel_requests=1)
    (segment,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    WalkMeHook().update_segment(segment["guid"], "add", ["someone-else"])
    with pytest.raises(BaseException):  # noqa: B017 - the failed run (its error is not the point)
        fail()
    sandbox.clear_faults()


def test_a_rerun_after_an_add_whose_answer_was_lost_after_landing_converges(sandbox, tmp_path):
    """The override lands; the first add chunk lands too but both its answers are lost (the client's
    retry of an add, which commutes). The error says "Rerunning the task converges". WalkMe now lists
    the update time of the lost add, not of the last *answered* write (the override), so the
    exemption does not apply and the rerun's guard counts the snapshot's 4 left-out members against
    the 4 members the failed run left: 100 %, refused, without retries, on every rerun."""
    state = tmp_path / "audience.snapshot"

    def fail():
        sandbox.inject_fault(f"{SEGMENTS}/", method="PUT", skip=1, lose_response=True, count=2)
        _sync(state, WANTED, max_parallel_requests=1)

    _failed_full_run_left_collapsed(sandbox, state, fail)
    assert _members(sandbox) == set(WANTED[:4])  # the override's 2 and the lost add's 2

    _rerun_fails_closed_then_converges(sandbox, state, set(WANTED[:4]))


def _answer_empty(response):
    return fake_walkme.empty_response(204)


def _answer_time_spelled_with_offset(response):
    segment = json.loads(response.body)
    segment["updatedAt"] = segment["updatedAt"].replace("Z", "+00:00")  # the same instant
    return fake_walkme.json_response(response.status, segment)


def _put_answered(monkeypatch, how) -> None:
    update = fake_walkme.WalkMeApp._update

    def answered(self, request, system, segment_guid, payload):
        return how(update(self, request, system, segment_guid, payload))

    monkeypatch.setattr(fake_walkme.WalkMeApp, "_update", answered)


@pytest.mark.parametrize(
    "how", [_answer_empty, _answer_time_spelled_with_offset], ids=["204-no-body", "time-as-+00:00"]
)
def test_a_rerun_converges_however_walkme_spells_a_puts_answer(sandbox, tmp_path, monkeypatch, how):
    """WalkMe's document does not say what a PUT answers (the hook says so). Review 38 made the rerun
    exemption depend on the update time a write was answered with being the very string WalkMe lists
    (compared as text, where the read-back compares times as times): answered with no body, or with
    the same instant written ``+00:00`` instead of ``Z``, review 37's collapsed segment is back,
    refused on every rerun."""
    state = tmp_path / "audience.snapshot"

    def fail():
        _put_answered(monkeypatch, how)  # (from the failed run on; see the next test for the first sync)
        sandbox.inject_fault(f"{SEGMENTS}/", 400, method="PUT", skip=1)  # the first add refused
        _sync(state, WANTED, max_parallel_requests=1)

    _failed_full_run_left_collapsed(sandbox, state, fail)
    assert _members(sandbox) == set(WANTED[:2])
    _rerun_fails_closed_then_converges(sandbox, state, set(WANTED[:2]))


def test_a_multi_chunk_create_succeeds_when_walkme_answers_a_put_without_a_body(
    sandbox, tmp_path, monkeypatch
):
    """(Older than review 38, same assumption.) The create's answer carries an update time, the add
    chunks' 204 answers none: the read-back then takes the adds' own moves of the update time for
    "another client changed it since" and fails a create whose membership is exact."""
    _put_answered(monkeypatch, _answer_empty)
    outcome = _outcome(lambda: _sync(tmp_path / "audience.snapshot", BEFORE, max_parallel_requests=1))
    assert _members(sandbox) == set(BEFORE)
    assert isinstance(outcome, dict), outcome


def test_a_rerun_after_the_task_timed_out_between_override_and_adds_converges(sandbox, tmp_path, monkeypatch):
    """execution_timeout (AirflowTaskTimeout, a BaseException raised in the task's thread) hits
    the sync after its override landed. Under review 37 any unfinished journal of the segment let
    the rerun be judged against the snapshot; review 38 records the last write's time only for a
    SegmentsError, so after a timeout (or a kill) every retry is refused: the segment stays at the
    2 members of the override chunk."""
    from airflow.sdk.exceptions import AirflowTaskTimeout

    put_users = WalkMeHook.put_users
    armed = {"on": False}

    def timed_out(self, system, guid, action, user_ids, **kwargs):
        if armed["on"] and action == "add":
            armed["on"] = False
            raise AirflowTaskTimeout("Timeout, PID: 4242")
        return put_users(self, system, guid, action, user_ids, **kwargs)

    monkeypatch.setattr(WalkMeHook, "put_users", timed_out)
    state = tmp_path / "audience.snapshot"

    def fail():
        armed["on"] = True
        _sync(state, WANTED, max_parallel_requests=1)

    _failed_full_run_left_collapsed(sandbox, state, fail)
    assert _members(sandbox) == set(WANTED[:2])
    _rerun_fails_closed_then_converges(sandbox, state, set(WANTED[:2]))


INPUT = [*BEFORE[:7], "n0", "n1", "n2"]  # leaves out 3 of the 10 (30 %)
ELSEWHERE = ["b0", "b1", "b2", "b3"]


class _CoarseClock:
    """WalkMe's update times at one-second resolution: two writes in one second list the same time."""

    def __init__(self) -> None:
        self.second = 0

    def now(self) -> str:
        return f"2026-03-01T10:00:{self.second:02d}Z"


def test_an_admins_edit_in_the_same_second_as_the_last_write_is_not_taken_for_the_failed_run(
    sandbox, tmp_path, monkeypatch
):
    """A delta sync fails after its first add landed (answered at 10:00:01). In the same second an
    admin replaces the members by 4 others: WalkMe, keeping update times to the second, still lists
    10:00:01. The rerun takes the journal's time for proof that nothing else changed the segment,
    judges the removal against the snapshot's 10 members (3 of 10, allowed) and removes all 4 members
    WalkMe held (100 % > 50 %), reporting success. The same run without the journal is refused."""
    clock = _CoarseClock()
    monkeypatch.setattr(fake_walkme, "_now", clock.now)
    monkeypatch.setattr(fake_walkme, "_after", lambda previous: clock.now())
    state = tmp_path / "audience.snapshot"
    _sync(state, BEFORE)  # 10:00:00
    (segment,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    guid = segment["guid"]

    clock.second = 1
    sandbox.inject_fault(
        f"{SEGMENTS}/", 400, method="PUT", skip=1
    )  # the first add lands, the next is refused
    with pytest.raises(SegmentsError):
        _sync(state, INPUT, max_parallel_requests=1)
    sandbox.clear_faults()
    admin = WalkMeHook()  # an admin's tool, in the same second
    admin.put_users(TEST_SYSTEM_GUID, guid, "override", ELSEWHERE[:2])
    admin.put_users(TEST_SYSTEM_GUID, guid, "add", ELSEWHERE[2:])
    assert _members(sandbox) == set(ELSEWHERE)

    clock.second = 2
    outcome = _outcome(lambda: _sync(state, INPUT))  # default guard: max_removal_fraction=0.5
    kept = set(ELSEWHERE) & _members(sandbox)
    assert len(kept) >= 2, (
        f"the sync removed {4 - len(kept)} of the 4 members WalkMe held (limit 50 %); it reported {outcome!r}"
    )


# == 2. redaction: a 1-3 character secret "as a word" is looked for in the provider's own words too =======
# (Owner's decision after this review: hiding a short secret wherever it stands as a word spells it
# out, whichever text is searched; such a secret is refused at connection read, before anything is
# sent, by its length only. These passwords made the template say "***" where GET, 401, "the" stood.)
@pytest.mark.parametrize("password", ["GET", "401", "the", "pw9", "x"])
def test_a_short_password_is_refused_before_anything_is_sent_without_being_shown(monkeypatch, password):
    import json as _json

    from local_servers import Answer, LocalServer
    from support import zendesk_conn_json

    from airflow_provider_segments.exceptions import SegmentsConfigError
    from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook

    refused = Answer(401, _json.dumps({"error": "Couldn't authenticate you"}))
    with LocalServer(lambda request: refused) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT",
            zendesk_conn_json(
                host=server.url, login="agent@acme.example.com", password=password, auth_type="password"
            ),
        )
        with pytest.raises(SegmentsConfigError, match=r"password field holds \d character") as caught:
            ZendeskHelpCenterHook().get_user_segment(7)
        assert server.received == []
    assert f"'{password}'" not in str(caught.value)  # (its length is told, never the value)


# == 3. shown_location: everything up to the last '@', after the query and fragment were cut ==============
@pytest.mark.parametrize(
    ("location", "secret"),
    [
        pytest.param(
            "sftp://deploy:Hunter2#Winter-2026@files.example.com/segments/s\t", "Hunter2", id="hash"
        ),
        pytest.param("ftp://deploy:Tr0ub4dor?x-9@files.example.com/segments/s\t", "Tr0ub4dor", id="question"),
    ],
)
def test_a_uri_password_holding_a_hash_or_question_mark_is_not_quoted_in_a_refused_path(
    monkeypatch, location, secret
):
    """shown_location cuts the query (at the first '?') and the fragment (at the first '#') before
    it looks for the last '@': a password holding either (human passwords do) loses its '@' with the
    cut, so the user name and the password up to that character are quoted: "sftp://deploy:Hunter2"."""
    from support import walkme_conn_json

    from airflow_provider_segments.operators.walkme import WalkMeCreateSegmentOperator

    monkeypatch.setenv("AIRFLOW_CONN_WALKME_DEFAULT", walkme_conn_json(host="http://127.0.0.1:9"))
    task = WalkMeCreateSegmentOperator(task_id="c", name="VIP", user_ids_path=location)
    with pytest.raises(Exception) as caught:
        task.execute({})
    message = str(caught.value)
    assert "path" in message
    assert secret not in message, message


def test_input_lineage_of_object_keys_holding_an_at_sign_keeps_bucket_and_folder():
    """Review 38 made shown_location drop everything up to the LAST '@' of the whole URI, key
    included: an object key holding '@' (``users@2024-05-01.csv``, a common export name) loses its
    bucket and folders in the input asset lineage reports, and two different files of two buckets
    become one dataset."""
    from airflow_provider_segments.ids import IdSource
    from airflow_provider_segments.lineage import walkme_change

    result = {"system_guid": TEST_SYSTEM_GUID, "segment_guid": "12345aeb-123c-4d83-8b38-a5a456789d0a"}
    first = walkme_change(IdSource(path="s3://crm-exports/daily/users@2024-05-01.csv"), result).input_uri
    second = walkme_change(IdSource(path="s3://old-archive/users@2024-05-01.csv"), result).input_uri
    assert first == "s3://crm-exports/daily/users@2024-05-01.csv", (first, second)
    assert first != second, (first, second)
