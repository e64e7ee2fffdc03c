"""The ``GRPCInferenceService``: the v2 protocol over gRPC, on the same repository as ``/v2``.

Every call passes the REST gateway's checks, in its order: an API key (``x-api-key`` or
``authorization: Bearer`` metadata; ServerLive and ServerReady are open, like ``/v2/health``), the
rate limit keyed by the same identity, then a deadline (the client's, capped by
``NEXPO_REQUEST_TIMEOUT_S``). The REST handlers' domain code raises ``V2Error``; its HTTP status
becomes the gRPC status code the protocol gives it (``STATUS``), never UNKNOWN.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from prometheus_client import Counter

from nexpo.metrics import REGISTRY

from ..inference.batcher import BatcherClosed
from ..middleware.auth import find_key
from ..readiness import not_ready_reason
from ..routers.v2_inference import EXTENSIONS, check_inputs, find_version, parse_version, repository_of
from ..routers.v2_repository import load_everywhere, unload_everywhere
from ..state import Gateway
from ..v2.errors import V2Error
from ..v2.statistics import statistics
from . import messages, tensors

log = logging.getLogger("api.grpc")

STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
CALLS = Counter(
    "nexpo_grpc_requests", "gRPC calls answered, by method and status code", ["method", "code"],
    registry=REGISTRY,
)  # fmt: skip

_KEY_METADATA = frozenset(("x-api-key", "authorization"))  # all find_key looks at
Context = grpc.aio.ServicerContext[Any, Any]
Handler = Callable[[Any, Context], Awaitable[Any]]


def peer_identity(peer: str) -> str:
    """The rate-limit identity of a caller without a key: ``ip-<address>``, as over HTTP."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return "ip-" + rest.rpartition(":")[0]
    if kind == "ipv6":  # "ipv6:[::1]:5000" (percent-encoded)
        return "ip-" + rest.rpartition(":")[0].strip("[]").replace("%25", "%")
    return "anonymous"


class InferenceServicer:
    """The service's handlers, bound to one gateway (one per worker process)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    # --- the checks every call passes ------------------------------------------------------------

    def _identity(self, context: Context, *, open_call: bool, admin: bool) -> str | None:
        metadata = [(k.encode(), v if isinstance(v, bytes) else v.encode())
                    for k, v in (context.invocation_metadata() or ()) if k in _KEY_METADATA]  # fmt: skip
        candidate = find_key(metadata)
        key_id: str | None = None
        keys = self.gateway.api_keys
        if not open_call and keys is not None:  # first the key, as AuthMiddleware does over HTTP
            if candidate is None:
                raise V2Error(
                    401, "missing API key: send 'x-api-key: <key>' or 'authorization: Bearer <key>'"
                )
            key_id = keys.match(candidate)
            if key_id is None:
                raise V2Error(401, "invalid API key")
        if admin:
            admin_keys = self.gateway.admin_keys
            if admin_keys is None:
                raise V2Error(403, "repository control is disabled: set NEXPO_ADMIN_API_KEYS to allow it")
            if candidate is None or admin_keys.match(candidate) is None:
                raise V2Error(403, "loading and unloading models needs an admin API key")
        return key_id

    async def _rate_limit(self, identity: str, context: Context) -> None:
        buckets, shared = self.gateway.rate_buckets, self.gateway.shared_limits
        if buckets is None:
            return
        wait = buckets.take(identity) if shared is None else await shared.take(identity)
        if wait > 0.0:
            context.set_trailing_metadata((("retry-after", str(max(1, math.ceil(wait)))),))
            raise V2Error(429, "rate limit exceeded for this API key")

    def _deadline(self, context: Context) -> float:
        cap = self.gateway.settings.request_timeout_s
        remaining = context.time_remaining()
        return cap if remaining is None else min(cap, remaining)

    def handler(self, method: str, fn: Handler, *, open_call: bool = False, admin: bool = False) -> Any:
        request_type, response_type = messages.method_types(method)
        counters: dict[grpc.StatusCode, Any] = {}  # CALLS' children of this method, by code

        async def behavior(request: Any, context: Context) -> Any:
            code = grpc.StatusCode.OK
            try:
                key_id = self._identity(context, open_call=open_call, admin=admin)
                if isinstance(request, Malformed):
                    raise V2Error(400, f"the request is not a valid {request_type.__name__}: {request.why}")
                if not open_call:
                    await self._rate_limit(key_id or peer_identity(context.peer()), context)
                seconds = self._deadline(context)
                try:
                    async with asyncio.timeout(seconds):
                        return await fn(request, context)
                except TimeoutError:
                    raise V2Error(504, f"request not completed within {seconds:.3g} s") from None
            except V2Error as exc:
                code = STATUS.get(exc.status, grpc.StatusCode.INVALID_ARGUMENT)
                await context.abort(code, exc.message)
            except BatcherClosed as exc:
                code = grpc.StatusCode.UNAVAILABLE
                await context.abort(code, str(exc))
            except (asyncio.CancelledError, grpc.aio.AbortError):
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception:  # a bug: logged, answered INTERNAL (never UNKNOWN with a traceback)
                log.exception("gRPC %s failed", method)
                code = grpc.StatusCode.INTERNAL
                await context.abort(code, "internal error (see the server log)")
            finally:
                counter = counters.get(code)
                if counter is None:
                    counter = counters[code] = CALLS.labels(method, code.name)
                counter.inc()

        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=functools.partial(_parse, request_type),
            response_serializer=response_type.SerializeToString,
        )

    def generic_handler(self) -> grpc.GenericRpcHandler:
        handlers = {
            "ServerLive": self.handler("ServerLive", self.server_live, open_call=True),
            "ServerReady": self.handler("ServerReady", self.server_ready, open_call=True),
            "ModelReady": self.handler("ModelReady", self.model_ready),
            "ServerMetadata": self.handler("ServerMetadata", self.server_metadata),
            "ModelMetadata": self.handler("ModelMetadata", self.model_metadata),
            "ModelInfer": self.handler("ModelInfer", self.model_infer),
            "ModelStatistics": self.handler("ModelStatistics", self.model_statistics),
            "RepositoryIndex": self.handler("RepositoryIndex", self.repository_index),
            "RepositoryModelLoad": self.handler("RepositoryModelLoad", self.load, admin=True),
            "RepositoryModelUnload": self.handler("RepositoryModelUnload", self.unload, admin=True),
        }
        return grpc.method_handlers_generic_handler(messages.SERVICE, handlers)

    # --- the calls ------------------------------------------------------------------------------

    async def server_live(self, _: Any, __: Context) -> Any:
        return messages.ServerLiveResponse(live=True)

    async def server_ready(self, _: Any, __: Context) -> Any:
        return messages.ServerReadyResponse(ready=not_ready_reason(self.gateway) is None)

    async def model_ready(self, request: Any, _: Context) -> Any:
        try:
            find_version(self.gateway, request.name, request.version or None)
        except V2Error as exc:
            if exc.status == 400:
                raise
            return messages.ModelReadyResponse(ready=False)  # unknown or not loaded: not ready
        return messages.ModelReadyResponse(ready=True)

    async def server_metadata(self, _: Any, __: Context) -> Any:
        import nexpo

        return messages.ServerMetadataResponse(name="nexpo", version=nexpo.__version__, extensions=EXTENSIONS)

    async def model_metadata(self, request: Any, _: Context) -> Any:
        model = find_version(self.gateway, request.name, request.version or None)
        entry = repository_of(self.gateway).models[request.name]
        response = messages.ModelMetadataResponse(
            name=request.name,
            versions=[str(v) for v in sorted(entry.versions)],
            platform=model.backend.platform,
        )
        for specs, field in (
            (model.backend.inputs, response.inputs),
            (model.backend.outputs, response.outputs),
        ):
            for spec in specs:
                field.add(name=spec.name, datatype=spec.datatype, shape=list(spec.shape))
        return response

    async def model_infer(self, request: Any, _: Context) -> Any:
        gateway = self.gateway
        model = find_version(gateway, request.model_name, request.model_version or None)
        with model.hold():  # a version retired meanwhile still serves this request
            metrics = model.metrics
            started = time.perf_counter()
            try:
                decode = functools.partial(
                    tensors.decode_request, max_elements=gateway.settings.max_body_bytes
                )
                decoded = await gateway.run(decode, request, cost=request.ByteSize())
                check_inputs(model, decoded, gateway.settings.max_infer_rows)
                decoded_at = time.perf_counter()
                outputs = await gateway.repository.infer(model, decoded.inputs)
                inferred_at = time.perf_counter()
                args = (request.model_name, str(model.version), decoded, outputs)
                cost = sum(a.nbytes for a in outputs.values())
                response = await gateway.run(tensors.encode_response, *args, cost=cost)
            except (V2Error, BatcherClosed):
                metrics.failed(time.perf_counter() - started)
                raise
            done = time.perf_counter()
            metrics.succeeded(done - started, decoded_at - started, done - inferred_at)
            return response

    async def model_statistics(self, request: Any, _: Context) -> Any:
        version = parse_version(request.version) if request.name else None
        stats = statistics(repository_of(self.gateway), request.name, version)
        return json_format.ParseDict(stats, messages.ModelStatisticsResponse(), ignore_unknown_fields=True)

    async def repository_index(self, request: Any, _: Context) -> Any:
        _one_repository(request.repository_name)
        rows = repository_of(self.gateway).index()
        response = messages.RepositoryIndexResponse()
        for row in rows:
            if not request.ready or row["state"] == "READY":
                response.models.add(
                    name=row["name"], version=row.get("version", ""), state=row["state"], reason=row["reason"]
                )
        return response

    async def load(self, request: Any, _: Context) -> Any:
        _one_repository(request.repository_name)
        if request.parameters:
            raise V2Error(400, "load parameters (config or file overrides) are not supported")
        await load_everywhere(self.gateway, request.model_name)
        return messages.RepositoryModelLoadResponse()

    async def unload(self, request: Any, _: Context) -> Any:
        _one_repository(request.repository_name)
        await unload_everywhere(self.gateway, request.model_name)
        return messages.RepositoryModelUnloadResponse()


@dataclass(frozen=True)
class Malformed:
    """A request message that did not parse: answered INVALID_ARGUMENT (grpc would say INTERNAL)."""

    why: str


def _parse(request_type: Any, data: bytes) -> Any:
    try:
        return request_type.FromString(data)
    except DecodeError as exc:
        return Malformed(str(exc) or "malformed protobuf")


def _one_repository(name: str) -> None:
    if name:
        raise V2Error(404, f"unknown repository {name[:64]!r}: this server has one, named ''")
