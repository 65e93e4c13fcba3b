"""`lab bank`: the synthetic 1500-microservice bank (docs/ARCHITECTURE.md, Scenarios) as YAML a lab can apply, and the
bank's own workflow: `lab bank generate DIR` writes its rule-file tree, `lab bank compile DIR` turns any such
tree into the objects."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lab.app import app
from lab.console import errors, fail

bank_app = typer.Typer(invoke_without_command=True, help="The synthetic bank: YAML, or its rule-file tree.")
app.add_typer(bank_app, name="bank", rich_help_panel="Demos")


@bank_app.callback()
def bank(
    ctx: typer.Context,
    services: int = typer.Option(1500, "--services", "-n", min=2, help="how many microservices"),
    namespaces: int = typer.Option(15, "--namespaces", min=1, help="spread over this many namespaces"),
    opt_in: float = typer.Option(1.0, "--opt-in", min=0.0, max=1.0,
                                 help="share of services opted in to enforcement (bank.com/network-policy)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="add the order-9001 Log+Allow policy of the rollout"),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="every service's port"),
    seed: int = typer.Option(1, "--seed", help="the same seed gives the same bank"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="write here instead of stdout"),
) -> None:
    """Write the bank's Namespaces, Pods (egress declared as labels) and one ingress policy per service.

    Then: `lab up -f lab/labs/bank.yaml` and `lab apply -f bank.yaml --lab bank`. The same options shape
    `lab bank generate DIR` (give them before `generate`).
    """
    from policy_dataplane.policy.bankgen import BankSpec, bank_yaml

    spec = BankSpec(services=services, namespaces=namespaces, opt_in_fraction=opt_in, dry_run=dry_run,
                    port=port, seed=seed, fixed_ips=False)
    ctx.obj = spec
    if ctx.invoked_subcommand is not None:
        return
    text = bank_yaml(spec)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        errors.print(f"wrote {output}: {services} services in {namespaces} namespaces")


@bank_app.command()
def generate(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="where to write the tree (must not exist yet, or be empty)"),
    externals: int = typer.Option(0, "--externals", min=0, max=500, help="distinct external hosts called"),
    external_share: float = typer.Option(0.2, "--external-share", min=0.0, max=1.0,
                                         help="share of services with external rules"),
) -> None:
    """Write the bank as its rule-file tree: services/<svc>/manifests/egress/<target>.rule and
    .../external/<host>:<port>.rule, service.yaml (namespace, team, opt-in) and CODEOWNERS."""
    from lab.banktree import TreeSpec
    from lab.banktree import generate as write_tree

    if directory.exists() and any(directory.iterdir()):
        fail(f"{directory}: exists and is not empty")
    directory.mkdir(parents=True, exist_ok=True)
    rules = write_tree(TreeSpec(bank=ctx.obj, externals=externals, external_share=external_share), directory)
    errors.print(f"wrote {directory}: {ctx.obj.services} services, {rules} rule files")


@bank_app.command(name="compile")
def compile_(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="a rule-file tree (see `lab bank generate`)"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="write here instead of stdout"),
    opt_in_all: bool = typer.Option(False, "--opt-in-all", help="opt every service in (the rollout's switch)"),
    lenient: bool = typer.Option(False, "--lenient", help="write the objects even when rule files have problems"),
) -> None:
    """Turn a tree into objects: Namespaces, Pods with their egress and gateway labels, one ingress policy
    per service, ExternalServices. Rule files naming unknown services (and other mistakes) are reported;
    with any, nothing is written (exit 1) unless --lenient."""
    from lab.banktree import compile_tree, dump

    if not directory.is_dir():
        fail(f"{directory}: no such directory")
    compiled = compile_tree(directory, port=ctx.obj.port, opt_in=True if opt_in_all else None)
    for problem in compiled.problems:
        errors.print(f"[yellow]{problem}[/]", highlight=False)
    if compiled.problems and not lenient:
        fail(f"{len(compiled.problems)} problem(s) in {directory}: nothing written")
    text = dump(compiled.documents)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        kinds = {k: sum(d["kind"] == k for d in compiled.documents) for k in ("Pod", "NetworkPolicy", "ExternalService")}
        errors.print(f"wrote {output}: " + ", ".join(f"{n} {k}s" for k, n in kinds.items()))
