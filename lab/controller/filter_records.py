"""What each host's filter holds, as the controller knows it: the fingerprint right after the last write
(nftables generation, or a hash of iptables-save) and the store revision written. Kept in the run directory
so that a starting controller adopts tables it can vouch for instead of replacing them."""

from __future__ import annotations

import json

from lab.controller.files import filters_file
from lab.controller.observe import HostReader
from lab.controller.state import FilterRecord
from topology import names
from topology.names import LabPaths


def load(paths: LabPaths) -> dict[str, FilterRecord]:
    try:
        data = json.loads(filters_file(paths).read_text())
        return {h: FilterRecord(str(r["fingerprint"]), int(r["revision"])) for h, r in data.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def save(paths: LabPaths, records: dict[str, FilterRecord]) -> None:
    path = filters_file(paths)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({h: {"fingerprint": r.fingerprint, "revision": r.revision} for h, r in records.items()}))
    tmp.replace(path)


def hand_over(paths: LabPaths, hosts: list[str], backend: str, revision: int) -> None:
    """`lab up` programmed every host itself, right before the controller starts: record those tables so
    the controller adopts them. Replacing a table at the controller's first pass would unregister its hooks,
    and the kernel then drops every packet held in a queue of that namespace (a shaped link's delay line:
    probes sent just after `lab up` were lost)."""
    reader = HostReader(backend)
    try:
        fingerprints = {host: reader.fingerprint(names.host_netns(paths.lab, host)) for host in hosts}
    finally:
        reader.close()  # its nf_tables sockets: this is `lab up`'s process, not a controller's
    # None: another machine's host, or unreadable; the controller replaces those
    save(paths, {host: FilterRecord(f, revision) for host, f in fingerprints.items() if f is not None})
