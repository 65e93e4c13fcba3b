"""ExaBGP JSON (captured from real 5.0.15 speakers) to events, and events to kernel route operations."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgp.routes import (
    Announce,
    EndOfRib,
    Install,
    LearntRoutes,
    MessageError,
    PeerState,
    Remove,
    Withdraw,
    announcement_commands,
    blackholes,
    parse_message,
)

CAPTURED = (Path(__file__).parent / "data" / "exabgp_5.0.15_messages.jsonl").read_text().splitlines()
A, B = IPv4Address("10.250.0.1"), IPv4Address("10.250.0.2")
BLOCK, BORROWED = IPv4Network("10.1.0.0/26"), IPv4Network("10.1.5.7/32")


def test_parses_state_changes_with_reasons() -> None:
    assert parse_message(CAPTURED[1]) == [PeerState(B, "up", "", pytest.approx(1795425029.08, abs=0.01))]
    (down,) = parse_message(CAPTURED[8])
    assert isinstance(down, PeerState) and down.state == "down" and down.reason == "notification sent (4,0)"


def test_parses_announce_withdraw_and_end_of_rib() -> None:
    assert parse_message(CAPTURED[16]) == [Announce(A, BLOCK, A), Announce(A, BORROWED, A)]
    assert parse_message(CAPTURED[17]) == [EndOfRib(A)]
    assert parse_message(CAPTURED[18]) == [Withdraw(A, BORROWED)]


def test_ignores_messages_without_a_neighbor() -> None:
    assert parse_message(CAPTURED[4]) == []  # {"type": "notification", "notification": "shutdown"}


def test_rejects_garbage() -> None:
    with pytest.raises(MessageError):
        parse_message("announce route")


def test_replay_of_a_real_session_flap() -> None:
    """b's view: learns both prefixes, loses the /32, loses the session, learns the block again."""
    table = LearntRoutes()
    ops = [op for line in CAPTURED[14:] for event in parse_message(line) for op in table.apply(event)]
    assert ops == [
        Install(BLOCK, A), Install(BORROWED, A),  # update
        Remove(BORROWED),  # withdraw
        Remove(BLOCK),  # session down: everything from that peer goes
        Install(BLOCK, A),  # re-established
    ]
    assert table.installed == {BLOCK: A}
    assert table.received_from(A) == 1


def test_two_peers_with_one_prefix_keep_it_until_both_lost() -> None:
    table = LearntRoutes()
    c = IPv4Address("10.250.0.3")
    assert table.apply(Announce(c, BLOCK, c)) == [Install(BLOCK, c)]
    assert table.apply(Announce(A, BLOCK, A)) == [Install(BLOCK, A)]  # lowest peer wins
    assert table.apply(PeerState(A, "down")) == [Install(BLOCK, c)]
    assert table.apply(Withdraw(c, BLOCK)) == [Remove(BLOCK)]
    assert table.installed == {}


def test_reflected_routes_keep_the_originator_as_next_hop() -> None:
    table = LearntRoutes()
    rr, origin = IPv4Address("10.99.0.250"), IPv4Address("10.99.0.2")
    assert table.apply(Announce(rr, BLOCK, origin)) == [Install(BLOCK, origin)]
    assert table.apply(PeerState(rr, "down", "hold timer")) == [Remove(BLOCK)]


def test_own_prefixes_are_never_installed_and_clear_removes_all() -> None:
    table = LearntRoutes(local_prefixes=[BLOCK])
    assert table.apply(Announce(A, BLOCK, A)) == []
    assert table.apply(Announce(A, BORROWED, A)) == [Install(BORROWED, A)]
    assert table.set_local([]) == [Install(BLOCK, A)]
    assert sorted(table.clear(), key=str) == sorted([Remove(BLOCK), Remove(BORROWED)], key=str)


def test_announcement_commands_withdraw_first() -> None:
    other = IPv4Network("10.1.0.64/26")
    assert announcement_commands([BLOCK, BORROWED], [BLOCK, other]) == [
        "withdraw route 10.1.5.7/32 next-hop self",
        "announce route 10.1.0.64/26 next-hop self",
    ]
    assert announcement_commands([BLOCK], [BLOCK]) == []


def test_blackholes_only_for_blocks() -> None:
    assert blackholes([BLOCK, BORROWED]) == {BLOCK}


def test_a_route_containing_its_own_next_hop_is_refused() -> None:
    """A peer leaking the fabric subnet must not make us route the fabric through that peer."""
    table = LearntRoutes()
    rr = IPv4Address("10.99.0.200")
    leak = Announce(rr, IPv4Network("10.99.0.0/24"), rr)
    assert table.apply(leak) == []
    assert table.refused == [leak]
    assert table.installed == {}


# ---- property: the operations always keep a kernel equal to a from-scratch answer ---------------------

PEERS = [IPv4Address(f"10.99.0.{i}") for i in (1, 2, 3)]
PREFIXES = [IPv4Network(p) for p in ("10.1.0.0/26", "10.1.0.64/26", "10.1.0.5/32", "10.1.1.0/26")]
events = st.lists(
    st.one_of(
        st.builds(Announce, st.sampled_from(PEERS), st.sampled_from(PREFIXES), st.sampled_from(PEERS)),
        st.builds(Withdraw, st.sampled_from(PEERS), st.sampled_from(PREFIXES)),
        st.builds(PeerState, st.sampled_from(PEERS), st.sampled_from(["up", "down", "connected"])),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(events, st.sets(st.sampled_from(PREFIXES), max_size=2))
def test_kernel_follows_the_rib_whatever_the_order(history, local) -> None:  # type: ignore[no-untyped-def]
    table = LearntRoutes(local_prefixes=local)
    kernel: dict[IPv4Network, IPv4Address] = {}
    rib: dict[IPv4Address, dict[IPv4Network, IPv4Address]] = {}
    for event in history:
        for op in table.apply(event):
            if isinstance(op, Install):
                kernel[op.prefix] = op.next_hop
            else:
                assert op.prefix in kernel, "removing a route that is not installed"
                del kernel[op.prefix]
        # The model: what each peer currently announces.
        if isinstance(event, Announce) and event.next_hop not in event.prefix:
            rib.setdefault(event.peer, {})[event.prefix] = event.next_hop
        elif isinstance(event, Withdraw):
            rib.get(event.peer, {}).pop(event.prefix, None)
        elif isinstance(event, PeerState) and event.state == "down":
            rib.pop(event.peer, None)
    expected = {}
    for prefix in PREFIXES:
        offers = sorted((peer, routes[prefix]) for peer, routes in rib.items() if prefix in routes)
        if offers and prefix not in local:
            expected[prefix] = offers[0][1]
    assert kernel == expected == table.installed
    for op in table.clear():
        assert isinstance(op, Remove)
        del kernel[op.prefix]
    assert kernel == {}
