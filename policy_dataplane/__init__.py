"""netpol-lab: policy_dataplane: the policy model (`policy/`, pure) and the dataplane that enforces it
(`dataplane/`: the host-program IR, its compiler and the backends). See docs/ARCHITECTURE.md."""
