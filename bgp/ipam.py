"""Calico-style IPAM: a pool cut into blocks, blocks affine to hosts, addresses handed out per handle.

Pure logic, no I/O. The rules follow Calico's IPAM:
- a host allocates from its affine blocks first (lowest block, lowest address);
- when they are full it claims the lowest free block of the pool, up to `max_blocks_per_host`;
- after that, unless `strict_affinity`, it borrows one address from another host's block; the borrower
  announces that address as a /32, more specific than the owner's block;
- a fixed address (Calico's `ipAddrs` annotation) must lie in the pool and be free; an unclaimed block
  holding it is claimed by the requesting host;
- a block whose last address is released loses its affinity, so the host stops announcing it.
Every address of a block is usable, the block's first and last included, as in Calico: pods get /32s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

MIN_BLOCK_PREFIX = 20
MAX_BLOCK_PREFIX = 32


class IpamError(ValueError):
    """Any refusal of the IPAM; the message is meant for the user as it stands."""


class InvalidIpamConfig(IpamError):
    pass


class PoolExhausted(IpamError):
    pass


class BlockCapReached(IpamError):
    pass


class AddressOutsidePool(IpamError):
    pass


class AddressTaken(IpamError):
    pass


class BorrowingForbidden(IpamError):
    """Strict affinity: a host may not take an address from a block affine to another host."""


class HandleInUse(IpamError):
    pass


class UnknownHandle(IpamError):
    pass


class InvalidRecords(IpamError):
    """Stored IPAM records that contradict each other or the configuration."""


@dataclass(frozen=True)
class IpamConfig:
    pool: IPv4Network
    block_prefix: int = 26
    max_blocks_per_host: int = 20
    strict_affinity: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "pool", IPv4Network(self.pool))
        if not MIN_BLOCK_PREFIX <= self.block_prefix <= MAX_BLOCK_PREFIX:
            raise InvalidIpamConfig(
                f"block size /{self.block_prefix} is not allowed: use /{MIN_BLOCK_PREFIX} to /{MAX_BLOCK_PREFIX}"
            )
        if self.block_prefix < self.pool.prefixlen:
            raise InvalidIpamConfig(
                f"pool {self.pool} is smaller than one /{self.block_prefix} block: use a larger pool or "
                "a smaller block"
            )
        if self.max_blocks_per_host < 1:
            raise InvalidIpamConfig("max_blocks_per_host must be at least 1")

    @property
    def block_size(self) -> int:
        return 1 << (32 - self.block_prefix)

    @property
    def block_count(self) -> int:
        return 1 << (self.block_prefix - self.pool.prefixlen)

    def block_at(self, index: int) -> IPv4Network:
        start = int(self.pool.network_address) + index * self.block_size
        return IPv4Network((start, self.block_prefix))

    def block_of(self, ip: IPv4Address) -> IPv4Network:
        return IPv4Network((int(ip), self.block_prefix), strict=False)


@dataclass(frozen=True)
class Allocation:
    handle: str
    ip: IPv4Address
    host: str
    block: IPv4Network


@dataclass(frozen=True)
class BlockUsage:
    cidr: IPv4Network
    host: str
    used: int
    free: int
    borrowed: int  # addresses of this block used by other hosts


@dataclass
class _Block:
    cidr: IPv4Network
    host: str
    used: dict[int, str] = field(default_factory=dict)  # offset in block -> handle


class Ipam:
    """The IPAM state of one lab. Mutating methods either succeed fully or raise and change nothing."""

    def __init__(self, config: IpamConfig) -> None:
        self.config = config
        self._blocks: dict[IPv4Network, _Block] = {}
        self._by_handle: dict[str, Allocation] = {}
        self._by_ip: dict[IPv4Address, Allocation] = {}

    # ---- allocation -------------------------------------------------------------------------------------

    def allocate(self, handle: str, host: str, fixed: IPv4Address | str | None = None) -> IPv4Address:
        """Give `handle` (e.g. `namespace/pod`) an address on `host`; asking again with the same host
        (and the same fixed address, if any) returns the address it already has."""
        wanted = IPv4Address(fixed) if fixed is not None else None
        existing = self._by_handle.get(handle)
        if existing is not None:
            if existing.host == host and wanted in (None, existing.ip):
                return existing.ip
            raise HandleInUse(f"{handle} already has address {existing.ip} on host {existing.host}")
        if wanted is not None:
            block = self._block_for_fixed(wanted, host)
        else:
            block = self._block_with_room(host)
        ip = wanted if wanted is not None else self._lowest_free(block)
        self._record(Allocation(handle=handle, ip=ip, host=host, block=block.cidr), block)
        return ip

    def release(self, handle: str) -> Allocation:
        """Give the address back; a block left empty loses its affinity (its host stops announcing it)."""
        allocation = self._by_handle.pop(handle, None)
        if allocation is None:
            raise UnknownHandle(f"{handle} has no address")
        del self._by_ip[allocation.ip]
        block = self._blocks[allocation.block]
        del block.used[self._offset(allocation.ip)]
        if not block.used:
            del self._blocks[block.cidr]
        return allocation

    def _block_for_fixed(self, ip: IPv4Address, host: str) -> _Block:
        if ip not in self.config.pool:
            raise AddressOutsidePool(f"address {ip} is outside the pod pool {self.config.pool}")
        taken = self._by_ip.get(ip)
        if taken is not None:
            raise AddressTaken(f"address {ip} is already used by {taken.handle} on host {taken.host}")
        cidr = self.config.block_of(ip)
        block = self._blocks.get(cidr)
        if block is None:
            if len(self.blocks_of(host)) >= self.config.max_blocks_per_host:
                raise BlockCapReached(
                    f"address {ip} needs block {cidr}, but host {host} already has its "
                    f"{self.config.max_blocks_per_host} blocks"
                )
            return self._claim(cidr, host)
        if block.host != host and self.config.strict_affinity:
            raise BorrowingForbidden(
                f"address {ip} lies in block {cidr} of host {block.host}; strict affinity forbids host "
                f"{host} to use it"
            )
        return block

    def _block_with_room(self, host: str) -> _Block:
        for cidr in self.blocks_of(host):
            if self._has_room(self._blocks[cidr]):
                return self._blocks[cidr]
        if len(self.blocks_of(host)) < self.config.max_blocks_per_host:
            cidr_free = self._lowest_unclaimed_block()
            if cidr_free is not None:
                return self._claim(cidr_free, host)
        if not self.config.strict_affinity:
            for cidr in sorted(self._blocks):
                if self._has_room(self._blocks[cidr]):
                    return self._blocks[cidr]
        if len(self.blocks_of(host)) >= self.config.max_blocks_per_host:
            hint = "strict affinity forbids borrowing" if self.config.strict_affinity else "the pool is full"
            raise BlockCapReached(
                f"host {host} has its {self.config.max_blocks_per_host} blocks full and {hint}"
            )
        raise PoolExhausted(
            f"pool {self.config.pool} has no free /{self.config.block_prefix} block left for host {host}"
            + (" (strict affinity forbids borrowing)" if self.config.strict_affinity else "")
        )

    def _claim(self, cidr: IPv4Network, host: str) -> _Block:
        block = _Block(cidr=cidr, host=host)
        self._blocks[cidr] = block
        return block

    def _lowest_unclaimed_block(self) -> IPv4Network | None:
        # Claimed blocks are few next to the pool, so walk indices until one is free.
        for index in range(self.config.block_count):
            cidr = self.config.block_at(index)
            if cidr not in self._blocks:
                return cidr
        return None

    def _has_room(self, block: _Block) -> bool:
        return len(block.used) < self.config.block_size

    def _lowest_free(self, block: _Block) -> IPv4Address:
        for offset in range(self.config.block_size):
            if offset not in block.used:
                return block.cidr.network_address + offset
        raise AssertionError("block has no room")  # callers check _has_room first

    def _offset(self, ip: IPv4Address) -> int:
        return int(ip) & (self.config.block_size - 1)

    def _record(self, allocation: Allocation, block: _Block) -> None:
        block.used[self._offset(allocation.ip)] = allocation.handle
        self._by_handle[allocation.handle] = allocation
        self._by_ip[allocation.ip] = allocation

    # ---- queries ----------------------------------------------------------------------------------------

    def blocks_of(self, host: str) -> tuple[IPv4Network, ...]:
        return tuple(sorted(c for c, b in self._blocks.items() if b.host == host))

    def borrowed_by(self, host: str) -> tuple[Allocation, ...]:
        """Addresses `host` uses from blocks affine to other hosts."""
        return tuple(
            sorted(
                (a for a in self._by_handle.values() if a.host == host and self._blocks[a.block].host != host),
                key=lambda a: a.ip,
            )
        )

    def announcements(self, host: str) -> frozenset[IPv4Network]:
        """What `host` announces over BGP: its affine blocks and a /32 per borrowed address."""
        borrowed = (IPv4Network(a.ip) for a in self.borrowed_by(host))
        return frozenset(self.blocks_of(host)) | frozenset(borrowed)

    def owner(self, ip: IPv4Address | str) -> Allocation | None:
        return self._by_ip.get(IPv4Address(ip))

    def allocation(self, handle: str) -> Allocation | None:
        return self._by_handle.get(handle)

    def allocations(self) -> tuple[Allocation, ...]:
        return tuple(sorted(self._by_handle.values(), key=lambda a: a.ip))

    def hosts(self) -> tuple[str, ...]:
        """Hosts holding a block or an address."""
        return tuple(sorted({b.host for b in self._blocks.values()} | {a.host for a in self._by_handle.values()}))

    def block_host(self, cidr: IPv4Network) -> str | None:
        block = self._blocks.get(cidr)
        return block.host if block else None

    def usage(self) -> tuple[BlockUsage, ...]:
        """One line per claimed block, for `lab ipam`."""
        lines = []
        for cidr in sorted(self._blocks):
            block = self._blocks[cidr]
            borrowed = sum(1 for h in block.used.values() if self._by_handle[h].host != block.host)
            used = len(block.used)
            lines.append(BlockUsage(cidr, block.host, used, self.config.block_size - used, borrowed))
        return tuple(lines)

    # ---- persistence ------------------------------------------------------------------------------------

    def to_records(self) -> dict[str, list[dict[str, str]]]:
        """JSON-able state: blocks with their affine host, addresses with handle, host and block."""
        return {
            "blocks": [{"cidr": str(c), "host": self._blocks[c].host} for c in sorted(self._blocks)],
            "addresses": [
                {"ip": str(a.ip), "handle": a.handle, "host": a.host, "block": str(a.block)}
                for a in self.allocations()
            ],
        }

    @classmethod
    def from_records(cls, config: IpamConfig, records: Mapping[str, Any]) -> Ipam:
        """Rebuild the state stored by `to_records`, refusing records that contradict each other."""
        try:
            parsed = _Records.model_validate(records)
        except ValidationError as err:
            raise InvalidRecords(f"stored IPAM records are malformed: {err}") from None
        try:
            return cls._rebuild(config, parsed)
        except IpamError:
            raise
        except ValueError as err:  # a malformed address or network
            raise InvalidRecords(f"stored IPAM records are malformed: {err}") from None

    @classmethod
    def _rebuild(cls, config: IpamConfig, parsed: _Records) -> Ipam:
        ipam = cls(config)
        claimed: dict[str, IPv4Network] = {}  # parsing networks dominates the cost: once per block
        for block in parsed.blocks:
            cidr = IPv4Network(block.cidr)
            claimed[block.cidr] = cidr
            if cidr.prefixlen != config.block_prefix or not cidr.subnet_of(config.pool):
                raise InvalidRecords(f"stored block {cidr} is not a /{config.block_prefix} block of {config.pool}")
            if cidr in ipam._blocks:
                raise InvalidRecords(f"stored block {cidr} appears twice")
            ipam._claim(cidr, block.host)
        for address in parsed.addresses:
            ip = IPv4Address(address.ip)
            cidr = claimed.get(address.block) or IPv4Network(address.block)
            if cidr not in ipam._blocks or ip not in cidr:
                raise InvalidRecords(f"stored address {ip} of {address.handle} is not in a claimed block {cidr}")
            if ip in ipam._by_ip or address.handle in ipam._by_handle:
                raise InvalidRecords(f"stored address {ip} of {address.handle} is recorded twice")
            ipam._record(Allocation(address.handle, ip, address.host, cidr), ipam._blocks[cidr])
        return ipam


class _BlockRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cidr: str
    host: str


class _AddressRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ip: str
    handle: str
    host: str
    block: str


class _Records(BaseModel):
    model_config = ConfigDict(extra="forbid")
    blocks: list[_BlockRecord]
    addresses: list[_AddressRecord]


def longest_match(ip: IPv4Address, prefixes: Iterable[IPv4Network]) -> IPv4Network | None:
    """The most specific prefix holding `ip` (how a kernel picks a route); None when none does."""
    best: IPv4Network | None = None
    for prefix in prefixes:
        if ip in prefix and (best is None or prefix.prefixlen > best.prefixlen):
            best = prefix
    return best
