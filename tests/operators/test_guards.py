"""Mass-change guards: an empty or collapsed audience sends nothing and says why, on every input path
(list, XCom, local file, CSV, object storage); ``allow_empty`` / a raised ``max_removal_fraction`` let
it through. Asserted on the sandbox: what it holds and which writes it received."""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeSyncSegmentOperator,
    WalkMeUpdateSegmentOperator,
)
from airflow_provider_segments.operators.zendesk import (
    ZendeskCreateUserSegmentOperator,
    ZendeskUpdateUserSegmentOperator,
)
from airflow_provider_segments.testing import TEST_SYSTEM_GUID

BEFORE = [f"member{i}" for i in range(10)]


def _list(ids, tmp_path):
    return {"user_ids": list(ids)}


def _xcom(ids, tmp_path):  # an XCom pulled by a template without native rendering: a JSON string
    return {"user_ids": json.dumps(list(ids))}


def _file(ids, tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"{i}\n" for i in ids) or "\n\n")  # empty: blank lines only
    return {"user_ids_path": str(path)}


def _csv(ids, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("email,plan\n" + "".join(f"{i},pro\n" for i in ids))
    return {"user_ids_path": str(path), "user_ids_column": "email"}


def _object_storage(ids, tmp_path):
    path = tmp_path / "bucket" / "ids.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(f"{i}\n" for i in ids))  # empty: a 0-byte object
    return {"user_ids_path": f"file://{path}"}


INPUTS = [_list, _xcom, _file, _csv, _object_storage]


def _writes(sandbox) -> list[str]:
    return [r["action"] for r in sandbox.requests if r.get("action")]


def _members(sandbox, guid) -> set[str]:
    return set(sandbox.walkme.members(TEST_SYSTEM_GUID, guid))


def _synced(sandbox, tmp_path) -> tuple[str, str]:
    state = str(tmp_path / "audience.snapshot")
    guid = WalkMeSyncSegmentOperator(task_id="s", name="Audience", state_path=state, user_ids=BEFORE).execute(
        {}
    )["segment_guid"]
    sandbox.clear_request_log()
    return state, guid


@pytest.mark.parametrize("given", INPUTS)
def test_an_empty_input_sends_nothing_unless_allowed(sandbox, tmp_path, given):
    state, guid = _synced(sandbox, tmp_path)
    operator = WalkMeSyncSegmentOperator(
        task_id="s", name="Audience", state_path=state, **given([], tmp_path)
    )
    with pytest.raises(AirflowFailException, match=r"holds no user ids.*nothing was sent.*allow_empty=True"):
        operator.execute({})
    assert _writes(sandbox) == [] and _members(sandbox, guid) == set(BEFORE)

    allowed = WalkMeSyncSegmentOperator(
        task_id="s",
        name="Audience",
        state_path=state,
        allow_empty=True,
        max_removal_fraction=None,
        **given([], tmp_path),
    )
    assert allowed.execute({})["removed"] == len(BEFORE)
    assert _members(sandbox, guid) == set()


@pytest.mark.parametrize("given", INPUTS)
def test_a_collapsed_audience_sends_nothing_unless_the_fraction_is_raised(sandbox, tmp_path, given):
    state, guid = _synced(sandbox, tmp_path)
    kept = BEFORE[:3]  # 7 of 10 members would go
    operator = WalkMeSyncSegmentOperator(
        task_id="s", name="Audience", state_path=state, **given(kept, tmp_path)
    )
    with pytest.raises(AirflowFailException, match=r"would remove 7 of its 10 members \(70%\)"):
        operator.execute({})
    assert _writes(sandbox) == [] and _members(sandbox, guid) == set(BEFORE)
    dry = WalkMeSyncSegmentOperator(
        task_id="s",
        name="Audience",
        state_path=state,
        dry_run=True,
        max_removal_fraction=0.7,
        **given(kept, tmp_path),
    ).execute({})
    assert (dry["removed"], dry["requests"]) == (7, 1) and _writes(sandbox) == []

    raised = WalkMeSyncSegmentOperator(
        task_id="s", name="Audience", state_path=state, max_removal_fraction=0.7, **given(kept, tmp_path)
    )
    assert raised.execute({})["removed"] == 7
    assert _members(sandbox, guid) == set(kept)


def test_an_override_that_collapses_the_segment_is_refused_from_the_listed_count(sandbox):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Listed", BEFORE)["guid"]
    with pytest.raises(AirflowFailException, match=r"would remove 9 of its 10 members"):
        WalkMeUpdateSegmentOperator(
            task_id="u", segment_guid=guid, action="override", user_ids=["x"]
        ).execute({})
    with pytest.raises(AirflowFailException, match=r"would remove 8 of its 10 members"):
        WalkMeCreateSegmentOperator(task_id="c", name="Listed", user_ids=["x", "y"]).execute({})
    assert _writes(sandbox) == [] and _members(sandbox, guid) == set(BEFORE)
    WalkMeUpdateSegmentOperator(
        task_id="u", segment_guid=guid, action="override", user_ids=["x"], max_removal_fraction=1.0
    ).execute({})
    assert _members(sandbox, guid) == {"x"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"ids.csv is empty: a CSV needs a header row naming the column 'email'"),
        ("user1\nuser2\n", r"ids.csv has no column 'email'; its header has: 'user1'"),
    ],
)
def test_a_csv_without_a_header_or_the_column_fails_naming_the_file(sandbox, tmp_path, content, message):
    path = tmp_path / "ids.csv"
    path.write_text(content)
    with pytest.raises(AirflowFailException, match=message):
        WalkMeCreateSegmentOperator(
            task_id="c", name="A", user_ids_path=str(path), user_ids_column="email"
        ).execute({})
    assert sandbox.requests == []


def test_guard_settings_are_checked_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match=r"max_removal_fraction 1\.5 must be a number from 0 to 1"):
        WalkMeSyncSegmentOperator(
            task_id="s", name="A", state_path="s", user_ids=["a"], max_removal_fraction=1.5
        )


def test_a_remove_of_most_members_is_refused_unless_the_fraction_is_raised(sandbox):
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Listed", BEFORE)["guid"]
    with pytest.raises(
        AirflowFailException, match=r"could remove up to 6 of its 10 members.*nothing was sent"
    ):
        WalkMeUpdateSegmentOperator(
            task_id="u", segment_guid=guid, action="remove", user_ids=BEFORE[:6]
        ).execute({})
    assert _writes(sandbox) == [] and _members(sandbox, guid) == set(BEFORE)
    # ids that are not members count too: WalkMe lists no members, only how many there are
    WalkMeUpdateSegmentOperator(task_id="u", segment_guid=guid, action="remove", user_ids=BEFORE[:5]).execute(
        {}
    )
    assert _members(sandbox, guid) == set(BEFORE[5:])
    WalkMeUpdateSegmentOperator(
        task_id="u", segment_guid=guid, action="remove", user_ids=BEFORE, max_removal_fraction=1.0
    ).execute({})
    assert _members(sandbox, guid) == set()


def _zendesk_writes(sandbox) -> list[str]:
    return [r["method"] for r in sandbox.requests if r["method"] in ("POST", "PUT", "DELETE")]


def test_a_zendesk_update_that_empties_the_added_users_is_refused_unless_allowed(sandbox):
    segment_id = sandbox.zendesk.create_segment(name="Beta", added_user_ids=[1, 2, 3, 4])["id"]
    with pytest.raises(
        AirflowFailException, match=r"added_user_ids.*empty.*nothing was sent.*allow_empty=True"
    ):
        ZendeskUpdateUserSegmentOperator(task_id="u", user_segment_id=segment_id, added_user_ids=[]).execute(
            {}
        )
    assert _zendesk_writes(sandbox) == []
    assert sandbox.zendesk.segment(segment_id)["added_user_ids"] == [1, 2, 3, 4]
    ZendeskUpdateUserSegmentOperator(
        task_id="u", user_segment_id=segment_id, added_user_ids=[], allow_empty=True, max_removal_fraction=1.0
    ).execute({})
    assert sandbox.zendesk.segment(segment_id)["added_user_ids"] == []


def test_a_zendesk_update_that_removes_most_added_users_is_refused_unless_the_fraction_is_raised(sandbox):
    segment_id = sandbox.zendesk.create_segment(name="Beta", added_user_ids=[1, 2, 3, 4])["id"]
    with pytest.raises(AirflowFailException, match=r"would remove 3 of its 4 members.*nothing was sent"):
        ZendeskUpdateUserSegmentOperator(
            task_id="u", user_segment_id=segment_id, added_user_ids=[4, 5, 6]
        ).execute({})
    assert _zendesk_writes(sandbox) == []
    ZendeskUpdateUserSegmentOperator(
        task_id="u", user_segment_id=segment_id, added_user_ids=[3, 4, 5]
    ).execute({})
    assert sorted(sandbox.zendesk.segment(segment_id)["added_user_ids"]) == [3, 4, 5]
    ZendeskUpdateUserSegmentOperator(
        task_id="u", user_segment_id=segment_id, added_user_ids=[9], max_removal_fraction=1.0
    ).execute({})
    assert sandbox.zendesk.segment(segment_id)["added_user_ids"] == [9]


def test_a_zendesk_create_over_an_existing_segment_keeps_its_added_users_unless_allowed(sandbox):
    segment_id = sandbox.zendesk.create_segment(name="Beta", added_user_ids=[1, 2, 3, 4])["id"]
    with pytest.raises(
        AirflowFailException, match=r"added_user_ids.*empty.*nothing was sent.*allow_empty=True"
    ):
        ZendeskCreateUserSegmentOperator(task_id="c", name="Beta", user_type="signed_in_users").execute({})
    with pytest.raises(AirflowFailException, match=r"would remove 4 of its 4 members.*nothing was sent"):
        ZendeskCreateUserSegmentOperator(
            task_id="c", name="Beta", user_type="signed_in_users", added_user_ids=[7]
        ).execute({})
    assert _zendesk_writes(sandbox) == []
    assert sandbox.zendesk.segment(segment_id)["added_user_ids"] == [1, 2, 3, 4]
    ZendeskCreateUserSegmentOperator(
        task_id="c", name="Beta", user_type="signed_in_users", added_user_ids=[7], max_removal_fraction=1.0
    ).execute({})
    assert sandbox.zendesk.segment(segment_id)["added_user_ids"] == [7]


def test_zendesk_guard_settings_are_checked_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match=r"max_removal_fraction -1 must be a number from 0 to 1"):
        ZendeskUpdateUserSegmentOperator(task_id="u", user_segment_id=1, max_removal_fraction=-1)
    with pytest.raises(ValueError, match=r"allow_empty 'yes' must be True or False"):
        ZendeskCreateUserSegmentOperator(task_id="c", name="A", user_type="staff", allow_empty="yes")


def test_a_full_sync_counts_the_members_its_snapshot_lists_not_only_the_count(sandbox, tmp_path):
    """A swap of every member keeps the count (count - len(input) = 0): the snapshot of the same
    segment shows who was there, even when WalkMe's evidence no longer confirms it for a delta."""
    state, guid = _synced(sandbox, tmp_path)
    time.sleep(0.002)  # the sandbox's update times have millisecond resolution
    WalkMeUpdateSegmentOperator(task_id="u", segment_guid=guid, action="add", user_ids=["x"]).execute({})
    WalkMeUpdateSegmentOperator(task_id="u", segment_guid=guid, action="remove", user_ids=["x"]).execute({})
    sandbox.clear_request_log()  # changed elsewhere (count kept): a full sync next, not a delta
    swapped = [f"new{i}" for i in range(10)]
    with pytest.raises(AirflowFailException, match=r"would remove 10 of its 10 members.*nothing was sent"):
        WalkMeSyncSegmentOperator(task_id="s", name="Audience", state_path=state, user_ids=swapped).execute(
            {}
        )
    assert _writes(sandbox) == [] and _members(sandbox, guid) == set(BEFORE)
    result = WalkMeSyncSegmentOperator(
        task_id="s", name="Audience", state_path=state, user_ids=BEFORE[:6] + swapped[:4]
    ).execute({})
    assert result["mode"] == "full" and _members(sandbox, guid) == set(BEFORE[:6] + swapped[:4])


def test_a_zendesk_guard_counts_distinct_users_and_duplicates_are_sent_once(sandbox):
    segment_id = sandbox.zendesk.create_segment(name="Beta", added_user_ids=[1] * 10 + [2, 3])["id"]
    with pytest.raises(AirflowFailException, match=r"would remove 2 of its 3 members"):  # not 2 of 12
        ZendeskUpdateUserSegmentOperator(task_id="u", user_segment_id=segment_id, added_user_ids=[3]).execute(
            {}
        )
    assert _zendesk_writes(sandbox) == []
    ZendeskUpdateUserSegmentOperator(
        task_id="u", user_segment_id=segment_id, added_user_ids=["3", 3, 2, 2, 9], group_ids=[7, 7]
    ).execute({})
    stored = sandbox.zendesk.segment(segment_id)
    assert stored["added_user_ids"] == [3, 2, 9] and stored["group_ids"] == [7]


def test_a_full_sync_after_members_left_elsewhere_counts_the_most_it_could_remove(sandbox, tmp_path):
    """The segment shrank elsewhere from 10 to 2 members: the snapshot no longer says which 2 are
    left, and WalkMe lists only how many. Whether the input keeps those 2 or drops them, the guard
    counts the most the sync could remove; full_refresh=True (count - len(input) only) or a higher
    fraction lets it through."""
    state, guid = _synced(sandbox, tmp_path)
    time.sleep(0.002)  # the sandbox's update times have millisecond resolution
    WalkMeUpdateSegmentOperator(
        task_id="u", segment_guid=guid, action="override", user_ids=BEFORE[:2], max_removal_fraction=1.0
    ).execute({})
    sandbox.clear_request_log()
    for wanted in (BEFORE[2:], BEFORE[:2]):  # drops the 2 left / keeps them: the count cannot tell
        with pytest.raises(AirflowFailException, match=r"could remove up to 2 of its 2 members"):
            WalkMeSyncSegmentOperator(
                task_id="s", name="Audience", state_path=state, user_ids=wanted, max_removal_fraction=0.0
            ).execute({})
    assert _writes(sandbox) == [] and _members(sandbox, guid) == set(BEFORE[:2])
    WalkMeSyncSegmentOperator(
        task_id="s", name="Audience", state_path=state, user_ids=BEFORE[:2], full_refresh=True
    ).execute({})
    assert _members(sandbox, guid) == set(BEFORE[:2])


@pytest.mark.parametrize("action", ["add", "remove"])
def test_an_empty_add_or_remove_is_refused_unless_allowed(sandbox, action):
    """An empty export passed as a verified success that changed nothing."""
    guid = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "Listed", BEFORE)["guid"]
    with pytest.raises(AirflowFailException, match=r"holds no user ids.*nothing was sent.*allow_empty=True"):
        WalkMeUpdateSegmentOperator(task_id="u", segment_guid=guid, action=action, user_ids="[]").execute({})
    allowed = WalkMeUpdateSegmentOperator(
        task_id="u", segment_guid=guid, action=action, user_ids=[], allow_empty=True
    ).execute({})
    assert allowed["requests"] == 0 and _writes(sandbox) == [] and _members(sandbox, guid) == set(BEFORE)
