"""A Zendesk lookup by name decides a create or a rename only on a listing read whole (hostile review
16): offset pages that shift while they are read (another client deletes a segment between two
pages) hide a segment, so the walk is refused when the list's count changes or items go missing;
and a rename, like a create, is looked up again afterwards: a segment of that name found then makes
the task rename it back and fail. Each test asserts what the sandbox holds."""

from __future__ import annotations

import threading
import time

import pytest
from support import impatient_sandbox

from airflow_provider_segments.exceptions import SegmentExistsError, SegmentsError
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook

LIST = "/api/v2/help_center/user_segments.json"


@pytest.fixture
def sandbox(monkeypatch):
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.05)


def _delete_one_while_page_two_is_held(sandbox, victim: int) -> threading.Thread:
    """Hold the listing's second page a moment; meanwhile another client deletes ``victim``."""
    sandbox.inject_fault(LIST, delay=1.0, method="GET", skip=1)

    def housekeeping() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if sum(r["method"] == "GET" and r["path"].startswith(LIST) for r in sandbox.requests) >= 1:
                time.sleep(0.2)  # page 2 is being held now
                sandbox.zendesk.delete_segment(victim)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=housekeeping)
    thread.start()
    return thread


def _hundred_old_ones(sandbox) -> list[int]:
    sandbox.zendesk.pagination = "offset"  # a server answering offset pages (next_page, count)
    return [sandbox.zendesk.create_segment(name=f"old-{n:03}", user_type="staff")["id"] for n in range(100)]


def named(sandbox, name: str) -> list[int]:
    return sorted(s["id"] for s in sandbox.zendesk.segments() if s["name"] == name and not s["built_in"])


def test_a_create_never_trusts_offset_pages_that_shifted_while_read(sandbox):
    old = _hundred_old_ones(sandbox)
    vip = sandbox.zendesk.create_segment(name="VIP", user_type="staff", tags=["vip"])["id"]  # on page 2
    housekeeping = _delete_one_while_page_two_is_held(sandbox, old[0])
    try:
        with pytest.raises(SegmentsError, match="changed while it was read"):
            ZendeskHelpCenterHook().create_user_segment("VIP", "staff", tags=["gold"])
    finally:
        housekeeping.join()
    assert named(sandbox, "VIP") == [vip]
    assert sandbox.zendesk.segment(vip)["tags"] == ["vip"]  # nothing was written
    assert [r for r in sandbox.requests if r["method"] in ("POST", "PUT", "DELETE")] == []


def test_a_rename_never_trusts_offset_pages_that_shifted_while_read(sandbox):
    old = _hundred_old_ones(sandbox)
    vip = sandbox.zendesk.create_segment(name="VIP", user_type="staff")["id"]
    partners = sandbox.zendesk.create_segment(name="Partners", user_type="staff")["id"]
    housekeeping = _delete_one_while_page_two_is_held(sandbox, old[0])
    try:
        with pytest.raises(SegmentsError, match="changed while it was read"):
            ZendeskHelpCenterHook().update_user_segment(partners, name="VIP")
    finally:
        housekeeping.join()
    assert named(sandbox, "VIP") == [vip] and named(sandbox, "Partners") == [partners]


def test_a_rename_that_meets_a_segment_created_meanwhile_is_renamed_back(sandbox):
    partners = sandbox.zendesk.create_segment(name="Partners", user_type="staff")["id"]
    sandbox.inject_fault(f"/api/v2/help_center/user_segments/{partners}.json", delay=0.5, method="PUT")
    other: list[int] = []
    creator = threading.Timer(
        0.2, lambda: other.append(sandbox.zendesk.create_segment(name="VIP", user_type="staff")["id"])
    )
    creator.start()  # another client creates "VIP" while the rename is on its way
    try:
        with pytest.raises(SegmentExistsError, match=r"renamed it back to 'Partners'") as caught:
            ZendeskHelpCenterHook().update_user_segment(partners, name="VIP")
    finally:
        creator.join()
    assert str(other[0]) in str(caught.value)
    assert named(sandbox, "VIP") == other and named(sandbox, "Partners") == [partners]


def test_offset_pages_that_did_not_change_are_still_walked_whole(sandbox):
    old = _hundred_old_ones(sandbox)
    vip = sandbox.zendesk.create_segment(name="VIP", user_type="staff", tags=["vip"])["id"]
    result = ZendeskHelpCenterHook().create_user_segment("VIP", "staff", tags=["gold"])
    assert result["id"] == vip and named(sandbox, "VIP") == [vip] and len(old) == 100


# -- a retry after a look-up again that failed (hostile review 17) --------------------------------------
def test_a_rename_whose_look_up_again_failed_is_renamed_back_and_its_retry_refused(sandbox):
    partners = sandbox.zendesk.create_segment(name="Partners", user_type="staff")["id"]
    sandbox.inject_fault(f"/api/v2/help_center/user_segments/{partners}.json", delay=0.5, method="PUT")
    creator = threading.Timer(0.2, lambda: sandbox.zendesk.create_segment(name="VIP", user_type="staff"))
    sandbox.inject_fault(LIST, 503, method="GET", skip=1, count=2)  # the look-up after the rename fails
    creator.start()
    try:
        with pytest.raises(
            SegmentsError, match=r"was renamed, but looking its name up again failed.*renamed it back"
        ):
            ZendeskHelpCenterHook().update_user_segment(partners, name="VIP")
    finally:
        creator.join()
    sandbox.clear_faults()
    assert named(sandbox, "Partners") == [partners] and len(named(sandbox, "VIP")) == 1
    with pytest.raises(SegmentExistsError, match="Cannot rename"):  # the retry: the name is taken now
        ZendeskHelpCenterHook().update_user_segment(partners, name="VIP")
    assert named(sandbox, "Partners") == [partners]


def test_a_create_whose_look_up_again_failed_is_deleted_again(sandbox):
    from datetime import datetime, timedelta, timezone

    run_start = datetime.now(timezone.utc) - timedelta(seconds=5)
    sandbox.inject_fault(LIST, 503, method="GET", skip=1, count=2)  # the look-up after the create fails
    sandbox.inject_fault(LIST, delay=0.5, method="POST")
    creator = threading.Timer(
        0.2, lambda: sandbox.zendesk.create_segment(name="VIP", user_type="staff", tags=["other-dag"])
    )
    creator.start()
    try:
        with pytest.raises(
            SegmentsError, match=r"was created, but looking its name up again failed.*deleted it"
        ):
            ZendeskHelpCenterHook().create_user_segment(
                "VIP", "staff", tags=["gold"], created_after=run_start
            )
    finally:
        creator.join()
    sandbox.clear_faults()
    (left,) = named(sandbox, "VIP")  # its own was deleted: whether it had a twin was not known
    assert sandbox.zendesk.segment(left)["tags"] == ["other-dag"]


def test_a_walkme_create_retried_after_its_read_back_failed_deletes_its_own_twin(sandbox):
    from datetime import datetime, timedelta, timezone

    from airflow_provider_segments.hooks.walkme import WalkMeHook
    from airflow_provider_segments.testing import TEST_SYSTEM_GUID

    run_start = datetime.now(timezone.utc) - timedelta(seconds=5)
    segments = f"/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"
    sandbox.inject_fault(segments, delay=0.5, method="POST")
    creator = threading.Timer(
        0.2, lambda: sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "VIP", ["x"], external_id="other-dag")
    )
    sandbox.inject_fault(segments, 503, method="GET", skip=1, count=2)  # the read-back's look-up fails
    creator.start()
    token = "airflow-0123456789abcdef0123"
    try:
        with pytest.raises(SegmentsError, match="reading it back failed"):
            WalkMeHook().create_segment("VIP", ["a", "b"], creation_token=token, created_after=run_start)
    finally:
        creator.join()
    sandbox.clear_faults()
    with pytest.raises(SegmentExistsError, match="deleted it again"):
        WalkMeHook().create_segment("VIP", ["a", "b"], creation_token=token, created_after=run_start)
    (left,) = [s for s in sandbox.walkme.segments(TEST_SYSTEM_GUID) if s["name"] == "VIP"]
    assert sandbox.walkme.members(TEST_SYSTEM_GUID, left["guid"]) == ["x"]


def test_offset_pages_shifted_by_a_delete_and_a_create_keeping_the_count_are_refused(sandbox):
    """One segment deleted and one created by other clients keep the count: the offset walk is read
    once more and must list the same segments (hostile review 17)."""
    old = _hundred_old_ones(sandbox)
    vip = sandbox.zendesk.create_segment(name="VIP", user_type="staff", tags=["vip"])["id"]  # on page 2

    def other_clients() -> None:
        sandbox.zendesk.delete_segment(old[0])
        sandbox.zendesk.create_segment(name="Other", user_type="staff")

    sandbox.inject_fault(LIST, delay=1.0, method="GET", skip=1)  # page 2 is held; meanwhile, the change
    clients = threading.Timer(0.5, other_clients)
    clients.start()
    try:
        with pytest.raises(SegmentsError, match="changed while it was read"):
            ZendeskHelpCenterHook().list_user_segments(built_in=False)
    finally:
        clients.join()
    listed = [s["id"] for s in ZendeskHelpCenterHook().list_user_segments(built_in=False)]
    assert vip in listed and len(listed) == 101  # read again once nothing changes: whole


def test_a_twin_not_proven_this_tasks_is_never_deleted(sandbox):
    """Zendesk segments carry no creation token: one made since the run started holding what this
    create sends is only probably this task's. With another segment of the name, neither is
    deleted nor adopted: the task fails naming both (hostile review 19)."""
    from datetime import datetime, timedelta, timezone

    old = sandbox.zendesk.create_segment(name="VIP", user_type="staff", tags=["legacy"])["id"]
    run_start = datetime.now(timezone.utc) - timedelta(seconds=5)
    colleague = sandbox.zendesk.create_segment(name="VIP", user_type="staff", tags=["gold"])["id"]
    with pytest.raises(SegmentExistsError, match="refusing to guess") as caught:
        ZendeskHelpCenterHook().create_user_segment("VIP", "staff", tags=["gold"], created_after=run_start)
    assert str(old) in str(caught.value) and str(colleague) in str(caught.value)
    assert named(sandbox, "VIP") == sorted([old, colleague])
    assert [r for r in sandbox.requests if r["method"] in ("POST", "PUT", "DELETE")] == []


def test_a_rename_whose_read_back_failed_is_renamed_back_and_its_retry_refused(sandbox):
    """The rename's PUT lands but its read-back fails: it is taken back too, so the retry finds the
    name taken instead of the pair made (hostile review 20)."""
    partners = sandbox.zendesk.create_segment(name="Partners", user_type="staff")["id"]
    path = f"/api/v2/help_center/user_segments/{partners}.json"
    sandbox.inject_fault(path, delay=0.5, method="PUT")
    creator = threading.Timer(0.2, lambda: sandbox.zendesk.create_segment(name="VIP", user_type="staff"))
    sandbox.inject_fault(path, 503, method="GET", skip=1, count=2)  # the rename's read-back fails
    creator.start()
    try:
        with pytest.raises(SegmentsError, match="renamed it back to 'Partners'"):
            ZendeskHelpCenterHook().update_user_segment(partners, name="VIP")
    finally:
        creator.join()
    sandbox.clear_faults()
    assert named(sandbox, "Partners") == [partners]
    with pytest.raises(SegmentExistsError, match="Cannot rename"):
        ZendeskHelpCenterHook().update_user_segment(partners, name="VIP")
