"""The key types a transit key can have, and the primitives each one offers.

- ``aes256-gcm96`` (the default for new keys): AES-256-GCM, 96-bit random nonces;
- ``chacha20-poly1305``: ChaCha20-Poly1305 (RFC 8439), the only type before key types existed;
- ``ed25519``: signatures (RFC 8032); the version's material is the 32-byte seed.

Every version of every type also has an HMAC key of its own (random, as Vault does), so ``hmac``
never uses the encryption or signing key itself. Versions written before HMAC keys existed derive
theirs one-way from the material (``derive_hmac_key``), so they stay stable without a rewrite.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from .errors import InvalidRequest, InvalidToken

AES256_GCM96 = "aes256-gcm96"
CHACHA20_POLY1305 = "chacha20-poly1305"
ED25519 = "ed25519"
DEFAULT_KEY_TYPE = AES256_GCM96

KEY_BYTES = 32  # an AES-256 key, a ChaCha20 key and an Ed25519 seed alike
HMAC_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
SIGNATURE_BYTES = 64


class Cipher(Protocol):
    """An AEAD key object of nexpo.crypto (``AesGcm``, ``ChaCha20Poly1305``): its key schedule is
    done once, and its native copy of the key is wiped when the object is freed."""

    def encrypt(self, nonce: bytes, data: bytes, aad: bytes = ..., /) -> bytes: ...
    def decrypt(self, nonce: bytes, data: bytes, aad: bytes = ..., /) -> bytes: ...


def _cipher_class(name: str) -> Callable[[bytes], Cipher]:
    """The nexpo.crypto key object named ``name``, imported when first needed (importing
    nexpo.crypto at module level would load the native core with the router)."""
    from nexpo.crypto import AesGcm, ChaCha20Poly1305

    return cast(Callable[[bytes], Cipher], {"AesGcm": AesGcm, "ChaCha20Poly1305": ChaCha20Poly1305}[name])


@dataclass(frozen=True)
class KeyType:
    name: str
    cipher: str | None = None  # the nexpo.crypto key object; None: the type does not encrypt
    signs: bool = False

    @property
    def encrypts(self) -> bool:
        return self.cipher is not None


KEY_TYPES: dict[str, KeyType] = {
    AES256_GCM96: KeyType(AES256_GCM96, "AesGcm"),
    CHACHA20_POLY1305: KeyType(CHACHA20_POLY1305, "ChaCha20Poly1305"),
    ED25519: KeyType(ED25519, signs=True),
}


def key_type(name: str) -> KeyType:
    found = KEY_TYPES.get(name)
    if found is None:
        raise InvalidRequest(f"unknown key type {name!r}: use one of {', '.join(KEY_TYPES)}")
    return found


def new_material() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def new_hmac_key() -> bytes:
    return secrets.token_bytes(HMAC_KEY_BYTES)


def derive_hmac_key(material: bytes) -> bytes:
    """The HMAC key of a version stored without one: one-way from its material, domain-separated."""
    from nexpo.crypto import hmac_sha256

    return hmac_sha256(material, b"nexpo-transit hmac key")


def new_cipher(kind: KeyType, key: bytes, operation: str = "encrypt") -> Cipher:
    """The key object of ``kind`` for ``key``; ``InvalidRequest`` if the type does not encrypt."""
    if kind.cipher is None:
        raise InvalidRequest(f"keys of type {kind.name} do not {operation}")
    return _cipher_class(kind.cipher)(key)


def seal(cipher: Cipher, plaintext: bytes, aad: bytes) -> bytes:
    """nonce (12 random bytes) ‖ ciphertext ‖ tag (16)."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + cipher.encrypt(nonce, plaintext, aad)


def open_sealed(cipher: Cipher, body: bytes, aad: bytes) -> bytes:
    from nexpo.errors import AuthenticationError

    if len(body) < NONCE_BYTES + TAG_BYTES:
        raise InvalidToken("malformed token: too short")
    try:
        return cipher.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], aad)
    except AuthenticationError:
        raise InvalidToken(
            "decryption failed: the token was altered or belongs to another key or context"
        ) from None


def _hmac_sha256(key: bytes, data: bytes) -> bytes:
    from nexpo.crypto import hmac_sha256

    return hmac_sha256(key, data)


def _hmac_sha512(key: bytes, data: bytes) -> bytes:
    from nexpo.crypto import hmac_sha512

    return hmac_sha512(key, data)


HMAC_ALGORITHMS: dict[str, Callable[[bytes, bytes], bytes]] = {
    "sha2-256": _hmac_sha256,
    "sha2-512": _hmac_sha512,
}
DEFAULT_HMAC_ALGORITHM = "sha2-256"


def hmac_of(hmac_key: bytes, data: bytes, algorithm: str) -> bytes:
    mac = HMAC_ALGORITHMS.get(algorithm)
    if mac is None:
        raise InvalidRequest(
            f"unsupported HMAC algorithm {algorithm!r}: use one of {', '.join(HMAC_ALGORITHMS)}"
        )
    return mac(hmac_key, data)


def public_key(kind: KeyType, seed: bytes) -> bytes | None:
    if not kind.signs:
        return None
    from nexpo.crypto import ed25519_public_key

    return ed25519_public_key(seed)


def sign(kind: KeyType, seed: bytes, message: bytes) -> bytes:
    if not kind.signs:
        raise InvalidRequest(f"keys of type {kind.name} do not sign: create an ed25519 key")
    from nexpo.crypto import ed25519_sign

    return ed25519_sign(seed, message)


def verify(kind: KeyType, public: bytes, message: bytes, signature: bytes) -> bool:
    if not kind.signs:
        raise InvalidRequest(f"keys of type {kind.name} do not verify signatures: create an ed25519 key")
    if len(signature) != SIGNATURE_BYTES:
        raise InvalidToken(f"malformed signature: need {SIGNATURE_BYTES} bytes, got {len(signature)}")
    from nexpo.crypto import ed25519_verify

    return ed25519_verify(public, message, signature)
