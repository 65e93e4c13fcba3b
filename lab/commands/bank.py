"""`lab bank`: the synthetic 1500-microservice bank (DESIGN.md section 6) as YAML a lab can apply."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lab.app import app
from lab.console import errors


@app.command(rich_help_panel="Demos")
def bank(
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

    Then: `lab up -f lab/labs/bank.yaml` and `lab apply -f bank.yaml --lab bank`.
    """
    from policy_dataplane.policy.bankgen import BankSpec, bank_yaml

    spec = BankSpec(services=services, namespaces=namespaces, opt_in_fraction=opt_in, dry_run=dry_run,
                    port=port, seed=seed, fixed_ips=False)
    text = bank_yaml(spec)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        errors.print(f"wrote {output}: {services} services in {namespaces} namespaces")
