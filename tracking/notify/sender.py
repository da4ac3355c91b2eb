"""One HTTP POST to a webhook endpoint, safely: only public addresses (unless
``WEBHOOK_ALLOW_PRIVATE_NETWORKS``), the address checked is the address connected to (no DNS
rebinding between the check and the request), short timeouts, no redirects, a capped response.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from django.conf import settings

RESPONSE_CAP = 4096  # bytes of the response kept for the delivery log
USER_AGENT = "statustracker-webhooks/1"
# Cloud metadata services answer on these even where they are not link-local.
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class UnsafeUrl(ValueError):
    """A URL the service will not call: its scheme, or an address it resolves to."""


@dataclass(frozen=True)
class Sent:
    status_code: int | None
    latency_ms: int
    body_excerpt: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private or address.is_reserved or address.is_multicast or address.is_unspecified:
        return "a private or reserved address"
    return None


def resolve_safe(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, address to connect to), or ``UnsafeUrl`` saying why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl("only http and https URLs with a host are allowed")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise UnsafeUrl(f"{parts.hostname} does not resolve ({error.strerror})") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        for address in addresses:
            if why := _refused(address):
                raise UnsafeUrl(f"{parts.hostname} resolves to {address}, {why}")
    return parts.scheme, parts.hostname, port, str(addresses[0])


def post(url: str, body: bytes, headers: dict[str, str]) -> Sent:
    """POST ``body``; never raises for the endpoint's failures, which are reported in ``Sent``."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        scheme, host, port, address = resolve_safe(url)
    except UnsafeUrl as error:
        return Sent(None, elapsed(), error=f"refused: {error}")
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = urllib3.Timeout(connect=settings.WEBHOOK_CONNECT_TIMEOUT, read=settings.WEBHOOK_READ_TIMEOUT)
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address, port, timeout=timeout, retries=False, server_hostname=host, assert_hostname=host
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    default_port = 443 if scheme == "https" else 80
    request_headers = {
        "Host": host if port == default_port else f"{host}:{port}",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **headers,
    }
    try:
        response = pool.urlopen("POST", path, body=body, headers=request_headers, redirect=False, preload_content=False)
        try:
            excerpt = response.read(RESPONSE_CAP, decode_content=True)
        finally:
            response.release_conn()
        return Sent(response.status, elapsed(), excerpt.decode("utf-8", errors="replace")[:1000])
    except urllib3.exceptions.HTTPError as error:
        return Sent(None, elapsed(), error=f"{type(error).__name__}: {error}"[:500])
    finally:
        pool.close()
