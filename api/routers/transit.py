"""``/v1/transit/...``: encryption, data keys, HMACs and signatures with server-held, versioned
keys, shaped like Vault's transit API (paths, field names, ``batch_input``/``batch_results``).

Key management is in transit_keys.py (its routes come first in ``router``); the errors of the
domain (api/transit/) become problems through transit_deps.py. A batch answers one result per
item; an item that fails carries ``error`` and, as in Vault, the answer is then a 400 problem that
still holds every ``batch_results`` (or ``partial_failure_response_code`` if only some failed).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..codec import b64decode, b64encode
from ..deps import GatewayDep
from ..problems import PROBLEM_MEDIA_TYPE, V1_ERRORS, problem_body, problem_responses
from ..state import Gateway
from ..transit import InvalidRequest, InvalidToken, Keyring
from ..transit.keyring import wipe
from . import transit_keys
from .transit_deps import KEY_NAME_PATTERN, KeyName, KeyringDep, as_problems
from .transit_schemas import (
    DatakeyRequest,
    DecryptRequest,
    EncryptRequest,
    HmacRequest,
    RewrapRequest,
    SignRequest,
    TransitResult,
    VerifyRequest,
)

_as_problems = as_problems  # the name tests and older imports use

router = APIRouter(
    prefix="/v1/transit", tags=["transit"], responses={**V1_ERRORS, **problem_responses(400, 404, 503)}
)
router.routes.extend(transit_keys.router.routes)  # /keys/... before the legacy /{key}/... routes

Item = dict[str, Any]
Operation = Callable[[Item], Item]
_SHARED = ("context", "key_version", "algorithm")  # top-level fields that apply to every batch item
_ANSWER: dict[str, Any] = {"response_model": TransitResult, "response_model_exclude_none": True}


def _bytes(item: Item, field: str, required: bool = False) -> bytes:
    value = item.get(field)
    if value is None:
        if required:
            raise InvalidRequest(f"{field} is required")
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{field} is not valid base64 (standard alphabet, with padding)") from None


def _text(item: Item, field: str) -> str:
    value = item.get(field)
    if value is None:
        raise InvalidRequest(f"{field} is required")
    return str(value)


def _each(operation: Operation, items: list[Item]) -> list[Item]:
    results = []
    for item in items:
        try:
            result = operation(item)
        except (InvalidToken, InvalidRequest) as exc:  # this item's fault; the others go on
            result = {"error": str(exc)}
        if item.get("reference") is not None:
            result["reference"] = item["reference"]
        results.append(result)
    return results


def _cost(items: list[Item]) -> int:
    return sum(len(value) for item in items for value in item.values() if isinstance(value, str))


async def _serve(body: BaseModel, name: str, keyring: Keyring, gateway: Gateway, operation: Operation) -> Any:
    """``operation`` on the one item of ``body`` or on each of its ``batch_input``."""
    with as_problems():
        keyring.key(name)  # an unknown key fails the whole request (404), not each item
    top = body.model_dump(exclude_none=True, exclude={"batch_input", "partial_failure_response_code"})
    batch = getattr(body, "batch_input", None)
    if batch is None:
        with as_problems():
            return await gateway.run(operation, top, cost=_cost([top]))
    if not batch:
        with as_problems():
            raise InvalidRequest("batch_input is empty")
    shared = {field: top[field] for field in _SHARED if field in top}
    items = [{**shared, **entry.model_dump(exclude_none=True)} for entry in batch]
    with as_problems():
        results = await gateway.run(_each, operation, items, cost=_cost(items))
    failed = sum("error" in result for result in results)
    partial: int | None = getattr(body, "partial_failure_response_code", None)
    if failed and (failed == len(results) or partial is None):
        problem = json.loads(problem_body(400, f"{failed} of {len(results)} batch items failed"))
        problem["batch_results"] = results
        return JSONResponse(problem, status_code=400, media_type=PROBLEM_MEDIA_TYPE)
    return JSONResponse({"batch_results": results}, status_code=partial if failed and partial else 200)


@router.post("/encrypt/{name}", summary="Encrypt (one plaintext or batch_input)", **_ANSWER)
async def encrypt(body: EncryptRequest, keyring: KeyringDep, gateway: GatewayDep, name: str = KeyName) -> Any:
    def one(item: Item) -> Item:
        token, version = keyring.encrypt(
            name, _bytes(item, "plaintext", True), _bytes(item, "context"), item.get("key_version")
        )
        return {"ciphertext": token, "key_version": version}

    return await _serve(body, name, keyring, gateway, one)


@router.post("/decrypt/{name}", summary="Decrypt tokens of any live key version", **_ANSWER)
async def decrypt(body: DecryptRequest, keyring: KeyringDep, gateway: GatewayDep, name: str = KeyName) -> Any:
    def one(item: Item) -> Item:
        plaintext, version = keyring.decrypt(name, _text(item, "ciphertext"), _bytes(item, "context"))
        return {"plaintext": b64encode(plaintext), "key_version": version}

    return await _serve(body, name, keyring, gateway, one)


@router.post(
    "/rewrap/{name}", summary="Re-encrypt tokens under the latest version (no plaintext out)", **_ANSWER
)
async def rewrap(body: RewrapRequest, keyring: KeyringDep, gateway: GatewayDep, name: str = KeyName) -> Any:
    def one(item: Item) -> Item:
        token, version = keyring.rewrap(
            name, _text(item, "ciphertext"), _bytes(item, "context"), item.get("key_version")
        )
        return {"ciphertext": token, "key_version": version}

    return await _serve(body, name, keyring, gateway, one)


@router.post(
    "/datakey/{kind}/{name}",
    summary="A new data key sealed by the named key ('plaintext' also returns it, 'wrapped' does not)",
    **_ANSWER,
)
async def datakey(
    body: DatakeyRequest,
    keyring: KeyringDep,
    gateway: GatewayDep,
    kind: Literal["plaintext", "wrapped"],
    name: str = KeyName,
) -> Any:
    with as_problems():  # a bad context is a 400 like every other transit input error
        context = _bytes({"context": body.context}, "context") if body.context is not None else b""
        data_key, token, version = keyring.datakey(name, body.bits, context)
    answer: Item = {"ciphertext": token, "key_version": version}
    if kind == "plaintext":
        answer["plaintext"] = base64.b64encode(data_key).decode()
    wipe(data_key)  # the base64 copy in the answer is immutable: it goes with the response
    return answer


async def _hmac(
    body: HmacRequest, keyring: Keyring, gateway: Gateway, name: str, algorithm: str | None
) -> Any:
    def one(item: Item) -> Item:
        chosen = algorithm or item.get("algorithm") or "sha2-256"
        token, version = keyring.hmac(name, _bytes(item, "input", True), chosen, item.get("key_version"))
        return {"hmac": token, "key_version": version}

    return await _serve(body, name, keyring, gateway, one)


@router.post("/hmac/{name}", summary="HMAC of input under the key's HMAC key", **_ANSWER)
async def hmac(body: HmacRequest, keyring: KeyringDep, gateway: GatewayDep, name: str = KeyName) -> Any:
    return await _hmac(body, keyring, gateway, name, None)


@router.post("/hmac/{name}/{algorithm}", summary="HMAC of input with the algorithm in the path", **_ANSWER)
async def hmac_with(
    body: HmacRequest, keyring: KeyringDep, gateway: GatewayDep, algorithm: str, name: str = KeyName
) -> Any:
    return await _hmac(body, keyring, gateway, name, algorithm)


@router.post("/sign/{name}", summary="Ed25519 signature of input (ed25519 keys)", **_ANSWER)
async def sign(body: SignRequest, keyring: KeyringDep, gateway: GatewayDep, name: str = KeyName) -> Any:
    def one(item: Item) -> Item:
        token, version = keyring.sign(name, _bytes(item, "input", True), item.get("key_version"))
        return {"signature": token, "key_version": version}

    return await _serve(body, name, keyring, gateway, one)


async def _verify(
    body: VerifyRequest, keyring: Keyring, gateway: Gateway, name: str, algorithm: str | None
) -> Any:
    def one(item: Item) -> Item:
        data = _bytes(item, "input", True)
        if (item.get("signature") is None) == (item.get("hmac") is None):
            raise InvalidRequest("give exactly one of signature and hmac")
        if item.get("hmac") is not None:
            chosen = algorithm or item.get("algorithm") or "sha2-256"
            return {"valid": keyring.verify_hmac(name, data, str(item["hmac"]), chosen)}
        return {"valid": keyring.verify(name, data, str(item["signature"]))}

    return await _serve(body, name, keyring, gateway, one)


@router.post("/verify/{name}", summary="Check a signature or an HMAC ('valid': true or false)", **_ANSWER)
async def verify(body: VerifyRequest, keyring: KeyringDep, gateway: GatewayDep, name: str = KeyName) -> Any:
    return await _verify(body, keyring, gateway, name, None)


@router.post(
    "/verify/{name}/{algorithm}", summary="Check an HMAC made with the algorithm in the path", **_ANSWER
)
async def verify_with(
    body: VerifyRequest, keyring: KeyringDep, gateway: GatewayDep, algorithm: str, name: str = KeyName
) -> Any:
    return await _verify(body, keyring, gateway, name, algorithm)


# --- the paths from before the Vault layout, kept for existing clients ------------------------


# Not ``KeyName``: FastAPI records the parameter's name on the shared Path() object.
LegacyKeyName = Path(pattern=KEY_NAME_PATTERN, description="transit key name")


class LegacyEncryptRequest(BaseModel):
    plaintext: str = Field(description="base64 data to encrypt")
    context: str | None = Field(default=None, description="base64 context bound to the token")


class LegacyDecryptRequest(BaseModel):
    ciphertext: str = Field(description="a token from encrypt")
    context: str | None = Field(default=None, description="base64 context given at encryption")


@router.post(
    "/{key}/encrypt", summary="Encrypt (older path: use /encrypt/{name})", deprecated=True, **_ANSWER
)
async def legacy_encrypt(
    body: LegacyEncryptRequest, keyring: KeyringDep, gateway: GatewayDep, key: str = LegacyKeyName
) -> dict[str, Any]:
    plaintext = b64decode(body.plaintext, "plaintext")
    context = b64decode(body.context, "context") if body.context is not None else b""
    with as_problems():
        token, version = await gateway.run(keyring.encrypt, key, plaintext, context, cost=len(plaintext))
    return {"ciphertext": token, "key_version": version}


@router.post(
    "/{key}/decrypt", summary="Decrypt (older path: use /decrypt/{name})", deprecated=True, **_ANSWER
)
async def legacy_decrypt(
    body: LegacyDecryptRequest, keyring: KeyringDep, gateway: GatewayDep, key: str = LegacyKeyName
) -> dict[str, Any]:
    context = b64decode(body.context, "context") if body.context is not None else b""
    with as_problems():
        plaintext, version = await gateway.run(
            keyring.decrypt, key, body.ciphertext, context, cost=len(body.ciphertext)
        )
    return {"plaintext": b64encode(plaintext), "key_version": version}
