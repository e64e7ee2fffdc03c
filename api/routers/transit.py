"""``/v1/transit/{key}/encrypt|decrypt``: encryption with server-held, versioned keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from ..codec import INLINE_BYTES, b64decode, b64encode
from ..deps import GatewayDep, KeyringDep
from ..problems import V1_ERRORS, problem_responses

router = APIRouter(
    prefix="/v1/transit", tags=["transit"], responses={**V1_ERRORS, **problem_responses(400, 404, 503)}
)

KeyName = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="transit key name")


class EncryptRequest(BaseModel):
    plaintext: str = Field(description="base64 data to encrypt")
    context: str | None = Field(
        default=None, description="base64 context bound to the token (needed again to decrypt)"
    )


class EncryptResponse(BaseModel):
    ciphertext: str = Field(description="token 'nexpo:v<N>:<base64>'", examples=["nexpo:v1:3q2+7w…"])
    key_version: int


class DecryptRequest(BaseModel):
    ciphertext: str = Field(description="a token from encrypt")
    context: str | None = Field(default=None, description="base64 context given at encryption")


class DecryptResponse(BaseModel):
    plaintext: str = Field(description="base64 data")
    key_version: int


@router.post(
    "/{key}/encrypt", response_model=EncryptResponse, summary="Encrypt with the key's latest version"
)
async def encrypt(
    body: EncryptRequest, keyring: KeyringDep, gateway: GatewayDep, key: str = KeyName
) -> dict[str, Any]:
    plaintext = b64decode(body.plaintext, "plaintext")
    context = b64decode(body.context, "context") if body.context is not None else b""
    if len(plaintext) <= INLINE_BYTES:
        token, version = keyring.encrypt(key, plaintext, context)
    else:
        token, version = await gateway.run_cpu(keyring.encrypt, key, plaintext, context)
    return {"ciphertext": token, "key_version": version}


@router.post(
    "/{key}/decrypt", response_model=DecryptResponse, summary="Decrypt a token (any live key version)"
)
async def decrypt(
    body: DecryptRequest, keyring: KeyringDep, gateway: GatewayDep, key: str = KeyName
) -> dict[str, Any]:
    context = b64decode(body.context, "context") if body.context is not None else b""
    if len(body.ciphertext) <= INLINE_BYTES:
        plaintext, version = keyring.decrypt(key, body.ciphertext, context)
    else:
        plaintext, version = await gateway.run_cpu(keyring.decrypt, key, body.ciphertext, context)
    return {"plaintext": b64encode(plaintext), "key_version": version}
