"""The one outbound HTTP transport: every request to an alert target goes through it.

A target's URL is the user's to choose, so every request is a server-side request forgery
waiting to happen. This transport therefore

- resolves the host itself and refuses any address that is not globally routable (loopback,
  private, link-local such as 169.254.169.254, CGNAT, multicast, reserved, and the IPv6
  forms that embed one: IPv4-mapped, NAT64, 6to4, Teredo), unless the operator allowed the
  network or the host name (``DRIFT_OUTBOUND_ALLOW``);
- connects to the very address it checked: the check lives in httpcore's network backend
  (``connect_tcp``), so no second DNS answer can slip in between check and connect (DNS
  rebinding), while TLS still verifies the certificate against the host name;
- follows no redirects, ignores proxy variables (a proxy would connect for us, unchecked),
  and caps the time (connect, read, all of it) and how much of the answer it reads.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore2
import httpx2

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Shared address space (RFC 6598): carrier-grade NAT, never reachable from the internet.
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
#: NAT64 prefixes (RFC 6052 well-known, RFC 8215 local use): the last 32 bits are an IPv4
#: address the NAT64 gateway connects to, so that address is what must be global.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


class Refused(Exception):
    """The request must not be made; ``reason`` says why (shown to the target's owner)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AllowList:
    """Networks and host names an operator allows even though they are not global."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in entries:
            text = entry.strip()
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            except ValueError:
                hosts.add(text.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, when it stands for one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in prefix for prefix in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if int(address) >> 32 == 0 and int(address) > 1:  # IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(address))
    return None


def not_global(address: IPAddress) -> str | None:
    """Why ``address`` is not a globally routable unicast address (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = not_global(embedded)
            return f"{reason} (embedded in {address})" if reason else None
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "shared (CGNAT)"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "special-purpose"),
    )
    for failed, what in checks:
        if failed:
            return f"{address} is not a global address ({what})"
    return None


def check_address(address: IPAddress, host: str, allow: AllowList) -> None:
    if allow.allows_host(host) or allow.allows_address(address):
        return
    reason = not_global(address)
    if reason is not None:
        raise Refused(reason)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (a literal is its own); ``ConnectError`` when the
    name does not resolve now (a transient failure: the delivery is retried)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as error:  # ValueError: a name IDNA cannot encode
        raise httpcore2.ConnectError(f"{host} does not resolve: {error}") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def checked_addresses(host: str, port: int, allow: AllowList) -> list[IPAddress]:
    """The addresses of ``host``, all of them allowed; ``Refused`` when any is not (one bad
    answer among good ones is as much a sign of an attack as a single one)."""
    addresses = await resolve(host, port)
    for address in addresses:
        check_address(address, host, allow)
    return addresses


class GuardedBackend(httpcore2.AsyncNetworkBackend):
    """httpcore's network backend that checks each address and connects to it, by number."""

    def __init__(self, allow: AllowList) -> None:
        self._allow = allow
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await checked_addresses(host, port, self._allow)
        except TimeoutError:
            raise httpcore2.ConnectTimeout(f"resolving {host} timed out") from None
        last: Exception = httpcore2.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as error:
                last = error
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise Refused("unix sockets are not a destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@dataclass(frozen=True)
class Limits:
    connect_seconds: float = 5.0
    read_seconds: float = 10.0
    total_seconds: float = 15.0
    max_response_bytes: int = 65_536


@dataclass(frozen=True)
class Answer:
    """What the receiver said: its status, ``Retry-After`` and the first bytes of its body."""

    status_code: int
    body: bytes
    retry_after: str | None
    duration_seconds: float
    location: str | None = None

    def excerpt(self, limit: int = 500) -> str:
        return self.body[:limit].decode("utf-8", errors="replace")


class SendFailed(Exception):
    """The request did not get an answer (no connection, a timeout); worth retrying."""

    def __init__(self, reason: str, duration_seconds: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.duration_seconds = duration_seconds


def _transport(allow: AllowList, limits: Limits) -> httpx2.AsyncHTTPTransport:
    transport = httpx2.AsyncHTTPTransport(trust_env=False, retries=0)
    # httpx2 has no parameter for httpcore's network backend, so its pool is built here as
    # httpx2 builds it (same TLS context, no proxy), over the guarded backend.
    transport._pool = httpcore2.AsyncConnectionPool(
        ssl_context=httpx2.create_ssl_context(trust_env=False),
        max_connections=100,
        keepalive_expiry=limits.read_seconds,
        network_backend=GuardedBackend(allow),
    )
    return transport


class Outbound:
    """An HTTP client whose every request goes through the guarded transport."""

    def __init__(self, allow: AllowList, limits: Limits | None = None) -> None:
        self.allow = allow
        self.limits = limits or Limits()
        self._client = httpx2.AsyncClient(
            transport=_transport(allow, self.limits),
            timeout=httpx2.Timeout(self.limits.read_seconds, connect=self.limits.connect_seconds),
            follow_redirects=False,
            trust_env=False,
        )

    async def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> Answer:
        """POST ``content``; raises :class:`Refused` or :class:`SendFailed`."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Refused("only http and https URLs with a host are destinations")
        started = time.monotonic()
        # Compressed answers are refused: the size cap is on what we read, not what it inflates to.
        headers = {"accept-encoding": "identity", **headers}
        try:
            async with asyncio.timeout(self.limits.total_seconds):
                async with self._client.stream(
                    "POST", url, content=content, headers=headers
                ) as response:
                    body = bytearray()
                    async for chunk in response.aiter_raw():
                        body += chunk
                        if len(body) >= self.limits.max_response_bytes:
                            break  # enough to tell what happened; the rest is not read
                    return Answer(
                        status_code=response.status_code,
                        body=bytes(body[: self.limits.max_response_bytes]),
                        retry_after=response.headers.get("retry-after"),
                        duration_seconds=time.monotonic() - started,
                        location=response.headers.get("location"),
                    )
        except (TimeoutError, httpx2.TimeoutException):
            raise SendFailed("timed out", time.monotonic() - started) from None
        except httpx2.TransportError as error:
            raise SendFailed(
                f"connection failed: {error or type(error).__name__}", time.monotonic() - started
            ) from None

    async def aclose(self) -> None:
        await self._client.aclose()
