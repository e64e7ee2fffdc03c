"""The one module that touches the cffi extension ``nexpo._core``.

It owns loading (and the Nim runtime's one-time init), status code -> exception mapping and
buffer handling. Public modules call into it and own their argument checking.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any, Final

from nexpo.errors import AuthenticationError, ChannelClosed, ChannelCorrupted, NexpoError


def _load_override(path: str) -> None:
    """Load ``nexpo._core`` from another build (e.g. the sanitizer build the tests run under)."""
    spec = importlib.util.spec_from_file_location("nexpo._core", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"NEXPO_CORE_OVERRIDE={path!r} is not a loadable extension module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["nexpo._core"] = module


if _override := os.environ.get("NEXPO_CORE_OVERRIDE"):
    _load_override(_override)

try:
    from nexpo._core import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "nexpo's native core (nexpo._core) is not built: run `pip install .` (or `make build`) "
        f"in the source tree; it needs Nim (`apt-get install nim`) and a C compiler ({exc})"
    ) from exc

__all__ = [
    "NULL",
    "CData",
    "check",
    "error_for",
    "ffi",
    "last_error",
    "lib",
    "read_buffer",
    "write_buffer",
]

CData = Any
NULL: Final = ffi.NULL

lib.nexpo_init()


def load_sibling_module(name: str) -> Any:
    """A further module of the ``_core`` shared object (``nexpo._channel``, ``nexpo._hashpath``),
    loaded from that same file (PEP 489: a library may export several ``PyInit_*``); it shares the
    one Nim runtime. Typed by its stub (nexpo/_channel.pyi) or the caller's Protocol. Loaded once
    per process."""
    if name in sys.modules:
        return sys.modules[name]
    path = sys.modules["nexpo._core"].__file__
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or path is None:
        raise ImportError(f"{name}: cannot load it from {path!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


# nexpo._channel (nexpo/_channel/): the C type of nexpo.Channel; `import nexpo._channel` finds
# it in sys.modules from here on.
load_sibling_module("nexpo._channel")

ISA_NAMES: Final = ("portable", "avx2", "avx512")

_EXCEPTIONS: Final[dict[int, Callable[[str], Exception]]] = {
    lib.NEXPO_EINVAL: ValueError,
    lib.NEXPO_ETYPE: TypeError,
    lib.NEXPO_ENOMEM: MemoryError,
    lib.NEXPO_EAUTH: AuthenticationError,
    lib.NEXPO_ETIMEOUT: TimeoutError,
    lib.NEXPO_ECLOSED: ChannelClosed,
    lib.NEXPO_EAGAIN: BlockingIOError,
    lib.NEXPO_EINTERNAL: NexpoError,
    lib.NEXPO_EUNSUPPORTED: NexpoError,
    lib.NEXPO_ECORRUPT: ChannelCorrupted,
}


def last_error() -> str:
    return str(ffi.string(lib.nexpo_last_error()).decode("utf-8", "replace"))


def error_for(status: int) -> Exception:
    """The exception for a failed call's status; read on the thread that made the call."""
    message = last_error() or f"native call failed with status {status}"
    return _EXCEPTIONS.get(status, NexpoError)(message)


def check(status: int) -> None:
    if status != lib.NEXPO_OK:
        raise error_for(status)


def _type_name(obj: object) -> str:
    return type(obj).__name__


def read_buffer(obj: object, name: str) -> tuple[CData | bytes, int]:
    """A read-only bytes-like argument for a ``const char *`` parameter, without copying.

    ``bytes`` pass straight through (cffi hands C a pointer to their storage); any other
    bytes-like object gets a ``char[]`` view that keeps its buffer exported (so it cannot be
    resized or freed) while the caller holds it. The length is the exported buffer's, never
    ``len(obj)`` (a subclass may override ``__len__``). ``str`` is refused with a hint.
    """
    if type(obj) is bytes:
        return obj, len(obj)
    if isinstance(obj, str):
        raise TypeError(f"{name} must be a bytes-like object, not str (encode it first)")
    try:
        buf = ffi.from_buffer("char[]", obj)
    except TypeError:
        raise TypeError(f"{name} must be a bytes-like object, not {_type_name(obj)}") from None
    except (BufferError, ValueError) as exc:  # a strided view: C reads one contiguous run
        raise ValueError(f"{name} must be C-contiguous ({exc}); pass bytes({name}) instead") from None
    return buf, len(buf)


def write_buffer(obj: object, name: str) -> tuple[CData, int]:
    """A writable view of ``obj`` (bytearray, writable memoryview or array) as (uint8_t*, length)."""
    try:
        buf = ffi.from_buffer("uint8_t[]", obj, require_writable=True)
    except (TypeError, BufferError):
        raise TypeError(f"{name} must be a writable bytes-like object, not {_type_name(obj)}") from None
    return buf, len(buf)


def _read_string(fn: Callable[[CData, int], int]) -> str:
    out = ffi.new("char[]", 64)
    check(fn(out, 64))
    return str(ffi.string(out).decode())


def nim_version() -> str:
    return _read_string(lib.nexpo_nim_version)


def build_profile() -> str:
    return _read_string(lib.nexpo_build_profile)


def isa_available() -> list[str]:
    mask = lib.nexpo_isa_available()
    return [name for i, name in enumerate(ISA_NAMES) if mask & (1 << i)]


def isa_active() -> str:
    return ISA_NAMES[lib.nexpo_isa_active()]


def isa_best() -> str:
    return ISA_NAMES[lib.nexpo_isa_best()]


def gemm_b_panel_width(isa: str) -> int:
    """Columns of a float32 B panel of the GEMM micro-kernel on ``isa``: a constant B packed at
    load must have this layout to be read in place."""
    return int(lib.nexpo_gemm_b_panel_width(ISA_NAMES.index(isa)))


def gemm_pack_weights(isa: str, b: Any) -> Any:
    """``b`` (a C-contiguous k x n float32 array) as ``isa``'s B panels: a flat float32 array of
    k * (n rounded up to the panel width) elements, what the GEMM reads in place."""
    import numpy as np

    k, n = b.shape
    nr = gemm_b_panel_width(isa)
    out = np.empty(k * -(-n // nr) * nr, dtype=np.float32)
    src = ffi.cast("float *", ffi.from_buffer(b))
    dst = ffi.cast("float *", ffi.from_buffer(out, require_writable=True))
    check(lib.nexpo_gemm_pack_weights(ISA_NAMES.index(isa), k, n, src, dst))
    return out


def set_isa(name: str) -> None:
    """Force an instruction-set path no wider than the CPU's best (used by NEXPO_ISA and tests)."""
    if name not in ISA_NAMES:
        raise ValueError(f"isa must be one of {', '.join(ISA_NAMES)}, not {name!r}")
    check(lib.nexpo_isa_set(ISA_NAMES.index(name)))


def has_sha_ni() -> bool:
    return bool(lib.nexpo_has_sha_ni())


def sha_ni_enabled() -> bool:
    return bool(lib.nexpo_sha_ni_enabled())


def set_sha_ni(enabled: bool) -> None:
    """Allow (the default) or forbid SHA-NI, whatever the ISA path: ``set_isa("avx512")`` plus
    ``set_sha_ni(False)`` is the AVX-512-without-SHA-NI CPU (Skylake-SP, Cascade Lake)."""
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, not {type(enabled).__name__}")
    check(lib.nexpo_sha_ni_set(int(enabled)))


def _apply_sha_ni_from_env() -> None:
    requested = os.environ.get("NEXPO_SHA_NI", "").strip().lower()
    if not requested:
        return
    if requested not in ("0", "1"):
        raise ValueError(f"NEXPO_SHA_NI must be 0 or 1, not {requested!r}")
    set_sha_ni(requested == "1")


def has_ifma() -> bool:
    return bool(lib.nexpo_has_ifma())


def ifma_enabled() -> bool:
    return bool(lib.nexpo_ifma_enabled())


def set_ifma(enabled: bool) -> None:
    """Allow (the default) or forbid AVX512-IFMA (used only on the AVX-512 path, by Poly1305):
    ``set_ifma(False)`` is the AVX-512 CPU without IFMA (Skylake-SP, Cascade Lake)."""
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, not {type(enabled).__name__}")
    check(lib.nexpo_ifma_set(int(enabled)))


def _apply_ifma_from_env() -> None:
    requested = os.environ.get("NEXPO_IFMA", "").strip().lower()
    if not requested:
        return
    if requested not in ("0", "1"):
        raise ValueError(f"NEXPO_IFMA must be 0 or 1, not {requested!r}")
    set_ifma(requested == "1")


def _apply_isa_from_env() -> None:
    requested = os.environ.get("NEXPO_ISA", "").strip().lower()
    if not requested:
        return
    if requested not in ISA_NAMES:
        raise ValueError(f"NEXPO_ISA must be one of {', '.join(ISA_NAMES)}, not {requested!r}")
    if ISA_NAMES.index(requested) > lib.nexpo_isa_best():
        warnings.warn(
            f"NEXPO_ISA={requested} is not supported by this CPU; using {isa_best()}",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    set_isa(requested)


_apply_isa_from_env()
_apply_sha_ni_from_env()
_apply_ifma_from_env()
