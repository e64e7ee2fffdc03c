"""``/v1/hmac``: HMAC-SHA256 of data or items, optionally verifying a tag in constant time."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator

from ..codec import INLINE_BYTES, b64decode
from ..deps import GatewayDep
from ..problems import V1_ERRORS, ProblemError
from ..state import Gateway

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


@router.post("", response_model=HmacResponse, summary="HMAC-SHA256 of data or items; verify a tag")
async def hmac_data(body: HmacRequest, gateway: GatewayDep) -> dict[str, Any]:
    from nexpo.crypto import hmac_sha256, hmac_sha256_many, hmac_sha256_verify

    key = b64decode(body.key, "key")
    if body.data is not None:
        data = b64decode(body.data, "data")
        if body.expected is not None:
            try:
                tag = bytes.fromhex(body.expected)
            except ValueError:
                raise ProblemError(422, "expected must be a hex string") from None
            valid = await _maybe_off_loop(gateway, len(data), hmac_sha256_verify, key, data, tag)
            return {"algorithm": "hmac-sha256", "valid": valid}
        mac = await _maybe_off_loop(gateway, len(data), hmac_sha256, key, data)
        return {"algorithm": "hmac-sha256", "mac": mac.hex()}
    assert body.items is not None
    limit = gateway.settings.max_hash_items
    if len(body.items) > limit:
        raise ProblemError(422, f"{len(body.items)} items exceed the limit of {limit}")
    items = [b64decode(item, f"items[{i}]") for i, item in enumerate(body.items)]
    macs = await _maybe_off_loop(gateway, sum(map(len, items)), hmac_sha256_many, key, items)
    return {"algorithm": "hmac-sha256", "macs": [m.hex() for m in macs]}


async def _maybe_off_loop(gateway: Gateway, nbytes: int, fn: Any, *args: Any) -> Any:
    if nbytes <= INLINE_BYTES:
        return fn(*args)
    return await gateway.run_cpu(fn, *args)
