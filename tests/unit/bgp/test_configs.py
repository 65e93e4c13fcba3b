"""Golden ExaBGP and BIRD configurations, and birdc output parsing (captured from BIRD 2.0.12)."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from bgp.bird import parse_show_protocols_all, protocol_name, render_bird_config
from bgp.sessions import BgpNode, plan_sessions
from bgp.speaker import SpeakerError, exabgp_environment, render_exabgp_config

DATA = Path(__file__).parent / "data"


def lab(layout: str = "mesh"):  # type: ignore[no-untyped-def]
    nodes = [BgpNode("h1", "host", "npl-t-h-h1", IPv4Address("10.99.0.1")),
             BgpNode("h2", "host", "npl-t-h-h2", IPv4Address("10.99.0.2")),
             BgpNode("rr1", "reflector", "npl-t-rr1", IPv4Address("10.99.0.200"))]
    return plan_sessions(nodes, layout=layout, hold_time=3)


AGENT = ["/venv/bin/python", "-m", "bgp.agent", "--name", "h1", "--run-dir", "/run/npl-t"]

EXABGP_H1 = """\
# ExaBGP configuration of host h1, written by netpol-lab (regenerated on start).
process agent {
    run /venv/bin/python -m bgp.agent --name h1 --run-dir /run/npl-t;
    encoder json;
}

neighbor 10.99.0.2 {
    description h2;
    router-id 10.99.0.1;
    local-address 10.99.0.1;
    local-as 64512;
    peer-as 64512;
    hold-time 3;
    passive false;
    adj-rib-out true;  # resend our routes when a session comes back
    capability {
        route-refresh;  # a respawned agent asks its peers for their routes again
    }
    family {
        ipv4 unicast;
    }
    api {
        processes [ agent ];
        receive {
            parsed;
            update;
        }
        neighbor-changes;
    }
}
"""


def test_exabgp_config_golden() -> None:
    assert render_exabgp_config(lab().speaker("h1"), AGENT) == EXABGP_H1
    assert "passive true;" in render_exabgp_config(lab().speaker("h2"), AGENT)


def test_exabgp_config_is_accepted_by_exabgp(tmp_path: Path) -> None:
    import subprocess
    import sys

    conf = tmp_path / "h1.conf"
    conf.write_text(render_exabgp_config(lab().speaker("h1"), [sys.executable, *AGENT[1:]]))
    exabgp = Path(sys.executable).parent / "exabgp"
    done = subprocess.run([str(exabgp), "validate", str(conf)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_exabgp_config_refuses_unsafe_agent_arguments() -> None:
    with pytest.raises(SpeakerError, match="cannot be written"):
        render_exabgp_config(lab().speaker("h1"), ["/bin/sh", "-c", "x; y"])


def test_exabgp_environment_avoids_the_known_pitfalls() -> None:
    env = exabgp_environment(lab().speaker("h2"))
    assert env["exabgp.tcp.bind"] == "10.99.0.2"  # passive peers need a listener
    assert env["exabgp.daemon.user"] == "root"  # the agent installs routes
    assert env["exabgp.api.ack"] == "false"  # the agent never reads acks
    assert env["exabgp.daemon.daemonize"] == "false" and env["exabgp.daemon.pid"] == ""


def test_bird_config_golden_parts() -> None:
    (rr,) = lab("route-reflector").reflectors
    text = render_bird_config(rr)
    assert "router id 10.99.0.200;" in text
    assert "rr client;" in text and "rr cluster id 10.99.0.200;" in text
    assert "hold time 3;" in text and "passive on;" in text
    assert "export where source = RTS_BGP;" in text  # never reflect the fabric subnet
    assert 'protocol bgp c_h1 from rr_client {\n    description "h1";\n    neighbor 10.99.0.1 as 64512;\n}' in text
    assert "protocol kernel" not in text


def test_bird_config_is_accepted_by_bird(tmp_path: Path) -> None:
    import subprocess

    (rr,) = lab("route-reflector").reflectors
    conf = tmp_path / "rr1.conf"
    conf.write_text(render_bird_config(rr))
    done = subprocess.run(["bird", "-p", "-c", str(conf)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_protocol_names_are_bird_symbols() -> None:
    assert protocol_name("node-1.a") == "c_node_1_a"


def test_parse_birdc_show_protocols_all() -> None:
    up = {s.client: s for s in parse_show_protocols_all((DATA / "birdc_show_protocols_all.txt").read_text())}
    assert set(up) == {"h1", "h2"}  # device and direct protocols are skipped
    assert up["h1"].state == "Established" and up["h1"].protocol == "c_h1"
    assert (up["h1"].imported, up["h1"].exported) == (1, 1)  # h2's block; the fabric subnet is not reflected
    down = {s.client: s for s in parse_show_protocols_all(
        (DATA / "birdc_show_protocols_all_h2_down.txt").read_text())}
    assert down["h2"].state == "Passive" and down["h2"].reason == "Socket: Connection closed"
    assert down["h2"].imported == 0
