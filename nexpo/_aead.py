"""AES-256-GCM and the AEAD key objects (``nexpo.crypto.aes256gcm_*``, ``AesGcm``,
``ChaCha20Poly1305``), in Nim.

Called through ``nexpo._aeadpath`` (nexpo/_aeadpath.c) rather than cffi: at 64 bytes the cost
of a call is its path (argument conversion, the GIL release, a Python frame), so the key
objects' methods and the one-shot calls are C functions that read bytes in place, keep the GIL
below ``GIL_MINSIZE`` and release it above.

Both key objects are shaped like ``cryptography``'s ``AESGCM``/``ChaCha20Poly1305``:
``encrypt(nonce, data, aad=b"")`` returns ciphertext ‖ 16-byte tag and ``decrypt(nonce, data,
aad=b"")`` the plaintext; ``aad`` may be ``None``. Nonces are 12 bytes; reusing a nonce under one
key breaks both confidentiality and authenticity. Tampering raises ``nexpo.AuthenticationError``
and releases no plaintext; wrong sizes raise ValueError, wrong types TypeError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

from nexpo._native import load_sibling_module

if TYPE_CHECKING:

    class AesGcm:
        """AES-256-GCM under a 32-byte key, expanded once (round keys and GHASH powers live in
        native memory owned by the object, wiped when it is freed)."""

        def __init__(self, key: object) -> None: ...
        def encrypt(self, nonce: object, data: object, aad: object = b"") -> bytes: ...
        def decrypt(self, nonce: object, data: object, aad: object = b"") -> bytes: ...

    class ChaCha20Poly1305:
        """RFC 8439 ChaCha20-Poly1305 under a 32-byte key (held natively, wiped when freed)."""

        def __init__(self, key: object) -> None: ...
        def encrypt(self, nonce: object, data: object, aad: object = b"") -> bytes: ...
        def decrypt(self, nonce: object, data: object, aad: object = b"") -> bytes: ...


class _AeadPath(Protocol):
    """``nexpo._aeadpath``: errors are raised natively."""

    GIL_MINSIZE: int
    AES256GCM_MAX: int
    AesGcm: type[AesGcm]
    ChaCha20Poly1305: type[ChaCha20Poly1305]

    def aes256gcm_impl(self) -> str: ...
    def aes256gcm_variants(self) -> list[str]: ...
    def aes256gcm_encrypt(self, key: object, nonce: object, data: object, aad: object = b"", /) -> bytes: ...
    def aes256gcm_decrypt(self, key: object, nonce: object, data: object, aad: object = b"", /) -> bytes: ...
    def chacha20poly1305_encrypt(
        self, key: object, nonce: object, plaintext: object, aad: object = b"", /
    ) -> bytes: ...
    def chacha20poly1305_decrypt(
        self, key: object, nonce: object, data: object, aad: object = b"", /
    ) -> bytes: ...


_ap: Final[_AeadPath] = load_sibling_module("nexpo._aeadpath")
GIL_MINSIZE: Final = _ap.GIL_MINSIZE
AES256GCM_MAX: Final = _ap.AES256GCM_MAX  # bytes of plaintext per message (2^36 - 32)

KEY_SIZE: Final = 32
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16

if not TYPE_CHECKING:
    AesGcm = _ap.AesGcm
    ChaCha20Poly1305 = _ap.ChaCha20Poly1305

aes256gcm_impl: Final = _ap.aes256gcm_impl  # 'portable' | 'aes-ni' | 'vaes', per NEXPO_ISA
aes256gcm_variants: Final = _ap.aes256gcm_variants  # what this CPU can run
aes256gcm_encrypt: Final = _ap.aes256gcm_encrypt
aes256gcm_decrypt: Final = _ap.aes256gcm_decrypt
# RFC 8439: encrypt → ciphertext ‖ 16-byte tag (never reuse a key and nonce pair); decrypt raises
# nexpo.AuthenticationError and releases no plaintext when anything was altered.
chacha20poly1305_encrypt: Final = _ap.chacha20poly1305_encrypt
chacha20poly1305_decrypt: Final = _ap.chacha20poly1305_decrypt
