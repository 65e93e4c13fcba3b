"""Hand-packed rtnetlink messages are byte-for-byte what pyroute2 would send."""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.ndtmsg import ndtmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from topology import rtnl


def _pyroute2(msg_class, header_type: int, flags: int, seq: int, fields: dict, attrs: list) -> bytes:  # type: ignore[no-untyped-def]
    msg = msg_class()
    for key, value in fields.items():
        msg[key] = value
    msg["attrs"] = attrs
    msg["header"]["type"] = header_type
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data)


def test_address_matches_pyroute2() -> None:
    ours = rtnl.encode(rtnl.addr_add(2, IPv4Interface("10.99.0.1/24")), 7)
    theirs = _pyroute2(
        ifaddrmsg,
        rtnl.RTM_NEWADDR,
        0x1 | 0x4 | 0x400 | 0x200,
        7,
        {"family": socket.AF_INET, "prefixlen": 24, "index": 2},
        [("IFA_LOCAL", "10.99.0.1"), ("IFA_ADDRESS", "10.99.0.1"), ("IFA_BROADCAST", "10.99.0.255")],
    )
    assert ours == theirs


def test_default_route_via_gateway_matches_pyroute2() -> None:
    ours = rtnl.encode(
        rtnl.route_add(IPv4Network("0.0.0.0/0"), gateway=IPv4Address("169.254.1.1"), oif=2), 3
    )
    theirs = _pyroute2(
        rtmsg,
        rtnl.RTM_NEWROUTE,
        0x1 | 0x4 | 0x400 | 0x200,
        3,
        {"family": socket.AF_INET, "dst_len": 0, "table": 254, "proto": 3, "scope": 0, "type": 1},
        [("RTA_GATEWAY", "169.254.1.1"), ("RTA_OIF", 2)],
    )
    assert ours == theirs


def test_device_route_has_link_scope() -> None:
    ours = rtnl.encode(rtnl.route_add(IPv4Network("10.200.0.1/32"), oif=9), 1)
    theirs = _pyroute2(
        rtmsg,
        rtnl.RTM_NEWROUTE,
        0x1 | 0x4 | 0x400 | 0x200,
        1,
        {"family": socket.AF_INET, "dst_len": 32, "table": 254, "proto": 3, "scope": 253, "type": 1},
        [("RTA_DST", "10.200.0.1"), ("RTA_OIF", 9)],
    )
    assert ours == theirs


def test_blackhole_route_matches_pyroute2() -> None:
    ours = rtnl.encode(rtnl.route_add(IPv4Network("10.64.0.0/20"), blackhole=True), 5)
    theirs = _pyroute2(
        rtmsg,
        rtnl.RTM_NEWROUTE,
        0x1 | 0x4 | 0x400 | 0x200,
        5,
        {"family": socket.AF_INET, "dst_len": 20, "table": 254, "proto": 3, "scope": 0, "type": 6},
        [("RTA_DST", "10.64.0.0")],
    )
    assert ours == theirs


def test_link_up_by_name_with_master_matches_pyroute2() -> None:
    ours = rtnl.encode(rtnl.link_set("nplh123", master=2), 5)
    theirs = _pyroute2(
        ifinfmsg,
        rtnl.RTM_NEWLINK,
        0x1 | 0x4,
        5,
        {"family": 0, "index": 0, "flags": 1, "change": 1},
        [("IFLA_IFNAME", "nplh123"), ("IFLA_MASTER", 2)],
    )
    assert ours == theirs


def test_parse_error_reads_errno_and_extended_ack_text() -> None:
    text = b"Nexthop device is not up\0"
    tlv = struct.pack("=HH", 4 + len(text), rtnl.NLMSGERR_ATTR_MSG) + text
    tlv += b"\0" * (-len(tlv) % 4)
    payload = struct.pack("=i", -19) + struct.pack("=IHHII", 36, 24, 5, 1, 0) + tlv
    assert rtnl.parse_error(rtnl.NLM_F_CAPPED | rtnl.NLM_F_ACK_TLVS, payload) == (19, "Nexthop device is not up")
    assert rtnl.parse_error(0, struct.pack("=i", 0) + b"\0" * 16) == (0, "")


def test_iter_messages_splits_a_datagram_and_parse_link_reads_the_name() -> None:
    link = rtnl.link_set("cali0123456789a")
    data = rtnl.encode(link, 1) + rtnl.encode(rtnl.link_delete("eth0"), 2)
    messages = list(rtnl.iter_messages(data))
    assert [(m[0], m[2]) for m in messages] == [(rtnl.RTM_NEWLINK, 1), (rtnl.RTM_DELLINK, 2)]
    assert rtnl.parse_link(messages[0][3]) == rtnl.LinkInfo(0, "cali0123456789a", 0)
    up = messages[0][3] + rtnl.attr(rtnl.IFLA_OPERSTATE, bytes([rtnl.IF_OPER_UP]))
    assert rtnl.parse_link(up).oper_up


def _nested(data: bytes) -> dict[int, bytes]:
    return dict(rtnl.iter_attrs(data))


def test_link_configure_sets_devconf_by_number_and_addrgenmode_none() -> None:
    request = rtnl.link_configure("cali1", {"proxy_arp": 1, "rp_filter": 1})
    assert request.type == rtnl.RTM_NEWLINK
    attrs = _nested(request.payload[16:])
    assert attrs[rtnl.IFLA_IFNAME] == b"cali1\0"
    spec = _nested(attrs[rtnl.IFLA_AF_SPEC])
    conf = _nested(_nested(spec[socket.AF_INET])[rtnl.IFLA_INET_CONF])
    assert conf == {3: struct.pack("=I", 1), 8: struct.pack("=I", 1)}  # IPV4_DEVCONF_PROXY_ARP, _RP_FILTER
    assert _nested(spec[socket.AF_INET6]) == {rtnl.IFLA_INET6_ADDR_GEN_MODE: b"\x01"}
    # pyroute2 reads the same message the same way.
    msg = ifinfmsg(rtnl.encode(request, 1))
    msg.decode()
    assert msg.get_attr("IFLA_IFNAME") == "cali1"
    inet6 = msg.get_attr("IFLA_AF_SPEC").get_attr("AF_INET6")
    assert inet6.get_attr("IFLA_INET6_ADDR_GEN_MODE") == 1


def test_arp_proxy_delay_decodes_with_pyroute2() -> None:
    msg = ndtmsg(rtnl.encode(rtnl.arp_proxy_delay(7, 0), 1))
    msg.decode()
    assert msg["family"] == socket.AF_INET
    assert msg.get_attr("NDTA_NAME") == "arp_cache"
    parms = msg.get_attr("NDTA_PARMS")
    assert parms.get_attr("NDTPA_IFINDEX") == 7 and parms.get_attr("NDTPA_PROXY_DELAY") == 0


def test_permanent_neighbour_matches_pyroute2() -> None:
    ours = rtnl.encode(rtnl.neigh_add_permanent(2, IPv4Address("169.254.1.1"), "ee:ee:ee:ee:ee:ee"), 4)
    theirs = _pyroute2(
        ndmsg,
        rtnl.RTM_NEWNEIGH,
        0x1 | 0x4 | 0x400 | 0x200,
        4,
        {"family": socket.AF_INET, "ifindex": 2, "state": 0x80},
        [("NDA_DST", "169.254.1.1"), ("NDA_LLADDR", "ee:ee:ee:ee:ee:ee")],
    )
    assert ours == theirs


def test_a_route_request_parses_back_to_its_destination_interface_and_table():
    from ipaddress import IPv4Network

    from topology import rtnl

    request = rtnl.route_add(IPv4Network("10.1.2.3/32"), oif=7)
    route = rtnl.parse_route(request.payload)
    assert (route.destination, route.oif, route.table) == (IPv4Network("10.1.2.3/32"), 7, rtnl.RT_TABLE_MAIN)
    default = rtnl.parse_route(rtnl.route_add(IPv4Network("0.0.0.0/0"), gateway=rtnl.IPv4Address("169.254.1.1")).payload)
    assert default.destination == IPv4Network("0.0.0.0/0") and default.oif is None
