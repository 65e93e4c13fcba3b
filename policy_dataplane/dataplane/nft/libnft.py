"""nftables scripts run in-process through libnftables, the library the `nft` command is built on.

A diff sent through `nft -f -` costs about 20 ms at bank scale, nearly all of it outside the kernel: a
fork of the (large) calling process, the exec, and `nft` reading the whole table into its cache before it
can resolve a single name. A context kept per host namespace pays the cache once and then only revalidates
it by the ruleset's generation, so the same diff commits in about a millisecond. The script is the same
text and one buffer is still one transaction: all of it applies or none of it.

A context's netlink socket belongs to the namespace of the thread that created it (make it with
`Engine.call_in`), and stays bound to that namespace whatever thread uses it later.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from functools import cache

LIBRARY = "libnftables.so.1"


class LibNftUnavailable(RuntimeError):
    pass


class LibNftFailed(RuntimeError):
    """nftables refused the script: nothing of it was applied. `message` is what `nft` would print."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@cache
def _library() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(LIBRARY)
    except OSError as exc:
        raise LibNftUnavailable(f"{LIBRARY} cannot be loaded: {exc}") from None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    return lib


def available() -> bool:
    try:
        _library()
    except LibNftUnavailable:
        return False
    return True


class NftContext:
    """One libnftables context: its socket is in the namespace current when it was made."""

    def __init__(self) -> None:
        self._lib = _library()
        ctx = self._lib.nft_ctx_new(0)
        if not ctx:
            raise LibNftUnavailable("nft_ctx_new failed")
        self._ctx: int | None = ctx
        self._lib.nft_ctx_buffer_output(ctx)
        self._lib.nft_ctx_buffer_error(ctx)
        self._lock = threading.Lock()  # a context is not safe to share between threads at once

    def run(self, script: str) -> str:
        """Run the script as one transaction; returns what it printed, raises LibNftFailed when refused."""
        with self._lock:
            if self._ctx is None:
                raise LibNftUnavailable("the nftables context was closed")
            rc = self._lib.nft_run_cmd_from_buffer(self._ctx, script.encode())
            output = (self._lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode(errors="replace")
            errors = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode(errors="replace")
        if rc != 0:
            raise LibNftFailed(errors.strip() or f"nftables refused the script (code {rc})")
        return output

    def close(self) -> None:
        with self._lock:
            if self._ctx is not None:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None


__all__ = ["NftContext", "LibNftFailed", "LibNftUnavailable", "available"]
