"""Hostile argument values for the native-argument fuzzer (tests/fuzz/native_args.py).

Every generator returns an ``Arg``: the value to pass, and what a correct implementation must
make of it. ``real`` is the data the value truly holds (the bytes its buffer exports, or a plain
ndarray over its memory), or ``None`` when the value must be refused with an error. ``lax`` marks
values that may either work on ``real`` or be refused (say, a lying subclass whose real shape
no longer fits the call), but never anything else.
"""

from __future__ import annotations

import array
import random
import types
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


@dataclass
class Arg:
    value: Any
    real: Any  # bytes, a plain ndarray, or None: must be refused
    lax: bool = False
    label: str = ""


# --- lying objects ------------------------------------------------------------------------------


class LyingBytes(bytes):
    def __len__(self) -> int:
        return 7


class LyingBytearray(bytearray):
    def __len__(self) -> int:
        return 1 << 40


class LyingArray(np.ndarray):  # type: ignore[type-arg]
    """An ndarray subclass whose Python-level metadata says whatever ``lies`` says."""

    lies: ClassVar[dict[str, Any]] = {}

    def __getattribute__(self, name: str) -> Any:
        lies = np.ndarray.__getattribute__(self, "lies")
        if name in lies:
            return lies[name]
        return np.ndarray.__getattribute__(self, name)

    def __len__(self) -> int:
        return int(np.ndarray.__getattribute__(self, "lies").get("len", 1 << 40))


def lying(arr: Array, **lies: Any) -> Array:
    cls = type("Lying", (LyingArray,), {"lies": lies})
    return arr.view(cls)


class FakeNdarray(bytearray):
    """Not an ndarray, but ``isinstance(x, np.ndarray)`` says it is."""

    __class__ = np.ndarray  # type: ignore[assignment]
    dtype = np.dtype(np.float32)
    ndim = 2
    shape = (512, 512)
    strides = (2048, 4)
    flags = types.SimpleNamespace(c_contiguous=True, f_contiguous=False, aligned=True, writeable=True)
    itemsize = 4


class Indexy:
    def __index__(self) -> int:
        return 3


class BadInt(int):
    """An int that compares as anything: every range check it meets passes."""

    def __lt__(self, other: object) -> bool:
        return False

    def __le__(self, other: object) -> bool:
        return True

    def __gt__(self, other: object) -> bool:
        return False

    def __ge__(self, other: object) -> bool:
        return True


JUNK: list[Any] = [None, 3, -1, 2.5, float("nan"), "text", [1, 2, 3], {"a": 1}, object(), Indexy(),
                   True, FakeNdarray(64), np.float32(1.0)]


# --- bytes-likes --------------------------------------------------------------------------------


def payload(rng: random.Random, big: bool = False) -> bytes:
    n = rng.choice([0, 1, 3, 31, 32, 55, 56, 63, 64, 65, 127, 128, 129, 1000, rng.randrange(4096)])
    if big and rng.random() < 0.2:
        n = rng.choice([65_535, 65_536 + 17, 200_003])
    return rng.randbytes(n)


def _exported(value: Any) -> bytes | None:
    """The bytes a C-contiguous buffer exporter holds (numpy scalars are bytes-like too)."""
    if isinstance(value, str):
        return None
    try:
        view = memoryview(value)
    except TypeError:
        return None
    return view.tobytes() if view.c_contiguous else None


def bytes_like(rng: random.Random, data: bytes | None = None, junk: float = 0.1) -> Arg:
    """``data`` (random when None) in one of many bytes-like wrappers, or junk."""
    if rng.random() < junk:
        pool = [*JUNK, "x", memoryview(b"abcdef")[::2]]
        if data is not None:  # the content matters (a tag, a ciphertext): junk must not export any
            pool = [v for v in pool if _exported(v) is None]
        value = rng.choice(pool)
        return Arg(value, _exported(value), label=f"junk {type(value).__name__}")
    d = payload(rng) if data is None else data
    kind = rng.randrange(16)
    if kind == 0:
        return Arg(bytearray(d), d, label="bytearray")
    if kind == 1:
        return Arg(memoryview(d), d, label="memoryview")
    if kind == 2:
        buf = bytearray(b"\0" + d)
        return Arg(memoryview(buf)[1:], d, label="misaligned view")
    if kind == 3:
        return Arg(np.frombuffer(d, np.uint8), d, label="read-only uint8 array")
    if kind == 4 and len(d) % 4 == 0:
        return Arg(np.frombuffer(d, np.float32), d, label="float32 array (NaNs possible)")
    if kind == 5 and len(d) % 4 == 0:
        return Arg(array.array("i", d), d, label="array('i')")
    if kind == 6:
        return Arg(LyingBytes(d), d, label="bytes with lying __len__")
    if kind == 7:
        return Arg(LyingBytearray(d), d, label="bytearray with lying __len__")
    if kind == 8:
        arr = np.frombuffer(d, np.uint8).copy()
        return Arg(lying(arr, shape=(1 << 40,), nbytes=1 << 40, size=1 << 40), d, label="lying ndarray")
    if kind == 9 and len(d) >= 2:
        strided = np.frombuffer(d + d, np.uint8)[::2]
        return Arg(strided, None, label="strided array")
    if kind == 10 and len(d) % 2 == 0 and d:
        fortran = np.asfortranarray(np.frombuffer(d, np.uint8).reshape(2, -1))
        if fortran.shape[1] > 1:
            return Arg(fortran, None, label="Fortran-order array")
    if kind == 11 and len(d) > 1:
        return Arg(np.frombuffer(d[::-1], np.uint8)[::-1], None, label="negative stride")
    if kind == 12 and d:
        return Arg(np.frombuffer(d, f"V{len(d)}").reshape(()), d, label="0-d void array")
    return Arg(d, d, label="bytes")


# --- float arrays for the kernels ---------------------------------------------------------------

GOOD_DTYPES = [np.float32, np.float64]
BAD_DTYPES = [np.float16, np.int32, np.int64, np.complex64, object, ">f8", np.bool_, "V8"]


def dim(rng: random.Random) -> int:
    return rng.choice([0, 1, 1, 2, 3, 5, 8, 16, 17, 33, rng.randrange(70)])


def values(rng: random.Random, shape: tuple[int, ...], dtype: Any, specials: bool = True) -> Array:
    gen = np.random.default_rng(rng.randrange(2**32))
    out = gen.standard_normal(shape)
    if specials and out.size and rng.random() < 0.2:
        flat = out.reshape(-1)
        for _ in range(rng.randrange(1, 4)):
            flat[rng.randrange(flat.size)] = rng.choice([np.nan, np.inf, -np.inf])
    return out.astype(dtype)


def layout(rng: random.Random, rows: int, cols: int, dtype: Any, specials: bool = True) -> tuple[Array, str]:
    """A (rows, cols) view of ``dtype`` values in a random memory layout (data not copied)."""
    kind = rng.randrange(9)
    if kind == 1:
        return values(rng, (cols, rows), dtype, specials).T, "transposed"
    if kind == 2:
        return values(rng, (rows * 2, cols * 3), dtype, specials)[::2, ::3], "sliced"
    if kind == 3:
        return values(rng, (rows, cols), dtype, specials)[::-1, ::-1], "reversed"
    if kind == 4:
        row = values(rng, (1, cols), dtype, specials)
        return np.broadcast_to(row, (rows, cols)), "broadcast (zero stride)"
    if kind == 5:
        base = values(rng, (rows, cols), dtype, specials)
        raw = bytearray(base.nbytes + 1)
        view = np.frombuffer(raw, np.uint8)[1:].view(base.dtype).reshape(rows, cols)
        view[...] = base
        return view, "misaligned"
    if kind == 6:
        arr = values(rng, (rows, cols), dtype, specials)
        arr.setflags(write=False)
        return arr, "read-only"
    if kind == 7:
        return np.asfortranarray(values(rng, (rows, cols), dtype, specials)), "Fortran"
    return values(rng, (rows, cols), dtype, specials), "C"


LIES = [
    {"shape": (1 << 20, 1 << 20)},
    {"shape": (4096, 4096), "ndim": 2},
    {"dtype": np.dtype(np.float64)},
    {"dtype": np.dtype(np.float32), "itemsize": 4},
    {"strides": (1 << 30, 1 << 30)},
    {"flags": types.SimpleNamespace(c_contiguous=True, f_contiguous=True, aligned=True, writeable=True)},
    {"__array_interface__": {"data": (8, False), "shape": (64, 64), "typestr": "<f4", "version": 3}},
    {"ndim": 2, "shape": (2, 2)},
]


def float_matrix(rng: random.Random, rows: int, cols: int, dtype: Any, *, hostile: float = 0.25,
                 specials: bool = True) -> Arg:
    """A (rows, cols) operand: mostly valid layouts, sometimes a lie, a bad dtype or junk."""
    roll = rng.random()
    if roll < hostile * 0.3:
        value = rng.choice([*JUNK, [[1.0, 2.0]], np.ones(3, dtype), np.ones((2, 2, 2), dtype)])
        return Arg(value, value if type(value) is np.ndarray else None, label=f"junk {type(value).__name__}")
    if roll < hostile * 0.5:
        bad = rng.choice(BAD_DTYPES)
        return Arg(np.ones((rows, cols), dtype=bad), None, label=f"dtype {np.dtype(bad)}")
    arr, how = layout(rng, rows, cols, dtype, specials)
    if roll < hostile:
        lies = dict(rng.choice(LIES))
        return Arg(lying(arr, **lies), np.asarray(arr), lax=True, label=f"{how} lying {sorted(lies)}")
    return Arg(arr, arr, label=how)
