"""The transit domain: named keys of a type (api/transit/keytypes.py), versioned, and the
operations on them — encrypt, decrypt, rewrap, data keys, HMAC, sign and verify.

Everything a key hands out is a token ``nexpo:v<N>:<base64>`` naming the version that made it:
- ciphertext: nonce (12) ‖ ciphertext ‖ tag (16); the associated data binds the key name and
  version and the caller's optional context, so a token cannot be replayed under another key,
  version or context;
- HMAC: the MAC under the version's own HMAC key; signature: the 64-byte Ed25519 signature.

A version below ``min_decryption_version`` no longer decrypts or verifies; new tokens use the
latest version unless the caller asks for another one at or above ``min_encryption_version``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from .errors import InvalidRequest, InvalidToken, KeyNotFound
from .keytypes import (
    DEFAULT_HMAC_ALGORITHM,
    DEFAULT_KEY_TYPE,
    Cipher,
    KeyType,
    hmac_of,
    key_type,
    new_cipher,
    new_hmac_key,
    new_material,
    open_sealed,
    public_key,
    seal,
    sign,
    verify,
)

# Matched with fullmatch: ``$`` would also accept a trailing newline.
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
TOKEN = re.compile(r"nexpo:v([1-9][0-9]{0,8}):([A-Za-z0-9+/=_-]+)")
DATAKEY_BITS = (128, 256, 512)


@dataclass(frozen=True)
class KeyVersion:
    material: bytes = field(repr=False)  # the AEAD key or the Ed25519 seed
    hmac_key: bytes = field(repr=False)
    created: int = 0  # Unix seconds; 0 for versions written before creation times were kept

    @classmethod
    def new(cls) -> KeyVersion:
        return cls(new_material(), new_hmac_key(), int(time.time()))


@dataclass(frozen=True)
class TransitKey:
    name: str
    versions: dict[int, KeyVersion]
    min_decryption_version: int = 1
    min_encryption_version: int = 0  # 0: no floor, new tokens use the latest version
    deletion_allowed: bool = False
    type: str = DEFAULT_KEY_TYPE

    @cached_property  # a key never changes (changes make a new one): no max() per token
    def latest(self) -> int:
        return max(self.versions)

    @cached_property
    def kind(self) -> KeyType:
        return key_type(self.type)

    @classmethod
    def generate(cls, name: str, type: str = DEFAULT_KEY_TYPE) -> TransitKey:
        """A new key with one version of fresh random material."""
        if not KEY_NAME.fullmatch(name):
            raise InvalidRequest(f"transit key name {name!r} must match {KEY_NAME.pattern}")
        key_type(type)  # an unknown type is refused before anything is written
        return cls(name, {1: KeyVersion.new()}, type=type)

    def rotated(self) -> TransitKey:
        """This key with version ``latest + 1`` added for new tokens; older versions still decrypt."""
        return replace(self, versions={**self.versions, self.latest + 1: KeyVersion.new()})

    def configured(
        self,
        min_decryption_version: int | None = None,
        min_encryption_version: int | None = None,
        deletion_allowed: bool | None = None,
    ) -> TransitKey:
        """This key with the given settings changed (``None``: unchanged), checked as Vault does."""
        min_dec = self.min_decryption_version if min_decryption_version is None else min_decryption_version
        min_enc = self.min_encryption_version if min_encryption_version is None else min_encryption_version
        if not 1 <= min_dec <= self.latest:
            raise InvalidRequest(f"min_decryption_version must be between 1 and {self.latest}, got {min_dec}")
        if not 0 <= min_enc <= self.latest:
            raise InvalidRequest(f"min_encryption_version must be between 0 and {self.latest}, got {min_enc}")
        if min_enc and min_enc < min_dec:
            raise InvalidRequest(
                f"min_encryption_version ({min_enc}) cannot be below min_decryption_version ({min_dec})"
            )
        allowed = self.deletion_allowed if deletion_allowed is None else deletion_allowed
        return replace(
            self, min_decryption_version=min_dec, min_encryption_version=min_enc, deletion_allowed=allowed
        )

    def for_new_tokens(self, requested: int | None) -> tuple[int, KeyVersion]:
        """The version that makes a new token: ``requested``, or the latest."""
        version = requested or self.latest
        # a version below min_decryption_version would make tokens that never open
        floor = max(self.min_encryption_version, self.min_decryption_version)
        if not floor <= version <= self.latest:
            raise InvalidRequest(
                f"key_version {version} of {self.name!r} cannot make new tokens: use {floor}..{self.latest}"
            )
        return version, self.versions[version]

    def for_old_tokens(self, version: int) -> KeyVersion:
        """The version that made a token, if it may still open or verify it."""
        found = self.versions.get(version)
        if found is None:
            raise InvalidToken(f"key {self.name!r} has no version {version}")
        if version < self.min_decryption_version:
            raise InvalidToken(f"version {version} of {self.name!r} is below min_decryption_version")
        return found

    def describe(self) -> dict[str, Any]:
        """What ``GET keys/{name}`` shows, shaped like Vault's answer; never secret material."""
        kind = self.kind
        versions: dict[str, Any] = {}
        for number, entry in sorted(self.versions.items()):
            public = public_key(kind, entry.material)
            if public is None:
                versions[str(number)] = entry.created
            else:
                versions[str(number)] = {
                    "name": kind.name,
                    "public_key": base64.b64encode(public).decode(),
                    "creation_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.created)),
                }
        return {
            "name": self.name,
            "type": self.type,
            "keys": versions,
            "latest_version": self.latest,
            "min_available_version": 0,
            "min_decryption_version": self.min_decryption_version,
            "min_encryption_version": self.min_encryption_version,
            "deletion_allowed": self.deletion_allowed,
            "exportable": False,
            "derived": False,
            "supports_encryption": kind.encrypts,
            "supports_decryption": kind.encrypts,
            "supports_derivation": False,
            "supports_signing": kind.signs,
        }


def wipe(secret: bytearray) -> None:
    """Overwrite ``secret`` with zeros (only mutable buffers can be: key material held as ``bytes``
    stays in memory until its pages are reused)."""
    secret[:] = bytes(len(secret))


def _aad(name: str, version: int, context: bytes) -> bytes:
    return b"nexpo-transit\x00" + name.encode() + b"\x00v" + str(version).encode() + b"\x00" + context


def format_token(version: int, body: bytes) -> str:
    return f"nexpo:v{version}:{base64.b64encode(body).decode()}"


def parse_token(token: str, what: str = "token") -> tuple[int, bytes]:
    """(version, body) of ``nexpo:v<N>:<base64>``; ``InvalidToken`` saying what is wrong."""
    match = TOKEN.fullmatch(token)
    if match is None:
        raise InvalidToken(f"malformed {what}: expected 'nexpo:v<N>:<base64>'")
    try:
        body = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidToken(f"malformed {what}: the payload is not valid base64") from None
    return int(match.group(1)), body


class Keyring:
    """The operations on a set of keys (one snapshot of the keys file: it never changes)."""

    def __init__(self, keys: dict[str, TransitKey]) -> None:
        self.keys = keys
        # Made once per snapshot: AEAD key objects (key schedule done once, their native copy of
        # the key wiped when a newer snapshot replaces this one) and Ed25519 public keys.
        self._ciphers: dict[tuple[str, int], Cipher] = {}
        self._public_keys: dict[tuple[str, int], bytes] = {}

    def key(self, name: str) -> TransitKey:
        found = self.keys.get(name)
        if found is None:
            raise KeyNotFound(f"no transit key named {name!r}")
        return found

    def _cipher(self, key: TransitKey, version: int, entry: KeyVersion, operation: str) -> Cipher:
        found = self._ciphers.get((key.name, version))
        if found is None:
            found = self._ciphers[(key.name, version)] = new_cipher(key.kind, entry.material, operation)
        return found

    def encrypt(
        self, name: str, plaintext: bytes, context: bytes = b"", key_version: int | None = None
    ) -> tuple[str, int]:
        """A token sealing ``plaintext`` (with the latest version by default), and that version."""
        key = self.key(name)
        version, entry = key.for_new_tokens(key_version)
        cipher = self._cipher(key, version, entry, "encrypt")
        return format_token(version, seal(cipher, plaintext, _aad(name, version, context))), version

    def decrypt(self, name: str, token: str, context: bytes = b"") -> tuple[bytes, int]:
        """The plaintext ``token`` seals and the key version that sealed it."""
        key = self.key(name)
        version, body = parse_token(token)
        cipher = self._cipher(key, version, key.for_old_tokens(version), "decrypt")
        return open_sealed(cipher, body, _aad(name, version, context)), version

    def rewrap(
        self, name: str, token: str, context: bytes = b"", key_version: int | None = None
    ) -> tuple[str, int]:
        """``token`` re-sealed under the latest (or the given) version; the plaintext stays here."""
        plaintext, _ = self.decrypt(name, token, context)
        return self.encrypt(name, plaintext, context, key_version)

    def datakey(self, name: str, bits: int = 256, context: bytes = b"") -> tuple[bytearray, str, int]:
        """A fresh random data key of ``bits``, and the token sealing it (envelope encryption:
        keep the token beside the data, ``decrypt`` it when the data key is needed again). The
        key is a bytearray so the caller can wipe it once it has been sent (``wipe``)."""
        if bits not in DATAKEY_BITS:
            raise InvalidRequest(f"bits must be one of {', '.join(map(str, DATAKEY_BITS))}, got {bits}")
        data_key = bytearray(secrets.token_bytes(bits // 8))
        try:
            token, version = self.encrypt(name, data_key, context)  # type: ignore[arg-type]
        except BaseException:
            wipe(data_key)
            raise
        return data_key, token, version

    def hmac(
        self, name: str, data: bytes, algorithm: str = DEFAULT_HMAC_ALGORITHM, key_version: int | None = None
    ) -> tuple[str, int]:
        """``nexpo:v<N>:<base64 MAC>`` under the HMAC key of version N (any key type)."""
        key = self.key(name)
        version, entry = key.for_new_tokens(key_version)
        return format_token(version, hmac_of(entry.hmac_key, data, algorithm)), version

    def verify_hmac(
        self, name: str, data: bytes, token: str, algorithm: str = DEFAULT_HMAC_ALGORITHM
    ) -> bool:
        key = self.key(name)
        version, mac = parse_token(token, "hmac")
        expected = hmac_of(key.for_old_tokens(version).hmac_key, data, algorithm)
        return hmac.compare_digest(expected, mac)

    def sign(self, name: str, data: bytes, key_version: int | None = None) -> tuple[str, int]:
        """``nexpo:v<N>:<base64 signature>``: Ed25519 over ``data`` as given (no prehash)."""
        key = self.key(name)
        version, entry = key.for_new_tokens(key_version)
        return format_token(version, sign(key.kind, entry.material, data)), version

    def verify(self, name: str, data: bytes, token: str) -> bool:
        key = self.key(name)
        kind = key.kind
        version, signature = parse_token(token, "signature")
        public = self._public_keys.get((name, version))  # cached only once the version passed
        if public is None:  # for_old_tokens (the snapshot never changes)
            public = public_key(kind, key.for_old_tokens(version).material) or b""
            self._public_keys[(name, version)] = public
        return verify(kind, public, data, signature)
