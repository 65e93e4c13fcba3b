"""Scripted demo scenarios: a lab, then steps that change policy or labels and check documented verdicts.

A scenario file (`lab/scenarios/<name>.scenario.yaml`) names its lab file and a list of steps. Each step
says what it shows, optionally removes every policy (`reset`), applies files, changes labels, and lists
checks: "from A to B on port P the verdict is allow/deny", as the scenario's author documented it. Every
check is answered twice, by the oracle and by real packets, and both must agree with the document.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lab.apply import ApplyReport, apply_files, delete_files, delete_keys, key_for, label
from lab.runtime import LabRuntime, expected_verdicts, probe_endpoints
from lab.service_targets import find_target
from lab.store import ObjectKey
from policy_dataplane.policy.safeyaml import InputError, load_all, read_text

SCENARIOS_DIR = Path(__file__).parent / "scenarios"
SUFFIX = ".scenario.yaml"
POLICY_KINDS = [
    "NetworkPolicy", "CalicoNetworkPolicy", "GlobalNetworkPolicy", "StagedNetworkPolicy",
    "StagedGlobalNetworkPolicy", "StagedKubernetesNetworkPolicy", "HostEndpoint", "FelixConfiguration",
]  # fmt: skip  (what `reset` removes: every policy, and what makes the nodes' own policy)
PROBES_PER_CHECK = 2


class ScenarioError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Check(_Strict):
    """A flow (`to`: a pod, node, IP or svc/NS/NAME) or a name lookup from the pod (`lookup`: allow means the
    name resolves through the cluster DNS)."""

    source: str = Field(alias="from")
    to: str | None = None
    lookup: str | None = None
    protocol: Literal["tcp", "udp", "sctp", "icmp"] = "tcp"
    port: int = Field(default=80, ge=1, le=65535)
    expect: Literal["allow", "deny"]

    @model_validator(mode="after")
    def _one_target(self) -> "Check":
        if (self.to is None) == (self.lookup is None):
            raise ValueError("give exactly one of to (a flow) or lookup (a name)")
        return self

    def describe(self) -> str:
        if self.lookup is not None:
            return f"{self.source} looks up {self.lookup}"
        port = "" if self.protocol == "icmp" else f"/{self.port}"
        return f"{self.source} -> {self.to} {self.protocol}{port}"


class LabelChange(_Strict):
    pod: str | None = None
    namespace: str | None = None
    set: dict[str, str | None]

    @model_validator(mode="after")
    def _one_target(self) -> "LabelChange":
        if (self.pod is None) == (self.namespace is None):
            raise ValueError("give exactly one of pod (NS/NAME) or namespace")
        return self

    def key(self) -> ObjectKey:
        return key_for("pod", self.pod) if self.pod is not None else key_for("namespace", str(self.namespace))


class CompileTree(_Strict):
    """A bank rule-file tree (see `lab bank generate`), compiled and applied."""

    tree: str = Field(description="the tree's folder, relative to the scenario file")
    optInAll: bool = Field(default=False, description="opt every service in (the rollout's switch)")


class Step(_Strict):
    say: str
    reset: bool = False
    compile: CompileTree | None = None
    apply: list[str] = Field(default_factory=list)
    delete: list[str] = Field(default_factory=list, description="files whose objects are deleted")
    label: list[LabelChange] = Field(default_factory=list)
    check: list[Check] = Field(default_factory=list)


class Scenario(_Strict):
    title: str
    lab: str = Field(description="lab file, relative to the scenario file, or `demo` for the built-in demo")
    steps: list[Step] = Field(min_length=1)


@dataclass(frozen=True)
class LoadedScenario:
    name: str
    path: Path
    scenario: Scenario

    def lab_file(self) -> Path:
        if self.scenario.lab == "demo":
            return Path(__file__).parent / "labs" / "demo.yaml"
        return (self.path.parent / self.scenario.lab).resolve()

    def file(self, relative: str) -> Path:
        return (self.path.parent / relative).resolve()


def available() -> dict[str, Path]:
    """Built-in scenarios by name."""
    return {p.name[: -len(SUFFIX)]: p for p in sorted(SCENARIOS_DIR.glob(f"*{SUFFIX}"))}


def load_scenario(name_or_path: str) -> LoadedScenario:
    """A built-in scenario by name, or a scenario file by path; errors name the file and the field."""
    builtin = available()
    path = builtin.get(name_or_path) or Path(name_or_path)
    if not path.is_file():
        raise ScenarioError(f"no scenario {name_or_path!r} (built in: {', '.join(builtin) or 'none'})")
    try:
        docs = load_all(read_text(path))  # bounded like every other input (policy_dataplane.policy.safeyaml)
    except InputError as exc:
        raise ScenarioError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if len(docs) != 1:
        raise ScenarioError(f"{path}: a scenario file holds one YAML document, this one {len(docs)}")
    data = docs[0]
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = [f"  - field {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()]
        raise ScenarioError(f"{path}: {len(problems)} problem(s):\n" + "\n".join(problems)) from None
    loaded = LoadedScenario(path.name.removesuffix(SUFFIX), path, scenario)
    missing = [f for step in scenario.steps for f in [*step.apply, *step.delete] if not loaded.file(f).is_file()]
    missing += [s.compile.tree for s in scenario.steps if s.compile and not loaded.file(s.compile.tree).is_dir()]
    if not loaded.lab_file().is_file():
        missing.insert(0, scenario.lab)
    if missing:
        raise ScenarioError(f"{path}: files not found: {', '.join(missing)}")
    return loaded


# Running ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckOutcome:
    check: Check
    oracle: str  # "allow" | "deny"
    measured: str  # "allow" | "deny" | "mixed"

    @property
    def ok(self) -> bool:
        return self.oracle == self.check.expect == self.measured


def perform(runtime: LabRuntime, loaded: LoadedScenario, step: Step) -> list[str]:
    """The step's changes, in order: reset, compile (a tree), apply, delete, label. Returns what was done."""
    done: list[str] = []
    if step.reset:
        keys = [key for key, _ in runtime.store.objects(kinds=POLICY_KINDS)]
        if keys:
            delete_keys(runtime, keys)
        done.append(f"removed {len(keys)} policies and host endpoint objects")
    if step.compile is not None:
        done.append(_apply_tree(runtime, loaded, step.compile))
    if step.apply:
        report = apply_files(runtime, [loaded.file(f) for f in step.apply])
        done.append(f"applied {', '.join(step.apply)}: {_changes(report)}")
    if step.delete:
        report = delete_files(runtime, [loaded.file(f) for f in step.delete])
        done.append(f"deleted {', '.join(step.delete)}: {len(report.deleted)} objects")
    for change in step.label:
        label(runtime, change.key(), change.set)
        edits = " ".join(f"{k}-" if v is None else f"{k}={v}" for k, v in change.set.items())
        done.append(f"labelled {change.key()} {edits}")
    return done


def _apply_tree(runtime: LabRuntime, loaded: LoadedScenario, step: CompileTree) -> str:
    from lab.apply import apply_sources
    from lab.banktree import compile_tree, dump

    compiled = compile_tree(loaded.file(step.tree), opt_in=True if step.optInAll else None)
    if compiled.problems:
        raise ScenarioError(f"{step.tree}: " + "; ".join(compiled.problems[:5]))
    report = apply_sources(runtime, [(f"{step.tree} (compiled)", dump(compiled.documents))])
    return f"compiled and applied {step.tree}{' (all opted in)' if step.optInAll else ''}: {_changes(report)}"


def _changes(report: ApplyReport) -> str:
    parts = [f"{len(keys)} {what}" for what, keys in
             (("created", report.created), ("configured", report.configured), ("unchanged", report.unchanged)) if keys]
    return ", ".join(parts) or "nothing"


def verify(lab: str, checks: list[Check]) -> list[CheckOutcome]:
    """Each check answered by the oracle and by PROBES_PER_CHECK real probes (or a real lookup)."""
    lookups = {i: c for i, c in enumerate(checks) if c.lookup is not None}
    flows = [c for c in checks if c.lookup is None]
    answered = iter(_verify_flows(lab, flows))
    looked_up = _verify_lookups(lab, lookups)
    return [looked_up[i] if i in lookups else next(answered) for i in range(len(checks))]


def _verify_lookups(lab: str, checks: dict[int, Check]) -> dict[int, CheckOutcome]:
    """Each lookup made from the pod with its own resolver; the oracle says whether its DNS packets (UDP 53 to
    the kube-dns Service's backends) pass policy."""
    from lab import service_targets
    from lab.lookup import lookup
    from lab.stored_world import world_of
    from services.dns import DNS_NAMESPACE, DNS_SERVICE

    if not checks:
        return {}
    dns_ref = f"{service_targets.PREFIX}{DNS_NAMESPACE}/{DNS_SERVICE}"
    runtime = LabRuntime.open(lab)
    try:
        world = world_of(runtime)
        out = {}
        for index, c in checks.items():
            try:
                allowed = service_targets.expected(world, runtime, c.source, dns_ref, "udp", 53)
                found = lookup(runtime, c.source, str(c.lookup))
            except (KeyError, ValueError) as exc:
                raise ScenarioError(str(exc.args[0]) if exc.args else str(exc)) from None
            out[index] = CheckOutcome(c, "allow" if allowed else "deny", "allow" if found.resolved else "deny")
    finally:
        runtime.close()
    return out


def _verify_flows(lab: str, checks: list[Check]) -> list[CheckOutcome]:
    from traffic.model import Probe, Protocol, find_endpoint
    from traffic.probes import run_probes

    if not checks:
        return []
    endpoints = probe_endpoints(lab, hosts=True)
    try:
        pairs = [(find_endpoint(endpoints, c.source), find_target(lab, endpoints, str(c.to))) for c in checks]
    except KeyError as exc:
        raise ScenarioError(str(exc.args[0])) from None
    oracle: dict[int, bool] = {}
    by_kind: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, c in enumerate(checks):
        by_kind[(c.protocol, c.port)].append(i)
    for (protocol, port), indexes in by_kind.items():
        verdicts = expected_verdicts(lab, [pairs[i] for i in indexes], protocol, port)
        oracle.update(zip(indexes, verdicts, strict=True))
    probes = [Probe(src, dst, Protocol(c.protocol), c.port) for c, (src, dst) in zip(checks, pairs, strict=True)
              for _ in range(PROBES_PER_CHECK)]
    results = run_probes(probes)
    outcomes = []
    for i, check in enumerate(checks):
        delivered = sum(r.delivered for r in results[i * PROBES_PER_CHECK:(i + 1) * PROBES_PER_CHECK])
        measured = "allow" if delivered == PROBES_PER_CHECK else "deny" if delivered == 0 else "mixed"
        outcomes.append(CheckOutcome(check, "allow" if oracle[i] else "deny", measured))
    return outcomes


__all__ = ["Scenario", "Step", "Check", "LabelChange", "LoadedScenario", "CheckOutcome", "ScenarioError",
           "available", "load_scenario", "perform", "verify"]
