"""``/v1/hash``: SHA-256 of base64 data or a batch of items; ``/v1/hash/stream``: of a raw body,
hashed as it arrives (memory stays flat whatever the body size)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator

from ..bodies import JsonLimits, item_list_limits, parse_bounded, read_json_body
from ..codec import b64decode
from ..deps import GatewayDep, json_request_body
from ..fastpath import served_by_hot_path
from ..problems import V1_ERRORS, ProblemError
from ..state import Gateway

router = APIRouter(prefix="/v1/hash", tags=["processing"], responses=V1_ERRORS)

JSON = "application/json"
STREAM_CHUNK = 1024 * 1024  # hash in ~1 MiB slices off the event loop


class HashRequest(BaseModel):
    data: str | None = Field(default=None, description="base64 bytes to hash")
    items: list[str] | None = Field(
        default=None, description="base64 items, each hashed on its own (one native batch call)"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> HashRequest:
        if (self.data is None) == (self.items is None):
            raise ValueError("send exactly one of 'data' or 'items'")
        return self


class HashResponse(BaseModel):
    algorithm: str = "sha256"
    digest: str | None = Field(default=None, description="hex digest of 'data'")
    digests: list[str] | None = Field(default=None, description="hex digests of 'items', in order")


class StreamHashResponse(BaseModel):
    algorithm: str = "sha256"
    digest: str
    bytes: int = Field(description="body length hashed")


@router.post(
    "",
    response_model=HashResponse,
    summary="SHA-256 of data or of each item",
    openapi_extra=json_request_body(HashRequest),
)
@served_by_hot_path
async def hash_data(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    body = await read_json_body(request, hash_limits(gateway))
    return Response(await hash_json(gateway, body), media_type=JSON)


def hash_limits(gateway: Gateway) -> JsonLimits:
    """What a /v1/hash body may hold, counted as it arrives."""
    return item_list_limits("items", gateway.settings.max_hash_items)


async def hash_json(gateway: Gateway, raw: bytes) -> bytes:
    """The hash operation on a raw body (shared with the pure-ASGI hot path)."""
    data = await gateway.run(_decode, raw, gateway.settings.max_hash_items, cost=len(raw))
    if isinstance(data, bytes):
        from nexpo.crypto import sha256

        digest = await gateway.run(sha256, data, cost=len(data))
        return b'{"algorithm":"sha256","digest":"%s"}' % digest.hex().encode()
    from nexpo.crypto import sha256_many

    digests = await gateway.run(sha256_many, data, cost=sum(map(len, data)))
    return orjson.dumps({"algorithm": "sha256", "digests": [d.hex() for d in digests]})


def _decode(raw: bytes, max_items: int) -> bytes | list[bytes]:
    """``data``, or the list of ``items``, of a body counted within its budget."""
    body = parse_bounded(HashRequest, raw, item_list_limits("items", max_items))
    if body.data is not None:
        return b64decode(body.data, "data")
    assert body.items is not None
    if len(body.items) > max_items:
        raise ProblemError(422, f"{len(body.items)} items exceed the limit of {max_items}")
    return [b64decode(item, f"items[{i}]") for i, item in enumerate(body.items)]


@router.post(
    "/stream",
    response_model=StreamHashResponse,
    summary="SHA-256 of the raw request body, hashed as it streams",
    description="Send any bytes (chunked transfer works). The body limit is NEXPO_MAX_STREAM_BYTES.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def hash_stream(request: Request, gateway: GatewayDep) -> dict[str, Any]:
    from nexpo.crypto import Sha256

    hasher = Sha256()
    pending = bytearray()
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        pending += chunk
        if len(pending) >= STREAM_CHUNK:
            block, pending = bytes(pending), bytearray()
            await gateway.run(hasher.update, block, cost=len(block))
    if pending:
        await gateway.run(hasher.update, bytes(pending), cost=len(pending))
    return {"algorithm": "sha256", "digest": hasher.hexdigest(), "bytes": total}
