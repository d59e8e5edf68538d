"""Hostile review 30, on the Zendesk side: a delete through a wrong route, an unlisted
``added_user_ids``, a rename taken back, an answer echoing the token. Each test asserts what the
sandbox (the fake platform) holds, or what reached the task log."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta, timezone

import pytest
from support import impatient_sandbox, meanwhile, sandbox_conn_env

from airflow_provider_segments.exceptions import SegmentsError
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.membership import writes
from airflow_provider_segments.operators.zendesk import ZendeskDeleteUserSegmentOperator
from airflow_provider_segments.testing.zendesk import ZendeskApp

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
def test_a_rename_taken_back_also_takes_back_the_criteria_sent_with_it_or_says_they_stayed(
    sandbox, monkeypatch
):
    """An update renaming a segment and changing its tags meets a segment of the new name created
    meanwhile: the hook renames it back and fails saying "This task renamed it back" (read: the update
    was undone), but the tags it sent with the rename stay applied under the old name, and the
    rerun, refused by the twin, never puts them right."""
    partners = sandbox.zendesk.create_segment(name="Partners", user_type="staff", tags=["partner"])["id"]
    meanwhile(
        monkeypatch,
        ZendeskApp,
        "_update",
        lambda: sandbox.zendesk.create_segment(name="VIP", user_type="staff"),
    )
    with pytest.raises(SegmentsError, match="renamed it back") as caught:
        ZendeskHelpCenterHook().update_user_segment(partners, name="VIP", tags=["vip"])
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
    "holds exactly what this create sends", and compared the unlisted added_user_ids (None) with the
    ``[]`` it would send: its own segment was taken for another's, and if_exists="error" failed the
    retry with "already exists" (no retries). Recognised now; still, being made since the run
    started proves nothing (review 33: another DAG's of the same criteria), so added users nobody
    can count are replaced only once the guard allows it, as over any segment."""
    sandbox = zendesk_without_added_users
    run_start = datetime.now(timezone.utc) - timedelta(seconds=5)
    first_try = ZendeskHelpCenterHook().create_user_segment("VIP", "staff", tags=["vip"])  # then it died
    with pytest.raises(SegmentsError, match="does not list the segment's added_user_ids") as refused:
        ZendeskHelpCenterHook().create_user_segment(
            "VIP", "staff", tags=["vip"], if_exists="error", created_after=run_start
        )
    assert "already exists" not in str(refused.value)
    assert not [r for r in sandbox.requests if r["method"] == "PUT"]
    retry = ZendeskHelpCenterHook().create_user_segment(
        "VIP", "staff", tags=["vip"], if_exists="error", created_after=run_start, max_removal_fraction=None
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


def test_a_create_never_reports_success_over_added_users_it_did_not_clear(zendesk_without_added_users):
    """The same adoption where Zendesk lists ``added_user_ids`` nowhere (its document names no such
    field): a segment of this name made since the run started, with a user added, is taken for this
    task's own because "not listed" now reads as ``[]``; nothing is written and the create reports
    success while the segment keeps the user. docs/zendesk.md: a create leaves the segment "exactly
    as a fresh create with these arguments would make it ... added_user_ids ... cleared to []", and
    ``max_removal_fraction=None`` asked for that without counting. Before, the create sent
    ``added_user_ids: []``."""
    sandbox = zendesk_without_added_users
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
def test_a_rename_that_cannot_be_taken_back_says_the_criteria_sent_with_it_stayed(sandbox, monkeypatch):
    """Review 30's rule for a rename taken back: the criteria sent with it are put back, or the error
    says they stayed. When the old name was taken meanwhile too, the rename cannot be taken back, and
    the error says only "rename it by hand": the tags the update sent stay on the segment, no error
    names them, and the rerun is refused before it sends anything (the twin), so nothing ever says
    the tags changed."""
    partners = sandbox.zendesk.create_segment(name="Partners", user_type="staff", tags=["partner"])["id"]

    def others_meanwhile():
        sandbox.zendesk.create_segment(name="VIP", user_type="staff")
        sandbox.zendesk.create_segment(name="Partners", user_type="signed_in_users")

    meanwhile(monkeypatch, ZendeskApp, "_update", others_meanwhile)
    with pytest.raises(SegmentsError) as caught:
        ZendeskHelpCenterHook().update_user_segment(partners, name="VIP", tags=["vip"])
    held = sandbox.zendesk.segment(partners)
    assert held["tags"] == ["partner"] or "tags" in str(caught.value), (
        f"the segment keeps the tags sent with the rename ({held['tags']}, named {held['name']!r}) and "
        f"the error does not say so: {caught.value}"
    )


# == hostile review 33: the fixes of reviews 30 and 32 attacked ========================================
def _held(sandbox, segment_id):
    """What the server holds, whatever its answers show."""
    with sandbox.zendesk._lock:
        stored = sandbox.zendesk._segments[segment_id]
        return {
            "name": stored.name,
            "user_type": stored.user_type,
            "tags": list(stored.tags),
            "added_user_ids": list(stored.added_user_ids),
        }


# -- 1. a lost create adopts another DAG's segment and wipes it, without guards, under "error" -------
def test_a_lost_create_never_overwrites_another_dags_segment_of_that_name_without_the_guards(
    sandbox, monkeypatch
):
    """The create's answer is a 500 (Zendesk did not create it), and meanwhile another DAG created
    its own segment of that name, with other criteria and three added users. ``_landed`` returns the
    only match, neither owned (it holds something else: not this create's) nor disowned (made since
    the run started), and ``_replace(..., guards=None)`` (43a01bf) PUTs this create over it: the other
    DAG's tags and added users are wiped, although ``if_exists="error"`` and the default guards
    (``allow_empty=False``) were asked for. Before 43a01bf the guards at least refused emptying them."""
    from airflow_provider_segments.testing import zendesk as zendesk_app
    from airflow_provider_segments.testing.base import HttpError

    foreign = {}

    def create_meanwhile_then_fail(self, request):
        request.log["action"] = "create"
        if not foreign:
            foreign.update(
                self.create_segment(
                    name="VIP", user_type="signed_in_users", tags=["partner"], added_user_ids=[5, 6, 7]
                )
            )
        raise HttpError(500, {"error": "InternalError"})  # not applied; the client cannot know

    monkeypatch.setattr(zendesk_app.ZendeskApp, "_create", create_meanwhile_then_fail)
    run_start = datetime.now(timezone.utc) - timedelta(seconds=5)
    with contextlib.suppress(
        SegmentsError
    ):  # failing is right: the only segment of the name is another DAG's
        ZendeskHelpCenterHook().create_user_segment(
            "VIP", "staff", tags=["vip"], if_exists="error", created_after=run_start
        )
    held = _held(sandbox, foreign["id"])
    assert held["added_user_ids"] == [5, 6, 7] and held["tags"] == ["partner"], (
        f"another DAG's segment {foreign['id']} was overwritten by a create with if_exists='error' and "
        f"the default guards: it now holds {held}"
    )
    assert not [r for r in sandbox.requests if r.get("action") == "update"], "a PUT reached the segment"


# -- 2. where added users are not listed, another DAG's segment is "this task's own" and wiped -------
@pytest.mark.parametrize("if_exists", ["update", "error"])
def test_a_segment_whose_added_users_cannot_be_seen_keeps_them_unless_the_guards_allow(
    zendesk_without_added_users, if_exists
):
    """Where Zendesk lists no ``added_user_ids`` (docs: "not listed is unknown, never none"),
    ``holds_this_create`` reads the segment, sees nothing, and counts the unlisted field as holding
    the ``[]`` this create would send. So any segment of the name made since the run started with
    the same criteria (another DAG creating the same audience, an admin, a Zendesk clock a little
    ahead) is taken for this task's own, and ``_replace(..., guards=None)`` PUTs
    ``added_user_ids: []`` over users nobody could count, with the default guards
    (``allow_empty=False``, ``max_removal_fraction=0.5``) that refuse exactly this for any segment
    not proven this task's."""
    sandbox = zendesk_without_added_users
    run_start = datetime.now(timezone.utc) - timedelta(seconds=5)
    # another DAG (or an admin) made this audience since the run started, with two users added
    other = sandbox.zendesk.create_segment(
        name="VIP", user_type="staff", tags=["vip"], added_user_ids=[5, 6]
    )["id"]
    with contextlib.suppress(SegmentsError):  # failing is right: who would go cannot be counted
        ZendeskHelpCenterHook().create_user_segment(
            "VIP", "staff", tags=["vip"], created_after=run_start, if_exists=if_exists
        )
    assert _held(sandbox, other)["added_user_ids"] == [5, 6], (
        "the users added to a segment this task cannot prove its own were wiped, unguarded and uncounted"
    )


# -- 3. a rename taken back whose restore PUT lost its answer is reported as not taken back ----------
def test_a_rename_back_that_landed_unconfirmed_is_not_reported_as_left_as_sent(sandbox, monkeypatch):
    """A rename to 'VIP' with new tags meets a twin made meanwhile; the rename back (with the old
    tags) reaches Zendesk and is applied, but its answers are lost. ``rename_back`` calls
    ``put_checked`` without ``unverified``, so ``TakingBack.outcome`` says "Undoing it failed ...:
    rename it by hand and put back its tags, which stay as this task sent them" — while Zendesk
    already holds the old name and the old tags. The rename's own PUT says "may have landed" in
    this case; the rename back must too, not assert the opposite of what the segment holds."""
    partners = sandbox.zendesk.create_segment(name="Partners", user_type="staff", tags=["partner"])["id"]
    # the rename back (the rename is the first PUT): applied, answer lost, on every attempt the client makes
    sandbox.inject_fault(f"{SEGMENTS}/{partners}.json", method="PUT", lose_response=True, skip=1, count=5)
    meanwhile(
        monkeypatch,
        ZendeskApp,
        "_update",
        lambda: sandbox.zendesk.create_segment(name="VIP", user_type="staff"),
    )
    with pytest.raises(SegmentsError) as caught:
        ZendeskHelpCenterHook().update_user_segment(partners, name="VIP", tags=["vip"])
    held = _held(sandbox, partners)
    assert held["name"] == "Partners" and held["tags"] == ["partner"], held  # the rename back landed
    message = str(caught.value)
    assert "which stay as this task sent them" not in message, (
        f"the error says the tags stay as sent, but Zendesk holds the old name and tags: {message}"
    )


# -- 5. a lost create that landed beside a twin says "Nothing was written" and leaves its duplicate ---
def test_a_lost_create_that_landed_beside_a_twin_does_not_say_nothing_was_written(sandbox, monkeypatch):
    """The create is applied but answered 500, and another DAG made a segment of the same name
    meanwhile. ``_landed`` finds the two, takes the one holding this create for "likely this task's"
    and ``_refuse_twins`` fails the task, without retries, with "Nothing was written; delete the
    extra, then rerun": but this task's create made one of the two (its content is exactly what was
    sent, made a moment ago), and it is left in place as a duplicate of the other DAG's name. The
    normal create path deletes its own segment in this case (check_written_name); the lost-create
    path leaves it and tells the user nothing was written, so the user deletes "the extra" (the other
    DAG's?) or nothing, and every rerun meets the pair."""
    from airflow_provider_segments.testing import zendesk as zendesk_app
    from airflow_provider_segments.testing.base import HttpError

    created = zendesk_app.ZendeskApp._create

    def applied_beside_a_twin_then_500(self, request):
        created(self, request)  # applied
        self.create_segment(name="VIP", user_type="signed_in_users", tags=["partner"])
        raise HttpError(500, {"error": "InternalError"})

    monkeypatch.setattr(zendesk_app.ZendeskApp, "_create", applied_beside_a_twin_then_500)
    run_start = datetime.now(timezone.utc) - timedelta(seconds=5)
    with pytest.raises(SegmentsError) as caught:
        ZendeskHelpCenterHook().create_user_segment("VIP", "staff", tags=["vip"], created_after=run_start)
    named_vip = [s["id"] for s in sandbox.zendesk.segments() if s["name"] == "VIP"]
    assert "Nothing was written" not in str(caught.value), (
        f"the task's own create landed (Zendesk holds {named_vip} named 'VIP'), but the error says "
        f"nothing was written: {caught.value}"
    )


# == hostile review 34: the fixes of review 33 attacked =============================================
def test_a_lost_create_that_landed_is_not_reported_as_nothing_sent(zendesk_without_added_users):
    """A plain create (no added users, default guards) on a Zendesk that lists no added_user_ids:
    the POST is applied and its answer lost. The look-up finds the segment (this create's own: the
    name was free before it, and nothing listed contradicts it), and the guards, applied to it by
    the fix of review 33, refused "nothing was sent" without retries, on every rerun too. Its added
    users are the ones this create sent: it is made exact and succeeds."""
    sandbox = zendesk_without_added_users
    sandbox.inject_fault(SEGMENTS, method="POST", lose_response=True, count=5)
    run_start = datetime.now(timezone.utc) - timedelta(seconds=5)
    result = ZendeskHelpCenterHook().create_user_segment(
        "VIP", "staff", tags=["vip"], created_after=run_start
    )
    made = [s for s in sandbox.zendesk.segments() if s["name"] == "VIP"]
    assert [s["id"] for s in made] == [result["id"]] and made[0]["tags"] == ["vip"]


def test_a_walkme_lost_create_beside_a_twin_does_not_blame_an_earlier_try(sandbox, monkeypatch):
    """05d2f8d passes this_try_created=True to _refuse_twins from _landed, but only the Zendesk
    branch (not proven) reads it. On WalkMe the lost create is proven by its token, and the error
    names it "made by an earlier try": this is the first and only try, whose own create landed
    beside another DAG's segment of that name (this try then deleted it)."""

    from airflow_provider_segments.hooks.walkme import WalkMeHook
    from airflow_provider_segments.testing import TEST_SYSTEM_GUID
    from airflow_provider_segments.testing.walkme import WalkMeApp

    created = WalkMeApp._create

    def applied_beside_a_twin(self, request, system, payload):
        answer = created(self, request, system, payload)
        self.create_segment(TEST_SYSTEM_GUID, "Audience", ["x"])  # another DAG, at the same moment
        return answer

    monkeypatch.setattr(WalkMeApp, "_create", applied_beside_a_twin)
    sandbox.inject_fault("/public/", method="POST", lose_response=True, count=1)
    with pytest.raises(SegmentsError) as caught:
        WalkMeHook().create_segment("Audience", ["a", "b"], system_guid=TEST_SYSTEM_GUID)
    assert "earlier try" not in str(caught.value), (
        f"the only try's own lost create is blamed on an earlier try: {caught.value}"
    )


# == hostile review 35 ==================================================================================
def _listing_without_added_users(monkeypatch):
    """A listing that leaves added_user_ids out; the show lists them (the case _replace expects)."""
    from airflow_provider_segments.testing import zendesk_store

    listed = zendesk_store.ZendeskStore.segments

    def segments(self):
        return [{k: v for k, v in s.items() if k != "added_user_ids"} for s in listed(self)]

    monkeypatch.setattr(zendesk_store.ZendeskStore, "segments", segments)


def _create_meanwhile_then_500(monkeypatch, **foreign_fields):
    from airflow_provider_segments.testing import zendesk as zendesk_app
    from airflow_provider_segments.testing.base import HttpError

    foreign = {}

    def create(self, request):
        request.log["action"] = "create"
        if not foreign:
            foreign.update(self.create_segment(**foreign_fields))
        raise HttpError(500, {"error": "InternalError"})  # not applied

    monkeypatch.setattr(zendesk_app.ZendeskApp, "_create", create)
    return foreign


# -- 1. a foreign segment whose listing hides its added users is taken for the lost create's ------
def test_a_lost_create_never_wipes_the_added_users_the_show_lists_on_another_dags_segment(
    sandbox, monkeypatch
):
    _listing_without_added_users(monkeypatch)
    foreign = _create_meanwhile_then_500(
        monkeypatch, name="VIP", user_type="staff", tags=["vip"], added_user_ids=[5, 6, 7]
    )
    run_start = datetime.now(timezone.utc) - timedelta(seconds=5)
    with contextlib.suppress(SegmentsError):  # failing is right: that segment holds other users
        ZendeskHelpCenterHook().create_user_segment(
            "VIP", "staff", tags=["vip"], if_exists="error", created_after=run_start
        )
    assert _held(sandbox, foreign["id"])["added_user_ids"] == [5, 6, 7], (
        "another DAG's segment, whose show lists 3 added users this create never sent, was taken for "
        "the lost create's and its added users wiped, unguarded, under if_exists='error'"
    )


# -- 2. WalkMe: a segment with no external id is taken for the lost create's (token sent) ---------
def test_a_walkme_lost_create_never_overrides_a_segment_without_its_token(sandbox, monkeypatch):
    from airflow_provider_segments.hooks.walkme import WalkMeHook
    from airflow_provider_segments.testing import TEST_SYSTEM_GUID
    from airflow_provider_segments.testing.base import HttpError
    from airflow_provider_segments.testing.walkme import WalkMeApp

    foreign = {}

    def create(self, request, system, payload):
        request.log["action"] = "create"
        if not foreign:  # an admin made it in the UI (no external id) as this create went out
            foreign.update(self.create_segment(TEST_SYSTEM_GUID, "Audience", [f"u{i}" for i in range(100)]))
        raise HttpError(500, {"message": "internal"})  # this create was not applied

    monkeypatch.setattr(WalkMeApp, "_create", create)
    with contextlib.suppress(SegmentsError):
        WalkMeHook().create_segment("Audience", ["a", "b"], system_guid=TEST_SYSTEM_GUID)
    members = sandbox.walkme.members(TEST_SYSTEM_GUID, foreign["guid"])
    assert len(members) == 100, (
        f"an admin's segment with no external id (this create sent its token) was taken for the lost "
        f"create's and overridden, its 100 members replaced by {members}, without the removal guard"
    )


# -- 3. a retry never recognises its own segment with added users when the listing leaves them out -
def test_a_retried_create_with_added_users_recognises_its_own_segment_when_the_listing_hides_them(
    sandbox, monkeypatch
):
    _listing_without_added_users(monkeypatch)
    run_start = datetime.now(timezone.utc) - timedelta(seconds=5)
    hook = ZendeskHelpCenterHook()
    first_try = hook.create_user_segment(  # then the worker died before the task was marked done
        "VIP", "staff", tags=["vip"], added_user_ids=[1, 2], if_exists="error", created_after=run_start
    )
    try:
        retry = hook.create_user_segment(
            "VIP", "staff", tags=["vip"], added_user_ids=[1, 2], if_exists="error", created_after=run_start
        )
    except SegmentsError as err:
        pytest.fail(f"the retry does not recognise its own first try's segment {first_try['id']}: {err}")
    assert retry["id"] == first_try["id"]
