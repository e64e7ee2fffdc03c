"""``/v1/merkle``: RFC 9162 Merkle tree root of base64 leaves, and an audit path for one index."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ..codec import INLINE_BYTES, b64decode
from ..deps import GatewayDep
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


@router.post("", response_model=MerkleResponse, summary="Merkle root, and a proof when an index is given")
async def merkle(body: MerkleRequest, gateway: GatewayDep) -> dict[str, Any]:
    limit = gateway.settings.max_hash_items
    if len(body.leaves) > limit:
        raise ProblemError(422, f"{len(body.leaves)} leaves exceed the limit of {limit}")
    if body.index is not None and body.index >= len(body.leaves):
        raise ProblemError(422, f"index {body.index} is outside a tree of {len(body.leaves)} leaves")
    leaves = [b64decode(leaf, f"leaves[{i}]") for i, leaf in enumerate(body.leaves)]
    if sum(map(len, leaves)) + 64 * len(leaves) <= INLINE_BYTES:
        root, proof = _compute(leaves, body.index)
    else:
        root, proof = await gateway.run_cpu(_compute, leaves, body.index)
    return {
        "root": root.hex(),
        "tree_size": len(leaves),
        "index": body.index,
        "proof": [p.hex() for p in proof] if proof is not None else None,
    }
