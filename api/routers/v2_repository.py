"""The model repository extension: ``/v2/repository/index``, ``.../models/{name}/load|unload``.

Load and unload change what every client sees, so they need an admin key
(``NEXPO_ADMIN_API_KEYS``); with none configured they are refused (403).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..middleware.auth import find_key
from ..repository import service
from ..state import Gateway
from ..v2.errors import V2Error
from ..v2.schemas import V2_ERRORS, RepositoryIndexRequest, RepositoryModel, errors, json_body
from .v2_inference import repository_of

router = APIRouter(prefix="/v2/repository", tags=["open inference protocol"])
MAX_CONTROL_BODY = 64 * 1024


async def _small_json(request: Request) -> dict[str, Any]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_CONTROL_BODY:
            raise V2Error(413, f"the request body exceeds {MAX_CONTROL_BODY} bytes")
    if not body.strip():
        return {}
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise V2Error(400, f"the request is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise V2Error(400, "the request must be a JSON object")
    return doc


def require_admin(request: Request) -> None:
    gateway: Gateway = request.app.state.gateway
    if gateway.admin_keys is None:
        raise V2Error(403, "repository control is disabled: set NEXPO_ADMIN_API_KEYS to allow it")
    candidate = find_key(request.scope["headers"])
    if candidate is None or gateway.admin_keys.match(candidate) is None:
        raise V2Error(403, "loading and unloading models needs an admin API key")


@router.post(
    "/index",
    response_model=list[RepositoryModel],
    response_model_exclude_none=True,
    summary="Every model in the repository, with its state",
    responses=V2_ERRORS,
    openapi_extra=json_body(RepositoryIndexRequest, required=False),
)
async def index(request: Request) -> list[dict[str, Any]]:
    doc = await _small_json(request)
    ready_only = doc.get("ready", False)
    if not isinstance(ready_only, bool):
        raise V2Error(400, "'ready' must be true or false")
    rows = repository_of(request.app.state.gateway).index()
    return [row for row in rows if row["state"] == "READY"] if ready_only else rows


_CONTROL: dict[str, Any] = {
    "responses": {**V2_ERRORS, **errors(403, 404, 503)},
    "openapi_extra": {
        "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}}
    },
}


@router.post("/models/{name}/load", summary="Load or reload a model from the repository (admin)", **_CONTROL)
async def load(request: Request, name: str) -> Response:
    require_admin(request)
    doc = await _small_json(request)
    if doc.get("parameters"):
        raise V2Error(400, "load parameters (config or file overrides) are not supported")
    await load_everywhere(request.app.state.gateway, name)
    return Response(b"{}", media_type="application/json")


@router.post(
    "/models/{name}/unload", summary="Stop serving a model (admin; in-flight requests finish)", **_CONTROL
)
async def unload(request: Request, name: str) -> Response:
    require_admin(request)
    await _small_json(request)
    await unload_everywhere(request.app.state.gateway, name)
    return Response(b"{}", media_type="application/json")


async def load_everywhere(gateway: Gateway, name: str) -> None:
    """Load ``name`` in every worker (this one at once): 404 unknown, 400 when it failed to load."""
    repository = repository_of(gateway)
    try:
        entry = await service.load(gateway, repository, name)
    except KeyError:
        raise V2Error(404, f"no model {name[:64]!r} in the repository") from None
    except service.DecisionsError as exc:
        raise V2Error(503, f"loaded by this worker only, the others could not be told: {exc}") from None
    if not entry.ready:
        reason = entry.error or "; ".join(entry.errors.values()) or "no version loaded"
        raise V2Error(400, f"failed to load {name!r}: {reason}")


async def unload_everywhere(gateway: Gateway, name: str) -> None:
    """Unload ``name`` in every worker (this one at once): 404 when it is not loaded."""
    try:
        unloaded = await service.unload(gateway, repository_of(gateway), name)
    except service.DecisionsError as exc:
        raise V2Error(503, f"not unloaded: the other workers could not be told: {exc}") from None
    if not unloaded:
        raise V2Error(404, f"model {name[:64]!r} is not loaded")
