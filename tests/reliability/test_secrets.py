"""Secret hygiene in process: client secret, access token, API token, password and OAuth token never
appear in logs (DEBUG included), exception messages, XCom values or repr() of hooks and clients."""

from __future__ import annotations

import base64
import html
import json
import logging
import sys
import threading
from urllib.parse import quote

import pytest
from local_servers import Answer, LocalServer
from support import leaked_secrets, walkme_conn_json, zendesk_conn_json

from airflow_provider_segments import redaction
from airflow_provider_segments.exceptions import SegmentsConfigError, SegmentsError
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeListSegmentsOperator,
    WalkMeSyncSegmentOperator,
)
from airflow_provider_segments.operators.zendesk import (
    ZendeskCreateUserSegmentOperator,
    ZendeskUpdateUserSegmentOperator,
)
from airflow_provider_segments.testing import (
    TEST_CLIENT_ID,
    TEST_CLIENT_SECRET,
    TEST_SYSTEM_GUID,
    TEST_ZENDESK_API_TOKEN,
    TEST_ZENDESK_EMAIL,
    TEST_ZENDESK_OAUTH_TOKEN,
    TEST_ZENDESK_PASSWORD,
    SegmentsTestServer,
)

#: A secret that fits Latin-1 but is not ASCII (accepted in a connection, sent as Latin-1 bytes).
LATIN1_SECRET = "s\u00e9cret-0987654321"
ZENDESK_STYLES = {
    "api_token": (TEST_ZENDESK_EMAIL, TEST_ZENDESK_API_TOKEN),
    "password": (TEST_ZENDESK_EMAIL, TEST_ZENDESK_PASSWORD),
    "oauth_token": (None, TEST_ZENDESK_OAUTH_TOKEN),
}


@pytest.fixture
def sandbox():
    with SegmentsTestServer() as server:
        yield server


@pytest.fixture(autouse=True)
def debug_logging(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def _conn(monkeypatch, name: str, conn: dict) -> None:
    conn["extra"] = {**conn.get("extra", {}), "backoff_initial": 0.01, "max_attempts": 2}
    monkeypatch.setenv(name, json.dumps(conn))


def test_walkme_secrets_stay_out_of_logs_errors_xcoms_and_repr(sandbox, monkeypatch, capsys, debug_logging):
    _conn(
        monkeypatch,
        "AIRFLOW_CONN_WALKME_DEFAULT",
        {
            "conn_type": "walkme",
            "host": sandbox.url,
            "login": TEST_CLIENT_ID,
            "password": TEST_CLIENT_SECRET,
            "extra": {"system_guid": TEST_SYSTEM_GUID},
        },
    )
    xcoms = [
        WalkMeCreateSegmentOperator(task_id="c", name="VIP", user_ids=["a", "b"]).execute({}),
        WalkMeListSegmentsOperator(task_id="l").execute({}),
    ]
    errors = []
    sandbox.walkme.revoke_tokens()  # force a 401 and a refresh, both logged
    sandbox.inject_fault("/public/", 500, count=5, body='{"message": "boom"}')
    hook = WalkMeHook()
    with pytest.raises(SegmentsError) as err:
        hook.list_segments()
    errors.append(str(err.value))
    secrets = [TEST_CLIENT_SECRET, *sandbox.walkme.issued_tokens]
    assert len(secrets) >= 3
    captured = capsys.readouterr()
    everything = "\n".join(
        [
            captured.out,
            captured.err,
            debug_logging.text,
            *errors,
            json.dumps(xcoms),
            repr(hook),
            repr(hook.client),
        ]
    )
    assert "WalkMe API GET" in everything  # the scan looks at real output
    assert leaked_secrets(everything, secrets) == []


@pytest.mark.parametrize("auth_type", list(ZENDESK_STYLES))
def test_zendesk_secrets_stay_out_of_logs_errors_xcoms_and_repr(
    sandbox, monkeypatch, capsys, debug_logging, auth_type
):
    login, secret = ZENDESK_STYLES[auth_type]
    conn = {
        "conn_type": "zendesk_help_center",
        "host": sandbox.url,
        "login": login,
        "password": secret,
        "extra": {"auth_type": auth_type},
    }
    _conn(monkeypatch, "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT", conn)
    xcom = ZendeskCreateUserSegmentOperator(task_id="c", name="VIP", user_type="staff").execute({})
    hook = ZendeskHelpCenterHook()
    errors = []
    sandbox.inject_fault("/api/", 503, count=5)
    with pytest.raises(SegmentsError) as err:
        hook.list_user_segments()
    errors.append(str(err.value))
    conn["password"] = "wrong-" + secret  # a 401 whose message must not echo what was sent
    _conn(monkeypatch, "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT", conn)
    sandbox.clear_faults()
    with pytest.raises(SegmentsError) as err:
        ZendeskHelpCenterHook().list_user_segments()
    errors.append(str(err.value))
    captured = capsys.readouterr()
    everything = "\n".join(
        [
            captured.out,
            captured.err,
            debug_logging.text,
            *errors,
            json.dumps(xcom),
            repr(hook),
            repr(hook.client),
        ]
    )
    assert "Zendesk API GET" in everything and "HTTP 401" in everything
    assert leaked_secrets(everything, [secret, "wrong-" + secret]) == []


HOST_PASSWORD = "Xq7-h0st/Pa55@w0rd"


def _fragments(secret: str, size: int = 5) -> set[str]:
    """Every piece of ``secret`` long enough to give it away, in its raw and URL-encoded forms."""
    forms = {secret, quote(secret, safe=""), quote(secret)}
    return {form[i : i + size] for form in forms for i in range(len(form) - size + 1)}


@pytest.mark.parametrize(
    ("env", "make_hook", "host"),
    [
        pytest.param(
            "AIRFLOW_CONN_WALKME_DEFAULT", WalkMeHook, "https://cid:{pw}@api.walkme.com", id="walkme"
        ),
        pytest.param(
            "AIRFLOW_CONN_WALKME_DEFAULT", WalkMeHook, "cid:{pw}@api.walkme.com", id="walkme-no-scheme"
        ),
        pytest.param(
            "AIRFLOW_CONN_WALKME_DEFAULT",
            WalkMeHook,
            "https://cid:{quoted}@api.walkme.com/v1",
            id="walkme-quoted",
        ),
        pytest.param(
            "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT",
            ZendeskHelpCenterHook,
            "https://agent:{pw}@acme.zendesk.com",
            id="zendesk",
        ),
        pytest.param(
            "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT",
            ZendeskHelpCenterHook,
            "agent:{pw}@acme.zendesk.com",
            id="zendesk-no-scheme",
        ),
    ],
)
def test_a_password_in_the_host_url_is_in_no_refusal_log_or_test_button(
    monkeypatch, capsys, env, make_hook, host
):
    host = host.format(pw=HOST_PASSWORD, quoted=quote(HOST_PASSWORD, safe=""))
    conn = {"conn_type": make_hook.conn_type, "host": host, "login": "agent", "password": "conn-secret-1"}
    monkeypatch.setenv(env, json.dumps(conn))
    hook = make_hook()
    with pytest.raises(SegmentsConfigError) as err:
        hook.client  # noqa: B018
    ok, shown = make_hook().test_connection()
    assert not ok
    captured = capsys.readouterr()
    for text in (str(err.value), shown, captured.out + captured.err):
        assert not [piece for piece in _fragments(HOST_PASSWORD) if piece in text], text
    assert hook.default_conn_name in str(err.value) and "user info" in str(err.value)


# -- every byte encoding and every HTML spelling of a known secret (a hostile review's finds) -----------
def _echo_authorization(request):
    return Answer(
        401, f"Denied. Authorization: {request.header('authorization')}", {"Content-Type": "text/plain"}
    )


@pytest.mark.parametrize(
    ("env", "make_hook", "conn"),
    [
        (
            "AIRFLOW_CONN_WALKME_DEFAULT",
            WalkMeHook,
            lambda url: walkme_conn_json(host=url, login="cid-42", password=LATIN1_SECRET),
        ),
        (
            "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT",
            ZendeskHelpCenterHook,
            lambda url: zendesk_conn_json(host=url, login="a@b.example", password=LATIN1_SECRET),
        ),
        (
            "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT",
            ZendeskHelpCenterHook,
            lambda url: zendesk_conn_json(
                host=url, login="a@b.example", password=LATIN1_SECRET, auth_type="password"
            ),
        ),
    ],
    ids=["walkme-client-secret", "zendesk-api-token", "zendesk-password"],
)
def test_a_latin1_secret_echoed_in_the_basic_header_it_was_sent_in_is_redacted(
    monkeypatch, caplog, env, make_hook, conn
):
    """requests sends HTTP Basic credentials as Latin-1 bytes where they fit: the header on the wire is
    the base64 of those bytes, not of the UTF-8 ones, and an error page echoing it must not show it."""
    caplog.set_level(logging.DEBUG)
    with LocalServer(_echo_authorization) as server:
        monkeypatch.setenv(env, conn(server.url))
        hook = make_hook()
        with pytest.raises(SegmentsError) as err:
            hook.get_access_token() if isinstance(hook, WalkMeHook) else hook.list_user_segments()
        ok, message = make_hook().test_connection()
        sent = server.received[0].header("authorization").split(" ", 1)[1]
    assert LATIN1_SECRET in base64.b64decode(sent).decode("latin-1")  # what went on the wire
    for text in (str(err.value), repr(err.value), message, caplog.text):
        assert sent not in text and LATIN1_SECRET not in text, text
    assert not ok


@pytest.mark.parametrize("password", ['hunter<2>&pass"word', "it's&<secret>", "a\"b'c&d<e>f"])
def test_a_password_echoed_html_escaped_in_any_spelling_is_redacted(monkeypatch, password):
    spellings = {
        html.escape(password),  # &quot; and &#x27;
        html.escape(password, quote=False).replace('"', "&#34;").replace("'", "&#39;"),
        html.escape(password, quote=False).replace('"', "&quot;").replace("'", "&apos;"),
    }
    page = "<html><body>" + " | ".join(f"Bad password {s}" for s in sorted(spellings)) + "</body></html>"
    with LocalServer(lambda request: Answer(401, page, {"Content-Type": "text/html"})) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT",
            zendesk_conn_json(host=server.url, login="a@b.example", password=password, auth_type="password"),
        )
        with pytest.raises(SegmentsError) as err:
            ZendeskHelpCenterHook().list_user_segments()
    assert "Bad password ***" in str(err.value)
    for spelling in spellings:
        assert spelling not in str(err.value), str(err.value)


# -- values quoted from an answer anywhere, not only in the HTTP core (hostile review 16) --------------
#: An OAuth token in lower-case letters and digits: a host label or a Zendesk tag can hold it.
ECHOED_TOKEN = "zdoauthtoken7f3a9c2e5b8d1f4a6c0e9b2d7a5f3c1e"


def _pieces_of_the_token(message: str) -> list[str]:
    pieces = {ECHOED_TOKEN[i : i + 8] for i in range(len(ECHOED_TOKEN) - 7)}
    return sorted(piece for piece in pieces if piece in message)


@pytest.fixture
def echoing_zendesk(monkeypatch):
    """A local server answering with ``answer``, behind a Zendesk OAuth connection using the token."""

    def serve(answer):
        server = LocalServer(answer)
        monkeypatch.setenv(
            "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT",
            zendesk_conn_json(host=server.url, login=None, password=ECHOED_TOKEN, auth_type="oauth_token"),
        )
        return server

    return serve


def test_a_next_link_to_another_host_echoing_the_token_is_refused_without_quoting_it(echoing_zendesk):
    page = {
        "user_segments": [{"id": 5, "name": "A", "built_in": False}],
        "meta": {"has_more": True},
        "links": {"next": f"https://{ECHOED_TOKEN}.collector.example/api/v2/help_center/user_segments.json"},
    }
    with echoing_zendesk(lambda request: Answer(200, json.dumps(page))) as server:
        with pytest.raises(SegmentsError) as caught:
            ZendeskHelpCenterHook().list_user_segments()
        assert len(server.received) == 1  # the other host got nothing
    assert "another origin" in str(caught.value)
    assert not _pieces_of_the_token(str(caught.value)), str(caught.value)


def test_a_read_back_echoing_the_token_in_a_field_is_a_mismatch_that_does_not_quote_it(echoing_zendesk):
    shown = {"id": 7, "name": "VIP", "user_type": "staff", "built_in": False, "tags": [ECHOED_TOKEN]}
    with (
        echoing_zendesk(
            lambda request: Answer(200, json.dumps({"user_segment": {**shown, "added_user_ids": []}}))
        ),
        pytest.raises(SegmentsError) as caught,
    ):
        ZendeskHelpCenterHook().update_user_segment(7, tags=["vip"])
    assert "After the change" in str(caught.value)
    assert not _pieces_of_the_token(str(caught.value)), str(caught.value)


def test_a_redirect_host_holding_the_token_across_the_cut_leaves_no_part_of_it(echoing_zendesk):
    host = "a" * 70 + "." + ECHOED_TOKEN + ".example"  # the token straddles the 100-character cut
    redirect = Answer(302, b"", {"Location": f"https://{host}/next"})
    with echoing_zendesk(lambda request: redirect), pytest.raises(SegmentsError) as caught:
        ZendeskHelpCenterHook().get_user_segment(7)
    assert "redirect" in str(caught.value)
    assert not _pieces_of_the_token(str(caught.value)), str(caught.value)


def test_a_create_stored_under_the_token_as_its_name_is_refused_without_quoting_it(echoing_zendesk):
    created = {"id": 9, "name": ECHOED_TOKEN, "user_type": "staff", "built_in": False, "tags": []}

    deleted: list[bool] = []

    def answer(request):
        if request.method == "POST":
            return Answer(201, json.dumps({"user_segment": created}))
        if request.path.startswith("/api/v2/help_center/user_segments.json"):
            return Answer(200, json.dumps({"user_segments": [], "meta": {"has_more": False}}))
        if request.method == "DELETE":
            deleted.append(True)
            return Answer(204, b"")
        if deleted:
            return Answer(404, json.dumps({"error": "RecordNotFound"}))
        return Answer(200, json.dumps({"user_segment": created}))

    with echoing_zendesk(answer), pytest.raises(SegmentsError) as caught:
        ZendeskHelpCenterHook().create_user_segment("VIP", "staff")
    assert "stores" in str(caught.value)
    assert not _pieces_of_the_token(str(caught.value)), str(caught.value)


# -- two clients registering secrets in two threads at once (hostile review 17) -----------------------
def test_secrets_registered_in_two_threads_at_once_both_reach_the_process_redactor(monkeypatch):
    barrier = threading.Barrier(2, timeout=5)
    real = redaction.secret_forms

    def slow_forms(secret):  # the GIL may switch anywhere in this long pure-Python function
        forms = real(secret)
        if secret.startswith("proc-"):
            barrier.wait()
        return forms

    monkeypatch.setattr(redaction, "secret_forms", slow_forms)
    # two clients' redactors (e.g. a WalkMe and a Zendesk hook in two threads of one task)
    secrets = ["proc-secret-walkme-AAAA1111", "proc-secret-zendesk-BBBB2222"]
    threads = [threading.Thread(target=redaction.Redactor().add_secret, args=(s,)) for s in secrets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    leaked = [s for s in secrets if s in str(SegmentsError(f"Zendesk next link names host {s}.example"))]
    assert leaked == [], f"secret(s) not redacted by the process-wide redactor: {leaked}"


def test_many_secrets_registered_in_pairs_of_threads_are_all_known():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    lost = 0
    try:
        for n in range(150):
            secrets = [f"stress-{n}-a-XYZW9876", f"stress-{n}-b-QRST5432"]
            start = threading.Barrier(2)

            def register(s, start=start):
                start.wait()
                redaction.Redactor().add_secret(s)

            threads = [threading.Thread(target=register, args=(s,)) for s in secrets]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            lost += sum(redaction.redact_known(s) == s for s in secrets)
    finally:
        sys.setswitchinterval(old)
    assert lost == 0, f"{lost} of 300 secrets registered in parallel are unknown to the process redactor"


# -- answers echoing a token into what a task hands on: XCom, the snapshot (hostile review 18) --------
ECHOED_WALKME_TOKEN = "wmaccesstoken4b7e1d9c3a6f0e2b8d5c7a1f9e3b6d0c"
ECHO_GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"
#: A Zendesk user segment as a read-back shows it, to which a test adds what an answer echoes.
SHOWN_SEGMENT = {
    "id": 7,
    "name": "VIP",
    "user_type": "staff",
    "built_in": False,
    "tags": ["vip"],
    "or_tags": [],
    "group_ids": [],
    "organization_ids": [],
    "added_user_ids": [],
}


def test_a_token_a_read_back_echoes_in_a_field_not_compared_stays_out_of_the_xcom(monkeypatch):
    shown = {
        **SHOWN_SEGMENT,
        "url": f"https://acme.zendesk.com/api/v2/help_center/user_segments/7.json?access_token={ECHOED_TOKEN}",
    }
    with LocalServer(lambda request: Answer(200, json.dumps({"user_segment": shown}))) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT",
            zendesk_conn_json(host=server.url, login=None, password=ECHOED_TOKEN, auth_type="oauth_token"),
        )
        xcom = ZendeskUpdateUserSegmentOperator(task_id="u", user_segment_id=7, tags=["vip"]).execute({})
    assert ECHOED_TOKEN not in json.dumps(xcom), f"XCom holds the connection's OAuth token: {xcom}"


def test_an_access_token_a_listing_echoes_as_the_name_stays_out_of_xcom_snapshot_and_list(
    monkeypatch, tmp_path
):
    state = {"members": 2, "updated": "2026-01-01T00:00:00.000Z", "n": 0}

    def answer(request):
        if request.path.startswith("/accounts/connect/token"):
            return Answer(200, json.dumps({"access_token": ECHOED_WALKME_TOKEN, "expires_in": 3600}))
        if request.method == "PUT":
            state["n"] += 1
            state["members"] = 3
            state["updated"] = f"2026-01-01T00:00:0{state['n']}.000Z"
            return Answer(200, json.dumps({}))
        segment = {
            "guid": ECHO_GUID,
            "name": ECHOED_WALKME_TOKEN,
            "usersCount": state["members"],
            "updatedAt": state["updated"],
            "createdAt": "2025-01-01T00:00:00.000Z",
        }
        return Answer(200, json.dumps([segment]))

    with LocalServer(answer) as server:
        monkeypatch.setenv("AIRFLOW_CONN_WALKME_DEFAULT", walkme_conn_json(host=server.url))
        xcom = WalkMeSyncSegmentOperator(
            task_id="s",
            segment_guid=ECHO_GUID,
            user_ids=["a", "b", "c"],
            state_path=str(tmp_path / "s"),
            max_removal_fraction=1.0,
        ).execute({})
        listed = WalkMeListSegmentsOperator(task_id="ls").execute({})
    snapshot = (tmp_path / "s").read_text()
    texts = {"XCom": json.dumps(xcom), "snapshot": snapshot, "list XCom": json.dumps(listed)}
    leaks = [where for where, text in texts.items() if ECHOED_WALKME_TOKEN in text]
    assert not leaks, f"the access token is in: {leaks}; xcom name={xcom.get('name')!r}"


# -- a short secret is not hunted inside the data a task hands on (final review) -------------------------
def test_a_short_password_never_corrupts_names_tags_or_guids_handed_on(monkeypatch, sandbox):
    """A self-hosted server with password auth and a short password ("team"): the names and tags a
    create hands on are not cut up around it; a value that is the password itself still is hidden."""
    from airflow_provider_segments import redaction

    redaction.Redactor().add_secret("team")  # as a client of this process would register it
    assert redaction.redact_known_in({"name": "Support team leads", "tags": ["teamlead"]}) == {
        "name": "Support team leads",
        "tags": ["teamlead"],
    }
    assert redaction.redact_known_in(["team"]) == ["***"]
    assert "Support team leads" in str(SegmentsError("Segment 'Support team leads' not found"))


# -- a short password: its Basic header and quoted values are still hidden (hostile review 23) -------
SHORT_PASSWORD = "Tr0ub4d0r&3"  # 11 characters: under the process-wide length rule, yet no ordinary word
SHORT_PASSWORD_EMAIL = "agent@acme.example.com"


def _short_password_connection(monkeypatch, url):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT",
        zendesk_conn_json(
            host=url, login=SHORT_PASSWORD_EMAIL, password=SHORT_PASSWORD, auth_type="password"
        ),
    )


def test_the_basic_header_of_a_short_password_echoed_in_a_read_back_stays_out_of_xcom(monkeypatch):
    """The header (base64 of email:password) and the pair are long whatever the password's length:
    the process-wide redactor knows them, so what the task hands on never holds them."""
    seen: dict[str, str] = {}

    def answer(request):
        seen["auth"] = request.header("authorization") or ""
        shown = {**SHOWN_SEGMENT, "debug": seen["auth"], "pair": f"{SHORT_PASSWORD_EMAIL}:{SHORT_PASSWORD}"}
        return Answer(200, json.dumps({"user_segment": shown}))

    with LocalServer(answer) as server:
        _short_password_connection(monkeypatch, server.url)
        xcom = json.dumps(
            ZendeskUpdateUserSegmentOperator(task_id="u", user_segment_id=7, tags=["vip"]).execute({})
        )
    header = seen["auth"].split(" ", 1)[1]
    assert SHORT_PASSWORD in base64.b64decode(header).decode()
    assert header not in xcom and f"{SHORT_PASSWORD_EMAIL}:{SHORT_PASSWORD}" not in xcom, xcom


def test_a_short_password_quoted_as_a_whole_value_in_an_error_is_hidden(monkeypatch):
    """A read-back listing the password as a tag: the mismatch error quotes the tags, and a value that
    is the password (quoted, as repr or JSON write it) is hidden, as it is in XCom."""
    shown = {**SHOWN_SEGMENT, "tags": [SHORT_PASSWORD]}
    with LocalServer(lambda request: Answer(200, json.dumps({"user_segment": shown}))) as server:
        _short_password_connection(monkeypatch, server.url)
        with pytest.raises(SegmentsError) as caught:
            ZendeskHelpCenterHook().update_user_segment(7, tags=["vip"])
    assert "After the change" in str(caught.value)
    assert SHORT_PASSWORD not in str(caught.value), str(caught.value)
    assert redaction.redact_known_in(f'{{"tag": "{SHORT_PASSWORD}"}}') == '{"tag": "***"}'
    assert redaction.redact_known_in(f"a {SHORT_PASSWORD}b") == f"a {SHORT_PASSWORD}b"  # not a whole value
