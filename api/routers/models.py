"""``/v1/models``: list, describe, and run inference (micro-batched).

Two kinds of model answer here: the ``nexpo-mlp/1`` MLPs of the registry (rows in, probabilities
and labels out), and the models with tensor signatures the repository loads (``*.onnx`` in
``NEXPO_MODELS_DIR`` or the v2 repository: named, typed inputs and outputs, api/inference/
named_tensors.py). A tensor model is the repository's own loaded version, with its batcher and
metrics, so /v1 and /v2 serve one copy of it."""

from __future__ import annotations

import functools
import time
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ..bodies import JsonLimits, JsonNumber, parse_bounded, read_json_body
from ..deps import GatewayDep, find_model, json_request_body
from ..fastpath import served_by_hot_path
from ..inference import MlpModel
from ..inference.batcher import BatcherClosed
from ..inference.named_tensors import NamedTensorError, decode_request, encode_response, tensor_limits
from ..problems import V1_ERRORS, ProblemError, problem_responses
from ..repository.store import ModelVersion
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


class TensorInfo(BaseModel):
    name: str
    datatype: str = Field(description="the Open Inference Protocol datatype: FP32, INT64, BOOL, BYTES, ...")
    shape: list[int] = Field(description="-1 for a free dimension (the first one is the batch)")


class TensorModelInfo(BaseModel):
    name: str
    version: int
    platform: str = Field(description="onnxruntime_onnx for ONNX models (as Triton reports them)")
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]


class ModelList(BaseModel):
    models: list[ModelInfo]
    tensor_models: list[TensorModelInfo] = Field(
        default_factory=list, description="models with named tensors (ONNX), inferred with NamedInferRequest"
    )


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: list[list[JsonNumber]] = Field(
        min_length=1,
        description="a batch of rows, each `input_width` finite JSON numbers "
        "(at most NEXPO_MAX_INFER_ROWS rows)",
        examples=[[[0.0] * 64]],
    )


class NamedInferRequest(BaseModel):
    """The infer body of a tensor model (ONNX)."""

    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(
        description="every input of the model by name: a nested array as deep as its rank, "
        "of its datatype (numbers, booleans or strings)",
        examples=[{"ids": [[1, 2, 3]]}],
    )
    outputs: list[str] | None = Field(default=None, description="outputs to return (default: all)")


class NamedInferResponse(BaseModel):
    model: str
    model_version: str
    outputs: dict[str, Any] = Field(description="each requested output by name, as a nested array")


class InferResponse(BaseModel):
    model: str
    labels: list[str] = Field(description="the most probable class per row")
    probabilities: list[list[float]] = Field(description="per row, one probability per model label")


@router.get("", response_model=ModelList, summary="The loaded models")
async def list_models(gateway: GatewayDep) -> dict[str, Any]:
    tensor_models = [
        describe_tensor_model(model)
        for name in sorted(gateway.repository.models if gateway.repository is not None else ())
        if gateway.model(name) is None and (model := gateway.repository.get(name)) is not None
    ]
    return {
        "models": [m.describe() for m in gateway.registry.models.values()],
        "tensor_models": tensor_models,
    }


@router.get(
    "/{name}",
    response_model=ModelInfo | TensorModelInfo,
    summary="One model's architecture (MLPs) or tensors (ONNX)",
    responses=problem_responses(404, 503),
)
async def get_model(
    gateway: GatewayDep, name: Annotated[str, Path(description="model name")]
) -> dict[str, Any]:
    model = gateway.model(name)
    return model.describe() if model is not None else describe_tensor_model(find_tensor_model(gateway, name))


def describe_tensor_model(model: ModelVersion) -> dict[str, Any]:
    def tensors(specs: Any) -> list[dict[str, Any]]:
        return [{"name": s.name, "datatype": s.datatype, "shape": list(s.shape)} for s in specs]

    backend = model.backend
    return {
        "name": model.name,
        "version": model.version,
        "platform": backend.platform,
        "inputs": tensors(backend.inputs),
        "outputs": tensors(backend.outputs),
    }


def find_tensor_model(gateway: Gateway, name: str) -> ModelVersion:
    """The latest loaded version of the repository's model ``name``: 404 unknown, 503 not ready."""
    repository = gateway.repository
    entry = repository.models.get(name) if repository is not None else None
    if entry is None:
        known = sorted({*gateway.registry.models, *(repository.models if repository is not None else ())})
        raise ProblemError(404, f"no model named {name!r} (loaded: {', '.join(known) or 'none'})")
    model: ModelVersion | None = repository.get(name)
    if model is None:
        reason = entry.error or "; ".join(entry.errors.values()) or "no version loaded"
        raise ProblemError(503, f"model {name!r} is not ready: {reason}")
    return model


def _infer_body() -> dict[str, Any]:
    body = json_request_body(InferRequest)
    named = json_request_body(NamedInferRequest)["requestBody"]["content"]["application/json"]["schema"]
    schema = body["requestBody"]["content"]["application/json"]
    schema["schema"] = {"oneOf": [schema["schema"], named]}
    return body


@router.post(
    "/{name}/infer",
    response_model=InferResponse | NamedInferResponse,
    summary="Classify a batch of rows (MLPs) or run named tensors (ONNX)",
    description="Concurrent requests to one model are merged into one batch (dynamic micro-batching). "
    "MLPs take `InferRequest`; tensor models (ONNX) take `NamedInferRequest`.",
    responses=problem_responses(404, 503),
    openapi_extra=_infer_body(),
)
@served_by_hot_path
async def infer(request: Request, name: Annotated[str, Path(description="model name")]) -> Response:
    gateway = request.app.state.gateway
    body = await read_json_body(request, infer_limits(gateway, name))
    return Response(await infer_json(gateway, body, name), media_type="application/json")


def infer_limits(gateway: Gateway, name: str) -> JsonLimits:
    """What an infer body for model ``name`` may hold (404 before its body is read)."""
    mlp = gateway.model(name)
    if mlp is None:
        model = find_tensor_model(gateway, name)
        return tensor_limits(model.backend.inputs, _max_rows(gateway, model))
    return _infer_limits(mlp.input_width, gateway.settings.max_infer_rows)


def _max_rows(gateway: Gateway, model: ModelVersion | None = None) -> int:
    return (model.config.max_batch_size if model is not None else 0) or gateway.settings.max_infer_rows


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
    if gateway.model(name) is None:
        return await infer_named(gateway, body, find_tensor_model(gateway, name))
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


async def infer_named(gateway: Gateway, body: bytes, model: ModelVersion) -> bytes:
    """Named tensors in and out, through the repository (its batcher, its per-model metrics)."""
    with model.hold():  # a version retired meanwhile still serves this request
        backend = model.backend
        names = [spec.name for spec in backend.outputs]
        rows = _max_rows(gateway, model)
        started = time.perf_counter()
        try:
            request = await gateway.run(decode_request, body, backend.inputs, names, rows, cost=len(body))
            outputs = await gateway.repository.infer(model, request.inputs)
        except NamedTensorError as exc:
            model.metrics.failure.inc()
            raise ProblemError(422, f"model {model.name!r}: {exc}") from None
        except (ValueError, TypeError) as exc:  # inputs that fit the signature but not the graph
            model.metrics.failure.inc()
            raise ProblemError(422, f"model {model.name!r} rejected the inputs: {exc}") from None
        except BatcherClosed as exc:
            model.metrics.failure.inc()
            raise ProblemError(503, str(exc)) from None
        cost = sum(outputs[n].nbytes for n in request.outputs)
        encoded: bytes = await gateway.run(
            encode_response, model.name, model.version, request.outputs, outputs, cost=cost
        )
        model.metrics.success.inc()
        model.metrics.request_seconds.inc(time.perf_counter() - started)
        return encoded
