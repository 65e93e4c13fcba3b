"""netpol-lab: lab."""
