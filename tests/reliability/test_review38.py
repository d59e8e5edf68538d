"""Hostile review 38: the fixes of reviews 36 (secrets) and 37 (sync guard after a failed run).

Each test failed on the code as reviewed; each asserts what the sandbox holds, what a local server
received, or what a text (error, log, file) holds."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from local_servers import Answer, LocalServer
from support import impatient_sandbox, walkme_conn_json, zendesk_conn_json
from support import only_segment_members as _members
from support import sync_audience as _sync

from airflow_provider_segments.exceptions import SegmentsError
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.operators.walkme import (
    WalkMeCreateSegmentOperator,
    WalkMeSyncSegmentOperator,
)
from airflow_provider_segments.testing import TEST_SYSTEM_GUID

SEGMENTS = f"/public/v1/user/system/{TEST_SYSTEM_GUID}/segment"
ZENDESK_ENV = "AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT"
EMAIL = "agent@acme.example.com"
SENSOR_GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"


# == 1. review 37's exemption: any unfinished journal of the segment inflates the guard's base ==========
@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setattr(WalkMeHook, "max_ids_per_request", 2)
    yield from impatient_sandbox(monkeypatch, create_lookup_interval=0.0)


BEFORE = [f"a{i}" for i in range(10)]
INPUT = [*BEFORE[:7], "n0", "n1", "n2"]  # leaves out 3 of the 10 (30 %: the default guard, 50 %, allows it)
ELSEWHERE = ["b0", "b1", "b2", "b3"]  # what an admin made the segment hold after the failed run


@pytest.mark.parametrize("journal_kind", ["full", "delta"])
def test_an_unfinished_journal_does_not_let_a_sync_remove_every_member_an_admin_left(
    sandbox, tmp_path, journal_kind
):
    """A sync fails on its first write (refused: nothing landed, WalkMe still holds what it held);
    its journal stays. Later an admin replaces the members by 4 others (``ELSEWHERE``). The next run
    of the same task finds the journal, takes "WalkMe lists fewer members than the snapshot" for its
    own failed override, and judges the removal against the snapshot's 10: 3 of 10, allowed. It then
    overrides the segment and removes all 4 members WalkMe really held (100 % > 50 %). Without the
    journal file the very same run is refused ("could remove up to 3 of its 4 members (75%)")."""
    state = tmp_path / "audience.snapshot"
    _sync(state, BEFORE)
    (segment,) = sandbox.walkme.segments(TEST_SYSTEM_GUID)
    guid = segment["guid"]
    if journal_kind == "full":  # edited elsewhere: the next run is full
        WalkMeHook().update_segment(guid, "add", ["someone-else"])
    sandbox.inject_fault(f"{SEGMENTS}/", 400, method="PUT")  # the first write refused: nothing lands
    with pytest.raises(Exception):  # noqa: B017 - the failed run (its error is not the point)
        _sync(state, INPUT, max_parallel_requests=1)
    sandbox.clear_faults()
    assert (tmp_path / "audience.snapshot.journal").exists() or list(tmp_path.glob("*journal*"))
    held = _members(sandbox)
    assert held == set(BEFORE) | ({"someone-else"} if journal_kind == "full" else set())  # nothing landed

    WalkMeHook().update_segment(guid, "override", ELSEWHERE, max_removal_fraction=1.0)  # an admin, later

    try:
        outcome = _sync(state, INPUT)  # default guard: max_removal_fraction=0.5
    except Exception as err:
        outcome = f"{type(err).__name__}: {err}"
    kept = set(ELSEWHERE) & _members(sandbox)
    assert len(kept) >= 2, (
        f"the sync removed {4 - len(kept)} of the 4 members WalkMe held (limit 50 %); it reported "
        f"{outcome!r}; the segment holds {sorted(_members(sandbox))}"
    )


# == 2. review 36: a 1-3 character secret "where it stands as a word" =====================================
def _password_zendesk(monkeypatch, url: str, password: str) -> None:
    monkeypatch.setenv(
        ZENDESK_ENV,
        zendesk_conn_json(host=url, login=EMAIL, password=password, auth_type="password", max_attempts=1),
    )


# == 3. review 36: "matched whatever the case of its letters" (only ASCII letters are folded) ============
@pytest.mark.parametrize(
    ("password", "echoed"),
    [
        pytest.param("Geheimnis-Schlüssel-42", "GEHEIMNIS-SCHLÜSSEL-42", id="umlaut-upper"),
        pytest.param("Straße-Token-12345", "STRASSE-TOKEN-12345", id="sharp-s-upper"),
    ],
)
def test_a_password_with_a_non_ascii_letter_echoed_in_another_case_is_redacted(monkeypatch, password, echoed):
    refused = {"error": "InvalidCredentials", "description": f"password {echoed} rejected"}
    body = json.dumps(refused, ensure_ascii=False).encode()
    answer = Answer(401, body, {"Content-Type": "application/json; charset=utf-8"})
    with LocalServer(lambda request: answer) as server:
        _password_zendesk(monkeypatch, server.url, password)
        with pytest.raises(SegmentsError) as caught:
            ZendeskHelpCenterHook().get_user_segment(7)
    message = str(caught.value)
    assert "rejected" in message
    tail = echoed[-10:]  # (the digits and the ASCII part: in any case, they are the secret's)
    assert tail.lower() not in message.lower(), message


# == 4. review 36: "percent-encoded ... once or twice" and "split by line breaks" -- not both ==============
WRAPPED_PASSWORD = "Tr0ub4dor&3!xyz-long"


def test_a_password_split_by_a_line_break_then_percent_encoded_twice_is_redacted(monkeypatch):
    """An error text that wrapped the password, carried in a URL that is itself in another URL's
    query (``return_to``): percent-encoded twice, line break included (``%250A``)."""
    wrapped = WRAPPED_PASSWORD[:9] + "\n" + WRAPPED_PASSWORD[9:]
    inner = "https://acme.example/error?msg=" + quote(f"bad password {wrapped}", safe="")
    location = "https://acme.example/login?return_to=" + quote(inner, safe="")
    refused = {"error": "Couldn't authenticate you", "description": f"see {location}"}
    with LocalServer(lambda request: Answer(401, json.dumps(refused))) as server:
        _password_zendesk(monkeypatch, server.url, WRAPPED_PASSWORD)
        with pytest.raises(SegmentsError) as caught:
            ZendeskHelpCenterHook().get_user_segment(7)
    message = str(caught.value)
    assert "return_to" in message
    assert "xyz-long" not in message, message


# == 5. review 36: "a state path URI is shown without user info or query in every ... lease message" =====
class _Log:
    """A sync's log (the task's logger): what it was told, formatted."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message, *args):
        self.lines.append(message % args)

    warning = debug = info


@pytest.fixture
def memory_storage(monkeypatch):
    from airflow.sdk.io import fs as airflow_fs
    from fsspec.implementations.memory import MemoryFileSystem

    monkeypatch.setitem(airflow_fs._register_filesystems(), "memory", lambda conn_id: MemoryFileSystem())
    MemoryFileSystem.store.clear()
    yield
    MemoryFileSystem.store.clear()


@pytest.mark.parametrize(
    ("state_path", "secret"),
    [
        pytest.param("memory://u:pw-secret-98765@bucket/seg/a.snapshot", "pw-secret-98765", id="userinfo"),
    ],
)
def test_a_state_path_credential_stays_out_of_the_lease_log(memory_storage, state_path, secret):
    """A retry of a task takes over its own earlier try's lease: the log line quotes the raw path."""
    from airflow_provider_segments.membership.state import StateStore

    log = _Log()
    StateStore(state_path).acquire_lease("airflow-run-1", log)  # a try killed holding its lease
    StateStore(state_path).acquire_lease("airflow-run-1", log)  # its retry (same holder) takes it over
    assert any("takes over" in line for line in log.lines), log.lines
    leaks = [line for line in log.lines if secret in line]
    assert not leaks, leaks


# == 6. review 36's shown_location: user info holding a '/' (an AWS secret key has them) ===============
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("field", ["state_path", "user_ids_path"])
def test_a_uri_password_holding_a_slash_is_not_quoted_in_a_refused_path(monkeypatch, field):
    """``urlsplit`` ends the authority at the first ``/``: the "user info" it finds holds no ``@``,
    so nothing is taken out, and the secret key is quoted whole."""
    location = f"s3://AKIAIOSFODNN7EXAMPLE:{AWS_SECRET}@bucket/segments/s\t"
    monkeypatch.setenv("AIRFLOW_CONN_WALKME_DEFAULT", walkme_conn_json(host="http://127.0.0.1:9"))
    if field == "state_path":
        task = WalkMeSyncSegmentOperator(
            task_id="s", segment_guid=SENSOR_GUID, user_ids=["a"], state_path=location
        )
    else:
        task = WalkMeCreateSegmentOperator(task_id="c", name="VIP", user_ids_path=location)
    with pytest.raises(Exception) as caught:
        task.execute({})
    message = str(caught.value)
    assert "path" in message
    assert "bPxRfiCY" not in message, message


# == 7. review 36 redacted a WalkMe answer's update time "at the one place every use reads it"; its name
#        (another field of the same answer) still reaches the task log raw -------------------------------
ECHOED_TOKEN = "wmaccesstoken4b7e1d9c3a6f0e2b8d5c7a1f9e3b6d0c"


def test_an_access_token_echoed_in_a_segment_name_stays_out_of_the_sensor_log(monkeypatch, caplog, capsys):
    """A gateway that stamps the caller's token into what it answers (as in review 36's update time),
    here in upper case: Airflow's masker matches the token as registered (case-sensitively), the
    provider's own redaction matches any case, but this line passes through neither."""
    import logging

    from airflow_provider_segments.sensors.walkme import WalkMeSegmentPropagationSensor

    caplog.set_level(logging.DEBUG)

    def answer(request):
        if request.path.startswith("/accounts/connect/token"):
            return Answer(200, json.dumps({"access_token": ECHOED_TOKEN, "expires_in": 3600}))
        segment = {
            "guid": SENSOR_GUID,
            "name": f"VIP (edited by {ECHOED_TOKEN.upper()})",
            "usersCount": 2,
            "updatedAt": "2020-01-01T00:00:00.000Z",
            "createdAt": "2020-01-01T00:00:00.000Z",
        }
        return Answer(200, json.dumps([segment]))

    with LocalServer(answer) as server:
        monkeypatch.setenv("AIRFLOW_CONN_WALKME_DEFAULT", walkme_conn_json(host=server.url))
        sensor = WalkMeSegmentPropagationSensor(task_id="ready", segment_guid=SENSOR_GUID, deferrable=True)
        try:
            result = sensor.execute_complete({}, None)  # resumed after the window
        except Exception as err:  # (the asset event needs a real context; the log line came before)
            result = err
    captured = capsys.readouterr()
    log = caplog.text + captured.out + captured.err
    assert "Propagation window over" in log, (result, log[-2000:])
    assert ECHOED_TOKEN.lower() not in log.lower(), [
        line for line in log.splitlines() if ECHOED_TOKEN.lower() in line.lower()
    ]
