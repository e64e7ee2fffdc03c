"""``/v1/transit/{key}/encrypt|decrypt``: encryption with server-held, versioned keys.

The domain (api/transit/) raises ``TransitError``s; ``_PROBLEMS`` maps them to problems here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from ..codec import b64decode, b64encode
from ..deps import GatewayDep
from ..problems import V1_ERRORS, ProblemError, problem_responses
from ..transit import InvalidToken, KeyNotFound, Keyring, KeysUnavailable, TransitError

router = APIRouter(
    prefix="/v1/transit", tags=["transit"], responses={**V1_ERRORS, **problem_responses(400, 404, 503)}
)

KeyName = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="transit key name")

_PROBLEMS: tuple[tuple[type[TransitError], int], ...] = (
    (KeyNotFound, 404),
    (InvalidToken, 400),
    (KeysUnavailable, 503),
)


@contextmanager
def _as_problems() -> Iterator[None]:
    """Answer the domain's errors as problems (any other ``TransitError`` is a bug: a 500)."""
    try:
        yield
    except TransitError as exc:
        for kind, status in _PROBLEMS:
            if isinstance(exc, kind):
                raise ProblemError(status, str(exc)) from None
        raise


async def get_keyring(gateway: GatewayDep) -> Keyring:
    """The current keyring (a dependency: 503 comes before the body is looked at)."""
    with _as_problems():
        if gateway.keyring is None:
            raise KeysUnavailable(
                f"transit keys are unavailable: {gateway.keyring_error or 'not configured'}"
            )
        return gateway.keyring.current()


KeyringDep = Annotated[Keyring, Depends(get_keyring)]


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
    with _as_problems():
        token, version = await gateway.run(keyring.encrypt, key, plaintext, context, cost=len(plaintext))
    return {"ciphertext": token, "key_version": version}


@router.post(
    "/{key}/decrypt", response_model=DecryptResponse, summary="Decrypt a token (any live key version)"
)
async def decrypt(
    body: DecryptRequest, keyring: KeyringDep, gateway: GatewayDep, key: str = KeyName
) -> dict[str, Any]:
    context = b64decode(body.context, "context") if body.context is not None else b""
    with _as_problems():
        plaintext, version = await gateway.run(
            keyring.decrypt, key, body.ciphertext, context, cost=len(body.ciphertext)
        )
    return {"plaintext": b64encode(plaintext), "key_version": version}
