"""Hostile review 40: the changes of review 39 (guard refusal text, _GUARD_ON_RERUN, the answered
time made unknown, shown_location).

Each test fails on the code as reviewed; each asserts what the sandbox holds, what a task returned,
or what a text (error, lineage URI) holds."""

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


@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.0)


BEFORE = [f"a{i}" for i in range(10)]


# == 1. LatestAnsweredTime: one write "not read" switches the other-client check off for the whole hook ==
@pytest.mark.parametrize("answer", ["unreadable", "without-a-time"])
def test_a_create_answered_unreadably_still_catches_another_clients_edit_after_its_override(
    sandbox, monkeypatch, answer
):
    """WalkMe answers the create in a way the hook cannot read (here a member count that is not a
    number): the hook notes "time unknown", looks the segment up, overrides its first chunk and adds
    the rest, each answered with an update time. Another client then swaps one member (the count
    stays). The create was answered before the override was sent, so its unknown time cannot be
    later than the override's: before review 39 the read-back caught the swap (listed time later
    than the last answered write). Now the one unknown time switches that check off for every
    later write of the hook: the task reports verified success with a member that is not the input."""
    create = fake_walkme.WalkMeApp._create

    def unreadable(self, request, system, payload):
        response = create(self, request, system, payload)
        body = json.loads(response.body)
        if answer == "unreadable":
            body["usersCount"] = "six"  # normalize_segment refuses it: "answered in a way not read"
        else:  # (the owner's follow-up: a create answered without a time is the same class)
            body.pop("updatedAt")
        return fake_walkme.json_response(response.status, body)

    monkeypatch.setattr(fake_walkme.WalkMeApp, "_create", unreadable)

    put_users = WalkMeHook.put_users
    adds = {"n": 0}

    def then_an_admin_swaps(self, system, guid, action, user_ids, **kwargs):
        put_users(self, system, guid, action, user_ids, **kwargs)
        if action == "add":
            adds["n"] += 1
            if adds["n"] == 2:  # the task's last write answered: another client swaps one member
                admin = WalkMeHook()
                put_users(admin, system, guid, "remove", ["u0"])
                put_users(admin, system, guid, "add", ["intruder"])

    monkeypatch.setattr(WalkMeHook, "put_users", then_an_admin_swaps)
    wanted = [f"u{i}" for i in range(6)]
    outcome = _outcome(
        lambda: WalkMeHook(max_parallel_requests=1).create_segment(
            "Audience", wanted, system_guid=TEST_SYSTEM_GUID
        )
    )
    assert adds["n"] == 2, outcome
    members = _members(sandbox)
    assert members != set(wanted)  # (the swap landed: "intruder" in, "u0" out)
    assert not isinstance(outcome, dict), f"reported success with members {sorted(members)}: {outcome!r}"


# == 2. the sync guard's refusal blames an unfinished run that took nothing out ===========================
def test_the_refusal_does_not_blame_an_unfinished_run_that_removed_nothing(sandbox, tmp_path):
    """A full sync (after an out-of-band add) fails on its first write: WalkMe refuses the override
    (400), nothing changed, the journal stays. The next run gets a truncated export (3 of the 11
    members: a failed export, exactly what the guard is for). The guard refuses, and review 39's
    text says the members WalkMe lists "may be what that run left" and to "rerun once with
    max_removal_fraction=1.0" if nobody else changed the segment. Nobody did, and WalkMe still lists
    11 members, more than the snapshot's 10: the failed run took none out. The advice, followed,
    removes 8 of the 11 members on a broken export."""
    state = tmp_path / "audience.snapshot"
    _sync(state, BEFORE, max_parallel_requests=1)
    (segment,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    WalkMeHook().update_segment(segment["guid"], "add", ["someone-else"])  # the next run is full
    sandbox.inject_fault(f"{SEGMENTS}/", 400, method="PUT")  # the override refused: nothing lands
    with pytest.raises(SegmentsError):
        _sync(state, [*BEFORE, "n0"], max_parallel_requests=1)
    sandbox.clear_faults()
    assert len(_members(sandbox)) == 11  # untouched by the failed run

    refused = _outcome(lambda: _sync(state, BEFORE[:3], max_parallel_requests=1))
    assert "nothing was sent" in refused, refused
    assert "may be what that run left" not in refused, refused
    assert "rerun once with max_removal_fraction=1.0" not in refused, refused


# == 3. _GUARD_ON_RERUN: an override caveat in failures that sent no override =============================
def test_a_failed_delta_does_not_put_its_reruns_refusal_on_an_override_it_never_sent(sandbox, tmp_path):
    """A delta sync (remove 5 of 10, allowed: 50 %) fails after its first remove chunk landed.
    Its error says the rerun converges, with the caveat "(where an override landed, the rerun's
    removal guard may refuse ...)": no override was sent, so a reader takes the caveat as not
    his. The rerun is refused all the same (5 left out of the 8 WalkMe lists: 62 %)."""
    state = tmp_path / "audience.snapshot"
    _sync(state, BEFORE, max_parallel_requests=1)
    sandbox.inject_fault(f"{SEGMENTS}/", 400, method="PUT", skip=1)  # first remove lands, next refused
    failed = _outcome(lambda: _sync(state, BEFORE[:5], max_parallel_requests=1))
    sandbox.clear_faults()
    assert len(_members(sandbox)) == 8, failed
    rerun = _outcome(lambda: _sync(state, BEFORE[:5], max_parallel_requests=1))
    assert "nothing was sent" in rerun, rerun  # (the rerun is refused)
    assert "where an override landed" not in failed, failed


def test_a_failed_add_does_not_speak_of_an_override_or_a_removal_guard(sandbox):
    """An ``add`` in three chunks fails at the second: the error carries the sync's caveat about an
    override that landed and the rerun's removal guard; an add sends no override and its rerun has
    no removal guard."""
    guid = WalkMeHook().create_segment("Audience", ["x0"], system_guid=TEST_SYSTEM_GUID)["segment_guid"]
    sandbox.inject_fault(f"{SEGMENTS}/", 400, method="PUT", skip=1)
    failed = _outcome(
        lambda: WalkMeHook(max_parallel_requests=1).update_segment(
            guid, "add", [f"u{i}" for i in range(6)], system_guid=TEST_SYSTEM_GUID
        )
    )
    assert "PartialUpdateError" in failed, failed
    assert "override" not in failed, failed


# == 4. shown_location ==================================================================================
LEAKING = [
    # a human password "P@ss/word-2026": urlsplit ends the host at its '/', so its host part is
    # "deploy:P@ss"; what follows its last '@' ("ss") is taken for the host and the path shown:
    # "sftp://ss/word-2026@files.example.com/...". (Review 38 showed "sftp://files.example.com/...".)
    pytest.param(
        "sftp://deploy:P@ss/word-2026@files.example.com/segments/s", "word-2026", id="at-then-slash"
    ),
    # Zendesk's own Basic user "{email}/token" with its API token: the '/' is in the user, so the host
    # part ("agent@acme.example") holds no ':' and the whole "token:<api token>@host" is shown.
    pytest.param(
        "https://agent@acme.example/token:Zd-ApiToken-77@files.example.com/ids.csv",
        "Zd-ApiToken-77",
        id="zendesk-user-slash-token",
    ),
    pytest.param(
        "https://agent%40acme.example/token:Zd-ApiToken-77@files.example.com/ids.csv",
        "Zd-ApiToken-77",
        id="zendesk-user-encoded-at",
    ),
]


@pytest.mark.parametrize(("location", "secret"), LEAKING)
def test_a_uri_credential_is_not_quoted_in_a_refused_path(monkeypatch, location, secret):
    from support import walkme_conn_json

    from airflow_provider_segments.operators.walkme import WalkMeCreateSegmentOperator

    monkeypatch.setenv("AIRFLOW_CONN_WALKME_DEFAULT", walkme_conn_json(host="http://127.0.0.1:9"))
    task = WalkMeCreateSegmentOperator(task_id="c", name="VIP", user_ids_path=location + "\t")
    with pytest.raises(Exception) as caught:
        task.execute({})
    message = str(caught.value)
    assert "path" in message
    assert secret not in message, message


@pytest.mark.parametrize(("location", "secret"), LEAKING)
def test_a_uri_credential_is_not_in_lineage(location, secret):
    from airflow_provider_segments.ids import IdSource
    from airflow_provider_segments.lineage import walkme_change

    result = {"system_guid": TEST_SYSTEM_GUID, "segment_guid": "12345aeb-123c-4d83-8b38-a5a456789d0a"}
    uri = walkme_change(IdSource(path=location), result).input_uri
    assert secret not in uri, uri


def test_lineage_of_files_on_an_ipv6_host_holding_an_at_sign_keeps_their_names():
    """An object store at an IPv6 address on its default port (``https://[2001:db8::10]/...``) and an
    export named ``users@<date>.csv``: the host holds ':' and no port follows its last ':' ("10]"),
    and an '@' comes later in the path, so review 39 shows ``https://***``: every such file of every
    bucket is one lineage dataset, and every message about it names no file."""
    from airflow_provider_segments.ids import IdSource
    from airflow_provider_segments.lineage import walkme_change

    result = {"system_guid": TEST_SYSTEM_GUID, "segment_guid": "12345aeb-123c-4d83-8b38-a5a456789d0a"}
    first_path = "https://[2001:db8::10]/crm-exports/users@2024-05-01.csv"
    first = walkme_change(IdSource(path=first_path), result).input_uri
    second = walkme_change(
        IdSource(path="https://[2001:db8::10]/archive/users@2023-01-01.csv"), result
    ).input_uri
    assert first == first_path, (first, second)
    assert first != second, (first, second)
