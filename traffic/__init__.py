"""netpol-lab: traffic."""
