"""Ed25519 signatures (RFC 8032), in Nim; re-exported by ``nexpo.crypto``.

Keys are 32-byte seeds (RFC 8032's private key, what ``cryptography``'s
``Ed25519PrivateKey.private_bytes_raw()`` returns) and 32-byte public keys; signatures are 64
bytes. Verification is cofactorless and accepts exactly what ``cryptography`` (OpenSSL)
accepts: S must be below the group order, a public key that is not a curve point verifies
nothing, a non-canonical R never verifies.

Argument errors follow ``cryptography`` where it has one: a seed or public key of the wrong
length is a ValueError naming the argument; a signature of the wrong length is simply not a
valid signature (False). A ``str`` anywhere is a TypeError. The native calls run without the
GIL; signing wipes the seed's hash and the nonce from native memory (the caller's seed object
is the caller's to clear).

``Ed25519SigningKey(seed)`` is the key object (like ``cryptography``'s ``Ed25519PrivateKey``):
it derives the secret scalar, the nonce key and the public key once, so each ``sign`` costs one
base-point multiplication instead of the two of ``ed25519_sign``. The derived key lives in
memory the object owns and is wiped when the object is freed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt

from nexpo import _native
from nexpo._native import check, ffi, lib

__all__ = [
    "Ed25519SigningKey",
    "ed25519_public_key",
    "ed25519_sign",
    "ed25519_verify",
    "ed25519_verify_many",
]

SEED_SIZE: Final = 32
PUBLIC_KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64
_SIGNING_KEY_SIZE: Final = 96  # a ‖ nonce prefix ‖ public key

_in = _native.read_buffer
_new_uncleared = ffi.new_allocator(should_clear_after_alloc=False)  # C writes every byte
_NEVER_VALID: Final = b"\xff" * SIGNATURE_SIZE  # S = 2^256 - 1 >= L: rejected before any math


def _sized(obj: object, size: int, name: str) -> tuple[Any, int]:
    buf, n = _in(obj, name)
    if n != size:
        raise ValueError(f"{name} must be {size} bytes, got {n}")
    return buf, n


def ed25519_public_key(seed: object) -> bytes:
    """The 32-byte public key of a 32-byte seed."""
    seed_buf, seed_len = _sized(seed, SEED_SIZE, "seed")
    out = ffi.new("uint8_t[32]")
    check(lib.nexpo_ed25519_public_key(seed_buf, seed_len, out, 32))
    return cast(bytes, ffi.buffer(out)[:])


def ed25519_sign(seed: object, message: object) -> bytes:
    """The 64-byte signature R ‖ S of ``message`` by the key with this 32-byte seed.
    Deterministic: the same seed and message always give the same signature."""
    if type(seed) is bytes and type(message) is bytes and len(seed) == SEED_SIZE:
        seed_buf, seed_len, msg_buf, msg_len = seed, SEED_SIZE, message, len(message)  # common case
    else:
        seed_buf, seed_len = _sized(seed, SEED_SIZE, "seed")
        msg_buf, msg_len = _in(message, "message")
    out = _new_uncleared("uint8_t[64]")
    status = lib.nexpo_ed25519_sign(seed_buf, seed_len, msg_buf, msg_len, out, 64)
    if status:
        check(status)
    return cast(bytes, ffi.buffer(out)[:])


class Ed25519SigningKey:
    """An Ed25519 signing key made once from its 32-byte seed. ``sign(message)`` gives the same
    signatures as ``ed25519_sign(seed, message)``, faster; ``public_key`` is the 32-byte key."""

    __slots__ = ("__weakref__", "_key", "_public_key")

    def __init__(self, seed: object) -> None:
        seed_buf, seed_len = _sized(seed, SEED_SIZE, "seed")
        key = ffi.new(f"uint8_t[{_SIGNING_KEY_SIZE}]")
        check(lib.nexpo_ed25519_signing_key(seed_buf, seed_len, key, _SIGNING_KEY_SIZE))
        self._key = key
        self._public_key = cast(bytes, ffi.buffer(key)[64:])

    @property
    def public_key(self) -> bytes:
        """The 32-byte public key."""
        return self._public_key

    def sign(self, message: object) -> bytes:
        """The 64-byte signature R ‖ S of ``message``."""
        if type(message) is bytes:
            msg_buf, msg_len = message, len(message)
        else:
            msg_buf, msg_len = _in(message, "message")
        out = _new_uncleared("uint8_t[64]")
        status = lib.nexpo_ed25519_sign_with_key(self._key, _SIGNING_KEY_SIZE, msg_buf, msg_len, out, 64)
        if status:
            check(status)
        return cast(bytes, ffi.buffer(out)[:])

    def __del__(self) -> None:
        key = getattr(self, "_key", None)
        if key is not None:
            ffi.memmove(key, bytes(_SIGNING_KEY_SIZE), _SIGNING_KEY_SIZE)  # wipe the secret half too

    def __repr__(self) -> str:
        return f"<Ed25519SigningKey public_key={self.public_key.hex()}>"

    def __reduce__(self) -> Any:
        raise TypeError("an Ed25519SigningKey cannot be pickled or copied: keep its seed instead")


def ed25519_verify(public_key: object, message: object, signature: object) -> bool:
    """Is ``signature`` a valid Ed25519 signature of ``message`` under ``public_key``?

    False for any invalid signature, including one of the wrong length; ValueError for a
    public key that is not 32 bytes."""
    if (
        type(public_key) is bytes
        and type(message) is bytes
        and type(signature) is bytes
        and (len(public_key) == PUBLIC_KEY_SIZE)
    ):
        key_buf, key_len, msg_buf, msg_len = public_key, PUBLIC_KEY_SIZE, message, len(message)
        sig_buf, sig_len = signature, len(signature)  # the common case: no views to make
    else:
        key_buf, key_len = _sized(public_key, PUBLIC_KEY_SIZE, "public_key")
        msg_buf, msg_len = _in(message, "message")
        sig_buf, sig_len = _in(signature, "signature")
    ok = ffi.new("int32_t *")
    check(lib.nexpo_ed25519_verify(key_buf, key_len, msg_buf, msg_len, sig_buf, sig_len, ok))
    return bool(ok[0])


def _fixed_rows(items: tuple[Any, ...], size: int, name: str, *, lenient: bool) -> bytes:
    """Items of ``size`` bytes joined into one buffer. A wrong size raises ValueError, or
    (``lenient``, for signatures) stands in as a signature that can never verify."""
    if set(map(type, items)) <= {bytes} and set(map(len, items)) <= {size}:
        return b"".join(items)  # the common case: immutable bytes of the right size
    rows = []
    for i, item in enumerate(items):
        with _view(item, f"{name}[{i}]") as view:
            row = view.tobytes()  # a private copy: the item cannot change under the call
        if len(row) != size:
            if not lenient:
                raise ValueError(f"{name}[{i}] must be {size} bytes, got {len(row)}")
            row = _NEVER_VALID
        rows.append(row)
    return b"".join(rows)


def _view(item: object, name: str) -> memoryview:
    try:
        return memoryview(item)  # type: ignore[arg-type]
    except TypeError:
        _in(item, name)  # raises the TypeError that names the item (with the hint for str)
        raise


def _items(obj: object, size: int, name: str) -> tuple[Any, ...]:
    if isinstance(obj, str | bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be a list of bytes-like objects, not a single {type(obj).__name__}")
    if isinstance(obj, np.ndarray):
        array = np.asarray(obj)  # a private plain view (a subclass's shape may lie)
        if array.ndim != 2 or array.dtype != np.uint8 or array.shape[1] != size:
            raise ValueError(
                f"{name}: an array must be 2-D uint8 with {size} bytes per row, "
                f"got {array.ndim}-D {array.dtype} of shape {array.shape}"
            )
        return tuple(row.tobytes() for row in array)
    try:
        return tuple(cast(Iterable[Any], obj))
    except TypeError:
        raise TypeError(f"{name} must be a list of bytes-like objects, not {type(obj).__name__}") from None


def ed25519_verify_many(
    public_keys: Iterable[Any] | npt.NDArray[np.uint8],
    messages: Iterable[Any] | npt.NDArray[np.uint8],
    signatures: Iterable[Any] | npt.NDArray[np.uint8],
) -> list[bool]:
    """``[ed25519_verify(k, m, s) for k, m, s in zip(...)]`` in one native call, spread over
    the scheduler's worker threads. Each item is judged on its own: a bad signature makes its
    own entry False and nothing else. The three sequences must have the same length; a public
    key of the wrong size is a ValueError naming it, a signature of the wrong size is False.
    """
    from nexpo.crypto import _Batch  # here: nexpo.crypto imports this module

    keys = _items(public_keys, PUBLIC_KEY_SIZE, "public_keys")
    sigs = _items(signatures, SIGNATURE_SIZE, "signatures")
    batch = _Batch(messages, "messages")
    n = batch.n
    if len(keys) != n or len(sigs) != n:
        raise ValueError(
            f"public_keys, messages and signatures must have the same length, "
            f"got {len(keys)}, {n} and {len(sigs)}"
        )
    key_data = _fixed_rows(keys, PUBLIC_KEY_SIZE, "public_keys", lenient=False)
    sig_data = _fixed_rows(sigs, SIGNATURE_SIZE, "signatures", lenient=True)
    out = np.zeros(n, dtype=np.uint8)
    out_buf, out_len = _native.write_buffer(out, "out")
    check(
        lib.nexpo_ed25519_verify_many(
            key_data,
            len(key_data),
            batch.data,
            batch.length,
            batch.lengths,
            n,
            sig_data,
            len(sig_data),
            out_buf,
            out_len,
        )
    )
    return cast(list[bool], out.astype(bool).tolist())
