"""The iptables + ipset backend (Calico's classic dataplane, the baseline nftables is compared with)."""
