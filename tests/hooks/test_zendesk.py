"""ZendeskHelpCenterHook against requests-mock: auth styles, pagination, payloads, errors, built-ins."""

from __future__ import annotations

import base64
import json

import pytest
from support import ZENDESK_EMAIL, ZENDESK_SECRET, ZENDESK_TEST_URL, ZendeskSegmentStore, zendesk_conn_json

from airflow_provider_segments.exceptions import (
    SegmentExistsError,
    SegmentsApiError,
    SegmentsConfigError,
    SegmentsError,
    SegmentsNotFoundError,
    SegmentsUnknownOutcomeError,
    SegmentsValidationError,
)
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook

BASE = f"{ZENDESK_TEST_URL}/api/v2/help_center"
LIST_URL = f"{BASE}/user_segments.json"


def segment(id_: int, name: str = "VIP", **fields) -> dict:
    return {"id": id_, "name": name, "user_type": "staff", "built_in": False, **fields}


def page(items, next_url=None, key="user_segments") -> dict:
    return {key: items, "meta": {"has_more": next_url is not None}, "links": {"next": next_url}}


@pytest.fixture
def hook(zendesk_conn) -> ZendeskHelpCenterHook:
    hook = ZendeskHelpCenterHook()
    hook.client.sleep = lambda seconds: hook.sleeps.append(seconds)  # type: ignore[attr-defined]
    hook.sleeps = []  # type: ignore[attr-defined]
    return hook


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


# -- auth styles ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("login", "auth_type", "expected"),
    [
        (ZENDESK_EMAIL, None, basic(f"{ZENDESK_EMAIL}/token", ZENDESK_SECRET)),
        (ZENDESK_EMAIL, "api_token", basic(f"{ZENDESK_EMAIL}/token", ZENDESK_SECRET)),
        (None, None, f"Bearer {ZENDESK_SECRET}"),
        (ZENDESK_EMAIL, "oauth_token", f"Bearer {ZENDESK_SECRET}"),
        (ZENDESK_EMAIL, "password", basic(ZENDESK_EMAIL, ZENDESK_SECRET)),
    ],
)
def test_each_auth_style_sends_its_exact_authorization_header(
    monkeypatch, requests_mock, login, auth_type, expected
):
    extra = {"auth_type": auth_type} if auth_type else {}
    monkeypatch.setenv("AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT", zendesk_conn_json(login=login, **extra))
    requests_mock.get(LIST_URL, json=page([]))
    ZendeskHelpCenterHook().list_user_segments()
    assert requests_mock.request_history[0].headers["Authorization"] == expected


@pytest.mark.parametrize(
    ("login", "extra", "match"),
    [
        (ZENDESK_EMAIL, {"auth_type": "jwt"}, r"'zendesk_help_center_default'.*'auth_type' is 'jwt'"),
        (
            None,
            {"auth_type": "api_token"},
            r"'zendesk_help_center_default'.*needs the agent's email in the login",
        ),
        (None, {"auth_type": "password"}, r"needs the agent's email in the login field"),
    ],
)
def test_bad_auth_configuration_names_the_connection_and_field(
    monkeypatch, requests_mock, login, extra, match
):
    monkeypatch.setenv("AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT", zendesk_conn_json(login=login, **extra))
    with pytest.raises(SegmentsConfigError, match=match):
        ZendeskHelpCenterHook().list_user_segments()
    assert requests_mock.request_history == []


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("acme", "https://acme.zendesk.com"),
        # The host as Zendesk shows it, without a scheme: what users already store.
        ("acme.zendesk.com", "https://acme.zendesk.com"),
        ("ACME.Zendesk.com/", "https://acme.zendesk.com"),
        ("https://acme.zendesk.com/", "https://acme.zendesk.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_host_is_a_subdomain_or_a_base_url(monkeypatch, host, expected):
    monkeypatch.setenv("AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT", zendesk_conn_json(host=host))
    assert ZendeskHelpCenterHook().base_url == expected


@pytest.mark.parametrize(
    "host", ["acme.zendesk.com.evil.test", "acme@evil.test", "evil.test/acme", "", "https://u@x"]
)
def test_host_cannot_be_turned_into_another_domain(monkeypatch, host):
    monkeypatch.setenv("AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT", zendesk_conn_json(host=host))
    with pytest.raises(SegmentsConfigError):
        ZendeskHelpCenterHook().base_url  # noqa: B018


def test_password_auth_logs_a_deprecation_warning(monkeypatch, requests_mock, caplog, capsys):
    monkeypatch.setenv("AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT", zendesk_conn_json(auth_type="password"))
    requests_mock.get(LIST_URL, json=page([]))
    ZendeskHelpCenterHook().list_user_segments()
    assert "turned password access off" in capsys.readouterr().out + caplog.text


# -- pagination ----------------------------------------------------------------------------------
def test_cursor_pagination_follows_every_page_in_order(hook, requests_mock):
    segments = [segment(i, f"s{i}") for i in range(1, 251)]
    requests_mock.get(LIST_URL, json=page(segments[:100], f"{LIST_URL}?page[size]=100&page[after]=c1"))
    requests_mock.get(
        f"{LIST_URL}?page[size]=100&page[after]=c1",
        json=page(segments[100:200], f"{LIST_URL}?page[after]=c2"),
    )
    requests_mock.get(f"{LIST_URL}?page[after]=c2", json=page(segments[200:]))
    listed = hook.list_user_segments()
    assert [s["id"] for s in listed] == list(range(1, 251))
    first = requests_mock.request_history[0]
    assert first.qs["page[size]"] == ["100"]
    assert len(requests_mock.request_history) == 3


def test_offset_pagination_next_page_is_followed(hook, requests_mock):
    requests_mock.get(LIST_URL, json={"user_segments": [segment(1)], "next_page": f"{LIST_URL}?page=2"})
    requests_mock.get(f"{LIST_URL}?page=2", json={"user_segments": [segment(2)], "next_page": None})
    assert [s["id"] for s in hook.list_user_segments()] == [1, 2]


def test_pages_are_streamed_lazily(hook, requests_mock):
    requests_mock.get(LIST_URL, json=page([segment(1)], f"{LIST_URL}?page[after]=x"))
    requests_mock.get(f"{LIST_URL}?page[after]=x", json=page([segment(2)]))
    iterator = hook.iter_user_segments()
    assert next(iterator)["id"] == 1
    assert len(requests_mock.request_history) == 1


def test_a_cursor_cycle_is_cut_off_with_a_clear_error(hook, requests_mock):
    requests_mock.get(LIST_URL, json=page([segment(1)], f"{LIST_URL}?page[after]=same"))
    requests_mock.get(f"{LIST_URL}?page[after]=same", json=page([segment(2)], f"{LIST_URL}?page[after]=same"))
    with pytest.raises(SegmentsError, match="loops back"):
        hook.list_user_segments()


def test_pages_that_only_repeat_items_are_cut_off(hook, requests_mock):
    for n in range(1, 4):  # a server whose offset pages never end and never change
        requests_mock.get(
            f"{LIST_URL}?page={n}" if n > 1 else LIST_URL,
            json={"user_segments": [segment(1)], "next_page": f"{LIST_URL}?page={n + 1}"},
        )
    with pytest.raises(SegmentsError, match="already sent"):
        hook.list_user_segments()
    assert len(requests_mock.request_history) == 2


def test_an_item_shifted_onto_the_next_page_is_yielded_once(hook, requests_mock):
    requests_mock.get(
        LIST_URL, json={"user_segments": [segment(1), segment(2)], "next_page": f"{LIST_URL}?page=2"}
    )
    requests_mock.get(
        f"{LIST_URL}?page=2", json={"user_segments": [segment(2), segment(3)], "next_page": None}
    )
    assert [s["id"] for s in hook.list_user_segments()] == [1, 2, 3]


def test_a_next_link_to_another_host_is_refused(hook, requests_mock):
    requests_mock.get(LIST_URL, json=page([segment(1)], "https://evil.test/steal"))
    with pytest.raises(SegmentsError, match="another origin"):
        hook.list_user_segments()
    assert all("evil" not in r.url for r in requests_mock.request_history)


@pytest.mark.parametrize(
    "origin",
    [
        "HTTPS://ACME.Zendesk.COM",  # scheme and host in any case
        "https://acme.zendesk.com:443",  # the default port spelled out
        "https://ACME.zendesk.com:443",
    ],
)
def test_a_next_link_to_the_same_origin_written_differently_is_followed(hook, requests_mock, origin):
    second = f"{origin}/api/v2/help_center/user_segments.json?page[after]=c2"
    requests_mock.get(LIST_URL, json=page([segment(1)], second))
    requests_mock.get(second.lower(), json=page([segment(2)]))
    assert [s["id"] for s in hook.list_user_segments()] == [1, 2]
    assert len(requests_mock.request_history) == 2


@pytest.mark.parametrize(
    "link",
    [
        "http://acme.zendesk.com/api/v2/help_center/user_segments.json?page[after]=c2",  # downgrade
        "https://acme.zendesk.com:8443/api/v2/help_center/user_segments.json",
        "https://acme.zendesk.com.evil.test/api/v2/help_center/user_segments.json",
        "https://other.zendesk.com/api/v2/help_center/user_segments.json",
        "/api/v2/help_center/user_segments.json?page[after]=c2",
    ],
)
def test_a_next_link_to_another_origin_is_refused_and_gets_nothing(hook, requests_mock, link):
    requests_mock.get(LIST_URL, json=page([segment(1)], link))
    with pytest.raises(SegmentsError, match="another origin"):
        hook.list_user_segments()
    assert [r.url for r in requests_mock.request_history] == [f"{LIST_URL}?page%5Bsize%5D=100"]


@pytest.mark.parametrize(
    ("kwargs", "url", "query"),
    [
        ({"built_in": True}, LIST_URL, {"built_in": ["true"]}),
        ({"built_in": False}, LIST_URL, {"built_in": ["false"]}),
        ({"applicable": True}, f"{BASE}/user_segments/applicable.json", {}),
        ({"user_id": 42}, f"{BASE}/users/42/user_segments.json", {}),
    ],
)
def test_list_variants_hit_their_endpoints(hook, requests_mock, kwargs, url, query):
    requests_mock.get(url, json=page([segment(1)]))
    hook.list_user_segments(**kwargs)
    request = requests_mock.request_history[0]
    assert request.url.split("?")[0] == url
    assert {k: v for k, v in request.qs.items() if k != "page[size]"} == query


def test_sections_and_topics_using_a_segment(hook, requests_mock):
    requests_mock.get(
        f"{BASE}/user_segments/7/sections.json", json=page([{"id": 3, "name": "A"}], key="sections")
    )
    requests_mock.get(
        f"{BASE}/user_segments/7/topics.json", json=page([{"id": 9, "name": "T"}], key="topics")
    )
    assert [s["id"] for s in hook.list_sections(7)] == [3]
    assert [t["id"] for t in hook.list_topics("7")] == [9]


# -- create / update / delete --------------------------------------------------------------------
def test_create_sends_the_user_segment_body(hook, requests_mock):
    requests_mock.get(LIST_URL, json=page([]))
    requests_mock.post(LIST_URL, json=ZendeskSegmentStore(requests_mock, BASE).create(5))
    created = hook.create_user_segment(
        "VIP agents", "staff", group_ids=[12], organization_ids=[42], tags=["vip"], added_user_ids=[7]
    )
    assert created["id"] == 5 and created["tags"] == ["vip"]
    (post,) = [r for r in requests_mock.request_history if r.method == "POST"]  # then the read-backs
    assert post.headers["Content-Type"] == "application/json"
    assert post.json() == {
        "user_segment": {
            "name": "VIP agents",
            "user_type": "staff",
            "group_ids": [12],
            "organization_ids": [42],
            "tags": ["vip"],
            "added_user_ids": [7],
        }
    }
    assert requests_mock.request_history[0].qs["built_in"] == ["false"]  # looked for a custom duplicate


def test_create_with_an_existing_name_updates_instead(hook, requests_mock):
    requests_mock.get(LIST_URL, json=page([segment(5, "VIP agents", added_user_ids=[])]))
    ZendeskSegmentStore(requests_mock, BASE, segment(5, "VIP agents", added_user_ids=[]))
    hook.create_user_segment("VIP agents", "staff", tags=["vip"])
    assert [r.method for r in requests_mock.request_history] == ["GET", "PUT", "GET"]
    with pytest.raises(SegmentExistsError, match="id 5"):
        hook.create_user_segment("VIP agents", "staff", if_exists="error")


def test_create_whose_response_was_lost_checks_before_resending(hook, requests_mock):
    found = segment(5, "VIP", added_user_ids=[])
    requests_mock.get(LIST_URL, [{"json": page([])}, {"json": page([found])}])
    requests_mock.post(LIST_URL, status_code=504, reason="Gateway Timeout", text="timeout")
    ZendeskSegmentStore(requests_mock, BASE, found)
    assert hook.create_user_segment("VIP", "staff")["id"] == 5
    assert [r.method for r in requests_mock.request_history] == ["GET", "POST", "GET", "PUT", "GET"]


def test_update_sends_only_the_given_fields_and_empty_lists_clear(hook, requests_mock):
    ZendeskSegmentStore(requests_mock, BASE, segment(5, tags=["x"]))
    hook.update_user_segment(5, tags=[], or_tags=["a", "b"])
    assert [r.method for r in requests_mock.request_history] == [
        "GET",
        "PUT",
        "GET",
    ]  # read, write, read back
    assert requests_mock.request_history[1].json() == {"user_segment": {"tags": [], "or_tags": ["a", "b"]}}


def test_built_in_segment_known_from_a_list_is_refused_before_sending(hook, requests_mock):
    requests_mock.get(LIST_URL, json=page([{"id": 1, "name": "Signed-in users", "built_in": True}]))
    hook.list_user_segments()
    with pytest.raises(SegmentsValidationError, match="built-in"):
        hook.update_user_segment(1, name="x")
    with pytest.raises(SegmentsValidationError, match="built-in"):
        hook.delete_user_segment(1)
    assert [r.method for r in requests_mock.request_history] == ["GET"]


def test_built_in_refusal_from_the_api_is_mapped(hook, requests_mock):
    # a segment Zendesk shows as custom but refuses as built-in all the same
    requests_mock.get(f"{BASE}/user_segments/2.json", json={"user_segment": segment(2)})
    requests_mock.get(LIST_URL, json=page([]))
    requests_mock.put(
        f"{BASE}/user_segments/2.json",
        status_code=403,
        reason="Forbidden",
        json={"error": "Forbidden", "description": "Built-in user segments cannot be modified"},
    )
    with pytest.raises(SegmentsValidationError, match="refused to update user segment 2: it is built-in"):
        hook.update_user_segment(2, name="x")


def test_delete_of_a_missing_segment_succeeds_unless_missing_ok_false(hook, requests_mock):
    url = f"{BASE}/user_segments/5.json"
    requests_mock.get(url, status_code=404, reason="Not Found", json={"error": "RecordNotFound"})
    requests_mock.delete(url, status_code=404, reason="Not Found", json={"error": "RecordNotFound"})
    requests_mock.get(f"{BASE}/user_segments.json", json={"user_segments": [], "meta": {"has_more": False}})
    assert hook.delete_user_segment(5) == 5
    with pytest.raises(SegmentsNotFoundError):
        hook.delete_user_segment(5, missing_ok=False)
    # each delete reads the segment first (a built-in one gets no DELETE), and reads the 404 back,
    # which counts once the listing (another route of the same base URL) answers without it
    paths = [f"{r.method} {r.path}" for r in requests_mock.request_history]
    shown, listed = "/api/v2/help_center/user_segments/5.json", "/api/v2/help_center/user_segments.json"
    assert paths == [f"GET {shown}", f"DELETE {shown}", f"GET {shown}", f"GET {listed}"] * 2


# -- validation: nothing is sent -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"user_type": "foo"}, r"user_type 'foo' is not valid: use one of signed_in_users, staff"),
        ({"name": "  "}, r"name '  ' is not valid"),
        ({"group_ids": [1, "x"]}, r"group_ids\[1\] = 'x' is not valid"),
        ({"organization_ids": [True]}, r"organization_ids\[0\] = True"),
        ({"added_user_ids": [-3]}, r"added_user_ids\[0\] = -3"),
        ({"tags": ["vip", ""]}, r"tags\[1\] = '' is not valid"),
        ({"or_tags": [3]}, r"or_tags\[0\] = 3 is not valid"),
        ({"if_exists": "replace"}, r"if_exists 'replace'"),
    ],
)
def test_bad_fields_are_refused_before_any_request(hook, requests_mock, kwargs, match):
    args = {"name": "VIP", "user_type": "staff", **kwargs}
    with pytest.raises(SegmentsValidationError, match=match):
        hook.create_user_segment(**args)
    assert requests_mock.request_history == []


@pytest.mark.parametrize("bad_id", ["5/../6", "5?x=1", "5#", "%2F", " 5", "0", "-1", "abc"])
def test_unsafe_ids_are_refused_before_a_url_is_built(hook, requests_mock, bad_id):
    with pytest.raises(SegmentsValidationError, match="user_segment_id"):
        hook.delete_user_segment(bad_id)
    assert requests_mock.request_history == []


# -- errors and retries --------------------------------------------------------------------------
def test_error_body_is_mapped_into_the_message(hook, requests_mock):
    requests_mock.get(LIST_URL, json=page([]))
    requests_mock.post(
        LIST_URL,
        status_code=400,
        reason="Bad Request",
        json={"errors": {"user_type": ["value `foo` invalid; must be either `staff` or `signed_in_users`"]}},
    )
    with pytest.raises(SegmentsApiError) as err:
        hook.create_user_segment("VIP", "staff")
    assert "HTTP 400" in str(err.value) and "user_type: value `foo` invalid" in str(err.value)


def test_429_waits_retry_after_and_4xx_are_not_retried(hook, requests_mock):
    requests_mock.get(
        LIST_URL, [{"status_code": 429, "headers": {"Retry-After": "3"}, "reason": "x"}, {"json": page([])}]
    )
    hook.list_user_segments()
    assert hook.sleeps == [3.0]
    requests_mock.get(
        f"{BASE}/user_segments/9.json", status_code=422, reason="Unprocessable", json={"error": "x"}
    )
    with pytest.raises(SegmentsApiError):
        hook.get_user_segment(9)
    assert len([r for r in requests_mock.request_history if r.url.endswith("/9.json")]) == 1


def test_secret_never_in_errors_or_repr(hook, requests_mock):
    requests_mock.get(
        LIST_URL, status_code=401, reason="Unauthorized", json={"error": f"bad {ZENDESK_SECRET}"}
    )
    with pytest.raises(SegmentsApiError) as err:
        hook.list_user_segments()
    assert ZENDESK_SECRET not in str(err.value) and "zendesk_help_center_default" in str(err.value)
    assert ZENDESK_SECRET not in repr(hook) + repr(hook.client)


def test_test_connection_reports_without_echoing_the_secret(hook, requests_mock):
    requests_mock.get(LIST_URL, json=page([]))
    assert hook.test_connection()[0] is True
    requests_mock.get(
        LIST_URL, status_code=401, reason="Unauthorized", json={"error": "Couldn't authenticate you"}
    )
    ok, message = hook.test_connection()
    assert not ok and "authenticate" in message and ZENDESK_SECRET not in message


def test_request_bodies_are_json_with_the_wrapper(hook, requests_mock):
    ZendeskSegmentStore(requests_mock, BASE, segment(5))
    hook.update_user_segment("5", user_type="signed_in_users")
    assert json.loads(requests_mock.request_history[1].text) == {
        "user_segment": {"user_type": "signed_in_users"}
    }


# -- create or update: the segment of that name ends up as a fresh create would make it ------------
def test_create_over_an_existing_name_clears_the_criteria_it_leaves_out(hook, requests_mock, capsys, caplog):
    before = segment(
        5,
        "VIP agents",
        user_type="signed_in_users",
        group_ids=[12],
        organization_ids=[42],
        tags=["old"],
        or_tags=["gold"],
        added_user_ids=[7],
    )
    requests_mock.get(LIST_URL, json=page([before]))
    ZendeskSegmentStore(requests_mock, BASE, before)
    # emptying the added users (7) takes both guards' consent, as on WalkMe
    hook.create_user_segment("VIP agents", "staff", tags=["vip"], allow_empty=True, max_removal_fraction=1.0)
    assert requests_mock.request_history[-2].json() == {
        "user_segment": {
            "name": "VIP agents",
            "user_type": "staff",
            "group_ids": [],
            "organization_ids": [],
            "tags": ["vip"],
            "or_tags": [],
            "added_user_ids": [],
        }
    }
    logged = capsys.readouterr().out + caplog.text
    assert "user_type 'signed_in_users' -> 'staff'" in logged
    assert "group_ids [12] -> []" in logged and "tags ['old'] -> ['vip']" in logged
    assert "added_user_ids [7] -> []" in logged and "or_tags ['gold'] -> []" in logged


def test_create_after_an_unknown_outcome_replaces_the_segment_it_finds_in_full(hook, requests_mock):
    found = segment(5, "VIP", or_tags=["a"], added_user_ids=[])  # what the lost create sent, in part
    requests_mock.get(LIST_URL, [{"json": page([])}, {"json": page([found])}])
    requests_mock.post(LIST_URL, status_code=504, reason="Gateway Timeout", text="timeout")
    ZendeskSegmentStore(requests_mock, BASE, found)
    hook.create_user_segment("VIP", "staff", or_tags=["a"])
    assert requests_mock.request_history[-2].json()["user_segment"] == {
        "name": "VIP",
        "user_type": "staff",
        "group_ids": [],
        "organization_ids": [],
        "tags": [],
        "or_tags": ["a"],
        "added_user_ids": [],
    }


def test_after_an_unknown_outcome_a_segment_listing_other_criteria_is_left_alone(hook, requests_mock):
    """Hostile review 33: the name was free before the create; the one segment of it found after a
    lost answer lists criteria this create did not send, so it is another client's, made meanwhile:
    it was adopted and overwritten (even with if_exists="error"). Left alone now; the task fails
    with an unknown outcome, and its rerun looks the name up and applies if_exists."""
    found = segment(5, "VIP", tags=["old"], group_ids=[3], added_user_ids=[])
    requests_mock.get(LIST_URL, [{"json": page([])}, {"json": page([found])}])
    requests_mock.post(LIST_URL, status_code=504, reason="Gateway Timeout", text="timeout")
    ZendeskSegmentStore(requests_mock, BASE, found)
    with pytest.raises(SegmentsUnknownOutcomeError, match=r"only segment of that name \(5.*left alone"):
        hook.create_user_segment("VIP", "staff", or_tags=["a"])
    assert "PUT" not in [r.method for r in requests_mock.request_history]


def test_has_more_without_a_next_link_is_an_error_not_the_end_of_the_list(hook, requests_mock):
    requests_mock.get(LIST_URL, json={"user_segments": [segment(1)], "meta": {"has_more": True}, "links": {}})
    with pytest.raises(
        SegmentsError, match=r"/api/v2/help_center/user_segments\.json .*has_more.*no next link"
    ):
        hook.list_user_segments()
    # A name lookup on such a list must not conclude the name is free and create a duplicate.
    with pytest.raises(SegmentsError, match="has_more"):
        hook.create_user_segment("VIP", "staff")
    assert [r.method for r in requests_mock.request_history] == ["GET", "GET"]


@pytest.mark.parametrize(
    ("field", "meaning"),
    [
        ("tags", "tags"),
        ("or_tags", "tags"),
        ("group_ids", "group ids"),
        ("organization_ids", "organization ids"),
        ("added_user_ids", "user ids"),
    ],
)
def test_a_string_for_a_list_field_is_refused_naming_what_the_list_holds(hook, requests_mock, field, meaning):
    with pytest.raises(
        SegmentsValidationError, match=rf"^{field} must be a list of {meaning}, got the string 'vip'"
    ):
        hook.create_user_segment("VIP", "staff", **{field: "vip"})
    assert requests_mock.request_history == []
