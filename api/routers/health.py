"""Probes and service information: ``/livez``, ``/readyz``, ``/metrics``, ``/v1/info``, ``/v1/ping``."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from pydantic import BaseModel, Field

from ..deps import GatewayDep
from ..fastpath import served_by_hot_path
from ..problems import V1_ERRORS, problem_response, problem_responses
from ..readiness import not_ready_reason

router = APIRouter(tags=["service"])


class Status(BaseModel):
    status: str = Field(description="'ok' when the probe passes")


class ModelSummary(BaseModel):
    name: str
    input_width: int
    labels: list[str]


class Info(BaseModel):
    version: str
    nim_version: str
    isa_active: str = Field(description="the instruction-set path the native kernels run")
    isa_available: list[str]
    sha_ni: bool
    threads: int = Field(description="native worker threads")
    cpu_workers: int = Field(description="CPU-bound jobs the gateway runs at once")
    batching: bool
    max_batch_size: int
    max_batch_wait_ms: float
    models: list[ModelSummary]
    skipped_model_files: dict[str, str] = Field(description="model files that failed to load, and why")
    auth: bool = Field(description="whether /v1/* requires an API key")


@router.get("/livez", response_model=Status, summary="Liveness: the process is up")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Status,
    summary="Readiness: every model loaded (or NEXPO_ALLOW_NO_MODELS), /v2 too, and the native core answers",
    responses=problem_responses(503),
)
async def readyz(gateway: GatewayDep) -> Any:
    reason = not_ready_reason(gateway)
    if reason is not None:
        return problem_response(503, reason)
    return {"status": "ok"}


@router.get(
    "/metrics",
    summary="Prometheus metrics (all workers when several run)",
    response_class=Response,
    responses={
        200: {
            "content": {
                CONTENT_TYPE_LATEST: {"schema": {"type": "string"}},
                OPENMETRICS: {"schema": {"type": "string"}},
            },
            "description": "Prometheus text format (OpenMetrics when the Accept header asks for it)",
        }
    },
)
async def metrics(request: Request) -> Response:
    from nexpo.metrics import exposition

    # file reads in multiprocess mode, not CPU work: anyio's default threads, not Gateway.run's limiter
    body, content_type = await anyio.to_thread.run_sync(exposition, request.headers.get("accept"))
    return Response(body, media_type=content_type)


@router.get(
    "/v1/info", response_model=Info, summary="Version, CPU paths, threads and models", responses=V1_ERRORS
)
async def info(gateway: GatewayDep) -> dict[str, Any]:
    import nexpo

    data = nexpo.info()
    settings = gateway.settings
    return {
        **{
            k: data[k] for k in ("version", "nim_version", "isa_active", "isa_available", "sha_ni", "threads")
        },
        "cpu_workers": settings.cpu_workers,
        "batching": settings.batching,
        "max_batch_size": settings.max_batch_size,
        "max_batch_wait_ms": settings.max_batch_wait_ms,
        "models": [
            {"name": m.name, "input_width": m.input_width, "labels": list(m.labels)}
            for m in gateway.registry.models.values()
        ],
        "skipped_model_files": gateway.registry.errors,
        "auth": not settings.auth_disabled,
    }


PONG = b'{"status":"ok"}'


@router.get(
    "/v1/ping",
    response_model=Status,
    summary="Check an API key: the cheapest authenticated call",
    responses=V1_ERRORS,
)
@served_by_hot_path
async def ping() -> Response:
    return Response(PONG, media_type="application/json")
