"""The bank's rule-file tree: compile(generate(tree)) is the generator's output; externals; problems."""

from __future__ import annotations

from pathlib import Path

from lab.banktree import TreeSpec, compile_tree, gateway_name, generate
from policy_dataplane.policy.bankgen import BankSpec, bank_documents, bank_egress
from policy_dataplane.policy.documents import load_documents

SMALL = BankSpec(services=60, namespaces=4, opt_in_fraction=0.5, fixed_ips=False)  # bench/bank_services.py: 1500


def test_compile_of_generate_is_the_generators_output(tmp_path: Path) -> None:
    rules = generate(TreeSpec(bank=SMALL), tmp_path)
    assert rules == sum(len(v) for v in bank_egress(SMALL).values())
    compiled = compile_tree(tmp_path)
    assert compiled.problems == []
    assert compiled.documents == bank_documents(SMALL)


def test_externals_become_external_services_and_gateway_labels(tmp_path: Path) -> None:
    generate(TreeSpec(bank=SMALL, externals=5, external_share=0.5), tmp_path)
    compiled = compile_tree(tmp_path)
    assert compiled.problems == []
    es = [d for d in compiled.documents if d["kind"] == "ExternalService"]
    assert 1 <= len(es) <= 5 and {d["spec"]["dnsName"] for d in es} <= {h for h, _ in compiled.externals.values()}
    callers = [d for d in compiled.documents if d["kind"] == "Pod"
               and any(k.startswith("egress.monzo.com/allowed-") for k in d["metadata"]["labels"])]
    files = list(tmp_path.glob("services/*/manifests/egress/external/*.rule"))
    assert callers and len(callers) == len({f.parts[-5] for f in files})
    load_documents(compiled.documents)  # every object is valid
    github = next(p for p in files if p.name == "api.github.com:443.rule") if any(
        p.name == "api.github.com:443.rule" for p in files) else None
    if github is not None:
        caller = next(d for d in callers if d["metadata"]["name"] == github.parts[-5])
        assert caller["metadata"]["labels"]["egress.monzo.com/allowed-api-github-com"] == "true"


def test_unknown_services_bad_names_and_owners_are_reported(tmp_path: Path) -> None:
    generate(TreeSpec(bank=SMALL), tmp_path)
    egress = tmp_path / "services" / "s0001" / "manifests" / "egress"
    (egress / "s9999.rule").write_text("owner: team-01\n")
    (egress / "notes.txt").write_text("hello")
    (egress / "external").mkdir()
    (egress / "external" / "api.github.com.rule").write_text("owner: team-01\n")
    (egress / "s0002.rule").write_text("owner: team-07\n")
    compiled = compile_tree(tmp_path)
    text = "\n".join(compiled.problems)
    assert f"{egress / 's9999.rule'}: names unknown service 's9999'" in text
    assert "notes.txt: not a rule file" in text
    assert "api.github.com.rule: the name must be <host>:<port>.rule" in text
    assert "s0002.rule: owner: 'team-07', but CODEOWNERS gives the service to 'team-01'" in text
    pod = next(d for d in compiled.documents if d["kind"] == "Pod" and d["metadata"]["name"] == "s0001")
    assert "bank.com/egress-s-s9999" not in pod["metadata"]["labels"]


def test_gateway_names_fit_a_label() -> None:
    assert gateway_name("api.github.com") == "api-github-com"
    long = gateway_name("a" * 30 + ".example-with-a-long-name.com")
    assert len(long) <= 55 and long == gateway_name("a" * 30 + ".example-with-a-long-name.com")
