"""SHA-512 (``nexpo.crypto.sha512`` and ``nexpo.crypto.Sha512``) and HMAC-SHA-512
(``nexpo.crypto.hmac_sha512``, ``hmac_sha512_verify``), in Nim.

Called through ``nexpo._hashpath`` (nexpo/_hashpath.c) rather than cffi: cffi releases the GIL
on every call, which costs more than hashing a short message. Like hashlib, inputs shorter than
``GIL_MINSIZE`` (2 KiB) are hashed holding the GIL, longer ones release it.
"""

from __future__ import annotations

import threading
from typing import Any, Final, Protocol

from nexpo._native import check, ffi, lib, load_sibling_module
from nexpo._slots import read_only_slot


class _HashPath(Protocol):
    """``nexpo._hashpath``: statuses other than NEXPO_OK are returned as ints."""

    GIL_MINSIZE: int
    SHA512_STATE_SIZE: int

    def sha512(self, data: object, /) -> bytes | int: ...
    def sha512_update(self, state: bytearray, data: object, /) -> int: ...
    def sha512_final(self, state: bytearray, /) -> bytes | int: ...
    def hmac_sha512(self, key: object, data: object, /) -> bytes | int: ...
    def hmac_sha512_verify(self, key: object, data: object, tag: object, /) -> bool | int: ...


_hp: Final[_HashPath] = load_sibling_module("nexpo._hashpath")
_STATE_SIZE: Final = _hp.SHA512_STATE_SIZE
GIL_MINSIZE: Final = _hp.GIL_MINSIZE

DIGEST_SIZE: Final = 64
BLOCK_SIZE: Final = 128


def _digest(result: bytes | int) -> bytes:
    if isinstance(result, int):
        check(result)
        raise AssertionError("unreachable: a status other than NEXPO_OK raised")
    return result


def sha512(data: object) -> bytes:
    """The SHA-512 digest (64 bytes) of a bytes-like object."""
    return _digest(_hp.sha512(data))


def hmac_sha512(key: object, data: object) -> bytes:
    """HMAC-SHA-512(key, data) (RFC 2104): 64 bytes. Any key length is accepted."""
    return _digest(_hp.hmac_sha512(key, data))


def hmac_sha512_verify(key: object, data: object, tag: object) -> bool:
    """Is ``tag`` HMAC-SHA-512(key, data)? Compared in constant time (a tag of the wrong
    length is simply not equal)."""
    result = _hp.hmac_sha512_verify(key, data, tag)
    if isinstance(result, bool):
        return result
    check(result)
    raise AssertionError("unreachable: a status other than NEXPO_OK raised")


class Sha512:
    """Streaming SHA-512 shaped like ``hashlib.sha512()``: update, digest, hexdigest, copy.

    The hash state is a bytearray owned by this object (its size is checked natively on every
    call), so ``copy()`` is a small buffer copy and the two objects are independent. One object
    may be shared between threads: a lock serialises its updates (long ones run without the GIL).

    The state and its lock sit in a read-only attribute (assigning it raises AttributeError):
    whatever reaches the native call is this object's own buffer of the state's size.
    """

    name: Final = "sha512"
    digest_size: Final = DIGEST_SIZE
    block_size: Final = BLOCK_SIZE

    __slots__ = ("_native",)
    _native: tuple[bytearray, threading.Lock]  # (the native state, its lock)

    def __init__(self, data: object = b"") -> None:
        _native_slot.__set__(self, (bytearray(_FRESH), threading.Lock()))
        if not (isinstance(data, bytes) and not data):
            self.update(data)

    def update(self, data: object) -> Sha512:
        """Absorb more data; returns self so calls can be chained."""
        state, lock = self._native
        with lock:
            status = _hp.sha512_update(state, data)
        check(status)
        return self

    def digest(self) -> bytes:
        """The digest of everything absorbed so far; the object can keep absorbing."""
        state, lock = self._native
        with lock:
            result = _hp.sha512_final(state)
        return _digest(result)

    def hexdigest(self) -> str:
        return self.digest().hex()

    def copy(self) -> Sha512:
        """An independent copy: updating one does not affect the other."""
        clone = Sha512.__new__(Sha512)
        own_state, lock = self._native
        with lock:
            state = bytearray(own_state)
        _native_slot.__set__(clone, (state, threading.Lock()))
        return clone

    def __copy__(self) -> Sha512:
        return self.copy()

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle a nexpo.crypto.Sha512 object (its state is native)")

    def __repr__(self) -> str:
        return f"<nexpo.crypto.Sha512 object @ {id(self):#x}>"


def _fresh_state() -> bytearray:
    """An initialised state, copied by every new object (one native init per process)."""
    state = bytearray(_STATE_SIZE)
    check(lib.nexpo_sha512_init(ffi.from_buffer("uint8_t[]", state, require_writable=True), len(state)))
    return state


_FRESH: Final = _fresh_state()
_native_slot: Final = read_only_slot(Sha512, "_native")
