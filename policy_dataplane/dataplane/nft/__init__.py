"""The nftables backend: HostProgram -> nft text and netlink set updates, applied per host namespace."""
