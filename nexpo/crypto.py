"""SHA-256, SHA-512, HMAC-SHA-256/512, RFC 9162 Merkle trees, RFC 8439 ChaCha20-Poly1305,
AES-256-GCM and RFC 8032 Ed25519 signatures, in Nim.

Every function takes any bytes-like object (bytes, bytearray, memoryview, numpy arrays, ...)
and rejects ``str`` with a TypeError. The batch functions (``sha256_many``,
``hmac_sha256_many``, ``merkle_root``) make one native call per batch, spread over the
scheduler's worker threads; SHA-256 uses the CPU's SHA extensions when it has them.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Iterable
from typing import Any, Final, cast, overload

import numpy as np
import numpy.typing as npt

from nexpo import _native
from nexpo._aead import (
    AesGcm,
    ChaCha20Poly1305,
    aes256gcm_decrypt,
    aes256gcm_encrypt,
    chacha20poly1305_decrypt,
    chacha20poly1305_encrypt,
)
from nexpo._ed25519 import (
    Ed25519SigningKey,
    ed25519_public_key,
    ed25519_sign,
    ed25519_verify,
    ed25519_verify_many,
)
from nexpo._hash_lists import hmac_sha256_list, sha256_list
from nexpo._native import CData, check, ffi, lib
from nexpo._sha512 import Sha512, hmac_sha512, hmac_sha512_verify, sha512
from nexpo._slots import read_only_slot

__all__ = [
    "AesGcm",
    "ChaCha20Poly1305",
    "Ed25519SigningKey",
    "Sha256",
    "Sha512",
    "aes256gcm_decrypt",
    "aes256gcm_encrypt",
    "chacha20poly1305_decrypt",
    "chacha20poly1305_encrypt",
    "ed25519_public_key",
    "ed25519_sign",
    "ed25519_verify",
    "ed25519_verify_many",
    "hmac_sha256",
    "hmac_sha256_many",
    "hmac_sha256_verify",
    "hmac_sha512",
    "hmac_sha512_verify",
    "merkle_proof",
    "merkle_root",
    "merkle_verify",
    "sha256",
    "sha256_many",
    "sha512",
]

DIGEST_SIZE: Final = 32
BLOCK_SIZE: Final = 64
KEY_SIZE: Final = 32
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16

_STATE_SIZE: Final = int(lib.nexpo_sha256_state_size())

Messages = Iterable[Any] | npt.NDArray[np.uint8]


# --- argument handling ----------------------------------------------------------------------


_in = _native.read_buffer  # the ``const char *`` inputs of crypto.h


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    value = operator.index(value)  # a plain int: a subclass's comparisons could lie
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


_ONLY_BYTES: Final = frozenset({bytes})
_LISTS: Final = frozenset({list, tuple})  # hashed in place when every item is bytes (_hash_lists)
_MAX_EMPTY_ROWS: Final = 1 << 24  # an (n, 0) array is n messages in no memory at all


def _join(items: tuple[Any, ...], name: str) -> bytes:
    try:
        return b"".join(items)
    except (TypeError, BufferError, ValueError):
        for i, item in enumerate(items):
            _in(item, f"{name}[{i}]")  # raises the error that names the bad item
        raise


class _Batch:
    """Messages laid out as the native batch calls take them: one buffer plus lengths.

    A list of bytes-likes is joined into one buffer (one C-level pass); ``lengths`` is NULL
    when every message has the same length, so the native side computes the offsets itself.
    The native call runs without the GIL on this private snapshot: the caller's list and its
    items may change meanwhile without effect. Lengths come from the joined buffers, never
    from an overridable ``__len__``.
    """

    __slots__ = ("data", "from_array", "keep", "length", "lengths", "n")

    def __init__(self, messages: object, name: str) -> None:
        self.from_array = True
        if issubclass(type(messages), np.ndarray):
            # A private plain view (see kernels._private_view): its shape is numpy's, and no
            # other thread can reassign it between the checks and the call.
            plain = messages.view() if type(messages) is np.ndarray else np.asarray(messages)
            self._from_array(plain, name)
            return
        if isinstance(messages, str | bytes | bytearray | memoryview):
            raise TypeError(
                f"{name} must be a list of bytes-like objects (or a 2-D uint8 array), "
                f"not a single {type(messages).__name__}"
            )
        self.from_array = False
        try:
            items: tuple[Any, ...] = tuple(messages)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(
                f"{name} must be a list of bytes-like objects, not {type(messages).__name__}"
            ) from None
        if set(map(type, items)) <= _ONLY_BYTES:  # immutable, and len() is their size
            joined = _join(items, name)
            sizes = list(map(len, items))
        else:  # exported views pin each item's size (and memory) from the join to the sizes
            views = tuple(_view(item, f"{name}[{i}]") for i, item in enumerate(items))
            joined = _join(views, name)
            sizes = [view.nbytes for view in views]
            for view in views:
                view.release()
        n = len(items)
        self.keep: object = joined
        self.data, self.length = _in(joined, name)
        self.n = n
        if n == 0 or sizes.count(sizes[0]) == n:
            self.lengths: CData = ffi.NULL
        else:
            self.lengths = ffi.new("uint64_t[]", sizes)

    def _from_array(self, array: npt.NDArray[Any], name: str) -> None:
        if array.ndim != 2 or array.dtype != np.uint8:
            raise ValueError(
                f"{name}: an array must be 2-D uint8 (one message per row), got {array.ndim}-D {array.dtype}"
            )
        if array.shape[1] == 0 and array.shape[0] > _MAX_EMPTY_ROWS:
            raise ValueError(
                f"{name}: {array.shape[0]} empty rows is more than {_MAX_EMPTY_ROWS} (every one hashes alike)"
            )
        contiguous = np.ascontiguousarray(array)
        self.keep = contiguous
        self.data, self.length = _in(contiguous, name)
        self.n = int(array.shape[0])
        self.lengths = ffi.NULL


def _view(item: object, name: str) -> memoryview:
    try:
        return memoryview(item)  # type: ignore[arg-type]
    except TypeError:
        _in(item, name)  # raises the TypeError with the hint for str
        raise


def _digest_list(out: npt.NDArray[np.uint8]) -> list[bytes]:
    """(N, 32) uint8 digests as a list of N bytes objects (one C-level pass)."""
    result: list[bytes] = out.view("V32").ravel().tolist()
    return result


# --- SHA-256 --------------------------------------------------------------------------------


def sha256(data: object) -> bytes:
    """The SHA-256 digest (32 bytes) of a bytes-like object."""
    buf, n = _in(data, "data")
    out = ffi.new("uint8_t[32]")
    check(lib.nexpo_sha256(buf, n, out, 32))
    return cast(bytes, ffi.buffer(out)[:])


class Sha256:
    """Streaming SHA-256 shaped like ``hashlib.sha256()``: update, digest, hexdigest, copy.

    The hash state lives in a small native buffer owned by this object (passed to Nim by
    pointer), so ``copy()`` is a small buffer copy and the two objects are independent. Like
    hashlib's objects, one object may be shared between threads: a lock serialises its updates
    (the native call runs without the GIL).

    The buffer and its lock sit in a read-only attribute (assigning it raises AttributeError):
    whatever reaches the native call is this object's own allocation of the state's size.
    """

    name: Final = "sha256"
    digest_size: Final = DIGEST_SIZE
    block_size: Final = BLOCK_SIZE

    __slots__ = ("_native",)
    _native: tuple[CData, threading.Lock]  # (uint8_t[_STATE_SIZE], its lock)

    def __init__(self, data: object = b"") -> None:
        state = ffi.new("uint8_t[]", _STATE_SIZE)
        check(lib.nexpo_sha256_init(state, _STATE_SIZE))
        _native_slot.__set__(self, (state, threading.Lock()))
        if not (isinstance(data, bytes) and not data):
            self.update(data)

    def update(self, data: object) -> Sha256:
        """Absorb more data; returns self so calls can be chained."""
        buf, n = _in(data, "data")
        state, lock = self._native
        with lock:
            status = lib.nexpo_sha256_update(state, _STATE_SIZE, buf, n)
        check(status)
        return self

    def digest(self) -> bytes:
        """The digest of everything absorbed so far; the object can keep absorbing."""
        out = ffi.new("uint8_t[32]")
        state, lock = self._native
        with lock:
            status = lib.nexpo_sha256_final(state, _STATE_SIZE, out, 32)
        check(status)
        return cast(bytes, ffi.buffer(out)[:])

    def hexdigest(self) -> str:
        return self.digest().hex()

    def copy(self) -> Sha256:
        """An independent copy: updating one does not affect the other."""
        clone = Sha256.__new__(Sha256)
        state = ffi.new("uint8_t[]", _STATE_SIZE)
        own_state, lock = self._native
        with lock:
            ffi.memmove(state, own_state, _STATE_SIZE)
        _native_slot.__set__(clone, (state, threading.Lock()))
        return clone

    def __copy__(self) -> Sha256:
        return self.copy()

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle a nexpo.crypto.Sha256 object (its state is native)")

    def __repr__(self) -> str:
        return f"<nexpo.crypto.Sha256 object @ {id(self):#x}>"


_native_slot: Final = read_only_slot(Sha256, "_native")


@overload
def sha256_many(messages: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]: ...  # type: ignore[overload-overlap]
@overload
def sha256_many(messages: Iterable[Any]) -> list[bytes]: ...
def sha256_many(messages: Messages) -> list[bytes] | npt.NDArray[np.uint8]:
    """SHA-256 of every message in one native call.

    ``messages`` is a list of bytes-like objects (returns a list of 32-byte digests) or a 2-D
    uint8 array with one message per row (returns an (N, 32) uint8 array).
    """
    if type(messages) in _LISTS and (digests := sha256_list(messages)) is not None:
        return digests
    batch = _Batch(messages, "messages")
    out = np.empty((batch.n, DIGEST_SIZE), dtype=np.uint8)
    out_buf, out_len = _native.write_buffer(out, "out")
    check(lib.nexpo_sha256_many(batch.data, batch.length, batch.lengths, batch.n, out_buf, out_len))
    return out if batch.from_array else _digest_list(out)


# --- HMAC-SHA-256 ---------------------------------------------------------------------------


def hmac_sha256(key: object, data: object) -> bytes:
    """HMAC-SHA-256(key, data) (RFC 2104): 32 bytes. Any key length is accepted."""
    key_buf, key_len = _in(key, "key")
    buf, n = _in(data, "data")
    out = ffi.new("uint8_t[32]")
    check(lib.nexpo_hmac_sha256(key_buf, key_len, buf, n, out, 32))
    return cast(bytes, ffi.buffer(out)[:])


@overload
def hmac_sha256_many(  # type: ignore[overload-overlap]
    key: object, messages: npt.NDArray[np.uint8]
) -> npt.NDArray[np.uint8]: ...
@overload
def hmac_sha256_many(key: object, messages: Iterable[Any]) -> list[bytes]: ...
def hmac_sha256_many(key: object, messages: Messages) -> list[bytes] | npt.NDArray[np.uint8]:
    """HMAC-SHA-256 under one key of every message, in one native call (see ``sha256_many``)."""
    if type(messages) in _LISTS and (digests := hmac_sha256_list(key, messages)) is not None:
        return digests
    key_buf, key_len = _in(key, "key")
    batch = _Batch(messages, "messages")
    out = np.empty((batch.n, DIGEST_SIZE), dtype=np.uint8)
    out_buf, out_len = _native.write_buffer(out, "out")
    check(
        lib.nexpo_hmac_sha256_many(
            key_buf, key_len, batch.data, batch.length, batch.lengths, batch.n, out_buf, out_len
        )
    )
    return out if batch.from_array else _digest_list(out)


def hmac_sha256_verify(key: object, data: object, tag: object) -> bool:
    """Is ``tag`` HMAC-SHA-256(key, data)? Compared in constant time (a tag of the wrong
    length is simply not equal)."""
    key_buf, key_len = _in(key, "key")
    buf, n = _in(data, "data")
    tag_buf, tag_len = _in(tag, "tag")
    ok = ffi.new("int32_t *")
    check(lib.nexpo_hmac_sha256_verify(key_buf, key_len, buf, n, tag_buf, tag_len, ok))
    return bool(ok[0])


# --- Merkle trees (RFC 9162 §2.1) -----------------------------------------------------------


def merkle_root(leaves: Messages) -> bytes:
    """The RFC 9162 Merkle Tree Hash of ``leaves`` (a list of bytes-likes or a 2-D uint8 array).

    Leaf hash = SHA-256(0x00 ‖ leaf), node hash = SHA-256(0x01 ‖ left ‖ right); the root of
    the empty tree is SHA-256(b"").
    """
    batch = _Batch(leaves, "leaves")
    out = ffi.new("uint8_t[32]")
    check(lib.nexpo_merkle_root(batch.data, batch.length, batch.lengths, batch.n, out, 32))
    return cast(bytes, ffi.buffer(out)[:])


def merkle_proof(leaves: Messages, index: int) -> list[bytes]:
    """The RFC 9162 audit path of leaf ``index``: sibling hashes from the leaf up to the root."""
    index = _check_int(index, "index")
    batch = _Batch(leaves, "leaves")
    if index >= batch.n:
        raise ValueError(f"index {index} is out of range for {batch.n} leaves")
    out = ffi.new("uint8_t[]", 64 * DIGEST_SIZE)
    count = ffi.new("int32_t *")
    check(
        lib.nexpo_merkle_proof(
            batch.data, batch.length, batch.lengths, batch.n, index, out, 64 * DIGEST_SIZE, count
        )
    )
    raw = cast(bytes, ffi.buffer(out, DIGEST_SIZE * count[0])[:])
    return [raw[i : i + DIGEST_SIZE] for i in range(0, len(raw), DIGEST_SIZE)]


def merkle_verify(leaf: object, index: int, tree_size: int, proof: Iterable[Any], root: object) -> bool:
    """Does ``proof`` show that ``leaf`` is entry ``index`` of the ``tree_size``-leaf tree with
    this ``root``? (RFC 9162 §2.1.3.2). Nodes and the root must be 32 bytes each."""
    leaf_buf, leaf_len = _in(leaf, "leaf")
    index = _check_int(index, "index")
    tree_size = _check_int(tree_size, "tree_size")
    if isinstance(proof, str | bytes | bytearray | memoryview) or not isinstance(proof, Iterable):
        raise TypeError(f"proof must be a list of 32-byte hashes, not {type(proof).__name__}")
    nodes = list(proof)
    for i, node in enumerate(nodes):
        _, size = _in(node, f"proof[{i}]")
        if size != DIGEST_SIZE:
            raise ValueError(f"proof[{i}] must be {DIGEST_SIZE} bytes, got {size}")
    root_buf, root_len = _in(root, "root")
    if root_len != DIGEST_SIZE:
        raise ValueError(f"root must be {DIGEST_SIZE} bytes, got {root_len}")
    if index >= tree_size or tree_size >= 2**64:
        return False
    path = b"".join(nodes)
    path_buf, path_len = _in(path, "proof")
    ok = ffi.new("int32_t *")
    check(
        lib.nexpo_merkle_verify(
            leaf_buf, leaf_len, index, tree_size, path_buf, path_len, root_buf, root_len, ok
        )
    )
    return bool(ok[0])
