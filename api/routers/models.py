"""``/v1/models``: list, describe, and run inference (micro-batched)."""

from __future__ import annotations

import functools
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ..bodies import JsonLimits, JsonNumber, parse_bounded, read_json_body
from ..deps import GatewayDep, ModelDep, find_model, json_request_body
from ..fastpath import served_by_hot_path
from ..inference import MlpModel
from ..inference.batcher import BatcherClosed
from ..problems import V1_ERRORS, ProblemError, problem_responses
from ..state import Gateway

router = APIRouter(prefix="/v1/models", tags=["models"], responses=V1_ERRORS)


class LayerInfo(BaseModel):
    inputs: int
    outputs: int
    activation: str | None


class ModelInfo(BaseModel):
    name: str
    description: str
    input_width: int = Field(description="values per input row")
    labels: list[str] = Field(description="output classes, in probability order")
    layers: list[LayerInfo]
    parameters: int
    sha256: str = Field(description="SHA-256 of the model file")


class ModelList(BaseModel):
    models: list[ModelInfo]


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: list[list[JsonNumber]] = Field(
        min_length=1,
        description="a batch of rows, each `input_width` finite JSON numbers "
        "(at most NEXPO_MAX_INFER_ROWS rows)",
        examples=[[[0.0] * 64]],
    )


class InferResponse(BaseModel):
    model: str
    labels: list[str] = Field(description="the most probable class per row")
    probabilities: list[list[float]] = Field(description="per row, one probability per model label")


@router.get("", response_model=ModelList, summary="The loaded models")
async def list_models(gateway: GatewayDep) -> dict[str, Any]:
    return {"models": [m.describe() for m in gateway.registry.models.values()]}


@router.get(
    "/{name}", response_model=ModelInfo, summary="One model's architecture", responses=problem_responses(404)
)
async def get_model(model: ModelDep) -> dict[str, Any]:
    return model.describe()


@router.post(
    "/{name}/infer",
    response_model=InferResponse,
    summary="Classify a batch of rows",
    description="Concurrent requests to one model are merged into one batch (dynamic micro-batching).",
    responses=problem_responses(404, 503),
    openapi_extra=json_request_body(InferRequest),
)
@served_by_hot_path
async def infer(request: Request, name: Annotated[str, Path(description="model name")]) -> Response:
    gateway = request.app.state.gateway
    body = await read_json_body(request, infer_limits(gateway, name))
    return Response(await infer_json(gateway, body, name), media_type="application/json")


def infer_limits(gateway: Gateway, name: str) -> JsonLimits:
    """What an infer body for model ``name`` may hold (404 before its body is read)."""
    return _infer_limits(find_model(gateway, name).input_width, gateway.settings.max_infer_rows)


@functools.lru_cache(maxsize=64)
def _infer_limits(width: int, limit: int) -> JsonLimits:
    return JsonLimits(
        # `limit` rows of `width` numbers, the rows' and the batch's brackets, one key
        max_values=limit * (width + 1) + 3,
        too_many=f"inputs: more than {limit} rows of {width} numbers (the limit)",
        max_arrays=limit + 1,
        too_many_arrays=f"inputs: a batch of more than {limit} rows exceeds the limit of {limit}",
    )


async def infer_json(gateway: Gateway, body: bytes, name: str) -> bytes:
    """The infer operation on a raw body (shared with the pure-ASGI hot path)."""
    model = find_model(gateway, name)
    limits = _infer_limits(model.input_width, gateway.settings.max_infer_rows)
    x = await gateway.run(infer_input, model, body, limits, cost=len(body))
    try:
        probabilities = await gateway.infer(model, x)
    except BatcherClosed as exc:
        raise ProblemError(503, str(exc)) from None
    payload = {"model": model.name, "labels": model.label_of(probabilities), "probabilities": probabilities}
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)


def infer_input(model: MlpModel, body: bytes, limits: JsonLimits) -> np.ndarray:
    """The float32 batch in an infer body, counted within ``limits`` before it is parsed."""
    rows = parse_bounded(InferRequest, body, limits).inputs
    width = model.input_width
    for i, row in enumerate(rows):
        if len(row) != width:
            detail = f"inputs[{i}] has {len(row)} values; model {model.name!r} expects {width}"
            raise ProblemError(422, detail)
    with np.errstate(over="ignore"):
        x = np.array(rows, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ProblemError(422, "inputs must be finite float32 values (some overflow float32)")
    return x
