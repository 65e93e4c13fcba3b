"""The built-in dataplane backends, registered by name (a new backend: its folder and one line here)."""

from policy_dataplane.dataplane.backend import register_backend
from policy_dataplane.dataplane.fake.backend import FakeBackend
from policy_dataplane.dataplane.iptables.backend import IptablesBackend
from policy_dataplane.dataplane.nft.backend import NftablesBackend

register_backend("nftables", NftablesBackend)
register_backend("iptables", IptablesBackend)
register_backend("fake", FakeBackend, for_labs=False)  # in one process's memory: unit tests, no kernel
