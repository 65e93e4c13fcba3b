"""Which machine this process runs on, and which part of a lab that machine owns.

A lab file may place its hosts on several machines (`machines:`, `machine:` per host). Each machine runs
`lab up --machine NAME`, which remembers the name in the machine's run directory: from then on every
command and the machine's controller program only that machine's hosts (their pods, filters, speakers and
responders), while the desired state stays whole and shared in the store. External servers and route
reflectors live on the first machine. A lab on one machine has no machine scope (None): it owns everything.
"""

from __future__ import annotations

from ipaddress import IPv4Interface
from typing import TYPE_CHECKING

from topology.names import LabPaths

if TYPE_CHECKING:  # `lab status` reads the machine file on every call: keep the lab file's model out of its start-up
    from lab.labfile import LabSpecModel
    from topology.vxlan import MachinePlan

MACHINE_FILE = "machine"


class MachineError(ValueError):
    pass


def spans_machines(spec: LabSpecModel) -> bool:
    return len(spec.machines) > 1


def local_machine(paths: LabPaths) -> str | None:
    """The machine this run directory belongs to (None: the lab is on one machine)."""
    try:
        return paths.config_file(MACHINE_FILE).read_text().strip() or None
    except OSError:
        return None


def remember_machine(paths: LabPaths, machine: str) -> None:
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file(MACHINE_FILE).write_text(machine + "\n")


def check_machine(spec: LabSpecModel, machine: str | None, source: str) -> str | None:
    """The machine `lab up` works for: required when the lab spans machines, refused when unknown."""
    if not spans_machines(spec):
        if machine is not None and machine not in spec.machine_names():
            raise MachineError(f"{source}: lab {spec.name!r} has no machine {machine!r} "
                               f"(machines: {', '.join(spec.machine_names())})")
        return None
    if machine is None:
        raise MachineError(f"{source}: lab {spec.name!r} spans machines {', '.join(spec.machine_names())}: "
                           "bring each one up with `lab up --machine NAME`")
    if machine not in spec.machine_names():
        raise MachineError(f"{source}: lab {spec.name!r} has no machine {machine!r} "
                           f"(machines: {', '.join(spec.machine_names())})")
    return machine


def machine_is_up(paths: LabPaths, machine: str) -> bool:
    """This machine's part of the lab runs (its machine namespace or its run directory exists)."""
    from topology import names, netns

    return local_machine(paths) is not None or netns.exists(names.machine_netns(paths.lab, machine))


def hosts_on(spec: LabSpecModel, machine: str | None) -> list[str]:
    placed = spec.machine_of()
    return [h for h in spec.host_names() if machine is None or placed[h] == machine]


def holds_shared_nodes(spec: LabSpecModel, machine: str | None) -> bool:
    """External servers and route reflectors run on the first machine."""
    return machine is None or machine == spec.machine_names()[0]


def machine_plan(lab: str, spec: LabSpecModel, machine: str) -> MachinePlan:
    from topology.vxlan import MachinePlan

    found = next(m for m in spec.machines if m.name == machine)
    return MachinePlan(lab, machine, IPv4Interface(found.underlay), found.underlayDevice)


def peers_of(spec: LabSpecModel, machine: str) -> list[IPv4Interface]:
    return [IPv4Interface(m.underlay) for m in spec.machines if m.name != machine and m.underlay is not None]

