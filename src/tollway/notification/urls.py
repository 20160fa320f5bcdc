"""Webhook URLs: what is accepted on create, and the SSRF guard applied before every delivery.

A webhook URL is ``http`` or ``https`` with a host and no credentials. Unless
``TOLLWAY_WEBHOOK_ALLOW_PRIVATE_URLS=true``, a delivery is refused when the host resolves to any
address that is not globally routable (loopback, private, link-local, shared, multicast,
reserved, unspecified): a provider's admin must not be able to make Tollway call into the
network it runs in. A literal private address is refused already on create. Redirects are never
followed (a 3xx is a failed attempt), so a public URL cannot bounce a delivery inward.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeUrl(ValueError):
    pass


def check_url_syntax(url: str) -> str:
    """The URL, or ValueError saying what is wrong with it."""
    if len(url) > 2000:
        raise ValueError("must be at most 2000 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials (user:password@)")
    if port == 0:
        raise ValueError("must not use port 0")
    if any(c.isspace() for c in url):
        raise ValueError("must not contain spaces")
    return url


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(ip.is_global) and not ip.is_multicast


def literal_private(url: str) -> bool:
    """True when the URL's host is an IP address that is not public."""
    host = urlsplit(url).hostname or ""
    try:
        return not _is_public(host)
    except ValueError:
        return host.lower() in ("localhost",) or host.lower().endswith(".localhost")


def check_destination(url: str, *, allow_private: bool) -> None:
    """Raise :class:`UnsafeUrl` unless every address the host resolves to is public (or private
    addresses are allowed). Resolution failures are raised as :class:`UnsafeUrl` too."""
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeUrl(f"cannot resolve {host}: {exc}") from exc
    for info in infos:
        address = str(info[4][0])
        if not _is_public(address):
            raise UnsafeUrl(
                f"refused: {host} resolves to the non-public address {address} "
                "(set TOLLWAY_WEBHOOK_ALLOW_PRIVATE_URLS=true to allow)"
            )
