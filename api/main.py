"""The application factory and its lifespan.

Middleware, outermost first (all pure ASGI)::

    [root path] → [OpenTelemetry] → [hot lane] → metrics → /v2 error shape → traceparent → timeout
        → auth → rate limit → body limit → hot paths (v2 infer; v1 infer, hash, ping) → FastAPI routes

so metrics count every answer (401/413/429/504 too) and the deadline covers everything after it.
The hot lane (api/hot_lane.py) answers the hot paths' admissible requests itself, making the same
checks as plain calls; everything else goes down the chain.
Routers' routes are added to the app directly (see ``create_app``).
"""

from __future__ import annotations

import gc
import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.responses import Response

from . import workers
from .deps import BODY_MODELS
from .fastpath import HotPathMiddleware, HotRoute
from .grpc_v2 import server as grpc_server
from .hot_lane import HotLane
from .inference import MicroBatcher, ModelRegistry
from .middleware import (
    ApiKeys,
    AuthMiddleware,
    BodyLimitMiddleware,
    MetricsMiddleware,
    RateLimitMiddleware,
    TimeoutMiddleware,
    TraceparentMiddleware,
)
from .middleware.auth import resolve_keys
from .middleware.rate_limit import TokenBuckets
from .middleware.root_path import RootPathMiddleware
from .middleware.shared_rate_limit import shared_buckets
from .problems import Problem, install_handlers
from .repository import service as repository_service
from .routers import hash, health, hmac, matmul, merkle, models, transit, v2_inference, v2_repository
from .routers.matmul import MatmulRequest
from .safe_files import describe_os_error
from .settings import Settings
from .state import Gateway
from .telemetry import tracing_middleware
from .transit import KeyringFile, ensure_default_keys_file
from .v2 import schemas as v2_schemas
from .v2.errors import V2Error, V2ErrorShapeMiddleware, error_response
from .v2.hot_infer import V2InferMiddleware

log = logging.getLogger("api")


async def _ping(_: Gateway, __: bytes, ___: dict[str, str]) -> bytes:
    return health.PONG


# Answered by pure-ASGI code calling the routes' own functions; their FastAPI routes, marked
# @served_by_hot_path, only document them (see api/fastpath.py).
HOT_ROUTES = (
    HotRoute(
        "POST",
        "/v1/models/{name}/infer",
        lambda g, body, p: models.infer_json(g, body, p["name"]),
        budget=lambda g, p: models.infer_limits(g, p["name"]),  # 404/422 before the body is all in
    ),
    HotRoute(
        "POST",
        "/v1/hash",
        lambda g, body, _: hash.hash_json(g, body),
        budget=lambda g, _: hash.hash_limits(g),
    ),
    HotRoute("GET", "/v1/ping", _ping, reads_body=False),
)


def _warm(gateway: Gateway) -> None:
    """Load the models and push one row through each, so the first request pays no first-call cost."""
    import numpy as np

    import nexpo

    nexpo.info()  # the native core answers
    registry = ModelRegistry.scan(gateway.settings.models_dir)
    for name, model in list(registry.models.items()):
        try:
            model.forward(np.zeros((1, model.input_width), dtype=np.float32))
        except Exception as exc:  # a model that cannot run is reported and skipped like a bad file
            del registry.models[name]
            registry.errors[model.path.name if model.path else name] = f"warm-up failed: {exc}"
            log.error("skipping model %s: warm-up failed: %s", name, exc)
    gateway.registry = registry


def _open_keyring(gateway: Gateway) -> None:
    """An unusable keys file is logged by ``KeyringFile`` and answered with 503 until it is fixed."""
    settings = gateway.settings
    try:
        path = settings.transit_keys_file or ensure_default_keys_file(settings.state_dir)
    except (OSError, ValueError) as exc:  # the state directory cannot hold a generated keys file
        detail = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        gateway.keyring_error = f"cannot create the default keys file: {detail}"  # no path: it is sent
        log.error("transit keys unavailable (%s); /v1/transit answers 503", exc)
        return
    gateway.keyring = KeyringFile(path)
    if gateway.keyring.loaded:
        names = ", ".join(sorted(gateway.keyring.current().keys)) or "none"
        log.info("transit keys from %s: %s", path, names)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    gateway: Gateway = app.state.gateway
    settings = gateway.settings
    await anyio.to_thread.run_sync(_open_keyring, gateway)
    await anyio.to_thread.run_sync(_warm, gateway)
    if gateway.shared_limits is not None:  # never blocks readiness: Redis down means local limits
        await gateway.shared_limits.start()
    if settings.batching:
        for model in gateway.registry.models.values():
            batcher = MicroBatcher(
                model,
                gateway.run,
                max_batch_size=settings.max_batch_size,
                max_wait_s=settings.max_batch_wait_ms / 1000,
                max_concurrent=settings.cpu_workers,
            )
            batcher.start()
            gateway.batchers[model.name] = batcher
    repository_tasks = await repository_service.start(gateway)
    grpc = await grpc_server.start(gateway)  # the v2 protocol over gRPC, on this event loop
    # What is loaded now (the app, models, libraries) lives as long as the process: out of the
    # collector's sight, a full collection scans only what requests allocate (unfrozen, it walked
    # the whole heap every ~0.5 s under load and stalled every request in flight for ~100 ms).
    gc.collect()
    gc.freeze()
    gateway.ready = True
    log.info("ready: models %s", ", ".join(sorted(gateway.registry.models)) or "none")
    try:
        yield
    finally:
        gateway.ready = False  # uvicorn has drained in-flight requests by the time this runs
        await grpc_server.stop(grpc, settings.graceful_shutdown_s)
        for batcher in gateway.batchers.values():
            await batcher.close()
        gateway.batchers.clear()
        if gateway.shared_limits is not None:
            await gateway.shared_limits.aclose()
        await repository_service.stop(gateway, repository_tasks)
        if gateway.tracer_provider is not None:  # export the spans still buffered
            await anyio.to_thread.run_sync(gateway.tracer_provider.shutdown)
        workers.retire()  # several workers: this one's live gauges leave the shared metrics


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        body_models: list[type[BaseModel]] = [MatmulRequest, *BODY_MODELS, *v2_schemas.BODY_MODELS]
        for model in body_models:
            body_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body_schema.pop("$defs", {}))
            components[model.__name__] = body_schema
        schema["components"].setdefault("securitySchemes", {}).update(
            {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            }
        )
        for path, operations in schema["paths"].items():
            if path.startswith(("/v1/", "/v2")) and not path.startswith("/v2/health/"):
                for operation in operations.values():
                    operation["security"] = [{"ApiKeyHeader": []}, {"Bearer": []}]
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: Settings | None = None, *, fast_paths: bool = True) -> FastAPI:
    """Build the gateway; ``settings`` default to the environment (``NEXPO_*``).

    ``fast_paths=False`` serves the hot operations through their FastAPI routes too (the tests
    check that both give the same answers)."""
    import nexpo

    settings = settings or Settings()
    workers.watch_supervisor()  # a uvicorn worker stops when its supervisor dies
    source = resolve_keys(settings.configured_keys, settings.auth_disabled, settings.state_dir)
    keys = ApiKeys(source.keys) if source is not None else None
    if source is not None:
        log.info("API keys required on /v1/* (%d key(s) from %s)", len(source.keys), source.origin)
    admin = settings.admin_keys
    if keys is not None and admin:  # an admin key is a key: it passes AuthMiddleware too
        keys = ApiKeys((*source.keys, *admin))  # type: ignore[union-attr]

    extra: dict[str, Any] = {}
    if "telemetry" in inspect.signature(FastAPI).parameters:
        # FastAPI >= 0.16x has built-in OpenTelemetry hooks that check provider state on every
        # request; tracing here is api/telemetry.py's job (on only with an OTLP endpoint).
        extra["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(
        title="nexpo gateway",
        version=nexpo.__version__,
        description="Model inference with dynamic batching and processing endpoints over nexpo's Nim core.",
        lifespan=lifespan,
        **extra,
    )
    app.state.gateway = Gateway.create(settings)
    install_handlers(app)
    app.state.gateway.admin_keys = ApiKeys(admin) if admin else None

    async def v2_error(_: object, exc: Exception) -> Response:
        assert isinstance(exc, V2Error)
        return error_response(exc.status, exc.message)

    app.add_exception_handler(V2Error, v2_error)
    # The routers' routes already carry their prefix, tags and error responses. Adding them to the
    # app directly keeps route matching to one flat pass: FastAPI's include_router nests a router
    # layer that matches every request twice (it halved /v1/ping throughput in the load benchmark).
    for module in (models, hash, health, hmac, merkle, matmul, transit):  # hot routes first
        app.router.routes.extend(module.router.routes)
    for v2 in (v2_inference.open_router, v2_inference.router, v2_repository.router):
        app.router.routes.extend(v2.routes)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    # add_middleware wraps: the last added is the outermost.
    if fast_paths:
        app.add_middleware(
            HotPathMiddleware, gateway=app.state.gateway, hot=HOT_ROUTES, routes=app.router.routes
        )
        app.add_middleware(V2InferMiddleware, gateway=app.state.gateway, routes=app.router.routes)
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_body_bytes,
        per_path={"/v1/hash/stream": settings.max_stream_bytes},
    )
    app.state.gateway.shared_limits = shared_buckets(settings)
    app.state.gateway.api_keys = keys
    if settings.rate_limit_rps > 0:
        app.state.gateway.rate_buckets = TokenBuckets(settings.rate_limit_rps, settings.rate_limit_burst)
    app.add_middleware(
        RateLimitMiddleware,
        buckets=app.state.gateway.rate_buckets,
        rate=settings.rate_limit_rps,
        burst=settings.rate_limit_burst,
        shared=app.state.gateway.shared_limits,
        prefix=("/v1/", "/v2"),
        open_prefixes=("/v2/health/",),
    )
    app.add_middleware(AuthMiddleware, keys=keys, prefix=("/v1/", "/v2"), open_prefixes=("/v2/health/",))
    app.add_middleware(
        TimeoutMiddleware,
        seconds=settings.request_timeout_s,
        per_path={"/v1/hash/stream": settings.stream_timeout_s},
    )
    tracing = tracing_middleware(settings)
    app.add_middleware(TraceparentMiddleware, use_otel=tracing is not None)
    app.add_middleware(V2ErrorShapeMiddleware)  # /v2 answers {"error": ...}, from middleware too
    app.add_middleware(MetricsMiddleware)
    if fast_paths and tracing is None and not settings.root_path:  # those must see every request first
        app.add_middleware(
            HotLane,
            gateway=app.state.gateway,
            hot=HOT_ROUTES,
            routes=app.router.routes,
            keys=keys,
            max_body_bytes=settings.max_body_bytes,
            timeout_s=settings.request_timeout_s,
            buckets=app.state.gateway.rate_buckets if settings.rate_limit_rps > 0 else None,
            shared=app.state.gateway.shared_limits,
        )
    if tracing is not None:
        app.add_middleware(tracing[0], **tracing[1])
        app.state.gateway.tracer_provider = tracing[1]["tracer_provider"]
    if settings.root_path:  # outermost: everything inside sees the app's own paths
        app.add_middleware(RootPathMiddleware, root_path=settings.root_path)
    return app
