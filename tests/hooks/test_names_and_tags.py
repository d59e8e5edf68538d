"""Names and tags that look like others are refused before any request; a rename never makes two
segments of one name; a built-in Zendesk segment gets no write, whichever hook sends it (review 8)."""

from __future__ import annotations

import pytest

from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.exceptions import SegmentExistsError, SegmentsError, SegmentsValidationError
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.operators.zendesk import (
    ZendeskDeleteUserSegmentOperator,
    ZendeskUpdateUserSegmentOperator,
)
from airflow_provider_segments.testing import TEST_SYSTEM_GUID

API = "/api/v2/help_center/"
LOOK_ALIKE_NAMES = {
    "leading space": " VIP agents",
    "trailing space": "VIP agents ",
    "trailing tab": "VIP agents\t",
    "leading ideographic space": "\u3000VIP agents",
    "decomposed accent (NFD)": "Cafe\u0301 VIP",
}


def api_requests(sandbox, prefix: str) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in sandbox.request_log() if r["path"].startswith(prefix)]


@pytest.mark.parametrize("name", LOOK_ALIKE_NAMES.values(), ids=LOOK_ALIKE_NAMES.keys())
def test_a_walkme_name_that_looks_like_another_is_refused_before_any_request(sandbox, name):
    with pytest.raises(SegmentsValidationError, match="name"):
        WalkMeHook().create_segment(name, ["a"], system_guid=TEST_SYSTEM_GUID)
    assert api_requests(sandbox, "/public/") == []


@pytest.mark.parametrize("name", LOOK_ALIKE_NAMES.values(), ids=LOOK_ALIKE_NAMES.keys())
def test_a_zendesk_name_that_looks_like_another_is_refused_before_any_request(sandbox, name):
    with pytest.raises(SegmentsValidationError, match="name"):
        ZendeskHelpCenterHook().create_user_segment(name, "staff")
    assert api_requests(sandbox, API) == []


def test_a_name_in_composed_form_with_inner_spaces_is_fine(sandbox):
    created = ZendeskHelpCenterHook().create_user_segment("Caf\u00e9 VIP agents", "staff")
    assert created["name"] == "Caf\u00e9 VIP agents"


@pytest.mark.parametrize("tag", ["vip ", " vip", "v ip", "vip\t", "vip\u3000", "vip\u00a0"])
@pytest.mark.parametrize("field", ["tags", "or_tags"])
def test_a_tag_holding_whitespace_is_refused_before_any_request(sandbox, field, tag):
    with pytest.raises(SegmentsValidationError, match=field):
        ZendeskHelpCenterHook().create_user_segment("VIP", "staff", **{field: [tag]})
    assert api_requests(sandbox, API) == []


@pytest.mark.parametrize("field", ["tags", "or_tags"])
def test_a_tag_not_in_composed_form_is_refused_before_the_create_or_update(sandbox, field):
    """``cafe`` + a combining accent looks like ``café`` but matches no user tagged ``café``: refused
    as a name in that form is (hostile review 25), by position, with the composed spelling."""
    with pytest.raises(SegmentsValidationError, match=rf"{field}\[1\].*composed form.*caf\u00e9"):
        ZendeskHelpCenterHook().create_user_segment("Cafe staff", "staff", **{field: ["vip", "cafe\u0301"]})
    existing = sandbox.zendesk.create_segment(name="Cafe staff", user_type="staff", **{field: ["caf\u00e9"]})
    with pytest.raises(SegmentsValidationError, match=field):
        ZendeskHelpCenterHook().update_user_segment(existing["id"], **{field: ["cafe\u0301"]})
    assert [r for r in api_requests(sandbox, API) if not r.startswith("GET")] == []
    assert sandbox.zendesk.segment(existing["id"])[field] == ["caf\u00e9"]


def test_a_rename_into_a_name_another_segment_has_is_refused_before_the_put(sandbox):
    taken = sandbox.zendesk.create_segment(name="VIP", user_type="staff")
    other = sandbox.zendesk.create_segment(name="Gold", user_type="staff")
    with pytest.raises(SegmentsError, match=f"VIP.*{taken['id']}"):
        ZendeskHelpCenterHook().update_user_segment(other["id"], name="VIP")
    assert [r for r in api_requests(sandbox, API) if not r.startswith("GET")] == []
    names = sorted(s["name"] for s in sandbox.zendesk.segments() if not s["built_in"])
    assert names == ["Gold", "VIP"]


def test_a_rename_to_its_own_name_is_fine(sandbox):
    own = sandbox.zendesk.create_segment(name="VIP", user_type="staff")
    assert ZendeskHelpCenterHook().update_user_segment(own["id"], name="VIP", tags=["a"])["tags"] == ["a"]


@pytest.mark.parametrize("operator", ["update", "delete"])
def test_a_built_in_segment_gets_no_write_from_a_fresh_hook(sandbox, operator):
    built_in = next(s for s in sandbox.zendesk.segments() if s["built_in"])
    with pytest.raises(AirflowFailException, match="built-in"):
        if operator == "update":
            ZendeskUpdateUserSegmentOperator(
                task_id="u", user_segment_id=built_in["id"], name="Mine"
            ).execute({})
        else:
            ZendeskDeleteUserSegmentOperator(task_id="d", user_segment_id=built_in["id"]).execute({})
    assert [r for r in api_requests(sandbox, API) if not r.startswith("GET")] == []


def test_an_update_that_keeps_a_shared_name_needs_the_name_left_out(sandbox):
    """Two segments already share a name (made in Zendesk's admin UI): an update of one sending that
    name is refused (it cannot be told from a pair an unchecked rename made; hostile review 22),
    one leaving the name out goes through (review 9's case)."""
    first = sandbox.zendesk.create_segment(name="VIP", user_type="staff", tags=["a"])
    sandbox.zendesk.create_segment(name="VIP", user_type="staff", tags=["b"])
    with pytest.raises(SegmentExistsError, match="leave name out"):
        ZendeskHelpCenterHook().update_user_segment(first["id"], name="VIP", tags=["c"])
    assert ZendeskHelpCenterHook().update_user_segment(first["id"], tags=["c"])["tags"] == ["c"]


# -- review 12/13: joiners and emoji selectors, and what the errors advise --------------------------------
# Names spelled with ZWJ/ZWNJ or VS16 (emoji, Persian and Indic words) stay refused: accepting them
# (tried, review 13) let pairs that render the same both exist ("\u2764 Fans" and "\u2764\ufe0f Fans",
# "Tier 1" and "Tier 1\ufe0f"), so a lookup by name created a look-alike duplicate. Accepting them
# safely needs name lookups that compare a canonical form (a known limit, docs/walkme.md).
SPELLED_NAMES = {
    "emoji with VS16": "\u2764\ufe0f Fans",
    "family emoji (ZWJ)": "\U0001f468\u200d\U0001f469\u200d\U0001f467 Families",
    "Persian ZWNJ": "\u0645\u0634\u062a\u0631\u06cc\u200c\u0647\u0627",
    "VS16 after a digit": "Tier 1\ufe0f",
    "ZWJ between CJK": "\u55b6\u200d\u696d",
}


@pytest.mark.parametrize("name", SPELLED_NAMES.values(), ids=SPELLED_NAMES.keys())
def test_names_with_joiners_or_selectors_are_refused_before_any_request(sandbox, name):
    with pytest.raises(SegmentsValidationError, match=r"invisible.*remove it"):
        WalkMeHook().create_segment(name, ["a"], system_guid=TEST_SYSTEM_GUID)
    with pytest.raises(SegmentsValidationError, match=r"invisible.*remove it"):
        ZendeskHelpCenterHook().create_user_segment(name, "staff")
    assert api_requests(sandbox, "/public/") == [] and api_requests(sandbox, API) == []


def test_a_plain_emoji_name_is_fine(sandbox):
    assert WalkMeHook().create_segment("\U0001f680 Launch", ["a"], system_guid=TEST_SYSTEM_GUID)["name"]


@pytest.mark.parametrize(
    ("name", "advice"),
    [
        (
            "\u55b6\u696d\u3000\u30c1\u30fc\u30e0",
            r"replace it with a plain space \(U\+0020\)",
        ),  # between words
        ("VIP\tagents", r"replace it with a plain space \(U\+0020\)"),
        ("VIP agents\u00a0", "remove it"),  # at an end: a plain space there is refused too
        ("\u3000VIP agents", "remove it"),
        ("VIP\u200bagents", "remove it"),
    ],
)
def test_the_advice_for_a_refused_character_leads_to_an_accepted_name(sandbox, name, advice):
    with pytest.raises(SegmentsValidationError, match=advice):
        ZendeskHelpCenterHook().create_user_segment(name, "staff")


def test_the_advice_for_an_id_with_a_space_separator(sandbox):
    with pytest.raises(SegmentsValidationError, match=r"U\+3000 .*plain space \(U\+0020\)"):
        WalkMeHook().create_segment("x", ["\u5c71\u7530\u3000\u592a\u90ce"], system_guid=TEST_SYSTEM_GUID)
    with pytest.raises(SegmentsValidationError, match=r"U\+00A0 .*\(clean it at the source"):
        WalkMeHook().create_segment("x", ["alice\u00a0"], system_guid=TEST_SYSTEM_GUID)
