"""netpol-lab: topology."""
