"""The SSRF guard: a webhook URL may only lead to the public internet.

An operator's URL is fetched by PixWave's own workers, from inside its network. Without a
guard, a URL naming `127.0.0.1`, a private address or the cloud metadata service
(`169.254.169.254`) would make PixWave post to — and report the answers of — machines only it
can reach. So a URL is refused unless it is http(s), carries no credentials, and **every**
address its host resolves to is global. The host is resolved with the system resolver
(`getaddrinfo`), so the numeric spellings it accepts (`2130706433`, `0x7f.1`, `127.1`) are
judged by the address they mean; IPv4 addresses embedded in IPv6 ones (`::ffff:127.0.0.1`,
6to4, NAT64) are judged as IPv4 too.

The check runs at registration and again before every attempt, and the request then connects
to the very address that was checked (see :mod:`pixwave.notifications.webhooks.sender`): a name
that resolves to a public address when checked and to a private one a moment later (DNS
rebinding) never gets a connection to the private one.

Loopback and private URLs are allowed with ``WEBHOOK_ALLOW_PRIVATE_URLS=true``, and by default
in the pure demo (gateway simulators mounted, ``APP_ENV`` not production), where the receiver
is usually on the same machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import httpx

from pixwave.config import Settings
from pixwave.exceptions import ValidationFailed
from pixwave.gateways.registry import GatewayModeError, simulated_gateways

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Looks a host up: every address it resolves to, as text.
Resolver = Callable[[str, int], Awaitable[list[str]]]

#: Longest a look-up may take before the URL is refused (registration) or the attempt fails.
RESOLVE_TIMEOUT_SECONDS: Final = 5.0

_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


class WebhookUrlNotAllowed(ValidationFailed):
    """The URL is not http(s), carries credentials, does not resolve, or leads to an address
    that is not public (loopback, private, link-local, metadata service …)."""

    code = "webhook_url_not_allowed"
    title = "The webhook URL is not allowed"
    example: ClassVar[dict[str, Any]] = {
        "errors": [
            {
                "location": "body.url",
                "message": "127.0.0.1 is a loopback address",
                "type": "webhook_url_not_allowed",
            }
        ]
    }

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the webhook URL is not allowed: {reason}",
            errors=[{"location": "body.url", "message": reason, "type": self.code}],
        )
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Target:
    """Where a checked URL leads: its parts, and the addresses that passed the check (empty
    when private URLs are allowed and no check was made)."""

    url: httpx.URL
    host: str
    port: int
    addresses: tuple[str, ...]


def private_urls_allowed(settings: Settings) -> bool:
    """The explicit setting, else only the pure demo: simulators mounted, not production."""
    if settings.webhook_allow_private_urls is not None:
        return settings.webhook_allow_private_urls
    if settings.is_production:
        return False
    try:
        return bool(simulated_gateways(settings))
    except GatewayModeError:
        return False


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives for the host (IPv4 and IPv6)."""
    loop = asyncio.get_running_loop()
    # AI_ADDRCONFIG: no IPv6 answers on a host without IPv6 (the first address is the one
    # connected to; an unroutable one would fail every attempt).
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse(url: str) -> tuple[httpx.URL, str, int]:
    """The URL, its host and port; WebhookUrlNotAllowed for anything but plain http(s)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise WebhookUrlNotAllowed(f"not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https"):
        raise WebhookUrlNotAllowed("only http and https URLs are allowed")
    if parsed.userinfo:
        raise WebhookUrlNotAllowed("the URL may not carry a user name or password")
    host = parsed.host
    if not host:
        raise WebhookUrlNotAllowed("the URL has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed, host, port


def refusal(address: str) -> str | None:
    """Why an address is not public, or None when it is."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            reason = refusal(str(embedded))
            return None if reason is None else f"{ip} embeds {reason}"
    for kind, flagged in (
        ("an unspecified", ip.is_unspecified),
        ("a loopback", ip.is_loopback),
        ("a link-local", ip.is_link_local),
        ("a multicast", ip.is_multicast),
        ("a private", ip.is_private),
        ("a reserved", ip.is_reserved),
    ):
        if flagged:
            return f"{ip} is {kind} address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return f"{ip} is a site-local address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


async def check(url: str, *, allow_private: bool, resolver: Resolver = system_resolve) -> Target:
    """Parse and, unless private URLs are allowed, resolve and judge every address."""
    parsed, host, port = parse(url)
    if allow_private:
        return Target(parsed, host, port, ())
    try:
        addresses = await asyncio.wait_for(resolver(host, port), RESOLVE_TIMEOUT_SECONDS)
    except (OSError, TimeoutError) as exc:
        raise WebhookUrlNotAllowed(f"{host} does not resolve ({exc or 'timed out'})") from None
    if not addresses:
        raise WebhookUrlNotAllowed(f"{host} does not resolve")
    for address in addresses:
        reason = refusal(address)
        if reason is not None:
            raise WebhookUrlNotAllowed(reason if address == host else f"{host}: {reason}")
    return Target(parsed, host, port, tuple(addresses))
