"""``nexpo.info()``: what this build is and which native paths it runs."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from nexpo import _native
from nexpo._native import lib
from nexpo.scheduler import get_num_threads


def package_version() -> str:
    try:
        return version("nexpo")
    except PackageNotFoundError:  # pragma: no cover - running from an unbuilt tree
        return "0+unknown"


def info() -> dict[str, Any]:
    """Version, Nim version, build profile, ISA paths, SHA-NI, IFMA and worker threads."""
    return {
        "version": package_version(),
        "nim_version": _native.nim_version(),
        "build_profile": _native.build_profile(),
        "isa_available": _native.isa_available(),
        "isa_best": _native.isa_best(),
        "isa_active": _native.isa_active(),
        "sha_ni": bool(lib.nexpo_has_sha_ni()),
        "sha_ni_active": bool(lib.nexpo_sha_ni_active()),
        "ifma": bool(lib.nexpo_has_ifma()),
        "ifma_active": bool(lib.nexpo_ifma_active()),
        "threads": get_num_threads(),
    }


def kernel_stats() -> dict[str, dict[str, int]]:
    """Calls and input bytes per native kernel since the process started."""
    n = int(lib.nexpo_kernel_count())
    calls = _native.ffi.new("uint64_t[]", n)
    nbytes = _native.ffi.new("uint64_t[]", n)
    _native.check(lib.nexpo_kernel_stats(calls, nbytes, n))
    names = [_native.ffi.string(lib.nexpo_kernel_name(i)).decode() for i in range(n)]
    return {name: {"calls": int(calls[i]), "bytes": int(nbytes[i])} for i, name in enumerate(names)}
