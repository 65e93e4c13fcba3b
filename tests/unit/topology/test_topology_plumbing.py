"""What each namespace gets: Calico's pod plumbing, host settings, fabric ports on the bridge."""

from __future__ import annotations

import pytest

from topology import plumbing, rtnl, sysctl
from topology.names import PREFIX


def _whats(requests: list[rtnl.Request]) -> list[str]:
    return [r.what for r in requests]


def test_pod_gets_calico_routes_in_order(plan) -> None:  # type: ignore[no-untyped-def]
    assert _whats(plumbing.pod_requests(plan.pods[0])) == [
        "link lo up",
        "link eth0 settings",  # addrgenmode none: no IPv6 chatter
        "link eth0 up",
        "address 10.200.0.1/32 on ifindex 2",
        "route 169.254.1.1/32 dev ifindex 2",  # before the default route that needs it
        "route 0.0.0.0/0 via 169.254.1.1 dev ifindex 2",
        "neighbour 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee on ifindex 2",
    ]
    assert len(plumbing.pod_requests(plan.pods[0], static_neighbours=False)) == 6


def test_host_side_of_pods(plan) -> None:  # type: ignore[no-untyped-def]
    web, api, _ = plan.pods
    requests = plumbing.host_pod_requests([web, api], {web.host_ifname: 7, api.host_ifname: 8})
    assert _whats(requests) == [
        f"link {web.host_ifname} settings forwarding=1, proxy_arp=1, rp_filter=1",
        "arp proxy_delay 0 ms on ifindex 7",
        f"link {web.host_ifname} up",
        "route 10.200.0.1/32 dev ifindex 7",
        "neighbour 10.200.0.1 lladdr 0a:58:0a:c8:00:01 on ifindex 7",
        f"link {api.host_ifname} settings forwarding=1, proxy_arp=1, rp_filter=1",
        "arp proxy_delay 0 ms on ifindex 8",
        f"link {api.host_ifname} up",
        "route 10.200.0.2/32 dev ifindex 8",
        "neighbour 10.200.0.2 lladdr 0a:58:0a:c8:00:02 on ifindex 8",
    ]
    without = plumbing.host_pod_requests([web], {web.host_ifname: 7}, static_neighbours=False)
    assert not [w for w in _whats(without) if w.startswith("neighbour")]


def test_hosts_forward_and_others_do_not(plan) -> None:  # type: ignore[no-untyped-def]
    h1, _, srv, rr = plan.nodes
    assert dict(plumbing.node_settings(h1))["net.ipv4.ip_forward"] == "1"
    assert dict(plumbing.node_settings(h1))["net.ipv4.conf.all.send_redirects"] == "0"
    assert _whats(plumbing.node_requests(h1, plan.fabric))[1] == "link eth0 settings rp_filter=0, send_redirects=0"
    for node in (srv, rr):
        assert dict(plumbing.node_settings(node))["net.ipv4.ip_forward"] == "0"
    assert dict(plumbing.fabric_settings())["net.ipv4.ip_forward"] == "0"
    for settings in (plumbing.node_settings(h1), plumbing.node_settings(srv), plumbing.fabric_settings()):
        assert ("net.ipv4.icmp_ratelimit", "0") in settings


def test_node_and_fabric_requests(plan) -> None:  # type: ignore[no-untyped-def]
    h1 = plan.nodes[0]
    assert _whats(plumbing.node_requests(h1, plan.fabric))[-1] == "route 0.0.0.0/0 via 10.99.0.254 dev ifindex 2"
    whats = _whats(plumbing.fabric_requests(plan.fabric, plan.nodes))
    assert whats[:4] == ["link lo up", f"link {PREFIX}-fabric settings", f"link {PREFIX}-fabric up", "address 10.99.0.254/24 on ifindex 2"]
    assert whats[4:] == [w for n in plan.nodes for w in (f"link {n.fabric_port} settings", f"link {n.fabric_port} up master 2")]


def test_sysctl_paths() -> None:
    assert str(sysctl.sysctl_path("net.ipv4.conf.cali1.rp_filter")) == "/proc/sys/net/ipv4/conf/cali1/rp_filter"


def test_settings_of_a_feature_not_loaded_are_skipped_others_are_not(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sysctl, "PROC_SYS", tmp_path)
    (tmp_path / "net" / "ipv4").mkdir(parents=True)
    (tmp_path / "net" / "ipv4" / "ip_forward").write_text("1")
    sysctl.write_settings(sysctl.FABRIC)  # no net/bridge here: br_netfilter is not loaded
    assert (tmp_path / "net" / "ipv4" / "ip_forward").read_text() == "0"
    assert not (tmp_path / "net" / "bridge").exists()
    (tmp_path / "net" / "bridge").mkdir()
    for name in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables"):
        (tmp_path / "net" / "bridge" / name).write_text("1")
    sysctl.write_settings(sysctl.FABRIC)
    assert (tmp_path / "net" / "bridge" / "bridge-nf-call-iptables").read_text() == "0"
    with pytest.raises(FileNotFoundError):
        sysctl.write_settings([("net.ipv6.conf.all.forwarding", "1")])  # a missing file is an error
