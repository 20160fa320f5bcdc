"""The webhook URL rules and the SSRF guard (pure functions, no database)."""

from __future__ import annotations

import pytest

from tollway.notification.urls import UnsafeUrl, check_destination, check_url_syntax, literal_private


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/tw", "http://example.com:8080/x?y=1", "https://[2001:4860:4860::8888]/h"],
)
def test_accepted_urls(url: str) -> None:
    assert check_url_syntax(url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "http:// or https://"),
        ("https:///path", "must name a host"),
        ("https://u:p@example.com/", "credentials"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://exa mple.com/", "spaces"),
        ("https://example.com/" + "x" * 2000, "at most 2000"),
    ],
)
def test_refused_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_url_syntax(url)


@pytest.mark.parametrize(
    ("url", "private"),
    [
        ("http://127.0.0.1/", True),
        ("http://10.1.2.3/", True),
        ("http://172.16.0.1/", True),
        ("http://192.168.1.1/", True),
        ("http://169.254.169.254/latest/meta-data", True),
        ("http://[::1]/", True),
        ("http://[fe80::1]/", True),
        ("http://[fc00::1]/", True),
        ("http://[::ffff:127.0.0.1]/", True),
        ("http://100.64.0.1/", True),
        ("http://0.0.0.0/", True),
        ("http://localhost/", True),
        ("http://api.localhost/", True),
        ("https://8.8.8.8/", False),
        ("https://hooks.example.com/", False),
    ],
)
def test_literal_private(url: str, private: bool) -> None:
    assert literal_private(url) is private


def test_destination_resolving_to_loopback_is_refused_unless_allowed() -> None:
    with pytest.raises(UnsafeUrl, match="non-public address"):
        check_destination("http://localhost:9/x", allow_private=False)
    with pytest.raises(UnsafeUrl, match=r"non-public address 127\.0\.0\.1"):
        check_destination("http://127.0.0.1:9/x", allow_private=False)
    check_destination("http://localhost:9/x", allow_private=True)  # no error
    with pytest.raises(UnsafeUrl, match="cannot resolve"):
        check_destination("http://no-such-host.invalid/x", allow_private=False)
