"""The scenarios of docs/ARCHITECTURE.md (Scenarios) as fixtures, with the verdicts documented there."""

from __future__ import annotations

from policy_model_helpers import allowed, fixture_world

from policy_dataplane.policy.evaluate import Reason, verdict
from policy_dataplane.policy.model import Action

TASK_SERVER = "203.0.113.10"
BASE = "microseg-base.yaml"


# --- quarantine and dev/prod isolation -----------------------------------------------------------------


def test_dev_and_prod_are_isolated_and_same_environment_is_open() -> None:
    world = fixture_world("quarantine.yaml")
    assert allowed(world, "dev/web", "dev/db", port=5432)
    assert allowed(world, "prod/web", "prod/web", port=80)
    assert not allowed(world, "prod/web", "dev/db", port=5432)
    assert not allowed(world, "dev/web", "prod/web", port=80)


def test_quarantine_label_cuts_a_pod_off_at_once_both_ways_with_log_hits() -> None:
    world = fixture_world("quarantine.yaml")
    assert allowed(world, "dev/web", "dev/db", port=5432)
    world.label_pod("dev", "db", quarantine="true")
    into = verdict(world, "dev/web", "dev/db", "TCP", 5432)
    assert not into.allowed
    assert into.ingress.decided_by is not None
    assert into.ingress.decided_by.policy == "quarantine"
    assert into.ingress.decided_by.action is Action.DENY
    assert into.ingress.decided_by.index == 1
    assert [r.index for r in into.ingress.logs] == [0]
    out = verdict(world, "dev/db", "dev/web", "TCP", 80)
    assert not out.allowed and out.egress.decided_by and out.egress.decided_by.policy == "quarantine"
    assert not allowed(world, "dev/db", "8.8.8.8", port=53, protocol="UDP")
    # Lifting the label restores the flow: the index followed both changes.
    world.label_pod("dev", "db", quarantine=None)
    assert allowed(world, "dev/web", "dev/db", port=5432)


# --- micro-segmentation: the six cases -----------------------------------------------------------------


def test_base_world_is_open() -> None:
    world = fixture_world(BASE)
    assert allowed(world, "dev/webui", "billing/billing", port=9000)
    assert allowed(world, "dev/client", TASK_SERVER, port=443)


def test_case_1_deny_all_egress() -> None:
    world = fixture_world(BASE, "case-1-deny-egress.yaml")
    v = verdict(world, "dev/client", TASK_SERVER, "TCP", 443)
    assert not v.allowed and v.egress.reason is Reason.NOTHING_ALLOWED
    assert not allowed(world, "dev/webui", "dev/client", port=9000)  # even inside the namespace
    assert allowed(world, "crm/crm", "dev/client", port=9000)  # ingress of dev is not isolated
    assert allowed(world, "prod/webui", "billing/billing", port=9000)


def test_case_2_deny_egress_except_client_to_outside_server() -> None:
    world = fixture_world(BASE, "case-2-egress-to-task.yaml")
    v = verdict(world, "dev/client", TASK_SERVER, "TCP", 443)
    assert v.allowed and v.egress.decided_by and v.egress.decided_by.policy == "dev/knp.default.client-to-task-server"
    assert not allowed(world, "dev/client", TASK_SERVER, port=80)
    assert not allowed(world, "dev/webui", TASK_SERVER, port=443)
    assert not allowed(world, "dev/client", "billing/billing", port=9000)


def test_case_3_deny_all_ingress_in_two_namespaces() -> None:
    world = fixture_world(BASE, "case-3-deny-ingress.yaml")
    assert not allowed(world, "crm/crm", "dev/client", port=9000)
    assert not allowed(world, "dev/webui", "dev/client", port=9000)
    assert not allowed(world, "dev/client", "billing/billing", port=9000)
    assert allowed(world, "dev/client", "prod/webui", port=8080)  # prod has no policy
    assert allowed(world, "dev/client", TASK_SERVER, port=443)


def test_case_4_billing_only_from_first_namespace() -> None:
    world = fixture_world(BASE, "case-3-deny-ingress.yaml", "case-4-billing-from-dev.yaml")
    assert allowed(world, "dev/client", "billing/billing", port=9000)
    assert allowed(world, "dev/webui", "billing/billing", port=9000)
    assert not allowed(world, "dev/client", "billing/billing", port=9001)  # named port api = 9000 only
    assert not allowed(world, "prod/webui", "billing/billing", port=9000)
    assert not allowed(world, "crm/crm", "billing/billing", port=9000)
    assert not allowed(world, TASK_SERVER, "billing/billing", port=9000)


def test_case_5_client_only_from_crm() -> None:
    world = fixture_world(BASE, "case-5-client-from-crm.yaml")
    assert allowed(world, "crm/crm", "dev/client", port=9000)
    assert not allowed(world, "dev/webui", "dev/client", port=9000)
    assert not allowed(world, "prod/webui", "dev/client", port=9000)
    assert allowed(world, "dev/webui", "billing/billing", port=9000)  # others unaffected


def test_case_6_only_the_crm_workflow_works() -> None:
    world = fixture_world(BASE, "case-6-only-crm-works.yaml")
    assert allowed(world, "crm/crm", "dev/client", port=9000)
    assert allowed(world, "dev/client", "billing/billing", port=9000)
    assert allowed(world, "dev/client", TASK_SERVER, port=443)
    assert not allowed(world, "dev/webui", "dev/client", port=9000)
    assert not allowed(world, "dev/webui", "billing/billing", port=9000)
    assert not allowed(world, "prod/webui", "billing/billing", port=9000)
    assert not allowed(world, "crm/crm", "billing/billing", port=9000)
    assert not allowed(world, "dev/client", "prod/webui", port=8080)
    assert not allowed(world, "billing/billing", "dev/client", port=9000)
    assert not allowed(world, TASK_SERVER, "dev/client", port=9000)


# --- the bank -------------------------------------------------------------------------------------------


def test_bank_label_scheme_admits_declared_egress_only() -> None:
    world = fixture_world("bank.yaml")
    assert allowed(world, "bank/payments", "bank/ledger", port=8080)
    assert allowed(world, "bank/fraud", "bank/ledger", port=8080)
    assert allowed(world, "bank/payments", "bank/fraud", port=8080)
    assert not allowed(world, "bank/fraud", "bank/payments", port=8080)
    assert not allowed(world, "bank/ledger", "bank/fraud", port=8080)
    assert not allowed(world, "bank/payments", "bank/ledger", port=9090)
    # reports has not opted in: its ingress policy selects nothing, so it is not isolated.
    v = verdict(world, "bank/ledger", "bank/reports", "TCP", 8080)
    assert v.allowed and v.ingress.reason is Reason.NOT_ISOLATED
    # reports declared egress to payments: admitted.
    assert allowed(world, "bank/reports", "bank/payments", port=8080)


def test_bank_new_egress_file_is_a_label_change() -> None:
    world = fixture_world("bank.yaml")
    assert not allowed(world, "bank/ledger", "bank/fraud", port=8080)
    world.label_pod("bank", "ledger", **{"bank.com/egress-s-fraud": "true"})
    assert allowed(world, "bank/ledger", "bank/fraud", port=8080)


def test_bank_opt_in_turns_enforcement_on() -> None:
    world = fixture_world("bank.yaml")
    assert allowed(world, "bank/ledger", "bank/reports", port=8080)
    world.label_pod("bank", "reports", **{"bank.com/network-policy": "true"})
    assert not allowed(world, "bank/ledger", "bank/reports", port=8080)


def test_bank_dry_run_policy_allows_but_logs_what_would_be_dropped() -> None:
    world = fixture_world("bank.yaml", "bank-dry-run.yaml")
    would_drop = verdict(world, "bank/fraud", "bank/payments", "TCP", 8080)
    assert would_drop.allowed
    assert would_drop.ingress.decided_by and would_drop.ingress.decided_by.policy == "bank-dry-run"
    assert [(r.policy, r.index) for r in would_drop.ingress.logs] == [("bank-dry-run", 0)]
    declared = verdict(world, "bank/payments", "bank/ledger", "TCP", 8080)
    assert declared.allowed and declared.ingress.logs == ()
    assert declared.ingress.decided_by and declared.ingress.decided_by.policy == "bank/knp.default.ingress-ledger"
