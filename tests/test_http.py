"""Unit tests of the HTTP core's rules: which base URLs, schemes and extras are accepted, how error
bodies are read and redacted, and how "was the request sent?" is decided. What these rules do on the
wire is proved in tests/reliability/test_transport.py."""

from __future__ import annotations

import pytest

from airflow_provider_segments.exceptions import SegmentsConfigError
from airflow_provider_segments.hooks._connection import parse_base_url


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
        ("http://localhost:9000/api", 1234, "http://localhost:9000/api"),
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
    assert "'my_conn'" in str(err.value) and repr(url)[1:-1][:20] in str(err.value)
