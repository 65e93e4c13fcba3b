"""The iptables backend's counters parser on `iptables-save -c` output captured from a lab host (h1 of the
dataplane tests after three probes: p0 -> p1:8080 allowed, p3 -> p1:8080 default-denied, the quarantined p2
-> p0 logged and denied). The root test test_dataplane_observe.py sends the packets for real."""

from __future__ import annotations

from policy_dataplane.dataplane.iptables.counters import describe_save, parse_save

SAVED = """\
*filter
[0:0] -A INPUT -j npl-INPUT
[4:160] -A FORWARD -j npl-FORWARD
[0:0] -A OUTPUT -j npl-OUTPUT
[1:40] -A npl-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[0:0] -A npl-FORWARD -m conntrack --ctstate INVALID -j DROP
[2:80] -A npl-FORWARD -i cali+ -j npl-from-wl
[2:80] -A npl-FORWARD -o cali+ -j npl-to-wl
[0:0] -A npl-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[0:0] -A npl-INPUT -m conntrack --ctstate INVALID -j DROP
[0:0] -A npl-INPUT -i cali+ -j npl-from-wl
[0:0] -A npl-INPUT -i cali+ -j ACCEPT
[0:0] -A npl-OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[0:0] -A npl-OUTPUT -m conntrack --ctstate INVALID -j DROP
[0:0] -A npl-OUTPUT -o cali+ -j npl-to-wl
[0:0] -A npl-OUTPUT -o cali+ -j ACCEPT
[0:0] -A npl-from-wl -i cali9e7413e7899 -g npl-fw-cali9e7413e7899
[1:40] -A npl-from-wl -i calib3ab9aaf008 -g npl-fw-calib3ab9aaf008
[1:40] -A npl-from-wl -i calic677b53a6d7 -g npl-fw-calic677b53a6d7
[0:0] -A npl-from-wl -j NFLOG --nflog-prefix "U from-wl 0" --nflog-group 1
[0:0] -A npl-from-wl -m comment --comment "unknown workload interface" -j DROP
[0:0] -A npl-fw-cali9e7413e7899 -m comment --comment "endpoint ns1/p1" -j MARK --set-xmark 0x0/0x30000
[0:0] -A npl-fw-cali9e7413e7899 -j RETURN
[1:40] -A npl-fw-calib3ab9aaf008 -m comment --comment "endpoint ns0/p0" -j MARK --set-xmark 0x0/0x30000
[1:40] -A npl-fw-calib3ab9aaf008 -j RETURN
[1:40] -A npl-fw-calic677b53a6d7 -m comment --comment "endpoint ns0/p2" -j MARK --set-xmark 0x0/0x30000
[1:40] -A npl-fw-calic677b53a6d7 -m mark --mark 0x0/0x30000 -j npl-po-c2d66755e6d0
[0:0] -A npl-fw-calic677b53a6d7 -m mark --mark 0x0/0x30000 -j NFLOG --nflog-prefix "T fw-calic677b53a6d7 0" --nflog-group 1
[0:0] -A npl-fw-calic677b53a6d7 -m mark --mark 0x0/0x30000 -j DROP
[0:0] -A npl-fw-calic677b53a6d7 -m mark --mark 0x10000/0x10000 -j RETURN
[0:0] -A npl-fw-calic677b53a6d7 -j MARK --set-xmark 0x0/0x30000
[0:0] -A npl-fw-calic677b53a6d7 -j RETURN
[2:80] -A npl-pi-3029177f386a -m comment --comment "policy ns1/knp.default.p1-http ingress"
[1:40] -A npl-pi-3029177f386a -p tcp -m set --match-set npl-s-dec360d3835db6de src -m multiport --dports 8080 -m comment --comment "ns1/knp.default.p1-http r0" -j MARK --set-xmark 0x10000/0x10000
[1:40] -A npl-pi-3029177f386a -m mark --mark 0x10000/0x10000 -j RETURN
[0:0] -A npl-pi-c2d66755e6d0 -m comment --comment "policy quarantine ingress"
[0:0] -A npl-pi-c2d66755e6d0 -m comment --comment "quarantine r0" -j NFLOG --nflog-prefix "L pi-c2d66755e6d0 0" --nflog-group 1
[0:0] -A npl-pi-c2d66755e6d0 -m comment --comment "quarantine r1" -j NFLOG --nflog-prefix "D pi-c2d66755e6d0 1" --nflog-group 1
[0:0] -A npl-pi-c2d66755e6d0 -m comment --comment "quarantine r1" -j DROP
[1:40] -A npl-po-c2d66755e6d0 -m comment --comment "policy quarantine egress"
[1:40] -A npl-po-c2d66755e6d0 -m comment --comment "quarantine r0" -j NFLOG --nflog-prefix "L po-c2d66755e6d0 0" --nflog-group 1
[1:40] -A npl-po-c2d66755e6d0 -m comment --comment "quarantine r1" -j NFLOG --nflog-prefix "D po-c2d66755e6d0 1" --nflog-group 1
[1:40] -A npl-po-c2d66755e6d0 -m comment --comment "quarantine r1" -j DROP
[2:80] -A npl-to-wl -o cali9e7413e7899 -g npl-tw-cali9e7413e7899
[0:0] -A npl-to-wl -o calib3ab9aaf008 -g npl-tw-calib3ab9aaf008
[0:0] -A npl-to-wl -o calic677b53a6d7 -g npl-tw-calic677b53a6d7
[0:0] -A npl-to-wl -j NFLOG --nflog-prefix "U to-wl 0" --nflog-group 1
[0:0] -A npl-to-wl -m comment --comment "unknown workload interface" -j DROP
[2:80] -A npl-tw-cali9e7413e7899 -m comment --comment "endpoint ns1/p1" -j MARK --set-xmark 0x0/0x30000
[2:80] -A npl-tw-cali9e7413e7899 -m mark --mark 0x0/0x30000 -j npl-pi-3029177f386a
[1:40] -A npl-tw-cali9e7413e7899 -m mark --mark 0x0/0x30000 -j NFLOG --nflog-prefix "T tw-cali9e7413e7899 0" --nflog-group 1
[1:40] -A npl-tw-cali9e7413e7899 -m mark --mark 0x0/0x30000 -j DROP
[1:40] -A npl-tw-cali9e7413e7899 -m mark --mark 0x10000/0x10000 -j RETURN
[0:0] -A npl-tw-cali9e7413e7899 -j MARK --set-xmark 0x0/0x30000
[0:0] -A npl-tw-cali9e7413e7899 -j RETURN
[0:0] -A npl-tw-calib3ab9aaf008 -m comment --comment "endpoint ns0/p0" -j MARK --set-xmark 0x0/0x30000
[0:0] -A npl-tw-calib3ab9aaf008 -j RETURN
[0:0] -A npl-tw-calic677b53a6d7 -m comment --comment "endpoint ns0/p2" -j MARK --set-xmark 0x0/0x30000
[0:0] -A npl-tw-calic677b53a6d7 -m mark --mark 0x0/0x30000 -j npl-pi-c2d66755e6d0
[0:0] -A npl-tw-calic677b53a6d7 -m mark --mark 0x0/0x30000 -j NFLOG --nflog-prefix "T tw-calic677b53a6d7 0" --nflog-group 1
[0:0] -A npl-tw-calic677b53a6d7 -m mark --mark 0x0/0x30000 -j DROP
[0:0] -A npl-tw-calic677b53a6d7 -m mark --mark 0x10000/0x10000 -j RETURN
[0:0] -A npl-tw-calic677b53a6d7 -j MARK --set-xmark 0x0/0x30000
[0:0] -A npl-tw-calic677b53a6d7 -j RETURN
COMMIT
"""


def test_policy_rule_and_endpoint_counters_are_named_from_the_comments() -> None:
    info = describe_save("h1", SAVED)
    policies = {(p.policy, p.direction): p.evaluated_packets for p in info.policies}
    assert policies == {("ns1/knp.default.p1-http", "ingress"): 2, ("quarantine", "egress"): 1,
                        ("quarantine", "ingress"): 0}
    rules = {(r.policy, r.direction, r.rule): (r.action, r.packets, r.bytes) for r in info.rules}
    assert rules == {
        ("ns1/knp.default.p1-http", "ingress", 0): ("allow", 1, 40),  # the MARK line, not the RETURN after it
        ("quarantine", "egress", 0): ("log", 1, 40),
        ("quarantine", "egress", 1): ("deny", 1, 40),  # the DROP line, not the NFLOG before it
        ("quarantine", "ingress", 0): ("log", 0, 0),
        ("quarantine", "ingress", 1): ("deny", 0, 0),
    }
    endpoints = {(e.endpoint, e.direction): (e.packets, e.default_deny_packets) for e in info.endpoints}
    assert endpoints[("ns1/p1", "ingress")] == (2, 1)
    assert endpoints[("ns0/p2", "egress")] == (1, 0)
    assert info.policy_of_chain["pi-3029177f386a"] == ("ns1/knp.default.p1-http", "ingress")
    assert info.endpoint_of_chain["tw-cali9e7413e7899"] == ("ns1/p1", "ingress")


def test_unknown_interface_drops_and_lines_that_are_not_rules() -> None:
    text = ("*filter\n:npl-to-wl - [0:0]\n[3:120] -A npl-to-wl -j NFLOG --nflog-prefix \"U to-wl 0\" --nflog-group 1\n"
            "[3:120] -A npl-to-wl -m comment --comment \"unknown workload interface\" -j DROP\nCOMMIT\n")
    assert describe_save("h1", text).unknown_interface_drops == (3, 120)
    assert [r.chain for r in parse_save(text)] == ["npl-to-wl", "npl-to-wl"]
    assert describe_save("h1", "").rules == []
