"""The pure pieces of the controller's fast write path: nf_tables generation reads, the per-host saved state
and the lean rtnetlink parsers."""

from __future__ import annotations

import json
import struct
from ipaddress import IPv4Network

from hypothesis import given
from hypothesis import strategies as st

from policy_dataplane.dataplane import program_state
from policy_dataplane.dataplane.hostprogram import EMPTY_PROGRAM
from policy_dataplane.dataplane.nft import nftnl
from topology import rtnl


def _newgen(seq: int, generation: int) -> bytes:
    attr = struct.pack("=HH", 8, nftnl.NFTA_GEN_ID) + struct.pack("!I", generation)
    body = struct.pack("=BBH", 0, 0, 0) + attr
    kind = (nftnl.NFNL_SUBSYS_NFTABLES << 8) | nftnl.NFT_MSG_NEWGEN
    return struct.pack("=IHHII", 16 + len(body), kind, 0, seq, 0) + body


@given(st.integers(1, 2**31), st.integers(0, 2**32 - 1))
def test_a_generation_is_read_from_the_answer_with_its_sequence_number(seq: int, generation: int) -> None:
    assert nftnl.parse_generation(_newgen(seq, generation), seq) == generation
    assert nftnl.parse_generation(_newgen(seq + 1, generation), seq) is None  # someone else's answer


def test_a_generation_request_is_a_getgen_of_the_nftables_subsystem() -> None:
    length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", nftnl.generation_request(7))
    assert (length, kind, flags, seq) == (20, (10 << 8) | 16, nftnl.NLM_F_REQUEST, 7)


def test_the_state_assembled_from_per_host_parts_is_the_document_dumps_makes() -> None:
    applied = {"node1": EMPTY_PROGRAM, "node-2\"x": EMPTY_PROGRAM}
    parts = {host: program_state.program_json(p) for host, p in applied.items()}
    assembled = program_state.assemble("nftables", parts)
    assert json.loads(assembled) == json.loads(program_state.dumps("nftables", applied))
    assert program_state.loads(assembled) == ("nftables", applied)


@given(st.integers(0, 2**32 - 1), st.integers(0, 32), st.one_of(st.none(), st.integers(1, 2**31 - 1)))
def test_a_route_parses_back_to_its_prefix_as_text(address: int, prefixlen: int, oif: int | None) -> None:
    network = IPv4Network((address, prefixlen), strict=False)
    route = rtnl.parse_route(rtnl.route_add(network, oif=oif, blackhole=oif is None).payload)
    assert route.prefix == str(network) and route.destination == network
    assert (route.oif, route.table) == (oif, rtnl.RT_TABLE_MAIN)
