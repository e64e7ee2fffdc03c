"""``/v1/merkle``: RFC 9162 Merkle tree root of base64 leaves, and an audit path for one index."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ..bodies import item_list_limits, parse_bounded, read_json_body
from ..codec import b64decode
from ..deps import GatewayDep, json_request_body
from ..problems import V1_ERRORS, ProblemError

router = APIRouter(prefix="/v1/merkle", tags=["processing"], responses=V1_ERRORS)


class MerkleRequest(BaseModel):
    leaves: list[str] = Field(description="base64 leaf data (may be empty: the empty tree)")
    index: int | None = Field(default=None, ge=0, description="leaf whose audit path to return")


class MerkleResponse(BaseModel):
    root: str = Field(description="hex Merkle Tree Hash (RFC 9162 §2.1.1)")
    tree_size: int
    index: int | None = None
    proof: list[str] | None = Field(default=None, description="hex audit path of 'index', leaf to root")


def _compute(leaves: list[bytes], index: int | None) -> tuple[bytes, list[bytes] | None]:
    from nexpo.crypto import merkle_proof, merkle_root

    root = merkle_root(leaves)
    return root, (merkle_proof(leaves, index) if index is not None else None)


def _decode(raw: bytes, max_leaves: int) -> tuple[list[bytes], int | None]:
    body = parse_bounded(MerkleRequest, raw, item_list_limits("leaves", max_leaves))
    if len(body.leaves) > max_leaves:
        raise ProblemError(422, f"{len(body.leaves)} leaves exceed the limit of {max_leaves}")
    if body.index is not None and body.index >= len(body.leaves):
        raise ProblemError(422, f"index {body.index} is outside a tree of {len(body.leaves)} leaves")
    return [b64decode(leaf, f"leaves[{i}]") for i, leaf in enumerate(body.leaves)], body.index


@router.post(
    "",
    response_model=MerkleResponse,
    summary="Merkle root, and a proof when an index is given",
    openapi_extra=json_request_body(MerkleRequest),
)
async def merkle(request: Request, gateway: GatewayDep) -> dict[str, Any]:
    limit = gateway.settings.max_hash_items
    raw = await read_json_body(request, item_list_limits("leaves", limit))  # counted as it arrives
    leaves, index = await gateway.run(_decode, raw, limit, cost=len(raw))
    # every leaf and inner node is one SHA-256 of a 64-byte block at least
    root, proof = await gateway.run(_compute, leaves, index, cost=sum(map(len, leaves)) + 64 * len(leaves))
    return {
        "root": root.hex(),
        "tree_size": len(leaves),
        "index": index,
        "proof": [p.hex() for p in proof] if proof is not None else None,
    }
