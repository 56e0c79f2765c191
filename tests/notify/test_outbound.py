"""The one outbound transport refuses what is not globally routable (at the connection,
after its own resolution), follows no redirect, and caps time and answer size."""

from __future__ import annotations

import ipaddress

import pytest
from drift_backend.notify.outbound import (
    AllowList,
    GuardedBackend,
    Limits,
    Outbound,
    Refused,
    SendFailed,
    not_global,
)

from tests.support.receiver import Receiver, Reply

NOT_GLOBAL = [
    "169.254.169.254",  # cloud metadata (link-local)
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "127.0.0.1",
    "100.64.0.1",  # CGNAT
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "0.0.0.0",
    "::1",
    "::",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::a00:1",  # local-use NAT64 of 10.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "fe80::1",
    "fc00::1",
    "ff02::1",
]
GLOBAL = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", NOT_GLOBAL)
def test_non_global_addresses_are_named(address: str) -> None:
    assert not_global(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", GLOBAL)
def test_global_addresses_pass(address: str) -> None:
    assert not_global(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://[::1]:{port}/hook",
        "http://127.0.0.1:{port}/hook",
        "http://localhost:{port}/hook",  # a name that resolves to a loopback address
    ],
)
async def test_refused_without_the_allow_list(receiver: Receiver, url: str) -> None:
    outbound = Outbound(AllowList.parse([]))
    try:
        with pytest.raises(Refused, match="not a global address"):
            await outbound.post(url.format(port=receiver.port), content=b"{}", headers={})
    finally:
        await outbound.aclose()
    assert receiver.requests == []  # not even a connection


async def test_the_check_is_made_where_the_connection_is() -> None:
    """httpcore hands the backend the host name: it resolves, checks and connects itself."""
    backend = GuardedBackend(AllowList.parse([]))
    with pytest.raises(Refused):
        await backend.connect_tcp("localhost", 80, timeout=5)


@pytest.mark.parametrize("allow", [["127.0.0.1"], ["127.0.0.0/8"], ["localhost"]])
async def test_the_allow_list_names_networks_or_hosts(receiver: Receiver, allow: list[str]) -> None:
    url = receiver.url()
    if allow == ["localhost"]:
        url = url.replace("127.0.0.1", "localhost")
    outbound = Outbound(AllowList.parse(allow))
    try:
        answer = await outbound.post(url, content=b"{}", headers={})
    finally:
        await outbound.aclose()
    assert answer.status_code == 200
    assert len(receiver.requests) == 1


async def test_redirects_are_not_followed(receiver: Receiver) -> None:
    with Receiver() as elsewhere:
        receiver.reply(Reply(302, headers={"Location": elsewhere.url("/internal")}))
        outbound = Outbound(AllowList.parse(["127.0.0.1"]))
        try:
            answer = await outbound.post(receiver.url(), content=b"{}", headers={})
        finally:
            await outbound.aclose()
        assert answer.status_code == 302
        assert answer.location == elsewhere.url("/internal")
        assert elsewhere.requests == []


async def test_only_the_first_bytes_of_an_answer_are_read(receiver: Receiver) -> None:
    receiver.reply(Reply(200, b"x" * 1_000_000))
    outbound = Outbound(AllowList.parse(["127.0.0.1"]), Limits(max_response_bytes=1024))
    try:
        answer = await outbound.post(receiver.url(), content=b"{}", headers={})
    finally:
        await outbound.aclose()
    assert len(answer.body) == 1024


async def test_a_hanging_receiver_times_out(receiver: Receiver) -> None:
    receiver.reply(Reply(hang=True))
    limits = Limits(connect_seconds=1, read_seconds=5, total_seconds=0.5)
    outbound = Outbound(AllowList.parse(["127.0.0.1"]), limits)
    try:
        with pytest.raises(SendFailed, match="timed out"):
            await outbound.post(receiver.url(), content=b"{}", headers={})
    finally:
        await outbound.aclose()


async def test_a_refused_connection_is_a_failure_to_retry(receiver: Receiver) -> None:
    receiver.down()
    outbound = Outbound(AllowList.parse(["127.0.0.1"]))
    try:
        with pytest.raises(SendFailed, match="connection failed"):
            await outbound.post(receiver.url(), content=b"{}", headers={})
    finally:
        await outbound.aclose()


async def test_proxy_variables_are_ignored(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy would connect for us, to wherever, unchecked."""
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.0.0.1:3128")
    outbound = Outbound(AllowList.parse(["127.0.0.1"]))
    try:
        answer = await outbound.post(receiver.url(), content=b"{}", headers={})
    finally:
        await outbound.aclose()
    assert answer.status_code == 200
