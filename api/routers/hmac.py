"""``/v1/hmac``: HMAC-SHA256 of data or items, optionally verifying a tag in constant time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, model_validator

from ..bodies import item_list_limits, parse_bounded, read_json_body
from ..codec import b64decode
from ..deps import GatewayDep, json_request_body
from ..problems import V1_ERRORS, ProblemError

router = APIRouter(prefix="/v1/hmac", tags=["processing"], responses=V1_ERRORS)


class HmacRequest(BaseModel):
    key: str = Field(description="base64 key")
    data: str | None = Field(default=None, description="base64 message")
    items: list[str] | None = Field(
        default=None, description="base64 messages, each authenticated on its own"
    )
    expected: str | None = Field(
        default=None, description="hex tag to verify against 'data' (constant-time compare)"
    )

    @model_validator(mode="after")
    def _shape(self) -> HmacRequest:
        if (self.data is None) == (self.items is None):
            raise ValueError("send exactly one of 'data' or 'items'")
        if self.expected is not None and self.data is None:
            raise ValueError("'expected' verifies 'data'; it cannot be combined with 'items'")
        return self


class HmacResponse(BaseModel):
    algorithm: str = "hmac-sha256"
    mac: str | None = Field(default=None, description="hex tag of 'data'")
    macs: list[str] | None = Field(default=None, description="hex tags of 'items', in order")
    valid: bool | None = Field(default=None, description="whether 'expected' matched (when given)")


@dataclass(frozen=True)
class _HmacInput:
    key: bytes
    data: bytes | None
    items: list[bytes] | None
    tag: bytes | None


@router.post(
    "",
    response_model=HmacResponse,
    summary="HMAC-SHA256 of data or items; verify a tag",
    openapi_extra=json_request_body(HmacRequest),
)
async def hmac_data(request: Request, gateway: GatewayDep) -> dict[str, Any]:
    from nexpo.crypto import hmac_sha256, hmac_sha256_many, hmac_sha256_verify

    limit = gateway.settings.max_hash_items
    raw = await read_json_body(request, item_list_limits("items", limit))  # counted as it arrives
    body = await gateway.run(_decode, raw, limit, cost=len(raw))
    if body.data is not None:
        if body.tag is not None:
            valid = await gateway.run(hmac_sha256_verify, body.key, body.data, body.tag, cost=len(body.data))
            return {"algorithm": "hmac-sha256", "valid": valid}
        mac = await gateway.run(hmac_sha256, body.key, body.data, cost=len(body.data))
        return {"algorithm": "hmac-sha256", "mac": mac.hex()}
    assert body.items is not None
    macs = await gateway.run(hmac_sha256_many, body.key, body.items, cost=sum(map(len, body.items)))
    return {"algorithm": "hmac-sha256", "macs": [m.hex() for m in macs]}


def _decode(raw: bytes, max_items: int) -> _HmacInput:
    body = parse_bounded(HmacRequest, raw, item_list_limits("items", max_items))
    key = b64decode(body.key, "key")
    if body.data is not None:
        data, tag = b64decode(body.data, "data"), None
        if body.expected is not None:
            try:
                tag = bytes.fromhex(body.expected)
            except ValueError:
                raise ProblemError(422, "expected must be a hex string") from None
        return _HmacInput(key, data, None, tag)
    assert body.items is not None
    if len(body.items) > max_items:
        raise ProblemError(422, f"{len(body.items)} items exceed the limit of {max_items}")
    return _HmacInput(key, None, [b64decode(item, f"items[{i}]") for i, item in enumerate(body.items)], None)
