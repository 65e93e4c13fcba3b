"""netpol-lab: bgp."""
