"""The read-back after a change is evidence only when it shows the change (review 15): an update time
that did not move forward, a create read back on some fields only, a lost create followed by a
refused write, a read-back that fails after every write landed. Each once let a task report success
(or misreport what was applied) while the platform held other members."""

from __future__ import annotations

import contextlib
import json
import threading

import pytest
from support import impatient_sandbox

from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.exceptions import (
    MembershipMismatchError,
    PartialUpdateError,
    SegmentsError,
)
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.membership import read_back
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeSyncSegmentOperator,
    WalkMeUpdateSegmentOperator,
)
from airflow_provider_segments.testing import TEST_SYSTEM_GUID

SEGMENTS = f"/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"


@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setattr(read_back, "VERIFY_INTERVAL", 0.01)
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.05)


def members(sandbox, guid):
    return set(sandbox.walkme.members(TEST_SYSTEM_GUID, guid))


def sync(state, user_ids, name="Audience"):
    return WalkMeSyncSegmentOperator(
        task_id="sync", name=name, user_ids=user_ids, state_path=str(state), max_removal_fraction=1.0
    ).execute({})


# -- an update time that did not move forward is no evidence of a write -----------------------------
def test_an_update_time_that_went_backwards_does_not_verify_writes_that_were_not_applied(sandbox):
    segment = sandbox.walkme.create_segment(
        TEST_SYSTEM_GUID, "S", ["a", "b"], created_at="2024-05-01T10:00:00.000Z"
    )
    sandbox.inject_fault(f"{SEGMENTS}/", 200, method="PUT", body="{}", count=10)  # answered, not applied
    stale = [{**segment, "updatedAt": "2024-04-30T09:00:00.000Z"}]  # a replica behind the first read
    sandbox.inject_fault(SEGMENTS, 200, method="GET", body=json.dumps(stale), skip=1, count=10)
    with pytest.raises(MembershipMismatchError, match=r"not later than the update time read before"):
        WalkMeUpdateSegmentOperator(
            task_id="u", segment_guid=segment["guid"], action="override", user_ids=["x", "y"]
        ).execute({})
    assert members(sandbox, segment["guid"]) == {"a", "b"}  # what the error is about


def test_without_a_listed_count_writes_not_applied_fail_and_the_next_run_is_full(sandbox, tmp_path):
    state = tmp_path / "s"
    sync(state, ["a", "b"])
    (segment,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    no_count = [{key: value for key, value in segment.items() if key != "usersCount"}]
    sandbox.inject_fault(SEGMENTS, 200, method="GET", body=json.dumps(no_count), count=1000)
    sandbox.inject_fault(f"{SEGMENTS}/", 200, method="PUT", body="{}", count=1000)
    with pytest.raises(MembershipMismatchError, match=r"not later than the update time read before"):
        sync(state, ["x", "y"])
    sandbox.clear_faults()
    sandbox.inject_fault(SEGMENTS, 200, method="GET", body=json.dumps(no_count), count=1)  # the next run's
    again = sync(state, ["x", "y"])
    assert again["mode"] == "full" and members(sandbox, segment["guid"]) == {"x", "y"}


# -- a Zendesk create is read back on every field it decides -----------------------------------------
def test_a_zendesk_create_is_read_back_on_the_criteria_it_left_out_too(sandbox, monkeypatch):
    original, other_worker = ZendeskHelpCenterHook.get_user_segment, []

    def another_worker_first(self, segment_id):
        if not other_worker:  # between this create's answer and its read-back
            other_worker.append(segment_id)
            ZendeskHelpCenterHook().create_user_segment(
                name="Beta testers",
                user_type="signed_in_users",
                tags=["vip"],
                added_user_ids=[11, 12],
                max_removal_fraction=None,
            )
        return original(self, segment_id)

    monkeypatch.setattr(ZendeskHelpCenterHook, "get_user_segment", another_worker_first)
    with pytest.raises(MembershipMismatchError, match=r"tags"):
        ZendeskHelpCenterHook().create_user_segment(
            name="Beta testers", user_type="signed_in_users", added_user_ids=[11, 12]
        )
    (segment,) = [s for s in sandbox.zendesk.segments() if s["name"] == "Beta testers"]
    assert segment["tags"] == ["vip"]  # what the error is about: not what this task was asked for


# -- what a failure says was applied -------------------------------------------------------------------
def test_a_refused_write_after_a_lost_create_counts_the_whole_change(sandbox, monkeypatch):
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)
    sandbox.inject_fault(SEGMENTS, method="POST", lose_response=True)  # the create lands, its answer is lost
    sandbox.inject_fault(f"{SEGMENTS}/", 400, method="PUT", count=1)  # the override making it exact: refused
    with pytest.raises(PartialUpdateError) as caught:
        WalkMeCreateSegmentOperator(task_id="c", name="Big", user_ids=["a", "b", "c", "d", "e", "f"]).execute(
            {}
        )
    error = caught.value
    (segment,) = [s for s in sandbox.walkme.segments(TEST_SYSTEM_GUID) if s["name"] == "Big"]
    assert members(sandbox, segment["guid"]) == {"a", "b"}
    assert (error.total_chunks, error.total_ids, error.unsent_chunks) == (3, 6, [2, 3])
    assert segment["guid"] in str(error) and "4 ids were not sent" in str(error)


def test_a_read_back_that_fails_after_every_write_landed_says_so(sandbox):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "S", ["a", "b"])["guid"]
    sandbox.inject_fault(SEGMENTS, 503, method="GET", skip=1, count=50)  # every read after the first
    with pytest.raises(SegmentsError) as caught:
        WalkMeUpdateSegmentOperator(
            task_id="u", segment_guid=guid, action="override", user_ids=["x", "y"], max_removal_fraction=None
        ).execute({})
    assert members(sandbox, guid) == {"x", "y"}
    message = str(caught.value)
    assert "was acknowledged, but reading it back failed" in message and "503" in message


def test_an_override_whose_read_back_between_its_phases_fails_says_the_rest_was_not_sent(
    sandbox, monkeypatch
):
    """Hostile review 27: the read-back after a 3-chunk override's first chunk fails; the segment
    holds that chunk only (its old members wiped), the adds never went. The error said "every
    write sent was acknowledged"; it now says what landed and which chunks were not sent."""
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "S", ["p", "q", "r", "s", "t", "u"])["guid"]
    sandbox.inject_fault(SEGMENTS, 503, method="GET", skip=1, count=100)  # every read after the first
    with pytest.raises(PartialUpdateError) as caught:
        WalkMeUpdateSegmentOperator(
            task_id="u",
            segment_guid=guid,
            action="override",
            user_ids=list("abcdef"),
            max_removal_fraction=1.0,
        ).execute({})
    assert members(sandbox, guid) == {"a", "b"}
    assert [r.get("action") for r in sandbox.requests if r["method"] == "PUT"] == ["override"]
    error = caught.value
    assert (error.landed_chunks, error.unsent_chunks, error.applied_ids, error.total_ids) == (
        [1],
        [2, 3],
        2,
        6,
    )
    assert "chunks 2-3 (4 ids) were not sent" in str(error) and "503" in str(error), str(error)


def test_a_delta_whose_read_back_after_its_adds_fails_says_the_removes_were_not_sent(
    sandbox, tmp_path, monkeypatch
):
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)
    state = tmp_path / "s"
    base = [f"m{i}" for i in range(8)]

    def sync(user_ids):
        return WalkMeSyncSegmentOperator(
            task_id="s", name="A", state_path=str(state), user_ids=user_ids
        ).execute({})

    sync(base)
    sandbox.clear_request_log()
    wanted = [*base[2:], "n1", "n2"]  # one add chunk, one remove chunk
    sandbox.inject_fault(SEGMENTS, 503, method="GET", skip=1, count=100)
    with pytest.raises(PartialUpdateError, match=r"chunk 2 \(2 ids\) was not sent") as caught:
        sync(wanted)
    assert [r.get("action") for r in sandbox.requests if r["method"] == "PUT"] == ["add"]
    assert caught.value.unsent_chunks == [2]
    sandbox.clear_faults()
    assert sync(wanted)["verified"] is True
    (segment,) = [s for s in sandbox.walkme.segments(TEST_SYSTEM_GUID) if s["name"] == "A"]
    assert members(sandbox, segment["guid"]) == set(wanted)


def test_a_lost_create_whose_look_ups_fail_says_the_segment_may_exist_and_the_rerun_adopts_it(sandbox):
    """Hostile review 27: the create lands, its answer is lost, and the look-ups fail (500). A failed
    look-up is no answer: the look-ups go on over their window, then the task fails saying the
    create's outcome is unknown (it named only the GET); the rerun adopts the segment, no twin."""
    from airflow_provider_segments.exceptions import SegmentsUnknownOutcomeError

    sandbox.inject_fault(SEGMENTS, method="POST", lose_response=True)
    sandbox.inject_fault(SEGMENTS, 500, method="GET", skip=1, count=100)  # every look-up after the first
    with pytest.raises(
        SegmentsUnknownOutcomeError,
        match=r"create of WalkMe segment 'Fresh'.*unknown outcome.*may exist.*500",
    ):
        WalkMeCreateSegmentOperator(task_id="c", name="Fresh", user_ids=["a", "b"]).execute({})
    gets = [r for r in sandbox.requests if r["method"] == "GET" and r["path"] == SEGMENTS]
    assert len(gets) > 2  # looked again after a failed look-up
    sandbox.clear_faults()
    WalkMeCreateSegmentOperator(task_id="c", name="Fresh", user_ids=["a", "b"], if_exists="update").execute(
        {}
    )
    (segment,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    assert segment["name"] == "Fresh" and members(sandbox, segment["guid"]) == {"a", "b"}


def test_a_lost_create_whose_first_look_up_failed_and_later_ones_answered_says_it_was_not_listed(sandbox):
    """Hostile review 29: only the last look-up's failure makes "it may exist"; looks that answered
    after a failed one show the create did not land (here it did not)."""
    from airflow_provider_segments.exceptions import SegmentsUnknownOutcomeError

    sandbox.inject_fault(SEGMENTS, method="POST", drop_connection=True)  # the create does not land
    sandbox.inject_fault(SEGMENTS, 500, method="GET", skip=1, count=2)  # the first look-up after it fails
    with pytest.raises(SegmentsUnknownOutcomeError) as caught:
        WalkMeCreateSegmentOperator(task_id="c", name="Fresh", user_ids=["a", "b"]).execute({})
    assert sandbox.walkme.segments(TEST_SYSTEM_GUID) == []
    assert "it was not listed after" in str(caught.value) and "may exist" not in str(caught.value)


def test_a_create_answered_with_a_field_it_cannot_read_still_ends_exact(sandbox):
    """Hostile review 27: WalkMe creates the segment and answers with its member count as text. The
    task failed with an error about the answer, not the segment it made; the create's own answer
    now gives its GUID only, and the read-back verifies the rest."""
    import json as json_module

    from airflow_provider_segments.testing.base import json_response

    app, real_create = sandbox.walkme, sandbox.walkme._create

    def create_then_count_as_text(request, system, payload):
        body = json_module.loads(real_create(request, system, payload).body)
        return json_response(201, {**body, "usersCount": str(body["usersCount"])})

    app._create = create_then_count_as_text
    result = WalkMeCreateSegmentOperator(task_id="c", name="Fresh", user_ids=["a", "b"]).execute({})
    assert result["verified"] and members(sandbox, result["segment_guid"]) == {"a", "b"}
    assert [s["name"] for s in app.segments(TEST_SYSTEM_GUID)] == ["Fresh"]


# -- a create is read back under its name: the platform's spelling, and no twin ----------------------
def test_a_name_the_platform_stores_respelled_fails_the_create_without_retries(
    sandbox, tmp_path, monkeypatch
):
    from airflow_provider_segments.testing import walkme as fake_walkme

    original = fake_walkme.WalkMeApp._create_locked

    def respelled(segments, name, user_ids, external_id):  # a platform collapsing inner whitespace
        return original(segments, " ".join(name.split()), user_ids, external_id)

    monkeypatch.setattr(fake_walkme.WalkMeApp, "_create_locked", staticmethod(respelled))
    for _run in range(2):  # a rerun with the name unchanged never leaves a second segment
        with pytest.raises(
            AirflowFailException, match=r"stores .* as 'Beta testers', not 'Beta  testers'"
        ) as caught:
            sync(tmp_path / "s", ["a", "b"], name="Beta  testers")  # not retried
        assert "deleted it again" in str(caught.value)
        assert sandbox.walkme.segments(TEST_SYSTEM_GUID) == []  # a later lookup would not find it


def test_a_respelled_create_that_cannot_be_deleted_says_so_naming_it(sandbox, tmp_path, monkeypatch):
    from airflow_provider_segments.testing import walkme as fake_walkme

    original = fake_walkme.WalkMeApp._create_locked

    def respelled(segments, name, user_ids, external_id):
        return original(segments, " ".join(name.split()), user_ids, external_id)

    monkeypatch.setattr(fake_walkme.WalkMeApp, "_create_locked", staticmethod(respelled))
    sandbox.inject_fault(SEGMENTS + "/", 403, method="DELETE", count=10)
    with pytest.raises(
        AirflowFailException, match=r"stores .* as 'Beta testers', not 'Beta  testers'"
    ) as caught:
        sync(tmp_path / "s", ["a", "b"], name="Beta  testers")
    (left,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    message = str(caught.value)
    assert "Undoing it failed" in message and left["guid"] in message and "delete it by hand" in message, (
        message
    )


def test_two_tries_creating_at_once_never_both_report_success(sandbox, tmp_path, monkeypatch):
    token = "airflow-0123456789abcdef0123"  # the same in every try of a task (a zombie and its retry)
    original, barrier = WalkMeHook.find_segments_by_name, threading.Barrier(2, timeout=10)

    def look_up_together(self, name, system_guid=None):
        found = original(self, name, system_guid)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()  # both have looked the name up before either creates
        return found

    monkeypatch.setattr(WalkMeHook, "find_segments_by_name", look_up_together)
    outcomes: list = []

    def one_try(state):
        try:
            outcomes.append(
                WalkMeHook().sync_segment(["a", "b"], name="Audience", state_path=state, creation_token=token)
            )
        except Exception as err:  # what each try ended with is the point
            outcomes.append(err)

    tries = [threading.Thread(target=one_try, args=(str(tmp_path / f"s{i}"),)) for i in range(2)]
    for one in tries:
        one.start()
    for one in tries:
        one.join(30)
    left = [s["guid"] for s in sandbox.walkme.segments(TEST_SYSTEM_GUID) if s["name"] == "Audience"]
    assert len(left) <= 1, left  # a try that finds a twin deletes the segment it created
    succeeded = [o["segment_guid"] for o in outcomes if isinstance(o, dict)]
    assert set(succeeded) <= set(left), (succeeded, left)  # success only for the segment that stays
    failures = [str(o) for o in outcomes if isinstance(o, Exception)]
    assert len(succeeded) + len(failures) == 2 and len(succeeded) <= 1, outcomes
    assert all("deleted it again" in failure for failure in failures), failures
    if left:
        assert members(sandbox, left[0]) == {"a", "b"}


# -- the same rule for a Zendesk create --------------------------------------------------------------
def test_a_zendesk_name_stored_respelled_fails_the_create_without_retries(sandbox, monkeypatch):
    from airflow_provider_segments.exceptions import SegmentsValidationError
    from airflow_provider_segments.testing import zendesk as fake_zendesk

    original = fake_zendesk.validate_segment

    def respelled(fields, creating):
        changes = original(fields, creating=creating)
        if "name" in changes:
            changes["name"] = " ".join(changes["name"].split())
        return changes

    monkeypatch.setattr(fake_zendesk, "validate_segment", respelled)
    for _run in range(2):
        with pytest.raises(
            SegmentsValidationError, match=r"stores .* as 'Beta testers', not 'Beta  testers'"
        ):
            ZendeskHelpCenterHook().create_user_segment(name="Beta  testers", user_type="signed_in_users")
        assert [s["name"] for s in sandbox.zendesk.segments() if not s["built_in"]] == []


def test_two_zendesk_creates_at_once_never_both_report_success(sandbox, monkeypatch):
    from airflow_provider_segments.exceptions import SegmentExistsError
    from airflow_provider_segments.hooks import zendesk as zendesk_hook_module
    from airflow_provider_segments.hooks.zendesk_names import custom_segments_named as original

    barrier = threading.Barrier(2, timeout=10)
    looked: list = []

    def look_up_together(hook, name):
        found = original(hook, name)
        if len(looked) < 2:  # the creates' first look-ups: both find the name free
            looked.append(name)
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        return found

    monkeypatch.setattr(
        zendesk_hook_module, "custom_segments_named", look_up_together
    )  # the create's look-up
    outcomes: list = []

    def one_create():
        try:
            outcomes.append(ZendeskHelpCenterHook().create_user_segment(name="VIP", user_type="staff"))
        except Exception as err:  # what each ended with is the point
            outcomes.append(err)

    creates = [threading.Thread(target=one_create) for _ in range(2)]
    for one in creates:
        one.start()
    for one in creates:
        one.join(30)
    left = [s["id"] for s in sandbox.zendesk.segments() if s["name"] == "VIP" and not s["built_in"]]
    assert len(left) <= 1, left  # a create that finds a twin deletes the segment it created
    succeeded = [o["id"] for o in outcomes if isinstance(o, dict)]
    failures = [o for o in outcomes if isinstance(o, SegmentExistsError)]
    assert set(succeeded) <= set(left) and len(succeeded) <= 1, (succeeded, left)
    assert len(succeeded) + len(failures) == 2, outcomes
    assert all("deleted it again" in str(failure) for failure in failures), failures
