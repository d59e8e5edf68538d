"""A hostile review: each test here is a defect found by probing a whole class of input (secret
forms, credentials the HTTP stack cannot send, counts and snapshots that lie, answers of the wrong
shape). Each asserts what the server received or holds, or the exact text a DAG author sees; a test
marked ``xfail(strict=True)`` is a defect still open."""

from __future__ import annotations

import json
import logging

import pytest
from local_servers import Answer, LocalServer

import airflow_provider_segments.testing.walkme as fake_walkme
from airflow_provider_segments.exceptions import (
    SegmentsConfigError,
    SegmentsError,
    SegmentsInputMissingError,
    SegmentsValidationError,
)
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.ids import IdSource, UserIds
from airflow_provider_segments.testing import (
    TEST_CLIENT_ID,
    TEST_CLIENT_SECRET,
    TEST_SYSTEM_GUID,
    TEST_ZENDESK_EMAIL,
    TEST_ZENDESK_OAUTH_TOKEN,
    TEST_ZENDESK_PASSWORD,
)

FAST = {"backoff_initial": 0.01, "backoff_max": 0.02, "max_attempts": 3}


def _walkme(monkeypatch, url: str, password: str = TEST_CLIENT_SECRET, login: str = TEST_CLIENT_ID) -> None:
    conn = {
        "conn_type": "walkme",
        "host": url,
        "login": login,
        "password": password,
        "extra": {"system_guid": TEST_SYSTEM_GUID, **FAST},
    }
    monkeypatch.setenv("AIRFLOW_CONN_WALKME_DEFAULT", json.dumps(conn))


def _zendesk(monkeypatch, url: str, password: str, login: str | None, auth_type: str) -> None:
    conn = {
        "conn_type": "zendesk_help_center",
        "host": url,
        "login": login,
        "password": password,
        "extra": {"auth_type": auth_type, **FAST},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT", json.dumps(conn))


# -- secrets ---------------------------------------------------------------------------------------
ISSUED_TOKEN = "wm-access-token-0123456789abcdefghij"


TOKEN_ANSWERS = {
    "form-encoded": (
        f"access_token={ISSUED_TOKEN}&token_type=Bearer&expires_in=3600",
        "application/x-www-form-urlencoded",
    ),
    "JSON cut short": (f'{{"token_type": "Bearer", "access_token": "{ISSUED_TOKEN}', "application/json"),
    "JSON in an HTML page": (f'<pre>{{"access_token":"{ISSUED_TOKEN}"}}</pre>', "text/html"),
}


def _texts_shown_for_a_token_answer(monkeypatch, caplog, answer: Answer) -> dict[str, str]:
    """What a DAG author sees when the token endpoint gives ``answer`` (which the hook cannot use):
    the error, the "Test" button's message (which must report a failure) and the logs."""
    caplog.set_level(logging.DEBUG)
    with LocalServer(lambda request: answer) as server:
        _walkme(monkeypatch, server.url)
        with pytest.raises(SegmentsError) as raised:
            WalkMeHook().list_segments()
        ok, message = WalkMeHook().test_connection()
    assert not ok
    return {"error": str(raised.value), "test button": message, "logs": caplog.text}


@pytest.mark.parametrize(("body", "content_type"), TOKEN_ANSWERS.values(), ids=TOKEN_ANSWERS.keys())
def test_token_answer_that_is_not_json_keeps_the_token_out_of_errors_logs_and_test_button(
    monkeypatch, caplog, body, content_type
):
    texts = _texts_shown_for_a_token_answer(
        monkeypatch, caplog, Answer(200, body, {"Content-Type": content_type})
    )
    assert {where: ISSUED_TOKEN in text for where, text in texts.items()} == dict.fromkeys(texts, False)


#: Tokens in answers the hook cannot read (so it never learns them): only their field shows they
#: are secret. Each holds a character that ends a value in some other syntax (the other quote, a
#: space, a comma, a brace, an escaped quote), with ``TAIL`` after it: no part may survive.
TRICKY_TOKENS = {
    "double-quoted, holding '": '{"access_token": "wm-it\'s-TAIL-0123456789"}',
    'single-quoted, holding "': "{'access_token': 'wm-\"q\"-TAIL-0123456789'}",
    "double-quoted, holding a space": '{"access_token": "wm tok TAIL-0123456789"}',
    "double-quoted, holding , ; } &": '{"access_token": "wm,;}&TAIL-0123456789"}',
    "double-quoted, holding an escaped quote": '{"access_token": "wm-\\"-TAIL-0123456789"}',
    "JSON inside a JSON string": json.dumps({"body": json.dumps({"access_token": 'wm-"x"-TAIL-012345'})}),
    "JSON cut short": '{"access_token": "wm-it\'s-TAIL-0123456789',
    "form, holding '": "access_token=wm-it's-TAIL-0123456789&token_type=Bearer",
}


@pytest.mark.parametrize("body", TRICKY_TOKENS.values(), ids=TRICKY_TOKENS.keys())
def test_a_token_field_is_redacted_to_the_end_of_its_value_whatever_it_holds(monkeypatch, caplog, body):
    answer = Answer(200, f"<html><pre>{body}</pre></html>", {"Content-Type": "text/html"})
    texts = _texts_shown_for_a_token_answer(monkeypatch, caplog, answer)
    assert {where: "TAIL" in text for where, text in texts.items()} == dict.fromkeys(texts, False)
    assert "access_token" in texts["error"]  # the field is shown, its value is not


def test_secret_echoed_with_json_escaped_slash_is_redacted(monkeypatch):
    secret = "zd/oauth+token/0123456789"
    echoed = json.dumps(f"invalid token {secret}").replace("/", "\\/")
    body = '{"error": ' + echoed  # cut short: not valid JSON, so the text itself is quoted
    answer = Answer(401, body, {"Content-Type": "application/json"})
    with LocalServer(lambda request: answer) as server:
        _zendesk(monkeypatch, server.url, secret, None, "oauth_token")
        with pytest.raises(SegmentsError) as raised:
            ZendeskHelpCenterHook().list_user_segments()
    assert "zd\\/oauth+token\\/0123456789" not in str(raised.value)


def test_secret_echoed_url_encoded_with_lower_case_hex_is_redacted(monkeypatch):
    secret = "zd/oauth+token=0123456789"
    lower = "zd%2foauth%2btoken%3d0123456789"
    answer = Answer(401, f"rejected: token={lower}", {"Content-Type": "text/plain"})
    with LocalServer(lambda request: answer) as server:
        _zendesk(monkeypatch, server.url, secret, None, "oauth_token")
        with pytest.raises(SegmentsError) as raised:
            ZendeskHelpCenterHook().list_user_segments()
    assert lower not in str(raised.value).lower()


# -- credentials the HTTP stack cannot send: refused by name, before anything is sent ------------
@pytest.mark.parametrize("bad", ["\n", "\r\n", "\t", "\x00"])
def test_oauth_token_with_a_control_character_is_refused_before_sending(sandbox, monkeypatch, bad):
    _zendesk(monkeypatch, sandbox.url, TEST_ZENDESK_OAUTH_TOKEN + bad, None, "oauth_token")
    sandbox.clear_request_log()
    with pytest.raises(SegmentsConfigError) as raised:
        ZendeskHelpCenterHook().list_user_segments()
    assert "password" in str(raised.value) and TEST_ZENDESK_OAUTH_TOKEN not in str(raised.value)
    assert sandbox.request_log() == []


CANNOT_SEND = [
    ("zendesk password", "zendesk", TEST_ZENDESK_EMAIL, TEST_ZENDESK_PASSWORD + "€", "password"),
    ("zendesk oauth token", "zendesk", None, TEST_ZENDESK_OAUTH_TOKEN + "\u2019", "oauth_token"),
    ("zendesk login", "zendesk", "agent€@example.com", TEST_ZENDESK_PASSWORD, "password"),
    ("walkme client secret", "walkme", TEST_CLIENT_ID, TEST_CLIENT_SECRET + "€", None),
    ("walkme client id", "walkme", TEST_CLIENT_ID + "€", TEST_CLIENT_SECRET, None),
]


@pytest.mark.parametrize(
    ("platform", "login", "password", "auth_type"),
    [case[1:] for case in CANNOT_SEND],
    ids=[case[0] for case in CANNOT_SEND],
)
def test_credential_beyond_latin1_is_refused_by_name_not_a_raw_unicode_error(
    sandbox, monkeypatch, platform, login, password, auth_type
):
    if platform == "walkme":
        _walkme(monkeypatch, sandbox.url, password=password, login=login)
        call = lambda: WalkMeHook().list_segments()  # noqa: E731
    else:
        _zendesk(monkeypatch, sandbox.url, password, login, auth_type)
        call = lambda: ZendeskHelpCenterHook().list_user_segments()  # noqa: E731
    sandbox.clear_request_log()
    with pytest.raises(SegmentsConfigError) as raised:
        call()
    assert password not in str(raised.value)
    assert sandbox.request_log() == []


# -- membership: a platform whose evidence lies, a snapshot edited by hand ----------------------
@pytest.fixture
def string_counts(monkeypatch):
    """The fake WalkMe lists ``usersCount`` as a string ("3"), as JSON written by hand often does."""
    original = fake_walkme._Segment.to_json
    monkeypatch.setattr(
        fake_walkme._Segment,
        "to_json",
        lambda self: {**original(self), "usersCount": str(len(self.members))},
    )


def _writes(server) -> list[tuple[str, str]]:
    writes = ("PUT", "POST", "DELETE")
    return [(r["method"], r["path"]) for r in server.request_log() if r["method"] in writes]


@pytest.mark.parametrize("action", ["sync", "create", "add"])
def test_listed_count_of_the_wrong_type_is_a_clear_error(sandbox, string_counts, action):
    segment = sandbox.walkme.create_segment(TEST_SYSTEM_GUID, "VIP", ["a", "b", "c"])
    hook = WalkMeHook()
    calls = {
        "sync": lambda: hook.sync_segment(["a", "b"], name="VIP"),
        "create": lambda: hook.create_segment("VIP", ["a"], max_removal_fraction=1.0),
        "add": lambda: hook.update_segment(segment["guid"], "add", ["x"]),
    }
    sandbox.clear_request_log()
    with pytest.raises(SegmentsError, match=r"usersCount\) of '3', not a whole number"):
        calls[action]()
    assert _writes(sandbox) == [("POST", "/accounts/connect/token")]


def test_snapshot_edited_by_hand_is_not_trusted(sandbox, tmp_path):
    state = tmp_path / "vip.snapshot"
    first = WalkMeHook().sync_segment(["a", "b", "c"], name="VIP", state_path=state)
    text = state.read_text(encoding="utf-8")
    assert text.endswith("\na\nb\nc\n")
    state.write_text(text.removesuffix("c\n") + "d\n", encoding="utf-8")  # c -> d, by hand

    result = WalkMeHook().sync_segment(["a", "b", "d"], name="VIP", state_path=state)

    members = sandbox.walkme.members(TEST_SYSTEM_GUID, first["segment_guid"])
    assert (sorted(members), result["verified"]) == (["a", "b", "d"], True)


# -- ids: the whole class of invisible characters ------------------------------------------------
#: Default_Ignorable_Code_Point characters (Unicode's own "renders as nothing") outside Cf: a
#: combining grapheme joiner, Hangul fillers, Mongolian/variation selectors.
DEFAULT_IGNORABLE = ["\u034f", "\u115f", "\u1160", "\u3164", "\uffa0", "\u180b", "\ufe0f", "\U000e0100"]


@pytest.mark.parametrize("char", DEFAULT_IGNORABLE, ids=[f"U+{ord(c):04X}" for c in DEFAULT_IGNORABLE])
def test_id_holding_a_default_ignorable_character_is_refused(sandbox, char):
    with pytest.raises(SegmentsValidationError, match=f"U\\+{ord(char):04X}"):
        UserIds.from_values(["alice", f"alice{char}"], max_length=100)
    with pytest.raises(SegmentsValidationError):
        WalkMeHook().sync_segment(["alice", f"alice{char}"], name="VIP")
    assert _writes(sandbox) == []


# -- answers of the wrong shape ------------------------------------------------------------------
MALFORMED_PAGES = {
    "next link a number": {"user_segments": [{"id": 1}], "meta": {"has_more": True}, "links": {"next": 5}},
    "next_page an object": {"user_segments": [{"id": 1}], "next_page": {"url": "x"}},
    "meta a list": {"user_segments": [{"id": 1}], "meta": [1]},
    "id a list": {"user_segments": [{"id": [1]}]},
}


@pytest.mark.parametrize("body", MALFORMED_PAGES.values(), ids=MALFORMED_PAGES.keys())
def test_malformed_pagination_answer_is_a_clear_error(monkeypatch, body):
    answer = Answer(200, json.dumps(body), {"Content-Type": "application/json"})
    with LocalServer(lambda request: answer) as server:
        _zendesk(monkeypatch, server.url, TEST_ZENDESK_OAUTH_TOKEN, None, "oauth_token")
        with pytest.raises(SegmentsError, match="Zendesk"):
            ZendeskHelpCenterHook().list_user_segments()


# -- malformed id values: a clear error naming the value, nothing sent ------------------------------
MALFORMED_VALUES = {
    "bytes not UTF-8": (b"\xff[1]", r"user_ids must be a list of user ids, got bytes that are not UTF-8"),
    "integer of 5,000 digits": ([1, 10**5000], r"user_ids\[1\] is an integer of thousands of digits"),
    "brackets nested 100,000 deep": ("[" * 100_000, r"user_ids must be a list of user ids, got the string"),
}


@pytest.mark.parametrize(("values", "message"), MALFORMED_VALUES.values(), ids=MALFORMED_VALUES.keys())
def test_malformed_id_values_are_refused_by_name_before_anything_is_sent(sandbox, values, message):
    with pytest.raises(SegmentsValidationError, match=message):
        WalkMeHook().sync_segment(values, name="VIP")
    assert _writes(sandbox) == []


# -- transport settings: a clear error naming the value, before anything is sent ------------------
@pytest.mark.parametrize("verify", ["off", "disabled", "/nonexistent/ca-bundle.pem"])
def test_verify_that_is_neither_a_flag_nor_an_existing_ca_bundle_is_refused_by_name(monkeypatch, verify):
    conn = {
        "conn_type": "walkme",
        "host": "https://walkme.invalid",
        "login": TEST_CLIENT_ID,
        "password": TEST_CLIENT_SECRET,
        "extra": {"system_guid": TEST_SYSTEM_GUID, "verify": verify, **FAST},
    }
    monkeypatch.setenv("AIRFLOW_CONN_WALKME_DEFAULT", json.dumps(conn))
    with pytest.raises(SegmentsConfigError, match=rf"extra field 'verify' is '{verify}', which is neither"):
        WalkMeHook().list_segments()


@pytest.mark.parametrize("secret", ['it\'s a "quoted" s3cret', "nbsp\u00a0s3cret-\u00e9t\u00e9"])
def test_secret_quoted_in_the_repr_of_an_answer_is_redacted(monkeypatch, secret):
    body = json.dumps({"segments": {"echo": secret}})  # a shape the hook does not expect: quoted
    answer = Answer(200, body, {"Content-Type": "application/json"})
    with LocalServer(lambda request: answer) as server:
        _zendesk(monkeypatch, server.url, secret, TEST_ZENDESK_EMAIL, "password")
        with pytest.raises(SegmentsError, match="without a 'user_segments' list") as raised:
            ZendeskHelpCenterHook().list_user_segments()
    assert repr(secret)[1:-1] not in str(raised.value) and "s3cret" not in str(raised.value)


BAD_PATHS = {
    "templated line break": ("{tmp}/ids.txt\n", r"holds the control or invisible character U\+000A"),
    "NUL byte": ("{tmp}/ids\x00.txt", r"holds the control or invisible character U\+0000"),
    "name too long": ("{tmp}/" + "a" * 5000, r"cannot be opened: File name too long"),
}


@pytest.mark.parametrize(("path", "message"), BAD_PATHS.values(), ids=BAD_PATHS.keys())
def test_a_path_no_file_can_have_is_refused_by_name_not_retried_as_missing(sandbox, tmp_path, path, message):
    source = IdSource(path=path.format(tmp=tmp_path))
    with pytest.raises(SegmentsValidationError, match=message) as raised:
        WalkMeHook().sync_segment(source, name="VIP")
    assert not isinstance(raised.value, SegmentsInputMissingError)  # that one asks for retries
    assert _writes(sandbox) == []


# -- a secret pasted into the host field: quoted by place, never shown ------------------------------
PASTED = "pasted-s3cret-0123456789"
HOSTS_HOLDING_THE_SECRET = [
    f"client-id:{PASTED}",
    f"https://api.walkme.invalid:{PASTED}",
    f"https://api.walkme.invalid/{PASTED}?",
    f"https://api.walkme.invalid?token={PASTED}",
]


@pytest.mark.parametrize("host", HOSTS_HOLDING_THE_SECRET)
@pytest.mark.parametrize("hook_class", [WalkMeHook, ZendeskHelpCenterHook])
def test_a_secret_pasted_into_the_host_field_stays_out_of_the_error_and_test_button(
    monkeypatch, hook_class, host
):
    for name, conn_type in (
        ("WALKME_DEFAULT", "walkme"),
        ("ZENDESK_HELP_CENTER_DEFAULT", "zendesk_help_center"),
    ):
        conn = {"conn_type": conn_type, "host": host, "login": "agent@example.com", "password": PASTED}
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    ok, message = hook_class().test_connection()
    with pytest.raises(SegmentsConfigError) as raised:
        hook_class().client  # noqa: B018
    assert (ok, PASTED in message, PASTED in str(raised.value)) == (False, False, False)
    assert "***" in str(raised.value)


@pytest.fixture
def no_update_times(monkeypatch):
    """The fake WalkMe lists no ``updatedAt`` (the Segments API document shows no response bodies)."""
    original = fake_walkme._Segment.to_json
    monkeypatch.setattr(
        fake_walkme._Segment,
        "to_json",
        lambda self: {key: value for key, value in original(self).items() if key != "updatedAt"},
    )


def test_a_member_swapped_elsewhere_is_caught_when_the_platform_lists_no_update_time(
    sandbox, no_update_times, tmp_path
):
    state = tmp_path / "vip.snapshot"
    guid = WalkMeHook().sync_segment(["a", "b", "c"], name="VIP", state_path=state)["segment_guid"]
    other = WalkMeHook()  # another client, no snapshot: swaps c for x
    other.update_segment(guid, "remove", ["c"], max_removal_fraction=1.0)
    other.update_segment(guid, "add", ["x"])

    result = WalkMeHook().sync_segment(["a", "b", "c"], name="VIP", state_path=state)

    assert sorted(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) == ["a", "b", "c"], result
    assert result["mode"] == "full"  # without an update time the snapshot cannot be confirmed


@pytest.fixture
def no_evidence(monkeypatch):
    """The fake WalkMe lists neither ``usersCount`` nor ``updatedAt``."""
    original = fake_walkme._Segment.to_json
    monkeypatch.setattr(
        fake_walkme._Segment,
        "to_json",
        lambda self: {k: v for k, v in original(self).items() if k not in ("updatedAt", "usersCount")},
    )


def test_without_any_listed_evidence_the_sync_is_full_and_the_guard_counts_the_snapshot(
    sandbox, no_evidence, tmp_path
):
    state = tmp_path / "vip.snapshot"
    first = [f"u{i}" for i in range(40)]
    guid = WalkMeHook().sync_segment(first, name="VIP", state_path=state)["segment_guid"]
    WalkMeHook().update_segment(guid, "remove", ["u0"], max_removal_fraction=None)  # elsewhere

    result = WalkMeHook().sync_segment(first[:39], name="VIP", state_path=state)  # one fewer
    assert result["mode"] == "full"
    assert sorted(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) == sorted(first[:39])

    with pytest.raises(SegmentsValidationError, match="remove"):  # 30 of 39: the guard still runs
        WalkMeHook().sync_segment(first[:9], name="VIP", state_path=state)
    assert sorted(sandbox.walkme.members(TEST_SYSTEM_GUID, guid)) == sorted(first[:39])


# -- segment names: the whole class of invisible characters -----------------------------------------
INVISIBLE_IN_NAMES = ["\u200b", "\u00ad", "\ufeff", "\n", "\x00", "\u202e", "\u2028"]


@pytest.mark.parametrize("char", INVISIBLE_IN_NAMES, ids=[f"U+{ord(c):04X}" for c in INVISIBLE_IN_NAMES])
def test_a_segment_name_holding_an_invisible_character_is_refused_before_anything_is_sent(sandbox, char):
    name = f"VIP{char}"  # looks like "VIP": the next lookup by name would miss it and create another
    with pytest.raises(SegmentsValidationError, match=rf"U\+{ord(char):04X}"):
        WalkMeHook().create_segment(name, ["a"])
    with pytest.raises(SegmentsValidationError, match=rf"U\+{ord(char):04X}"):
        WalkMeHook().sync_segment(["a"], name=name)
    with pytest.raises(SegmentsValidationError, match=rf"U\+{ord(char):04X}"):
        ZendeskHelpCenterHook().create_user_segment(name, "staff", tags=["vip"])
    assert _writes(sandbox) == []


@pytest.mark.parametrize("field", ["tags", "or_tags"])
@pytest.mark.parametrize("char", INVISIBLE_IN_NAMES, ids=[f"U+{ord(c):04X}" for c in INVISIBLE_IN_NAMES])
def test_a_zendesk_tag_holding_an_invisible_character_is_refused_before_anything_is_sent(
    sandbox, char, field
):
    hook = ZendeskHelpCenterHook()
    with pytest.raises(SegmentsValidationError, match=rf"{field}\[1\] = .* U\+{ord(char):04X}"):
        hook.create_user_segment("VIP", "signed_in_users", **{field: ["gold", f"vip{char}"]})
    assert _writes(sandbox) == []
