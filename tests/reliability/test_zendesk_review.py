"""Hostile review 30, on the Zendesk side: a delete through a wrong route, an unlisted
``added_user_ids``, a rename taken back, an answer echoing the token. Each test asserts what the
sandbox (the fake platform) holds, or what reached the task log."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from support import impatient_sandbox, sandbox_conn_env

from airflow_provider_segments.exceptions import SegmentsError
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.membership import writes
from airflow_provider_segments.operators.zendesk import ZendeskDeleteUserSegmentOperator

SEGMENTS = "/api/v2/help_center/user_segments"


@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setattr(writes, "DELETE_READ_INTERVAL", 0.01)
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.05)


def _zendesk_at(monkeypatch, url: str) -> None:
    """Point zendesk_help_center_default at ``url`` (the sandbox's credentials)."""
    env = sandbox_conn_env(url, timeout=1, max_attempts=2)
    name = "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT"
    monkeypatch.setenv(name, env[name])


# -- 1. a delete whose every answer is a 404 of a wrong route is reported done ----------------------
def test_a_zendesk_delete_through_a_wrong_route_is_not_reported_done_while_the_segment_exists(
    sandbox, monkeypatch
):
    """A base URL with a path that is no Help Center route (the API prefix pasted into the host, a
    gateway that answers 404 for what it does not route) answers 404 to the delete, and 404 to the
    read-back: the hook takes the read-back's 404 for "gone" and reports the segment deleted."""
    segment_id = sandbox.zendesk.create_segment(name="Partners", user_type="staff")["id"]
    _zendesk_at(monkeypatch, f"{sandbox.url}/api/v2")  # every path becomes /api/v2/api/v2/help_center/...
    try:
        ZendeskDeleteUserSegmentOperator(task_id="d", user_segment_id=segment_id).execute({})
    except SegmentsError:
        pass  # failing is right: nothing was deleted
    else:
        assert sandbox.zendesk.segment(segment_id) is None, (
            "the task reported the segment deleted, but Zendesk still holds it"
        )


# -- 2. a create answered with the token as its id logs the token --------------------------------------
ECHOED_TOKEN = "zdoauthtoken7f3a9c2e5b8d1f4a6c0e9b2d7a5f3c1e"


def test_a_create_answered_with_the_token_as_its_id_keeps_it_out_of_the_task_log(monkeypatch, caplog, capsys):
    """The create's answer is logged ("Created Zendesk user segment 'VIP' (id ...)") before its id is
    validated; an answer echoing the OAuth token as the id puts the token in the task log (the
    error that follows redacts it)."""
    import logging

    from local_servers import Answer, LocalServer
    from support import zendesk_conn_json

    caplog.set_level(logging.DEBUG)

    def answer(request):
        if request.method == "POST":
            return Answer(201, json.dumps({"user_segment": {"id": ECHOED_TOKEN, "name": "VIP"}}))
        return Answer(200, json.dumps({"user_segments": [], "meta": {"has_more": False}}))

    with LocalServer(answer) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT",
            zendesk_conn_json(host=server.url, login=None, password=ECHOED_TOKEN, auth_type="oauth_token"),
        )
        with pytest.raises(SegmentsError) as caught:
            ZendeskHelpCenterHook().create_user_segment("VIP", "staff")
    assert ECHOED_TOKEN not in str(caught.value)
    logged = capsys.readouterr().out + caplog.text
    assert ECHOED_TOKEN not in logged, "the OAuth token is in the task log"


# -- 3. a rename taken back leaves the criteria sent with it, and says it was undone --------------------
def test_a_rename_taken_back_also_takes_back_the_criteria_sent_with_it_or_says_they_stayed(sandbox):
    """An update renaming a segment and changing its tags meets a segment of the new name created
    meanwhile: the hook renames it back and fails saying "This task renamed it back" (read: the update
    was undone), but the tags it sent with the rename stay applied under the old name, and the
    rerun, refused by the twin, never puts them right."""
    import threading

    partners = sandbox.zendesk.create_segment(name="Partners", user_type="staff", tags=["partner"])["id"]
    sandbox.inject_fault(f"{SEGMENTS}/{partners}.json", delay=0.5, method="PUT")
    creator = threading.Timer(0.2, lambda: sandbox.zendesk.create_segment(name="VIP", user_type="staff"))
    creator.start()
    try:
        with pytest.raises(SegmentsError, match="renamed it back") as caught:
            ZendeskHelpCenterHook().update_user_segment(partners, name="VIP", tags=["vip"])
    finally:
        creator.join()
    held = sandbox.zendesk.segment(partners)
    assert held["name"] == "Partners"
    assert held["tags"] == ["partner"] or "tags" in str(caught.value), (
        f"the segment keeps the tags of the update taken back ({held['tags']}) and the error does not "
        f"say so: {caught.value}"
    )


# -- 4. where Zendesk does not list added_user_ids, a create over a name never succeeds ----------------
@pytest.fixture
def zendesk_without_added_users(sandbox, monkeypatch):
    """The sandbox playing a Zendesk that lists no ``added_user_ids`` (its User Segments document
    names no such field)."""
    from airflow_provider_segments.testing import zendesk_store

    shown = zendesk_store.StoredSegment.to_json

    def to_json(self):
        segment = shown(self)
        segment.pop("added_user_ids")
        return segment

    monkeypatch.setattr(zendesk_store.StoredSegment, "to_json", to_json)
    return sandbox


def test_a_create_over_a_name_goes_through_with_the_check_off_where_added_users_are_not_listed(
    zendesk_without_added_users,
):
    """docs/zendesk.md: where Zendesk does not list added_user_ids, a create over an existing name is
    refused "unless max_removal_fraction=1.0 (or None)". With the check off, the PUT goes out with
    ``added_user_ids: []`` (a create clears what it leaves out) and the read-back then compares that
    field, which Zendesk does not list, with ``[]``: MembershipMismatchError on every try, after each
    try wrote the segment."""
    sandbox = zendesk_without_added_users
    vip = sandbox.zendesk.create_segment(name="VIP", user_type="staff", tags=["old"])["id"]
    result = ZendeskHelpCenterHook().create_user_segment(
        "VIP", "staff", tags=["new"], max_removal_fraction=None
    )
    assert result["id"] == vip
    assert sandbox.zendesk.segment(vip)["tags"] == ["new"]


def test_a_retried_create_recognises_its_own_segment_where_added_users_are_not_listed(
    zendesk_without_added_users,
):
    """The same root: a create's retry recognises the segment its first try made by a content that
    "holds exactly what this create sends", and compares the unlisted added_user_ids (None) with the
    ``[]`` it would send: its own segment is taken for another's, and if_exists="error" fails the
    retry with "already exists" (no retries) although that segment is exactly what was asked."""
    sandbox = zendesk_without_added_users
    run_start = datetime.now(timezone.utc) - timedelta(seconds=5)
    first_try = ZendeskHelpCenterHook().create_user_segment("VIP", "staff", tags=["vip"])  # then it died
    retry = ZendeskHelpCenterHook().create_user_segment(
        "VIP", "staff", tags=["vip"], if_exists="error", created_after=run_start
    )
    assert retry["id"] == first_try["id"]
    assert [s["id"] for s in sandbox.zendesk.segments() if s["name"] == "VIP"] == [first_try["id"]]


# == hostile review 32: the fixes of review 30 attacked =============================================
# -- 1. a create adopts, unwritten, a segment whose listing hides its added users -----------------
def test_a_create_over_a_segment_whose_listing_hides_added_users_makes_it_exact(sandbox, monkeypatch):
    """A listing that leaves ``added_user_ids`` out (the hook itself expects one: ``_replace`` asks
    the segment when "a list answer may leave them out") now counts as holding ``[]``, so a segment of
    this name made since the run started is taken for this task's own and only read back, never
    written. The show lists the user added to it, the read-back fails "Someone changed it meanwhile
    ... Rerun it", and every rerun adopts and fails the same way. Before, the create made it exact
    (``added_user_ids: []``, allowed by ``allow_empty=True``)."""
    from airflow_provider_segments.testing import zendesk_store

    listed = zendesk_store.ZendeskStore.segments

    def listing_without_added_users(self):
        return [{k: v for k, v in s.items() if k != "added_user_ids"} for s in listed(self)]

    monkeypatch.setattr(zendesk_store.ZendeskStore, "segments", listing_without_added_users)
    run_start = datetime.now(timezone.utc) - timedelta(seconds=5)
    # made since the run started: the first try's segment, to which an admin then added user 5
    vip = sandbox.zendesk.create_segment(name="VIP", user_type="staff", tags=["vip"], added_user_ids=[5])[
        "id"
    ]
    hook = ZendeskHelpCenterHook()
    for _ in range(2):  # the try, and the rerun its error asks for
        try:
            result = hook.create_user_segment(
                "VIP",
                "staff",
                tags=["vip"],
                created_after=run_start,
                allow_empty=True,
                max_removal_fraction=None,
            )
        except SegmentsError as err:
            caught = err
            continue
        assert result["id"] == vip
        break
    else:
        pytest.fail(f"every try fails, the segment never made exact: {caught}")
    assert sandbox.zendesk.segment(vip)["added_user_ids"] == [], "the create's cleared field was never sent"


def test_a_create_never_reports_success_over_added_users_it_did_not_clear(sandbox, monkeypatch):
    """The same adoption where Zendesk lists ``added_user_ids`` nowhere (its document names no such
    field): a segment of this name made since the run started, with a user added, is taken for this
    task's own because "not listed" now reads as ``[]``; nothing is written and the create reports
    success while the segment keeps the user. docs/zendesk.md: a create leaves the segment "exactly
    as a fresh create with these arguments would make it ... added_user_ids ... cleared to []", and
    ``max_removal_fraction=None`` asked for that without counting. Before, the create sent
    ``added_user_ids: []``."""
    from airflow_provider_segments.testing import zendesk_store

    shown = zendesk_store.StoredSegment.to_json

    def to_json(self):
        segment = shown(self)
        segment.pop("added_user_ids")
        return segment

    monkeypatch.setattr(zendesk_store.StoredSegment, "to_json", to_json)
    run_start = datetime.now(timezone.utc) - timedelta(seconds=5)
    vip = sandbox.zendesk.create_segment(name="VIP", user_type="staff", tags=["vip"], added_user_ids=[5])[
        "id"
    ]

    def held_added_users():
        with sandbox.zendesk._lock:
            return list(sandbox.zendesk._segments[vip].added_user_ids)

    try:
        ZendeskHelpCenterHook().create_user_segment(
            "VIP", "staff", tags=["vip"], created_after=run_start, allow_empty=True, max_removal_fraction=None
        )
    except SegmentsError:
        return  # failing is right: the added users were not cleared
    assert held_added_users() == [], (
        f"the create reported success; the segment keeps added_user_ids {held_added_users()}, never sent []"
    )
    writes_sent = [r for r in sandbox.requests if r.get("action") in ("create", "update")]
    assert writes_sent, "nothing was written"


# -- 2. an update clearing a documented list field passes a read-back that cannot see it ----------------
def test_an_update_clearing_tags_is_not_reported_done_when_zendesk_does_not_list_tags(sandbox, monkeypatch):
    """``differences`` now takes any unlisted list field for ``[]``, not only ``added_user_ids`` (the
    one field its docstring says Zendesk's document does not name). A server that neither lists nor
    applies ``tags`` (an older API, a proxy's rewrite) gets ``tags: []`` from an update, keeps the
    tags, and the hook reports the update verified. Before, the read-back failed it: ``tags (not
    listed) (sent [])``."""
    from airflow_provider_segments.testing import zendesk as zendesk_app
    from airflow_provider_segments.testing import zendesk_store

    shown = zendesk_store.StoredSegment.to_json
    validated = zendesk_app.validate_segment

    def to_json(self):
        segment = shown(self)
        segment.pop("tags")
        return segment

    def ignoring_tags(fields, *, creating):
        changes = validated(fields, creating=creating)
        changes.pop("tags", None)
        return changes

    monkeypatch.setattr(zendesk_store.StoredSegment, "to_json", to_json)
    monkeypatch.setattr(zendesk_app, "validate_segment", ignoring_tags)
    vip = sandbox.zendesk.create_segment(name="VIP", user_type="staff", tags=["vip"])["id"]

    def held_tags():  # what the server holds (its answers no longer show tags)
        with sandbox.zendesk._lock:
            return list(sandbox.zendesk._segments[vip].tags)

    try:
        ZendeskHelpCenterHook().update_user_segment(vip, tags=[])
    except SegmentsError as err:
        assert "tags" in str(err)
    else:
        assert held_tags() == [], (
            f"the update was reported verified, but the segment keeps tags {held_tags()}"
        )


# -- 5. a rename that cannot be taken back says nothing of the criteria sent with it --------------
def test_a_rename_that_cannot_be_taken_back_says_the_criteria_sent_with_it_stayed(sandbox):
    """Review 30's rule for a rename taken back: the criteria sent with it are put back, or the error
    says they stayed. When the old name was taken meanwhile too, the rename cannot be taken back, and
    the error says only "rename it by hand": the tags the update sent stay on the segment, no error
    names them, and the rerun is refused before it sends anything (the twin), so nothing ever says
    the tags changed."""
    import threading

    partners = sandbox.zendesk.create_segment(name="Partners", user_type="staff", tags=["partner"])["id"]
    sandbox.inject_fault(f"{SEGMENTS}/{partners}.json", delay=0.5, method="PUT")

    def others_meanwhile():
        sandbox.zendesk.create_segment(name="VIP", user_type="staff")
        sandbox.zendesk.create_segment(name="Partners", user_type="signed_in_users")

    creator = threading.Timer(0.2, others_meanwhile)
    creator.start()
    try:
        with pytest.raises(SegmentsError) as caught:
            ZendeskHelpCenterHook().update_user_segment(partners, name="VIP", tags=["vip"])
    finally:
        creator.join()
    held = sandbox.zendesk.segment(partners)
    assert held["tags"] == ["partner"] or "tags" in str(caught.value), (
        f"the segment keeps the tags sent with the rename ({held['tags']}, named {held['name']!r}) and "
        f"the error does not say so: {caught.value}"
    )
