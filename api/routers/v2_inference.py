"""The Open Inference Protocol over HTTP (``/v2``): health, metadata, readiness and inference.

Errors are the protocol's ``{"error": "..."}``: 400 bad request, 404 unknown model or version,
503 not ready. Infer bodies are counted as they arrive (JSON values, ``api/bodies.py``) and decoded
by ``api/v2/codec.py``; large ones off the event loop.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..bodies import JsonLimits
from ..inference.batcher import BatcherClosed
from ..readiness import not_ready_reason
from ..repository.store import ModelRepository, ModelVersion
from ..state import Gateway
from ..v2.codec import (
    HEADER_LENGTH,
    InferRequest,
    datatype_of,
    decode_request,
    encode_response,
    header_length,
)
from ..v2.errors import V2Error
from ..v2.schemas import (
    V2_ERRORS,
    InferenceRequest,
    InferenceResponse,
    InferenceStatistics,
    ModelMetadata,
    ServerMetadata,
    json_body,
)
from ..v2.schemas import errors as error_responses
from ..v2.statistics import statistics

router = APIRouter(prefix="/v2", tags=["open inference protocol"])
open_router = APIRouter(prefix="/v2/health", tags=["open inference protocol"])

EXTENSIONS = ["binary_tensor_data", "model_repository", "statistics"]
_VERSION = re.compile(r"[1-9][0-9]{0,9}")


def repository_of(gateway: Gateway) -> ModelRepository:
    repository: ModelRepository | None = gateway.repository
    if repository is None or not gateway.ready:
        raise V2Error(503, "the server is starting up or draining")
    return repository


def find_version(gateway: Gateway, name: str, version: str | None) -> ModelVersion:
    """The model version a request names (the latest when none): 404 unknown, 503 not ready."""
    repository = repository_of(gateway)
    entry = repository.models.get(name)
    if entry is None:
        raise V2Error(404, f"unknown model {name[:64]!r}")
    number = parse_version(version)
    model = repository.get(name, number)
    if model is None:
        if number is not None and number in entry.errors:
            raise V2Error(503, f"model {name!r} version {number} is not ready: {entry.errors[number]}")
        if number is not None:
            raise V2Error(404, f"unknown version {number} of model {name!r}")
        reason = entry.error or "; ".join(entry.errors.values()) or "no version loaded"
        raise V2Error(503, f"model {name!r} is not ready: {reason}")
    return model


def parse_version(version: str | None) -> int | None:
    """A request's model version (None: the latest); 400 unless a positive integer."""
    if version is None or version == "":
        return None
    if not _VERSION.fullmatch(version):
        raise V2Error(400, f"model version must be a positive integer, got {version[:20]!r}")
    return int(version)


@open_router.get("/live", summary="Liveness (open, like /livez)", responses=error_responses(503))
async def live() -> Response:
    return Response(b'{"live":true}', media_type="application/json")


@open_router.get(
    "/ready", summary="Readiness: the same decision as /readyz", responses=error_responses(503)
)
async def ready(request: Request) -> Response:
    reason = not_ready_reason(request.app.state.gateway)  # the same decision as /readyz
    if reason is not None:
        raise V2Error(503, f"not ready: {reason}")
    return Response(b'{"ready":true}', media_type="application/json")


@router.get("", response_model=ServerMetadata, summary="Server metadata", responses=V2_ERRORS)
async def server_metadata() -> dict[str, Any]:
    import nexpo

    return {"name": "nexpo", "version": nexpo.__version__, "extensions": EXTENSIONS}


def _metadata(gateway: Gateway, name: str, version: str | None) -> dict[str, Any]:
    model = find_version(gateway, name, version)
    entry = repository_of(gateway).models[name]
    backend = model.backend

    def tensors(specs: Any) -> list[dict[str, Any]]:
        return [{"name": s.name, "datatype": s.datatype, "shape": list(s.shape)} for s in specs]

    return {
        "name": name,
        "versions": [str(v) for v in sorted(entry.versions)],
        "platform": backend.platform,
        "inputs": tensors(backend.inputs),
        "outputs": tensors(backend.outputs),
    }


_META: dict[str, Any] = {
    "response_model": ModelMetadata,
    "responses": {**V2_ERRORS, **error_responses(404, 503)},
}


_STATS: dict[str, Any] = {
    "response_model": InferenceStatistics,
    "responses": {**V2_ERRORS, **error_responses(404, 503)},
}


@router.get("/models/stats", summary="Statistics of every loaded model (Triton extension)", **_STATS)
async def all_statistics(request: Request) -> dict[str, Any]:
    return statistics(repository_of(request.app.state.gateway), "", None)


@router.get("/models/{name}", summary="Model metadata (latest version)", **_META)
async def model_metadata(request: Request, name: str) -> dict[str, Any]:
    return _metadata(request.app.state.gateway, name, None)


@router.get("/models/{name}/versions/{version}", summary="Model version metadata", **_META)
async def version_metadata(request: Request, name: str, version: str) -> dict[str, Any]:
    return _metadata(request.app.state.gateway, name, version)


@router.get(
    "/models/{name}/config", summary="Model configuration (Triton extension)", responses=_META["responses"]
)
async def model_config(request: Request, name: str) -> dict[str, Any]:
    model = find_version(request.app.state.gateway, name, None)
    return model.config.describe(name)


_READY = {"responses": {**V2_ERRORS, **error_responses(404, 503)}}


@router.get("/models/{name}/ready", summary="Model readiness (200 ready)", **_READY)  # type: ignore[arg-type]
async def model_ready(request: Request, name: str) -> Response:
    find_version(request.app.state.gateway, name, None)
    return Response(b'{"ready":true}', media_type="application/json")


@router.get("/models/{name}/versions/{version}/ready", summary="Model version readiness", **_READY)  # type: ignore[arg-type]
async def version_ready(request: Request, name: str, version: str) -> Response:
    find_version(request.app.state.gateway, name, version)
    return Response(b'{"ready":true}', media_type="application/json")


@router.get("/models/{name}/stats", summary="Statistics of a model's versions (Triton extension)", **_STATS)
async def model_statistics(request: Request, name: str) -> dict[str, Any]:
    return statistics(repository_of(request.app.state.gateway), name, None)


@router.get("/models/{name}/versions/{version}/stats", summary="Statistics of one version", **_STATS)
async def version_statistics(request: Request, name: str, version: str) -> dict[str, Any]:
    return statistics(repository_of(request.app.state.gateway), name, parse_version(version))


_INFER: dict[str, Any] = {
    "response_model": InferenceResponse,
    "responses": {
        **V2_ERRORS,
        **error_responses(404, 503),
        200: {"content": {"application/octet-stream": {}}, "description": "with binary outputs"},
    },
    "openapi_extra": json_body(InferenceRequest),
}


@router.post("/models/{name}/infer", summary="Inference on the latest version", **_INFER)
async def infer(request: Request, name: str) -> Response:
    return await _infer(request, name, None)


@router.post("/models/{name}/versions/{version}/infer", summary="Inference on one version", **_INFER)
async def infer_version(request: Request, name: str, version: str) -> Response:
    return await _infer(request, name, version)


def _limits(gateway: Gateway) -> JsonLimits:
    values = gateway.settings.max_infer_rows * 1024
    return JsonLimits(
        values, f"the request's JSON has more than {values} values (send tensors as binary data)"
    )


def max_elements(gateway: Gateway) -> int:
    return gateway.settings.max_body_bytes


async def read_body(
    chunks: AsyncIterator[bytes] | bytes, json_length: int | None, limits: JsonLimits
) -> bytes:
    """The body; its JSON part counted against ``limits`` while it arrives (400 beyond). A body
    already whole (``bytes``: the hot path's usual single message) is counted at once."""
    budget = limits.budget()
    parts: list[bytes] = []
    received = 0
    try:
        if isinstance(chunks, bytes):
            budget.feed(chunks if json_length is None else chunks[:json_length])
            return chunks
        async for chunk in chunks:
            if json_length is None or received < json_length:
                budget.feed(chunk if json_length is None else chunk[: json_length - received])
            received += len(chunk)
            parts.append(chunk)
    except V2Error:
        raise
    except Exception as exc:
        status = getattr(exc, "status_code", None)
        if status == 422:  # the JSON budget's answer: in this protocol a bad request
            raise V2Error(400, str(getattr(exc, "detail", exc))) from None
        raise
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def _infer(request: Request, name: str, version: str | None) -> Response:
    gateway: Gateway = request.app.state.gateway
    model = find_version(gateway, name, version)  # 404/503 before the body is read
    with model.hold():  # a version retired meanwhile still serves this request
        return await _infer_on(request, gateway, model, name)


async def _infer_on(request: Request, gateway: Gateway, model: ModelVersion, name: str) -> Response:
    content, head = await answer(gateway, model, name, request.headers, request.stream())
    if head is None:
        return Response(content, media_type="application/json")
    return Response(
        content, media_type="application/octet-stream", headers={"Inference-Header-Content-Length": str(head)}
    )


async def answer(
    gateway: Gateway,
    model: ModelVersion,
    name: str,
    headers: Mapping[str, str],
    chunks: AsyncIterator[bytes] | bytes,
) -> tuple[bytes, int | None]:
    """The response body to an infer request (and the length of its JSON part when it has binary
    outputs), from its headers and body chunks: shared by the route and the pure-ASGI hot path."""
    if headers.get("content-encoding", "identity").lower() != "identity":
        raise V2Error(400, "compressed request bodies are not supported")
    declared = headers.get(HEADER_LENGTH)
    content_length = headers.get("content-length")
    json_length = header_length(declared, int(content_length)) if declared and content_length else None
    body = await read_body(chunks, json_length, _limits(gateway))
    if declared is not None:
        json_length = header_length(declared, len(body))
    metrics = model.metrics
    started = time.perf_counter()
    try:
        decoded = await gateway.run(_decode, body, json_length, max_elements(gateway), cost=len(body))
        check_inputs(model, decoded, gateway.settings.max_infer_rows)
        decoded_at = time.perf_counter()
        try:
            outputs = await gateway.repository.infer(model, decoded.inputs)
        except BatcherClosed as exc:
            raise V2Error(503, str(exc)) from None
        inferred_at = time.perf_counter()
        args = (name, str(model.version), decoded, outputs)
        cost = sum(a.nbytes for a in outputs.values())
        result: tuple[bytes, int | None] = await gateway.run(encode_response, *args, cost=cost)
    except V2Error:
        metrics.failed(time.perf_counter() - started)
        raise
    done = time.perf_counter()
    metrics.succeeded(done - started, decoded_at - started, done - inferred_at)
    return result


def _decode(body: bytes, json_length: int | None, limit: int) -> InferRequest:
    return decode_request(body, json_length, max_elements=limit)


def check_inputs(model: ModelVersion, request: InferRequest, max_rows: int) -> None:
    """The request's tensors against the model's: names, datatypes, shapes, batch rows (400)."""
    backend = model.backend
    expected = {spec.name: spec for spec in backend.inputs}
    unknown = sorted(set(request.inputs) - set(expected))
    if unknown:
        raise V2Error(
            400, f"model {model.name!r} has no input {unknown[0][:64]!r} (inputs: {', '.join(expected)})"
        )
    rows_limit = model.config.max_batch_size or max_rows
    for spec in backend.inputs:
        array = request.inputs.get(spec.name)
        if array is None:
            raise V2Error(400, f"input {spec.name!r} is missing")
        if request_datatype(array) != spec.datatype:
            raise V2Error(400, f"input {spec.name!r} must be {spec.datatype}, got {request_datatype(array)}")
        if len(array.shape) != len(spec.shape) or any(
            want not in (-1, got) for want, got in zip(spec.shape, array.shape, strict=True)
        ):
            raise V2Error(
                400, f"input {spec.name!r} has shape {list(array.shape)}; the model takes {list(spec.shape)}"
            )
        if spec.shape[:1] == (-1,) and array.shape[0] > rows_limit:
            raise V2Error(
                400, f"input {spec.name!r}: a batch of {array.shape[0]} exceeds the limit of {rows_limit}"
            )
        if spec.shape[:1] == (-1,) and array.shape[0] == 0:
            raise V2Error(400, f"input {spec.name!r}: an empty batch")
    names = {spec.name for spec in backend.outputs}
    for output in request.outputs:
        if output.name not in names:
            raise V2Error(400, f"model {model.name!r} has no output {output.name[:64]!r}")


def request_datatype(array: np.ndarray) -> str:
    return datatype_of(array)
