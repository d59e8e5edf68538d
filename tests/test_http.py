"""Unit tests of the HTTP core's rules: which base URLs, schemes and extras are accepted, how error
bodies are read and redacted, and how "was the request sent?" is decided. What these rules do on the
wire is proved in tests/reliability/test_transport.py."""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import time
from urllib.parse import quote, quote_plus

import pytest
import requests
import urllib3.exceptions

from airflow_provider_segments.exceptions import SegmentsConfigError
from airflow_provider_segments.hooks._connection import parse_base_url
from airflow_provider_segments.http import (
    API_MESSAGE_CHARS,
    ApiClient,
    Redactor,
    RetryPolicy,
    Timeouts,
    extract_api_message,
    never_sent,
    same_origin,
    without_userinfo,
)
from airflow_provider_segments.http.session import new_session


def _parse(url: str, port: int | None = None) -> str:
    return parse_base_url(url, port, conn_id="my_conn", example="https://api.example.com")


# -- base URLs -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "port", "expected"),
    [
        ("https://api.walkme.com", None, "https://api.walkme.com"),
        ("https://API.WalkMe.com/", None, "https://api.walkme.com"),
        ("https://eu-api.walkme.com/prefix/v1/", None, "https://eu-api.walkme.com/prefix/v1"),
        ("http://127.0.0.1:8080", None, "http://127.0.0.1:8080"),
        ("http://127.0.0.1", 8080, "http://127.0.0.1:8080"),
        ("http://localhost:9000/api", 9000, "http://localhost:9000/api"),  # (two ports differing: refused)
        ("http://[::1]:8080", None, "http://[::1]:8080"),
        ("HTTPS://acme.zendesk.com", None, "https://acme.zendesk.com"),
        ("https://acme.zendesk.com/a_b-c.d~e", None, "https://acme.zendesk.com/a_b-c.d~e"),
    ],
)
def test_a_plain_base_url_is_accepted_as_the_http_stack_reads_it(url, port, expected):
    assert _parse(url, port) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080\\acme.zendesk.com",
        "https://acme.zendesk.com\\@evil.test",
        "https://evil.test\\.acme.zendesk.com",
        "https://acme.zendesk.com%5C.evil.test",
        "https://user:pw@api.walkme.com",
        "https://api.walkme.com@evil.test",
        "https://api.walkme.com?x=1",
        "https://api.walkme.com#x",
        "https://api.walkme.com/a b",
        "https://api.walkme.com/a%2Fb",
        "https://api.walkme.com/a/../b",
        "https://api.walkme.com/a\\b",
        "https://api.walkme.com:99999",
        "https://api.walkme.com:0",
        "https://api.walkme.com:80x",
        "https://api.walkme.com\t",
        "https://api .walkme.com",
        "https://api_walkme.com",
        "https://-api.walkme.com",
        "https://api..walkme.com",
        "https://[::1",
        "https://[fe80::1%25eth0]",
        "https://[not-ipv6]",
        "https://\u0430pi.walkme.com",  # Cyrillic a
        "ftp://api.walkme.com",
        "javascript:alert(1)",
        "https://",
        "https:///path",
    ],
)
def test_a_base_url_with_anything_but_host_port_and_safe_path_is_refused(url):
    with pytest.raises(SegmentsConfigError) as err:
        _parse(url)
    shown = without_userinfo(url)  # what precedes an '@' may be a password: never echoed
    assert "'my_conn'" in str(err.value) and repr(shown)[1:-1][:20] in str(err.value)


# -- plain http ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8080",
        "http://127.9.8.7",
        "http://localhost:1",
        "http://LOCALHOST",
        "http://[::1]:80",
        "http://[::ffff:127.0.0.1]:8080",  # 127.0.0.1 written as an IPv4-mapped IPv6 address
        "http://[0:0:0:0:0:ffff:7f00:1]",
    ],
)
def test_plain_http_to_a_loopback_host_is_accepted_silently(base_url, caplog):
    caplog.set_level(logging.WARNING)
    client = ApiClient.from_extra(platform="T", base_url=base_url, extra={}, conn_id="c")
    assert client.base_url == base_url and "plain http" not in caplog.text


@pytest.mark.parametrize(
    "base_url",
    [
        "http://10.0.0.5",
        "http://api.walkme.com",
        "http://localhost.evil.test",
        "http://[::2]",
        "http://[::ffff:10.0.0.5]",
    ],
)
def test_plain_http_to_another_host_needs_the_extra(base_url, caplog):
    with pytest.raises(SegmentsConfigError, match=r"'c'.*https.*allow_insecure_http"):
        ApiClient.from_extra(platform="T", base_url=base_url, extra={}, conn_id="c")
    for off in (False, "false", ""):
        with pytest.raises(SegmentsConfigError):
            ApiClient.from_extra(
                platform="T", base_url=base_url, extra={"allow_insecure_http": off}, conn_id="c"
            )
    caplog.set_level(logging.WARNING)
    ApiClient.from_extra(platform="T", base_url=base_url, extra={"allow_insecure_http": "true"}, conn_id="c")
    assert "plain http" in caplog.text and "'c'" in caplog.text


def test_allow_insecure_http_must_be_a_boolean():
    with pytest.raises(SegmentsConfigError, match="allow_insecure_http"):
        ApiClient.from_extra(
            platform="T", base_url="http://10.0.0.5", extra={"allow_insecure_http": "maybe"}, conn_id="c"
        )


def test_https_to_any_host_needs_no_extra():
    assert ApiClient.from_extra(platform="T", base_url="https://10.0.0.5", extra={}, conn_id="c")


# -- numeric extras --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"max_attempts": "20", "backoff_initial": 60, "backoff_max": "600", "max_total_wait": 3600},
            (20, 60, 600, 3600),
        ),
        ({"max_attempts": 1.0, "backoff_initial": 0, "backoff_max": 0, "max_total_wait": "0"}, (1, 0, 0, 0)),
        ({}, (5, 1.0, 30.0, 300.0)),
    ],
)
def test_retry_extras_at_their_bounds_are_accepted(extra, expected):
    policy = RetryPolicy.from_extra(extra, conn_id="c")
    assert (
        policy.max_attempts,
        policy.backoff_initial,
        policy.backoff_max,
        policy.max_total_wait,
    ) == expected
    assert isinstance(policy.max_attempts, int)


def test_timeouts_at_their_bounds_are_accepted():
    client = ApiClient.from_extra(
        platform="T", base_url="https://x.test", extra={"timeout": "600", "connect_timeout": 120}, conn_id="c"
    )
    assert client.timeouts == Timeouts(connect=120.0, read=600.0)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_attempts", "0"),
        ("max_attempts", "1e3"),
        ("max_attempts", "-inf"),
        ("max_attempts", [3]),
        ("backoff_initial", 60.5),
        ("backoff_max", "NaN"),
        ("max_total_wait", -0.1),
        ("max_total_wait", False),
        ("timeout", "-1"),
        ("timeout", 600.1),
        ("connect_timeout", "0"),
        ("connect_timeout", "Infinity"),
        ("connect_timeout", "soon"),
    ],
)
def test_an_extra_out_of_its_range_names_connection_field_and_range(key, value):
    with pytest.raises(SegmentsConfigError) as err:
        ApiClient.from_extra(platform="T", base_url="https://x.test", extra={key: value}, conn_id="c")
    assert f"'{key}'" in str(err.value) and "'c'" in str(err.value) and " to " in str(err.value)


# -- origins ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("https://acme.zendesk.com", "HTTPS://ACME.ZENDESK.COM/api/v2?x=1"),
        ("https://acme.zendesk.com", "https://acme.zendesk.com:443/"),
        ("http://127.0.0.1:80/a", "HTTP://127.0.0.1/b"),
        ("http://[::1]:8080", "http://[::1]:8080/x"),
        ("https://api.walkme.com/prefix", "https://user:pw@api.walkme.com/other"),  # user info is no origin
        # read as urllib3 (which sends it) and a browser read it: the host ends at the backslash
        ("https://acme.zendesk.com", "https://acme.zendesk.com\\@evil.test"),
    ],
)
def test_origins_are_compared_as_a_browser_does(first, second):
    assert same_origin(first, second) and same_origin(second, first)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("https://acme.zendesk.com", "http://acme.zendesk.com"),
        ("https://acme.zendesk.com", "https://acme.zendesk.com:80"),
        ("http://acme.zendesk.com", "http://acme.zendesk.com:443"),
        ("https://acme.zendesk.com", "https://acme.zendesk.com.evil.test"),
        ("https://acme.zendesk.com", "https://acme.zendesk.com./"),
        ("http://127.0.0.1:8080", "http://localhost:8080"),
        ("https://acme.zendesk.com", "/api/v2/help_center/user_segments.json"),
        ("https://acme.zendesk.com", "acme.zendesk.com"),
        ("https://acme.zendesk.com", ""),
    ],
)
def test_different_origins_are_told_apart(first, second):
    assert not same_origin(first, second) and not same_origin(second, first)


# -- redaction -------------------------------------------------------------------------------------
def test_every_form_of_a_secret_is_redacted():
    client = ApiClient(platform="T", base_url="https://x.test")
    secret = "s3cret/va lue+&=?"
    client.add_secret(secret)
    client.add_credentials("user@x.test/token", secret)
    forms = [
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(f"user@x.test/token:{secret}".encode()).decode(),
    ]
    for form in forms:
        assert client.redact(f"before {form} after") == "before *** after", form


@pytest.mark.parametrize("prefix", ["", "a", "ab", "abc", "someone@example.com/token:"])
@pytest.mark.parametrize("suffix", ["", "x", "xy"])
def test_the_base64_of_a_secret_inside_any_credential_string_is_redacted(prefix, suffix):
    """Whatever precedes the secret (an unknown user name), its base64 core is the same."""
    client = ApiClient(platform="T", base_url="https://x.test")
    secret = "0123456789-long-enough-secret"
    client.add_secret(secret)
    encoded = base64.b64encode(f"{prefix}{secret}{suffix}".encode()).decode()
    redacted = client.redact(encoded)
    assert "***" in redacted
    # What is left is the encoding of the prefix and suffix, and at most a few edge characters.
    assert len(redacted.replace("***", "")) <= (len(prefix) + len(suffix)) * 4 // 3 + 12


def test_short_values_are_not_registered_as_secrets():
    """(Hiding a 1-3 character value wherever it stands would spell it out: a connection refuses such
    a secret instead, see tests/reliability/test_review39.py.)"""
    client = ApiClient(platform="T", base_url="https://x.test")
    client.add_secret("abc")
    assert client.redact("abc abcd") == "abc abcd"


# -- error bodies ----------------------------------------------------------------------------------
def _response(body: object, status: int = 422) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    response.encoding = "utf-8"
    return response


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {
                "error": "RecordInvalid",
                "description": "Record validation errors",
                "details": {"name": [{"description": "Name: is already taken", "error": "DuplicateValue"}]},
            },
            "RecordInvalid - Record validation errors - name: Name: is already taken (DuplicateValue)",
        ),
        (
            {
                "errors": [
                    {"title": "Invalid attribute", "message": "name is blank"},
                    {"code": "X", "detail": "d"},
                ]
            },
            "Invalid attribute - name is blank; d (X)",
        ),
        ({"errors": {"name": ["is blank", "is too short"]}}, "name: is blank; is too short"),
        (
            {"error": {"title": "Forbidden", "message": "Built-in segments are read-only"}},
            "Forbidden - Built-in segments are read-only",
        ),
        ({"message": "Unauthorized"}, "Unauthorized"),
        ({"error": "invalid_client", "error_description": "bad secret"}, "invalid_client - bad secret"),
        ({"details": {"base": ["Too many segments"]}}, "base: Too many segments"),
        ({"unknown": 1}, '{"unknown": 1}'),
        ("<html> gateway\n error </html>", "<html> gateway error </html>"),
    ],
)
def test_the_api_message_carries_field_level_reasons(body, expected):
    assert extract_api_message(_response(body)) == expected


def test_the_api_message_is_redacted_before_it_is_cut():
    secret = "SECRET-" + "x" * 100
    body = {"error": "RecordInvalid", "details": {f"f{i}": [{"description": "v" * 30}] for i in range(30)}}
    body["details"]["f9"] = [{"description": secret}]
    redactor = Redactor()
    redactor.add_secret(secret)
    message = extract_api_message(_response(body), redact=redactor)
    assert (
        len(message) <= API_MESSAGE_CHARS and "SECRET" not in message and message.startswith("RecordInvalid")
    )


def test_an_echo_cut_short_by_the_server_leaves_no_start_of_a_secret_at_the_cut_edge():
    secret = "0123456789abcdefSECRET"
    redactor = Redactor()
    redactor.add_secret(secret)
    echoed = "a" * 50 + secret[:12] + "... (truncated by the server)"  # no whole secret to redact
    shown = redactor.shorten(echoed, 60)
    assert shown == "a" * 50 + "***..." and len(shown) <= 60


def test_a_secret_split_across_lines_is_redacted_once_the_whitespace_is_folded():
    redactor = Redactor()
    redactor.add_secret("pass word-1234")
    assert redactor.shorten("echo: pass\n   word-1234 end", 100) == "echo: *** end"


# -- was the request sent? ---------------------------------------------------------------------------
def _wrapped(reason: Exception) -> requests.exceptions.ConnectionError:
    """The chain requests builds: ConnectionError(MaxRetryError(reason=...))."""
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/x", reason=reason))


def test_never_sent_is_decided_by_exception_type_not_wording():
    gaierror = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    assert never_sent(_wrapped(urllib3.exceptions.NameResolutionError("h", None, gaierror)))
    assert never_sent(_wrapped(urllib3.exceptions.NewConnectionError(None, "Verbindung verweigert")))
    assert never_sent(_wrapped(urllib3.exceptions.ConnectTimeoutError(None, "slow")))
    assert never_sent(requests.exceptions.ConnectTimeout("connect timed out"))
    proxy = urllib3.exceptions.ProxyError("proxy", urllib3.exceptions.NewConnectionError(None, "x"))
    assert never_sent(_wrapped(proxy))
    # The wording alone is not enough: a reset after sending is not "never sent".
    assert not never_sent(requests.exceptions.ConnectionError("Connection refused Name or service not known"))
    assert not never_sent(
        _wrapped(urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError()))
    )


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:9\\@evil.example", "https://api.test\\@127.0.0.1"])
def test_a_base_url_whose_host_two_url_parsers_read_differently_is_refused(base_url):
    """urllib3 (which sends) and urlsplit read ``host\\@other`` as different hosts: one check would
    pass plain http as loopback while the session sent the token through the environment's proxy."""
    with pytest.raises(SegmentsConfigError, match="not a base URL"):
        ApiClient.from_extra(platform="T", base_url=base_url, extra={}, conn_id="c")
    assert new_session("http://127.0.0.1:9\\@evil.example").trust_env is False  # the host urllib3 sends to


# -- credential fields of a token the client never learned ------------------------------------------
FIELD_FORMS = {
    "repr of JSON, value holding a quote": repr({"detail": json.dumps({"access_token": 'abc"SECRETxyz'})}),
    'JSON in JSON in repr, value holding \\ and "': repr(
        json.dumps({"b": json.dumps({"password": 'a\\"SECRETxyz'})})
    ),
    "bare, holding )": "password=hunter)SECRETxyz",
    "bare, holding < >": "password: my<SECRET>xyz",
    "bare, holding ]": "api_token=ab]SECRETxyz",
    "HTML-escaped JSON": "{&quot;access_token&quot;:&quot;SECRETxyz&quot;}",
    "HTML numeric quotes": "{&#34;access_token&#34;: &#34;SECRETxyz&#34;}",
    "URL-encoded JSON": "next=%7B%22access_token%22%3A%22SECRETxyz%22%7D",
    "URL-encoded fragment": "cb%23access_token%3DSECRETxyz%26t%3D1",
    "HTML input": '<input name="access_token" value="SECRETxyz">',
    "camelCase key": '{"accessToken": "SECRETxyz"}',
    "prefixed key": "oauth_access_token=SECRETxyz",
    "scheme before the value": "access_token: Bearer SECRETxyz",
    "header-like value with a space": "password: SEC RETxyz",
    "an object as the value": '{"client_secret": {"value": "SEC RETxyz"}}',
    "a value starting with ***": '{"access_token": "***SECRETxyz"}',
    "XML element": "<oauth><access_token>SECRETxyz</access_token></oauth>",
    "XML element with attributes": '<client_secret type="s">SECRETxyz</client_secret>',
    "HTML-escaped XML element": "&lt;refresh_token&gt;SECRETxyz&lt;/refresh_token&gt;",
    "bare token field": '{"token": "SECRETxyz", "ok": false}',
    "bare secret field": "secret=SECRETxyz&x=1",
    "api key field": '{"api_key": "SECRETxyz"}',
    "apiKey header-like": "X-Api-Key: SECRETxyz",
    "authorization header echoed": "Authorization: Bearer SECRETxyz",
    "XML token element": "<token>SECRETxyz</token>",
    "camelCase prefix": '{"authToken": "SECRETxyz"}',
    "session token": '{"sessionToken": "SECRETxyz"}',
    "api secret": '{"apiSecret": "SECRETxyz"}',
    "secret key, camelCase": '{"secretKey": "SECRETxyz"}',
    "secret key, snake_case": '{"secret_key": "SECRETxyz"}',
    "private key": '{"private_key": "SECRETxyz"}',
    "cloud access key": "aws_secret_access_key=SECRETxyz",
    "cloud access key as XML": "<SecretAccessKey>SECRETxyz</SecretAccessKey>",
    "XML element holding CDATA": "<access_token><![CDATA[SECRETxyz]]></access_token>",
    "HTML input, other attributes between": '<input name="api_key" type="hidden" value="SECRETxyz">',
    "authorization, another scheme": "Authorization: OAuth SECRETxyz",
    "key name with a letter escaped": '{"access_\\u0074oken": "SECRETxyz"}',
    "key name escaped through repr": repr('{"api\\u005fkey": "SECRETxyz"}'),
    "value with letters escaped": '{"password": "\\u0053ECRET\\u0078yz"}',
}


@pytest.mark.parametrize("text", FIELD_FORMS.values(), ids=FIELD_FORMS.keys())
def test_a_credential_field_is_redacted_whole_in_every_way_an_answer_writes_it(text):
    redact = Redactor()
    shown = redact(text)
    readable = re.sub(r"\\+u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), shown)  # as a reader sees it
    assert "xyz" not in readable and "SECRET" not in readable
    assert redact(shown) == shown  # redacting twice changes nothing


def test_a_known_secret_holding_a_quote_is_redacted_in_json_shown_through_repr():
    redact = Redactor()
    redact.add_secret('hunter"2xyz')
    assert "2xyz" not in redact.preview({"detail": json.dumps({"pw": 'hunter"2xyz'})}, 200)


@pytest.mark.parametrize(
    "text",
    [
        "&lt;token " * 100_000,
        "<token " * 100_000,
        "token: " * 100_000,
        '"token": "' * 100_000,
        "&lt;a&gt;" * 100_000,
        "authToken=" * 100_000,
        '"secret": {"a": [' * 60_000,
        "<token><![CDATA[" * 60_000,
        "\\u0041=\r\n" * 100_000,
    ],
    ids=[
        "escaped-xml-openers",
        "xml-openers",
        "header-fields",
        "json-fields",
        "escaped-tags",
        "form-fields",
        "object-openers",
        "cdata-openers",
        "escapes-and-soft-breaks",
    ],
)
def test_redacting_a_hostile_error_page_of_a_megabyte_takes_linear_time(text):
    """An error body is redacted whole before it is cut: a pattern that backtracks would stall the
    worker for minutes on every retry (0.6 s at 20 kB, 9 s at 80 kB with one such pattern)."""
    redact = Redactor()
    redact.add_secret("0123456789abcdefSECRET")
    started = time.perf_counter()
    redact.shorten(text, 300)
    assert time.perf_counter() - started < 5  # linear: about 0.1 s per megabyte here


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (
            "Invalid token: expired\nSegment 12 is built in and cannot be renamed",
            "built in and cannot be renamed",
        ),
        ("token: is not allowed here; name: Name has already been taken", "already been taken"),
        ("Error: authorization: required - also the segment 12 does not exist", "does not exist"),
    ],
)
def test_a_bare_word_field_hides_one_value_not_the_rest_of_the_message(text, kept):
    redact = Redactor()
    assert kept in redact.shorten(text, 300) and kept in redact(text)


def test_a_credential_field_whose_value_is_an_object_hides_the_object_not_the_rest():
    shown = Redactor()('{"secret": {"rotated": true, "v": "a}b"}, "message": "segment 123 not found"}')
    assert (
        "rotated" not in shown
        and "a}b" not in shown
        and shown.endswith('"message": "segment 123 not found"}')
    )


def test_each_part_of_an_api_message_is_redacted_on_its_own():
    body = {
        "error": "RecordInvalid",
        "details": {
            "api_token": [{"description": "Api token: is not allowed"}],
            "name": [{"description": "Name: has already been taken"}],
        },
    }
    message = extract_api_message(_response(body), redact=Redactor())
    assert message == "RecordInvalid - api_token: *** - name: Name: has already been taken"


@pytest.mark.parametrize(
    "echo",
    [
        pytest.param(
            lambda s: json.dumps(s).replace("+", "\\u002B").replace("&", "\\u0026")[1:-1], id="dotnet-json"
        ),
        pytest.param(
            lambda s: json.dumps(s).replace("&", "\\u0026").replace("<", "\\u003c")[1:-1], id="go-json"
        ),
        pytest.param(lambda s: "".join(f"\\u{ord(c):04X}" for c in s), id="every-char-escaped"),
        pytest.param(lambda s: repr(json.dumps(s[:9] + "\n" + s[9:])), id="wrapped-json-through-repr"),
        pytest.param(lambda s: s[:9] + "%0A" + s[9:], id="url-encoded-newline"),
    ],
)
def test_a_known_secret_echoed_by_another_json_writer_is_redacted(echo):
    """.NET escapes + & < > ' as \\u002B..., Go escapes & < >; JSON through repr escapes twice."""
    secret = "Zk9+Qm2L/r7Xw&4<5>="
    echoed = echo(secret)
    for shown in _redacted_both_ways(secret, f"echo: {echoed} end"):
        assert echoed[8:-8] not in shown and "Qm2L" not in shown and shown.endswith(" end"), shown


def test_words_that_only_look_like_credential_fields_stay():
    text = '{"token_type": "Bearer", "expires_in": 86400, "error": "invalid or expired token", "tokens": 3}'
    assert Redactor()(text) == text


def _redacted_both_ways(secret: str, text: str) -> tuple[str, str]:
    """``text`` through a redactor that knows ``secret``: whole, and shortened (folded, then cut)."""
    redact = Redactor()
    redact.add_secret(secret)
    return redact(text), redact.shorten(text, 300)


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda s: s[:9] + "\n" + s[9:], id="newline"),
        pytest.param(lambda s: s[:5] + "\r\n  " + s[5:14] + "\n\t" + s[14:], id="several-lines-indented"),
        pytest.param(lambda s: s[:9] + "\\n" + s[9:], id="escaped-newline-in-a-repr"),
        pytest.param(lambda s: s[:9] + "<br>" + s[9:15] + "<br />" + s[15:], id="html-line-breaks"),
        pytest.param(
            lambda s: s[:9] + "&#10;" + s[9:15] + "&#x0D;&#x0a;" + s[15:], id="html-escaped-newlines"
        ),
        pytest.param(lambda s: s[:9] + "=\r\n" + s[9:], id="quoted-printable-soft-break"),
    ],
)
def test_a_secret_wrapped_across_lines_is_redacted_whole(wrap):
    """An error page, or a base64 header echoed MIME-style (76 columns), wraps a long secret."""
    secret = "0123456789abcdefSECRET"
    for shown in _redacted_both_ways(secret, f"echo: {wrap(secret)} end"):
        assert "SECRET" not in shown and "01234" not in shown and shown.endswith(" end"), shown
    header = base64.b64encode(secret.encode()).decode()
    shown = _redacted_both_ways(secret, f"got {header[:10]}\n{header[10:]} .")[0]
    assert header[:10] not in shown and header[10:] not in shown


def test_text_around_a_redacted_field_stays():
    shown = Redactor()('{"error": "bad", "access_token": "abc", "hint": "retry"}')
    assert shown == '{"error": "bad", "access_token": "***", "hint": "retry"}'
