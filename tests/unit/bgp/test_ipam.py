"""IPAM: affinity, claiming, borrowing, fixed addresses, release, records; properties with hypothesis."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgp.ipam import (
    AddressOutsidePool,
    AddressTaken,
    BlockCapReached,
    BorrowingForbidden,
    HandleInUse,
    InvalidIpamConfig,
    InvalidRecords,
    Ipam,
    IpamConfig,
    PoolExhausted,
    UnknownHandle,
    longest_match,
)

NET = IPv4Network


def small(strict: bool = False, cap: int = 2) -> Ipam:
    # 10.0.0.0/28 in /30 blocks: 4 blocks of 4 addresses.
    return Ipam(IpamConfig(NET("10.0.0.0/28"), block_prefix=30, max_blocks_per_host=cap, strict_affinity=strict))


def test_allocates_from_affine_block_then_claims_next_block() -> None:
    ipam = small()
    ips = [ipam.allocate(f"p{i}", "h1") for i in range(5)]
    assert ips[:4] == [IPv4Address(f"10.0.0.{i}") for i in range(4)]
    assert ips[4] == IPv4Address("10.0.0.4")
    assert ipam.blocks_of("h1") == (NET("10.0.0.0/30"), NET("10.0.0.4/30"))


def test_hosts_get_separate_blocks() -> None:
    ipam = small()
    a = ipam.allocate("a", "h1")
    b = ipam.allocate("b", "h2")
    assert ipam.config.block_of(a) != ipam.config.block_of(b)
    assert ipam.announcements("h1") == {NET("10.0.0.0/30")}
    assert ipam.announcements("h2") == {NET("10.0.0.4/30")}


def test_borrows_when_cap_reached_and_announces_a_slash_32() -> None:
    ipam = small(cap=1)
    for i in range(4):
        ipam.allocate(f"h1-{i}", "h1")
    ipam.allocate("h2-0", "h2")  # h2 owns 10.0.0.4/30, one address used
    borrowed = ipam.allocate("h1-extra", "h1")
    assert borrowed == IPv4Address("10.0.0.5")
    # h1 is at its cap of one block: it must borrow from another host's block, not claim a new one.
    assert ipam.blocks_of("h1") == (NET("10.0.0.0/30"),)
    owner_block = ipam.config.block_of(borrowed)
    assert ipam.block_host(owner_block) != "h1"
    assert ipam.announcements("h1") == {NET("10.0.0.0/30"), NET(f"{borrowed}/32")}
    assert [a.ip for a in ipam.borrowed_by("h1")] == [borrowed]


def test_strict_affinity_refuses_to_borrow() -> None:
    ipam = small(strict=True, cap=1)
    for i in range(4):
        ipam.allocate(f"h1-{i}", "h1")
    ipam.allocate("h2-0", "h2")
    with pytest.raises(BlockCapReached, match="h1 has its 1 blocks full and strict affinity"):
        ipam.allocate("h1-extra", "h1")
    with pytest.raises(BorrowingForbidden, match="block 10.0.0.4/30 of host h2"):
        ipam.allocate("h1-fixed", "h1", fixed="10.0.0.5")


def test_pool_exhausted_when_every_address_is_used() -> None:
    ipam = small(cap=4)
    for i in range(16):
        ipam.allocate(f"p{i}", f"h{i % 3}")
    with pytest.raises(PoolExhausted, match="10.0.0.0/28"):
        ipam.allocate("one-too-many", "h9")


def test_fixed_address_claims_its_block_and_rejects_taken_or_outside() -> None:
    ipam = small()
    assert ipam.allocate("fixed", "h2", fixed="10.0.0.13") == IPv4Address("10.0.0.13")
    assert ipam.blocks_of("h2") == (NET("10.0.0.12/30"),)
    with pytest.raises(AddressTaken, match="10.0.0.13 is already used by fixed on host h2"):
        ipam.allocate("other", "h1", fixed="10.0.0.13")
    with pytest.raises(AddressOutsidePool, match="outside the pod pool 10.0.0.0/28"):
        ipam.allocate("other", "h1", fixed="10.0.1.1")
    # An automatic allocation on h2 continues in its affine block.
    assert ipam.allocate("auto", "h2") == IPv4Address("10.0.0.12")


def test_fixed_address_in_new_block_respects_the_cap() -> None:
    ipam = small(cap=1)
    ipam.allocate("a", "h1")
    with pytest.raises(BlockCapReached, match="needs block 10.0.0.8/30"):
        ipam.allocate("b", "h1", fixed="10.0.0.9")
    assert ipam.owner("10.0.0.9") is None


def test_same_handle_is_idempotent_but_not_across_hosts() -> None:
    ipam = small()
    ip = ipam.allocate("p", "h1")
    assert ipam.allocate("p", "h1") == ip
    with pytest.raises(HandleInUse, match="p already has address 10.0.0.0 on host h1"):
        ipam.allocate("p", "h2")


def test_release_frees_address_and_empty_block() -> None:
    ipam = small()
    ipam.allocate("a", "h1")
    ipam.allocate("b", "h1")
    released = ipam.release("a")
    assert released.ip == IPv4Address("10.0.0.0")
    assert ipam.owner("10.0.0.0") is None
    assert ipam.blocks_of("h1") == (NET("10.0.0.0/30"),)
    ipam.release("b")
    assert ipam.blocks_of("h1") == ()
    assert ipam.announcements("h1") == frozenset()
    with pytest.raises(UnknownHandle):
        ipam.release("b")


def test_block_with_borrowed_address_stays_claimed_by_owner() -> None:
    ipam = small(cap=1)
    ipam.allocate("h2-0", "h2")  # h2: 10.0.0.0/30
    for i in range(4):
        ipam.allocate(f"h1-{i}", "h1")  # h1: 10.0.0.4/30
    borrowed = ipam.allocate("h1-borrow", "h1")
    assert ipam.config.block_of(borrowed) == NET("10.0.0.0/30")
    ipam.release("h2-0")
    assert ipam.block_host(NET("10.0.0.0/30")) == "h2"  # h1's borrowed address still lives there
    usage = {u.cidr: u for u in ipam.usage()}
    assert usage[NET("10.0.0.0/30")].used == 1 and usage[NET("10.0.0.0/30")].borrowed == 1


def test_usage_reports_used_and_free() -> None:
    ipam = small()
    ipam.allocate("a", "h1")
    ipam.allocate("b", "h1")
    (line,) = ipam.usage()
    assert (line.cidr, line.host, line.used, line.free) == (NET("10.0.0.0/30"), "h1", 2, 2)


@pytest.mark.parametrize(
    ("pool", "prefix", "message"),
    [("10.0.0.0/16", 19, "/19 is not allowed"), ("10.0.0.0/27", 26, "smaller than one /26 block")],
)
def test_bad_config(pool: str, prefix: int, message: str) -> None:
    with pytest.raises(InvalidIpamConfig, match=message):
        IpamConfig(NET(pool), block_prefix=prefix)


def test_records_reject_contradictions() -> None:
    config = IpamConfig(NET("10.0.0.0/28"), block_prefix=30)
    good_block = {"cidr": "10.0.0.0/30", "host": "h1"}
    with pytest.raises(InvalidRecords, match="not a /30 block"):
        Ipam.from_records(config, {"blocks": [{"cidr": "10.0.1.0/30", "host": "h1"}], "addresses": []})
    with pytest.raises(InvalidRecords, match="not in a claimed block"):
        Ipam.from_records(
            config,
            {"blocks": [good_block], "addresses": [{"ip": "10.0.0.5", "handle": "x", "host": "h1",
                                                    "block": "10.0.0.4/30"}]},
        )
    with pytest.raises(InvalidRecords, match="malformed"):
        Ipam.from_records(config, {"blocks": [{"cidr": "nonsense", "host": "h1"}], "addresses": []})
    with pytest.raises(InvalidRecords, match="malformed"):
        Ipam.from_records(config, {"blocks": []})


def test_longest_match() -> None:
    prefixes = [NET("10.0.0.0/26"), NET("10.0.0.5/32")]
    assert longest_match(IPv4Address("10.0.0.5"), prefixes) == NET("10.0.0.5/32")
    assert longest_match(IPv4Address("10.0.0.6"), prefixes) == NET("10.0.0.0/26")
    assert longest_match(IPv4Address("10.0.1.6"), prefixes) is None


# ---- properties -----------------------------------------------------------------------------------------

HOSTS = ["h1", "h2", "h3"]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), st.integers(0, 40), st.sampled_from(HOSTS), st.none()),
        st.tuples(st.just("alloc"), st.integers(0, 40), st.sampled_from(HOSTS), st.integers(0, 31)),
        st.tuples(st.just("release"), st.integers(0, 40), st.just(""), st.none()),
    ),
    max_size=60,
)


def run(ops: list[tuple[str, int, str, int | None]], strict: bool) -> tuple[Ipam, dict[str, IPv4Address]]:
    """Apply operations, skipping refused ones; return the IPAM and the model of who holds what."""
    ipam = Ipam(IpamConfig(NET("10.0.0.0/27"), block_prefix=29, max_blocks_per_host=2, strict_affinity=strict))
    held: dict[str, IPv4Address] = {}
    for kind, n, host, offset in ops:
        handle = f"p{n}"
        if kind == "release":
            if handle in held:
                assert ipam.release(handle).ip == held.pop(handle)
            continue
        fixed = IPv4Address("10.0.0.0") + offset if offset is not None else None
        before = ipam.to_records()
        try:
            ip = ipam.allocate(handle, host, fixed)
        except (AddressTaken, BlockCapReached, PoolExhausted, BorrowingForbidden, HandleInUse):
            assert ipam.to_records() == before  # a refusal changes nothing
            continue
        assert held.get(handle, ip) == ip
        held[handle] = ip
    return ipam, held


@settings(max_examples=150, deadline=None)
@given(operations, st.booleans())
def test_no_address_is_given_twice_and_release_returns_it(ops, strict) -> None:  # type: ignore[no-untyped-def]
    ipam, held = run(ops, strict)
    assert len(set(held.values())) == len(held)
    assert {a.handle: a.ip for a in ipam.allocations()} == held
    for handle, ip in held.items():
        owner = ipam.owner(ip)
        assert owner is not None and owner.handle == handle


@settings(max_examples=150, deadline=None)
@given(operations, st.booleans())
def test_records_round_trip_through_json(ops, strict) -> None:  # type: ignore[no-untyped-def]
    ipam, _ = run(ops, strict)
    records = json.loads(json.dumps(ipam.to_records()))
    again = Ipam.from_records(ipam.config, records)
    assert again.to_records() == ipam.to_records()
    for host in HOSTS:
        assert again.announcements(host) == ipam.announcements(host)


@settings(max_examples=150, deadline=None)
@given(operations, st.booleans())
def test_announcements_route_every_address_to_its_host(ops, strict) -> None:  # type: ignore[no-untyped-def]
    ipam, _ = run(ops, strict)
    announced = {host: ipam.announcements(host) for host in HOSTS}
    everything = [(p, h) for h, prefixes in announced.items() for p in prefixes]
    assert len({p for p, _ in everything}) == len(everything)  # no prefix announced by two hosts
    for allocation in ipam.allocations():
        own = announced[allocation.host]
        covering = [p for p in own if allocation.ip in p]
        assert len(covering) == 1  # its block or its /32, exactly once
        best = longest_match(allocation.ip, [p for p, _ in everything])
        assert best is not None and dict(everything)[best] == allocation.host
        assert ipam.block_host(allocation.block) is not None
    for host in HOSTS:
        assert len(ipam.blocks_of(host)) <= ipam.config.max_blocks_per_host


@settings(max_examples=150, deadline=None)
@given(operations)
def test_strict_affinity_never_borrows(ops) -> None:  # type: ignore[no-untyped-def]
    ipam, _ = run(ops, strict=True)
    for host in HOSTS:
        assert ipam.borrowed_by(host) == ()
        assert all(p.prefixlen == 29 for p in ipam.announcements(host))
