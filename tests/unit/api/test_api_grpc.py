"""The gRPC servicer in process (the app's lifespan starts it on the test client's event loop; a
grpc channel calls it): the checks every call passes and their status codes, the deadline cap,
the rate limit shared with REST, readiness, and the proto against tritonclient's descriptors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from fastapi.testclient import TestClient
from gateway_helpers import API_KEY, AUTH, make_settings
from nexpo.api.devserver import free_port
from nexpo.api.grpc_v2 import messages
from nexpo.api.grpc_v2.servicer import peer_identity
from nexpo.api.main import create_app

USER = (("x-api-key", API_KEY),)
ADMIN = (("authorization", "Bearer admin-key-0123"),)


class Client:
    """Blocking calls to the in-process server by method name."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel

    def __call__(self, method: str, request: Any = None, metadata: Any = USER, timeout: float = 10) -> Any:
        request_type, response_type = messages.method_types(method)
        call = self.channel.unary_unary(
            f"/{messages.SERVICE}/{method}",
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )
        return call(request if request is not None else request_type(), metadata=metadata, timeout=timeout)


def _code(exc: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    code: grpc.StatusCode = exc.value.code()  # type: ignore[attr-defined]
    return code


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Client]]:
    port = free_port()
    settings = make_settings(
        tmp_path,
        grpc_port=port,
        admin_api_keys="admin-key-0123",
        max_body_bytes=64 * 1024,
        max_infer_rows=16,
        request_timeout_s=0.5,
        rate_limit_rps=0.001,
        rate_limit_burst=20,
    )
    with TestClient(create_app(settings)) as http, grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield http, Client(channel)


def _infer_request(rows: int = 1, **fields: Any) -> Any:
    request = messages.ModelInferRequest(model_name="digits", **fields)
    request.inputs.add(name="INPUT", datatype="FP32", shape=[rows, 64])
    request.raw_input_contents.append(np.full((rows, 64), 0.5, dtype="<f4").tobytes())
    return request


def test_calls_and_their_status_codes(served: tuple[TestClient, Client]) -> None:
    _, call = served
    assert call("ServerLive", metadata=()).live
    assert call("ServerReady", metadata=()).ready
    with pytest.raises(grpc.RpcError) as missing:
        call("ServerMetadata", metadata=())
    assert _code(missing) == grpc.StatusCode.UNAUTHENTICATED
    assert call("ServerMetadata", metadata=ADMIN).name == "nexpo"  # an admin key is a key
    response = call("ModelInfer", _infer_request(3, id="r1"))
    assert (response.id, response.model_version, list(response.outputs[0].shape)) == ("r1", "1", [3, 10])
    probabilities = np.frombuffer(response.raw_output_contents[0], dtype="<f4").reshape(3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    for request, code in [
        (messages.ModelInferRequest(model_name="nope"), grpc.StatusCode.NOT_FOUND),
        (_infer_request(17), grpc.StatusCode.INVALID_ARGUMENT),  # over max_infer_rows
        (messages.ModelInferRequest(model_name="digits"), grpc.StatusCode.INVALID_ARGUMENT),  # no inputs
    ]:
        with pytest.raises(grpc.RpcError) as failed:
            call("ModelInfer", request)
        assert _code(failed) == code
    unload = messages.RepositoryModelUnloadRequest(model_name="digits")
    with pytest.raises(grpc.RpcError) as denied:
        call("RepositoryModelUnload", unload)
    assert _code(denied) == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as keyless:  # no key at all: unauthenticated, as over HTTP
        call("RepositoryModelUnload", unload, metadata=())
    assert _code(keyless) == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as repository:
        call("RepositoryIndex", messages.RepositoryIndexRequest(repository_name="other"))
    assert _code(repository) == grpc.StatusCode.NOT_FOUND


def test_a_malformed_message_is_invalid_argument(served: tuple[TestClient, Client]) -> None:
    _, call = served
    raw = served[1].channel.unary_unary(f"/{messages.SERVICE}/ModelInfer")  # bytes in, bytes out
    with pytest.raises(grpc.RpcError) as malformed:
        raw(b"\x0a\xff\xff\xff", metadata=USER, timeout=10)  # a length past the end of the message
    assert _code(malformed) == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid ModelInferRequest" in malformed.value.details()  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as unauthenticated:  # the key is checked first
        raw(b"\x0a\xff", metadata=(), timeout=10)
    assert _code(unauthenticated) == grpc.StatusCode.UNAUTHENTICATED
    assert call("ServerLive", metadata=()).live


def test_a_message_over_the_body_limit(served: tuple[TestClient, Client]) -> None:
    _, call = served
    with pytest.raises(grpc.RpcError) as big:
        call("ModelInfer", _infer_request(300))  # 300 x 64 x 4 bytes > 64 KiB
    assert _code(big) == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_the_deadline_is_capped_by_the_request_timeout(served: tuple[TestClient, Client]) -> None:
    http, call = served
    repository = http.app.state.gateway.repository  # type: ignore[attr-defined]

    async def stuck(*_: Any) -> Any:
        await asyncio.sleep(30)

    repository.infer = stuck  # the client allows 10 s; NEXPO_REQUEST_TIMEOUT_S is 0.5 s
    with pytest.raises(grpc.RpcError) as late:
        call("ModelInfer", _infer_request())
    assert _code(late) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "0.5 s" in late.value.details()  # type: ignore[attr-defined]


def test_the_rate_limit_is_shared_with_rest(served: tuple[TestClient, Client]) -> None:
    http, call = served
    for _ in range(10):  # half the burst over REST, half over gRPC: the same key, the same bucket
        assert http.get("/v2", headers=AUTH).status_code == 200
        call("ServerMetadata")
    with pytest.raises(grpc.RpcError) as limited:
        call("ServerMetadata")
    assert _code(limited) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert ("retry-after", "1000") in limited.value.trailing_metadata()  # type: ignore[attr-defined]
    assert http.get("/v2", headers=AUTH).status_code == 429
    assert call("ServerLive", metadata=()).live  # health stays open and unlimited


def test_readiness_is_one_decision(served: tuple[TestClient, Client]) -> None:
    http, call = served
    repository = http.app.state.gateway.repository  # type: ignore[attr-defined]
    repository.ready = lambda: False  # as after a model failed in the first scan
    assert http.get("/readyz").status_code == 503
    assert http.get("/v2/health/ready").status_code == 503
    assert not call("ServerReady", metadata=()).ready
    http.app.state.gateway.ready = False  # type: ignore[attr-defined]  # draining
    with pytest.raises(grpc.RpcError) as draining:
        call("ModelMetadata", messages.ModelMetadataRequest(name="digits"))
    assert _code(draining) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("peer", "identity"),
    [
        ("ipv4:127.0.0.1:5000", "ip-127.0.0.1"),
        ("ipv6:[::1]:5000", "ip-::1"),
        ("unix:/tmp/socket", "anonymous"),
    ],
)
def test_peer_identity_matches_rest(peer: str, identity: str) -> None:
    assert peer_identity(peer) == identity


def test_the_proto_matches_the_protocol_clients_send() -> None:
    """Every message, field number, type and cardinality as tritonclient's descriptors have them."""
    service_pb2 = pytest.importorskip("tritonclient.grpc.service_pb2")
    theirs = service_pb2.DESCRIPTOR

    def fields(message: Any) -> dict[str, tuple[Any, ...]]:
        return {
            f.name: (f.number, f.type, f.is_repeated, f.message_type and f.message_type.full_name)
            for f in message.fields
        }

    pairs = [
        (m, theirs.message_types_by_name[name]) for name, m in messages.FILE.message_types_by_name.items()
    ]
    checked = 0
    while pairs:
        ours, reference = pairs.pop()
        reference_fields = fields(reference)
        for name, spec in fields(ours).items():
            assert reference_fields.get(name) == spec, f"{ours.full_name}.{name}"
        pairs += [(n, reference.nested_types_by_name[n.name]) for n in ours.nested_types]
        checked += 1
    assert checked > 20
    service = theirs.services_by_name["GRPCInferenceService"]
    for method in messages.FILE.services_by_name["GRPCInferenceService"].methods:
        reference = service.methods_by_name[method.name]
        assert (method.input_type.full_name, method.output_type.full_name) == (
            reference.input_type.full_name,
            reference.output_type.full_name,
        )


def test_the_compiled_descriptor_is_fresh() -> None:
    pytest.importorskip("grpc_tools")
    from nexpo.api.grpc_v2 import protogen

    assert protogen.main(["--check"]) == 0
