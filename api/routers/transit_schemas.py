"""Request and response bodies of /v1/transit, named and shaped like Vault's transit API (the
answers are the ``data`` of Vault's, unwrapped, as everywhere else under /v1)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 10_000
B64 = "base64"

_Context = Field(default=None, description=f"{B64} context bound to the token (needed again to decrypt)")
_KeyVersion = Field(default=None, ge=0, le=10**9, description="version to use (default: the latest)")
_Reference = Field(default=None, max_length=256, description="echoed in this item's result")
_PartialFailure = Field(
    default=None,
    ge=200,
    le=299,
    description="status when some (not all) batch items fail; default 400 with a problem body",
)


class Strict(BaseModel):
    """A field this API does not know (Vault's ``derived``, ``convergent_encryption``,
    ``associated_data``, ``nonce``, …) is a 422, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class EncryptItem(Strict):
    plaintext: str | None = Field(default=None, description=f"{B64} data to encrypt")
    context: str | None = _Context
    key_version: int | None = _KeyVersion
    reference: str | None = _Reference


class EncryptRequest(EncryptItem):
    batch_input: list[EncryptItem] | None = Field(default=None, max_length=MAX_BATCH)
    partial_failure_response_code: int | None = _PartialFailure


class DecryptItem(Strict):
    ciphertext: str | None = Field(default=None, description="a token from encrypt, rewrap or datakey")
    context: str | None = Field(default=None, description=f"{B64} context given at encryption")
    reference: str | None = _Reference


class DecryptRequest(DecryptItem):
    batch_input: list[DecryptItem] | None = Field(default=None, max_length=MAX_BATCH)
    partial_failure_response_code: int | None = _PartialFailure


class RewrapItem(DecryptItem):
    key_version: int | None = _KeyVersion


class RewrapRequest(RewrapItem):
    batch_input: list[RewrapItem] | None = Field(default=None, max_length=MAX_BATCH)
    partial_failure_response_code: int | None = _PartialFailure


class HmacItem(Strict):
    input: str | None = Field(default=None, description=f"{B64} data")
    key_version: int | None = _KeyVersion
    reference: str | None = _Reference


class HmacRequest(HmacItem):
    algorithm: str | None = Field(default=None, description="sha2-256 (default) or sha2-512")
    batch_input: list[HmacItem] | None = Field(default=None, max_length=MAX_BATCH)
    partial_failure_response_code: int | None = _PartialFailure


class SignRequest(HmacItem):
    batch_input: list[HmacItem] | None = Field(default=None, max_length=MAX_BATCH)
    partial_failure_response_code: int | None = _PartialFailure


class VerifyItem(Strict):
    input: str | None = Field(default=None, description=f"{B64} data")
    signature: str | None = Field(default=None, description="a signature from sign")
    hmac: str | None = Field(default=None, description="an HMAC from hmac")
    reference: str | None = _Reference


class VerifyRequest(VerifyItem):
    algorithm: str | None = Field(default=None, description="HMAC algorithm: sha2-256 (default) or sha2-512")
    batch_input: list[VerifyItem] | None = Field(default=None, max_length=MAX_BATCH)
    partial_failure_response_code: int | None = _PartialFailure


class DatakeyRequest(Strict):
    bits: Literal[128, 256, 512] = Field(default=256, description="data key length")
    context: str | None = _Context


class TransitResult(BaseModel):
    """One answer; a batch answers ``batch_results`` with one per item (``error`` for the failed)."""

    ciphertext: str | None = Field(default=None, description="token 'nexpo:v<N>:<base64>'")
    plaintext: str | None = Field(default=None, description=f"{B64} data (or data key)")
    hmac: str | None = Field(default=None, description="'nexpo:v<N>:<base64>'")
    signature: str | None = Field(default=None, description="'nexpo:v<N>:<base64>'")
    valid: bool | None = None
    key_version: int | None = None
    reference: str | None = None
    error: str | None = Field(default=None, description="why this batch item failed")
    batch_results: list[dict[str, Any]] | None = None


class CreateKeyRequest(Strict):
    type: Literal["aes256-gcm96", "chacha20-poly1305", "ed25519"] = Field(
        default="aes256-gcm96", description="key type (cannot change later)"
    )
    exportable: bool = Field(default=False, description="must be false: key export is disabled")


class KeyConfigRequest(Strict):
    min_decryption_version: int | None = Field(default=None, ge=1, le=10**9)
    min_encryption_version: int | None = Field(default=None, ge=0, le=10**9)
    deletion_allowed: bool | None = None
    exportable: bool | None = Field(default=None, description="must be false: key export is disabled")


class KeyInfo(BaseModel):
    name: str
    type: str
    keys: dict[str, Any] = Field(
        description="version → creation time (Unix seconds), or for ed25519 "
        "{name, public_key (base64), creation_time}"
    )
    latest_version: int
    min_available_version: int
    min_decryption_version: int
    min_encryption_version: int
    deletion_allowed: bool
    exportable: bool
    derived: bool
    supports_encryption: bool
    supports_decryption: bool
    supports_derivation: bool
    supports_signing: bool


class KeyList(BaseModel):
    keys: list[str]
