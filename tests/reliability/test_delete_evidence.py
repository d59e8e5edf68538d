"""A delete is reported done only when the platform no longer lists the segment (hostile review
16): a DELETE answered 404 ("not found") is read back like one answered 204, so a wrong route, a
proxy or a firewall answering 404 never passes for a delete that landed. Each test asserts what the
sandbox holds and which requests it received."""

from __future__ import annotations

import pytest
from support import impatient_sandbox

from airflow_provider_segments.exceptions import SegmentsError, SegmentsNotFoundError
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.membership import writes
from airflow_provider_segments.operators.walkme import WalkMeDeleteSegmentOperator
from airflow_provider_segments.operators.zendesk import ZendeskDeleteUserSegmentOperator
from airflow_provider_segments.testing import TEST_SYSTEM_GUID

SEGMENTS = f"/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"
ZENDESK = "/api/v2/help_center/user_segments/"


@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setattr(writes, "DELETE_READ_INTERVAL", 0.01)
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.05)


def requests_to(sandbox, method: str, prefix: str) -> int:
    return sum(r["method"] == method and r["path"].startswith(prefix) for r in sandbox.requests)


def test_a_walkme_delete_answered_404_for_a_listed_segment_fails_saying_it_is_still_listed(sandbox):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Keep?", ["a", "b"])["guid"]
    sandbox.inject_fault(f"{SEGMENTS}/", 404, method="DELETE", body='{"message": "Not Found"}')
    with pytest.raises(SegmentsError, match=r"answered not found \(404\), but it is still listed") as caught:
        WalkMeDeleteSegmentOperator(task_id="d", segment_guid=guid).execute({})
    assert not isinstance(caught.value, SegmentsNotFoundError)
    assert [s["guid"] for s in sandbox.walkme.segments(TEST_SYSTEM_GUID)] == [guid]
    assert requests_to(sandbox, "DELETE", SEGMENTS) == 1  # not resent: its answer is not to be trusted


def test_a_zendesk_delete_answered_404_for_a_shown_segment_fails_saying_it_is_still_listed(sandbox):
    segment_id = sandbox.zendesk.create_segment(name="Partners", user_type="staff")["id"]
    sandbox.inject_fault(f"{ZENDESK}{segment_id}", 404, method="DELETE", body='{"error": "RecordNotFound"}')
    with pytest.raises(SegmentsError, match=r"answered not found \(404\), but it is still listed"):
        ZendeskDeleteUserSegmentOperator(task_id="d", user_segment_id=segment_id).execute({})
    assert sandbox.zendesk.segment(segment_id) is not None


def test_a_segment_really_gone_still_counts_as_deleted_or_not_found_as_asked(sandbox):
    gone = "12345aeb-123c-4d83-8b38-a5a456789d0a"
    assert WalkMeDeleteSegmentOperator(task_id="d", segment_guid=gone).execute({}) == gone
    with pytest.raises(SegmentsNotFoundError):
        ZendeskHelpCenterHook().delete_user_segment(999_999, missing_ok=False)
    assert ZendeskHelpCenterHook().delete_user_segment(999_999) == 999_999
