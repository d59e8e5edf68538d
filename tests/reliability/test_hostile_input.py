"""Hostile input: ids that would bend a URL are refused before one is built; a connection cannot be
pointed at another domain; TLS verification is on unless a connection turns it off, loudly; invisible
characters and malformed files of ids fail the task, naming the place, before anything is sent."""

from __future__ import annotations

import collections
import enum
import types

import pytest
from support import walkme_conn_json, zendesk_conn_json

from airflow_provider_segments._compat import AirflowFailException
from airflow_provider_segments.exceptions import (
    SegmentsConfigError,
    SegmentsError,
    SegmentsInputMissingError,
    SegmentsValidationError,
)
from airflow_provider_segments.hooks.walkme import WalkMeHook
from airflow_provider_segments.hooks.zendesk import ZendeskHelpCenterHook
from airflow_provider_segments.ids import UserIds
from airflow_provider_segments.operators.walkme import WalkMeSyncSegmentOperator
from airflow_provider_segments.testing import TEST_SYSTEM_GUID

GUID = "12345aeb-123c-4d83-8b38-a5a456789d0a"
SYSTEM = "5f2b9c1e8d7a4b3c9e6f1a2d3c4b5a69"
NASTY = ["/", "..", "?", "#", "%2F", " ", "\t", "\n"]


def _variants(base: str) -> list[str]:
    return (
        [base[:8] + bad + base[8:] for bad in NASTY] + [base + bad for bad in NASTY] + [bad for bad in NASTY]
    )


@pytest.mark.parametrize("segment_guid", _variants(GUID))
def test_walkme_segment_guid_that_would_bend_the_url_is_refused(walkme_conn, requests_mock, segment_guid):
    hook = WalkMeHook()
    for call in (
        lambda: hook.update_segment(segment_guid, "add", ["a"]),
        lambda: hook.delete_segment(segment_guid),
        lambda: hook.get_segment(segment_guid),
    ):
        with pytest.raises(SegmentsValidationError, match="segment_guid"):
            call()
    assert requests_mock.request_history == []


@pytest.mark.parametrize("system_guid", _variants(SYSTEM))
def test_walkme_system_guid_that_would_bend_the_url_is_refused(walkme_conn, requests_mock, system_guid):
    with pytest.raises(SegmentsValidationError, match="system_guid"):
        WalkMeHook().update_segment(GUID, "add", ["a"], system_guid=system_guid)
    with pytest.raises(SegmentsValidationError, match="system_guid"):
        WalkMeHook().list_segments(system_guid=system_guid)
    assert requests_mock.request_history == []


@pytest.mark.parametrize("segment_id", [*_variants("360000000001"), "1e3", "0x10", "١٢"])
def test_zendesk_ids_that_would_bend_the_url_are_refused(zendesk_conn, requests_mock, segment_id):
    hook = ZendeskHelpCenterHook()
    for call in (
        lambda: hook.get_user_segment(segment_id),
        lambda: hook.update_user_segment(segment_id, name="x"),
        lambda: hook.delete_user_segment(segment_id),
        lambda: hook.list_sections(segment_id),
        lambda: hook.list_user_segments(user_id=segment_id),
    ):
        with pytest.raises(SegmentsValidationError):
            call()
    assert requests_mock.request_history == []


@pytest.mark.parametrize(
    "host",
    [
        "acme.zendesk.com.evil.test",
        "acme@evil.test",
        "evil.test/acme",
        "acme/../evil",
        "https://acme.zendesk.com@evil.test",
        "https://evil.test#acme.zendesk.com",
        "https://evil.test?acme.zendesk.com",
        "javascript:alert(1)",
        "ftp://acme.zendesk.com",
    ],
)
def test_zendesk_host_cannot_be_turned_into_another_domain(monkeypatch, requests_mock, host):
    monkeypatch.setenv("AIRFLOW_CONN_ZENDESK_HELP_CENTER_DEFAULT", zendesk_conn_json(host=host))
    with pytest.raises(SegmentsConfigError, match="zendesk_help_center_default"):
        ZendeskHelpCenterHook().list_user_segments()
    assert requests_mock.request_history == []


@pytest.mark.parametrize(
    "host", ["https://user:pw@api.walkme.com", "https://api.walkme.com?x=1", "gopher://x"]
)
def test_walkme_host_with_credentials_query_or_odd_scheme_is_refused(monkeypatch, host):
    monkeypatch.setenv("AIRFLOW_CONN_WALKME_DEFAULT", walkme_conn_json(host=host))
    with pytest.raises(SegmentsConfigError, match="walkme_default"):
        WalkMeHook().base_url  # noqa: B018


def test_tls_verification_is_on_by_default(walkme_conn, zendesk_conn, requests_mock):
    requests_mock.post("https://walkme.test/accounts/connect/token", json={"access_token": "tok-0123456789"})
    hook = WalkMeHook()
    hook.get_access_token()
    assert hook.client.verify is True and ZendeskHelpCenterHook().client.verify is True
    # requests may swap True for the machine's CA bundle (REQUESTS_CA_BUNDLE); never for "off".
    assert requests_mock.request_history[0].verify not in (False, None)


def test_a_ca_bundle_path_is_used_for_verification(monkeypatch, requests_mock, tmp_path):
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("AIRFLOW_CONN_WALKME_DEFAULT", walkme_conn_json(verify=f" {bundle} "))
    requests_mock.post("https://walkme.test/accounts/connect/token", json={"access_token": "tok-0123456789"})
    WalkMeHook().get_access_token()
    assert requests_mock.request_history[0].verify == str(bundle)


def test_turning_verification_off_logs_a_warning(monkeypatch, capsys, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_WALKME_DEFAULT", walkme_conn_json(verify="false"))
    assert WalkMeHook().client.verify is False
    assert "turns TLS certificate verification off" in capsys.readouterr().out + caplog.text


@pytest.mark.parametrize(
    ("key", "value"),
    [("verify", "maybe?"), ("max_attempts", "0"), ("timeout", "-1"), ("max_total_wait", "soon")],
)
def test_bad_retry_or_tls_settings_name_the_connection_and_field(monkeypatch, key, value):
    monkeypatch.setenv("AIRFLOW_CONN_WALKME_DEFAULT", walkme_conn_json(**{key: value}))
    with pytest.raises(SegmentsConfigError, match=rf"'walkme_default'.*'{key}'"):
        WalkMeHook().client  # noqa: B018


# -- ids and files of ids, through an operator against the sandbox ---------------------------------
def _sync(tmp_path, **kwargs):
    operator = WalkMeSyncSegmentOperator(
        task_id="s", name="Audience", state_path=str(tmp_path / "audience.snapshot"), **kwargs
    )
    return operator.execute({})


@pytest.mark.parametrize("bad", ["\ud800", "a\u200bb", "\u202eadmin", "a\u00adb"])
def test_an_invisible_character_or_lone_surrogate_in_a_list_fails_before_anything_is_sent(
    sandbox, tmp_path, bad
):
    code = f"U\\+{ord(bad.strip('ab')[0]):04X}"
    with pytest.raises(AirflowFailException, match=rf"user_ids\[1\] = .* {code}\b"):
        _sync(tmp_path, user_ids=["ok", bad])
    assert sandbox.requests == []
    assert not (tmp_path / "audience.snapshot").exists()


def test_an_invisible_character_in_a_file_fails_naming_the_line_before_anything_is_sent(sandbox, tmp_path):
    path = tmp_path / "audience.txt"
    path.write_text("a@x.com\nb@x.com\u200b\n", encoding="utf-8")
    with pytest.raises(AirflowFailException, match=r"audience.txt line 2 = .* U\+200B"):
        _sync(tmp_path, user_ids_path=str(path))
    assert sandbox.requests == []


def test_a_directory_as_user_ids_path_fails_without_retries_naming_it(sandbox, tmp_path):
    with pytest.raises(AirflowFailException, match=rf"'{tmp_path}' is a directory"):
        _sync(tmp_path, user_ids_path=str(tmp_path))
    assert sandbox.requests == []


def test_a_missing_file_is_left_to_the_tasks_retries(sandbox, tmp_path):
    # Written by another machine, or object storage lagging: a retry may find it. AirflowFailException
    # would end the task at once; any other exception lets Airflow retry it.
    missing = tmp_path / "not-yet.txt"
    with pytest.raises(SegmentsInputMissingError, match=rf"'{missing}' does not exist") as caught:
        _sync(tmp_path, user_ids_path=str(missing))
    assert not isinstance(caught.value, AirflowFailException)
    assert sandbox.requests == []
    missing.write_text("a@x.com\n")  # the file arrives: the retry succeeds
    assert _sync(tmp_path, user_ids_path=str(missing))["user_count"] == 1


def test_a_csv_without_user_ids_column_fails_before_anything_is_sent(sandbox, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("id,email,plan\n1,a@x.com,pro\n2,b@x.com,free\n")
    with pytest.raises(AirflowFailException, match=r"export\.csv line 1 = 'id,email,plan'.*user_ids_column"):
        _sync(tmp_path, user_ids_path=str(path))
    assert sandbox.requests == []
    result = _sync(tmp_path, user_ids_path=str(path), user_ids_column="email")
    assert sorted(sandbox.walkme.members(TEST_SYSTEM_GUID, result["segment_guid"])) == [
        "a@x.com",
        "b@x.com",
    ]


def test_an_unclosed_quote_in_a_csv_fails_before_anything_is_sent(sandbox, tmp_path):
    # Read loosely, the quote swallows every later row: a sync would remove those users.
    path = tmp_path / "export.csv"
    path.write_text('email,note\na@x.com,"VIP\nb@x.com,\nc@x.com,\n')
    with pytest.raises(AirflowFailException, match=r"export\.csv line 2\b.*quoted field"):
        _sync(tmp_path, user_ids_path=str(path), user_ids_column="email")
    assert sandbox.requests == []


def _self_signed_certificate(folder) -> tuple[str, str]:
    """A certificate for 127.0.0.1 signed by its own key: (certificate path, key path)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "local-ca.pem", folder / "local-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_an_https_api_on_this_machine_is_verified_against_the_ca_bundle_the_environment_names(
    monkeypatch, tmp_path, variable
):
    """A loopback API is reached without the environment's proxies, but a local TLS proxy's CA, named
    the way requests reads it, still verifies it; without it the certificate is refused."""
    import ssl

    from local_servers import Answer, LocalServer

    cert, key = _self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    token = Answer(200, b'{"access_token": "tok-0123456789abcdef", "expires_in": 3600}')
    with LocalServer(lambda request: token) as server:
        server._httpd.socket = context.wrap_socket(server._httpd.socket, server_side=True)
        url = f"https://127.0.0.1:{server.port}"
        monkeypatch.setenv("AIRFLOW_CONN_WALKME_DEFAULT", walkme_conn_json(host=url, max_attempts=1))
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name, raising=False)
        with pytest.raises(SegmentsError, match="TLS verification failed"):
            WalkMeHook().get_access_token()
        monkeypatch.setenv(variable, cert)
        assert WalkMeHook().get_access_token() == "tok-0123456789abcdef"
        assert [r.path for r in server.received] == ["/accounts/connect/token"]


# -- shapes of input that would send the wrong users (a hostile review's finds, fixed by class) ---------
@pytest.mark.parametrize(
    "user_ids",
    [bytearray(b"alice"), memoryview(b"alice"), bytearray(b'["alice", "bob"]')],
    ids=["bytearray", "memoryview", "bytearray-of-a-json-list"],
)
def test_bytes_like_ids_are_read_as_bytes_never_as_one_id_per_byte(sandbox, tmp_path, user_ids):
    """Iterated, a bytearray or memoryview gives ints (97, 108, ...), each a valid id: the segment
    would hold five strangers. They are read as bytes are: a JSON list is parsed, anything else refused."""
    if user_ids[:1] == b"[":
        result = _sync(tmp_path, user_ids=user_ids)
        assert sorted(sandbox.walkme.members(TEST_SYSTEM_GUID, result["segment_guid"])) == ["alice", "bob"]
        return
    refused = r"user_ids must be a list of user ids, got the string 'alice'"
    with pytest.raises(AirflowFailException, match=refused):
        _sync(tmp_path, user_ids=user_ids)
    assert sandbox.requests == []


class _Table:
    """What a DataFrame pulled from XCom looks like to a loop: iterating gives its column names."""

    columns = ("user_id", "plan")

    def __iter__(self):
        return iter(self.columns)


@pytest.mark.parametrize(
    ("user_ids", "named"),
    [
        (collections.UserDict({"user_id": ["u1", "u2"]}), "UserDict"),
        (types.MappingProxyType({"user_id": ["u1"]}), "mappingproxy"),
        (collections.ChainMap({"user_id": ["u1"]}), "ChainMap"),
        (_Table(), "_Table"),
    ],
    ids=["UserDict", "mappingproxy", "ChainMap", "table"],
)
def test_a_mapping_or_table_is_refused_never_read_as_its_keys_or_columns(sandbox, tmp_path, user_ids, named):
    """Iterated, a mapping gives its keys and a DataFrame its column names: the segment would hold
    'user_id'. Any mapping or table is refused, naming its type, before anything is sent."""
    with pytest.raises(AirflowFailException, match=rf"user_ids must be a list of user ids, got a {named}"):
        _sync(tmp_path, user_ids=user_ids)
    assert sandbox.requests == []


def test_zendesk_user_id_lists_given_as_bytes_like_are_never_one_id_per_byte():
    from airflow_provider_segments.hooks.zendesk_payloads import build_user_segment_payload

    for value in (memoryview(b"12"), bytearray(b"12")):
        with pytest.raises(SegmentsValidationError, match="added_user_ids must be a list"):
            build_user_segment_payload({"added_user_ids": value}, creating=False)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_a_delimited_export_without_user_ids_column_is_refused_whatever_its_delimiter(
    sandbox, tmp_path, delimiter
):
    path = tmp_path / "audience.txt"
    rows = [["user_id", "email"], ["alice", "alice@example.com"], ["bob", "bob@example.com"]]
    path.write_text("".join(delimiter.join(row) + "\n" for row in rows))
    with pytest.raises(AirflowFailException, match=r"audience\.txt line 1 = .*looks like a CSV header"):
        _sync(tmp_path, user_ids_path=str(path))
    assert sandbox.requests == []


class _Tier(int, enum.Enum):  # an int-valued enum that is not an IntEnum: str() gives "_Tier.GOLD"
    GOLD = 42


class _Plan(str, enum.Enum):  # str() gives "_Plan.PRO"
    PRO = "pro-account-7"


class _LoudId(str):
    def __str__(self) -> str:
        return "not-the-id"


def test_int_and_str_subclasses_are_sent_as_their_value_not_as_what_str_says(sandbox, tmp_path):
    result = _sync(tmp_path, user_ids=[_Tier.GOLD, _Plan.PRO, _LoudId("loud-1"), 7])
    members = sandbox.walkme.members(TEST_SYSTEM_GUID, result["segment_guid"])
    assert sorted(members) == ["42", "7", "loud-1", "pro-account-7"]
    assert all(type(member) is str for member in members)


@pytest.mark.parametrize("control", ["\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028", "\u2029"])
def test_a_csv_row_of_only_a_control_character_strip_takes_for_space_is_refused(tmp_path, control):
    """str.strip() removes these, so the row looked blank and was skipped; a file of lines refuses them."""
    path = tmp_path / "export.csv"
    path.write_text(f"id,plan\nalice,pro\n{control}\nbob,free\n", encoding="utf-8", newline="")
    with pytest.raises(SegmentsValidationError, match=r"export\.csv line 3\b"):
        UserIds.from_file(path, max_length=100, column="id")
    lines = tmp_path / "ids.txt"
    lines.write_text(f"alice\n{control}\nbob\n", encoding="utf-8", newline="")
    with pytest.raises(SegmentsValidationError, match=r"ids\.txt line 2\b"):
        UserIds.from_file(lines, max_length=100)


@pytest.mark.parametrize(
    ("text", "line"),
    [("id\nalice\rbob\n", 2), ("id\nalice\nbob\r", 3), ("id\r\nalice\r\nbob\r", 3)],
    ids=["csv-mid-line", "csv-at-the-end", "crlf-file-cut-after-cr"],
)
def test_a_stray_carriage_return_is_refused_in_a_csv_and_in_a_file_of_lines(tmp_path, text, line):
    csv_path = tmp_path / "export.csv"
    csv_path.write_text(text, encoding="utf-8", newline="")
    with pytest.raises(SegmentsValidationError, match=rf"export\.csv line {line}\b.*U\+000D"):
        UserIds.from_file(csv_path, max_length=100, column="id")
    lines = tmp_path / "ids.txt"
    lines.write_text(text.replace("id\r\n", "").replace("id\n", ""), encoding="utf-8", newline="")
    with pytest.raises(SegmentsValidationError, match=r"ids\.txt line \d\b.*U\+000D"):
        UserIds.from_file(lines, max_length=100)
    crlf = tmp_path / "crlf.txt"
    crlf.write_text("alice\r\nbob\r\n", encoding="utf-8", newline="")
    assert list(UserIds.from_file(crlf, max_length=100)) == ["alice", "bob"]


def test_a_user_ids_collection_nobody_checked_for_this_platform_is_checked_before_anything_is_sent(
    sandbox, tmp_path
):
    """A UserIds made directly, or checked against a longer limit than WalkMe's 100 characters, is
    checked again: sent as it was, WalkMe would refuse a chunk half-way through the change."""
    long_id = "x" * 101
    loose = UserIds.from_values(["alice", long_id], max_length=1000)
    with pytest.raises(
        AirflowFailException, match=r"user_ids\[1\] = 'x+\.\.\. .*101 characters, the limit is 100"
    ):
        _sync(tmp_path, user_ids=loose)
    with pytest.raises(AirflowFailException, match=r"user_ids\[2\] = ' padded'"):
        _sync(tmp_path, user_ids=UserIds(["alice", "bob", " padded"]))
    assert sandbox.requests == []
    checked = UserIds.from_values(["alice", "bob", "alice"], max_length=100)
    assert UserIds.from_values(checked, max_length=100) is checked  # checked here already: kept as is
    unchecked = UserIds(["carol", "carol", "dave"])
    result = _sync(tmp_path, user_ids=unchecked)
    assert sorted(sandbox.walkme.members(TEST_SYSTEM_GUID, result["segment_guid"])) == ["carol", "dave"]
