"""netpol-lab: policy_dataplane."""
