"""``/v1/hash``: SHA-256 of base64 data or a batch of items; ``/v1/hash/stream``: of a raw body,
hashed as it arrives (memory stays flat whatever the body size)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator

from ..codec import INLINE_BYTES, b64decode
from ..deps import GatewayDep, json_request_body, parse_json
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
async def hash_data(request: Request) -> Response:
    payload = await hash_json(request.app.state.gateway, await request.body())
    return Response(payload, media_type=JSON)


async def hash_json(gateway: Gateway, raw: bytes) -> bytes:
    """The hash operation on a raw body (shared with the pure-ASGI hot path)."""
    body = parse_json(HashRequest, raw)
    if body.data is not None:
        data = b64decode(body.data, "data")
        from nexpo.crypto import sha256

        digest = sha256(data) if len(data) <= INLINE_BYTES else await gateway.run_cpu(sha256, data)
        return b'{"algorithm":"sha256","digest":"%s"}' % digest.hex().encode()
    assert body.items is not None
    limit = gateway.settings.max_hash_items
    if len(body.items) > limit:
        raise ProblemError(422, f"{len(body.items)} items exceed the limit of {limit}")
    items = [b64decode(item, f"items[{i}]") for i, item in enumerate(body.items)]
    from nexpo.crypto import sha256_many

    total = sum(map(len, items))
    digests = sha256_many(items) if total <= INLINE_BYTES else await gateway.run_cpu(sha256_many, items)
    return orjson.dumps({"algorithm": "sha256", "digests": [d.hex() for d in digests]})


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
            await gateway.run_cpu(hasher.update, block)
    if pending:
        hasher.update(bytes(pending))
    return {"algorithm": "sha256", "digest": hasher.hexdigest(), "bytes": total}
