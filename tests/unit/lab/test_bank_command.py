"""`lab bank` writes the synthetic bank as YAML that validates and leaves addresses to the lab's IPAM."""

from __future__ import annotations

from typer.testing import CliRunner

from lab.cli import app, register_commands
from policy_dataplane.policy.documents import load_text
from policy_dataplane.policy.model import Pod, Policy

register_commands()


def test_bank_yaml_validates_and_has_no_fixed_addresses() -> None:
    result = CliRunner().invoke(app, ["bank", "--services", "20", "--namespaces", "3", "--dry-run"])
    assert result.exit_code == 0, result.output
    objects = load_text(result.stdout, "bank.yaml")
    pods = [o for o in objects if isinstance(o, Pod)]
    assert len(pods) == 20 and {p.namespace for p in pods} == {"bank-00", "bank-01", "bank-02"}
    assert "ipAddrs" not in result.stdout
    policies = [o for o in objects if isinstance(o, Policy)]
    assert len(policies) == 21  # one ingress policy per service and the dry-run policy


def test_bank_rejects_a_bad_option() -> None:
    result = CliRunner().invoke(app, ["bank", "--services", "1"])
    assert result.exit_code != 0
