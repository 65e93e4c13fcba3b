"""The one place that checks text bound for a kernel tool's script or a daemon's configuration file.

`ip -batch`, `nft -f`, `ipset restore`, `iptables-restore`, ExaBGP and BIRD configurations are line-based
languages: a newline ends a command, a quote ends a string, `;`, `{`, `}` and `#` separate or comment out
what follows. Names that reach them are validated long before (Kubernetes rules in the lab file and in
policy validation); this is the second layer. Every writer passes each token that comes from a user
through `token()` (bare words: names, addresses) or `quoted()` (comments, descriptions), and `ip -batch`
lines through `batch_lines()`. They refuse, never mangle: a name that would need escaping is a bug upstream.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Bare words: names, interface names, addresses, CIDRs, MACs. No space, quote, newline or separator.
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/,=@+-]*")
# Inside double quotes: printable ASCII without the quote itself or a backslash.
_QUOTABLE = re.compile(r"[ !#-\[\]-~]*")


class UnsafeText(ValueError):
    """Text that could end a command or a string in a kernel script or a configuration file."""


def token(text: object, what: str = "name") -> str:
    """`text` as a bare word of a script or configuration; UnsafeText if it is not one."""
    value = str(text)
    if not _TOKEN.fullmatch(value):
        raise UnsafeText(f"{what} {value!r} cannot be written into a kernel script or configuration file "
                         "(only letters, digits and . _ : / , = @ + - are allowed)")
    return value


def quoted(text: object, what: str = "comment") -> str:
    """`text` between double quotes; UnsafeText if it holds a quote, a backslash or a control character."""
    value = str(text)
    if not _QUOTABLE.fullmatch(value):
        raise UnsafeText(f"{what} {value!r} cannot be quoted in a kernel script or configuration file "
                         "(no quote, backslash, newline or other control character)")
    return f'"{value}"'


def batch_lines(lines: Iterable[str]) -> list[str]:
    """Lines of a line-based script (`ip -batch`): none may hold a line break or a NUL."""
    out = list(lines)
    for line in out:
        if any(c in line for c in "\n\r\0"):
            raise UnsafeText(f"script line {line!r} holds a line break: refused")
    return out


__all__ = ["UnsafeText", "token", "quoted", "batch_lines"]
