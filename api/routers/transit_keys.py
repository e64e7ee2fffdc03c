"""``/v1/transit/keys``: list, create, read, rotate, configure and delete transit keys, as in
Vault's transit API. Reading needs any API key (it shows versions, settings and Ed25519 public
keys, never secret material); every change needs an admin key (``NEXPO_ADMIN_API_KEYS``).

There is no export endpoint: key material never leaves the server (``exportable`` must be false).
Changes go through the keys file under its lock (api/transit/store.py), so concurrent changes from
every worker and the offline CLI are all kept; this worker sees a change at once, the others
within a second.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Body, Response

from ..deps import GatewayDep
from ..problems import V1_ERRORS, ProblemError, problem_responses
from ..transit import configure_key, create_key, delete_key, rotate_key
from .transit_deps import KEY_PROBLEMS, AdminDep, KeyName, KeyringDep, as_problems, keyring_file
from .transit_schemas import CreateKeyRequest, KeyConfigRequest, KeyInfo, KeyList

router = APIRouter(
    prefix="/v1/transit",
    tags=["transit keys"],
    responses={**V1_ERRORS, **problem_responses(400, 404, 503)},
)
_ADMIN: dict[str, Any] = {"dependencies": [AdminDep], "responses": problem_responses(403, 409)}
_NO_EXPORT = "key export is disabled: transit keys never leave the server"


async def _change(gateway: GatewayDep, operation: Any, *args: Any) -> Any:
    file = keyring_file(gateway)
    with as_problems(KEY_PROBLEMS):
        return await anyio.to_thread.run_sync(file.change, operation, *args)


def _info(keyring: Any, name: str) -> dict[str, Any]:
    with as_problems():
        info: dict[str, Any] = keyring.key(name).describe()
    return info


@router.get("/keys", response_model=KeyList, summary="Names of every transit key")
async def list_keys(keyring: KeyringDep) -> dict[str, Any]:
    return {"keys": sorted(keyring.keys)}


@router.get("/keys/{name}", response_model=KeyInfo, summary="A key's type, versions and settings")
async def read_key(keyring: KeyringDep, name: str = KeyName) -> dict[str, Any]:
    return _info(keyring, name)


@router.post("/keys/{name}", response_model=KeyInfo, summary="Create a key (admin)", **_ADMIN)
async def create(
    gateway: GatewayDep,
    body: Annotated[CreateKeyRequest | None, Body()] = None,
    name: str = KeyName,
) -> dict[str, Any]:
    request = body or CreateKeyRequest()
    if request.exportable:
        raise ProblemError(400, _NO_EXPORT)
    key = await _change(gateway, create_key, name, request.type)
    info: dict[str, Any] = key.describe()
    return info


@router.post("/keys/{name}/rotate", response_model=KeyInfo, summary="Add a new key version (admin)", **_ADMIN)
async def rotate(gateway: GatewayDep, name: str = KeyName) -> dict[str, Any]:
    info: dict[str, Any] = (await _change(gateway, rotate_key, name)).describe()
    return info


@router.post(
    "/keys/{name}/config",
    response_model=KeyInfo,
    summary="Set min_decryption_version, min_encryption_version, deletion_allowed (admin)",
    **_ADMIN,
)
async def configure(gateway: GatewayDep, body: KeyConfigRequest, name: str = KeyName) -> dict[str, Any]:
    if body.exportable:
        raise ProblemError(400, _NO_EXPORT)
    key = await _change(
        gateway,
        configure_key,
        name,
        body.min_decryption_version,
        body.min_encryption_version,
        body.deletion_allowed,
    )
    info: dict[str, Any] = key.describe()
    return info


@router.delete("/keys/{name}", status_code=204, summary="Delete a key if deletion_allowed (admin)", **_ADMIN)
async def delete(gateway: GatewayDep, name: str = KeyName) -> Response:
    await _change(gateway, delete_key, name)
    return Response(status_code=204)
