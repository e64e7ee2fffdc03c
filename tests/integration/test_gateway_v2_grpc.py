"""The Open Inference Protocol over gRPC driven by the real Triton gRPC client
(``tritonclient.grpc``) against a real ``nexpo serve`` on loopback ports: health, metadata, infer
(raw bytes, and typed ``contents`` through the client's own stub), versions, load/unload, auth,
a message over the size limit, a deadline, and the REST and gRPC answers agreeing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from nexpo.api.devserver import GatewayProcess, free_port
from nexpo.api.settings import DEFAULT_MODELS_DIR

grpcclient = pytest.importorskip("tritonclient.grpc")
import grpc  # noqa: E402
from tritonclient.grpc import service_pb2  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

KEY = "grpc-user-key"
ADMIN = "grpc-admin-key"
MAX_BODY = 256 * 1024
DIGITS = DEFAULT_MODELS_DIR / "digits.safetensors"
USER = {"x-api-key": KEY}


def _version(repository: Path, name: str, version: int) -> None:
    directory = repository / name / str(version)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DIGITS, directory / "model.safetensors")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("grpc")
    repository = tmp / "repository"
    _version(repository, "mlp", 1)
    (repository / "mlp" / "config.json").write_text(json.dumps({"max_batch_size": 64}))
    for v in (1, 2):
        _version(repository, "multi", v)
    (repository / "multi" / "config.json").write_text(json.dumps({"version_policy": {"all": {}}}))
    _version(repository, "spare", 1)
    env = {
        "NEXPO_API_KEYS": KEY,
        "NEXPO_ADMIN_API_KEYS": ADMIN,
        "NEXPO_STATE_DIR": str(tmp / "state"),
        "NEXPO_MODEL_REPOSITORY": str(repository),
        "NEXPO_REPOSITORY_POLL_S": "0",
        "NEXPO_MAX_BODY_BYTES": str(MAX_BODY),
        "NEXPO_RATE_LIMIT_RPS": "0",
        "NEXPO_GRPC_PORT": str(free_port()),
    }
    with GatewayProcess(env, log_path=tmp / "server.log") as process:
        process.grpc_address = f"127.0.0.1:{env['NEXPO_GRPC_PORT']}"  # type: ignore[attr-defined]
        yield process


@pytest.fixture(scope="module")
def client(server: GatewayProcess) -> Iterator[grpcclient.InferenceServerClient]:
    c = grpcclient.InferenceServerClient(server.grpc_address)  # type: ignore[attr-defined]
    yield c
    c.close()


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(n).random((n, 64), dtype=np.float32) * 16


def _infer(client: grpcclient.InferenceServerClient, name: str, x: np.ndarray, **kw: object) -> np.ndarray:
    tensor = grpcclient.InferInput("INPUT", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    result = client.infer(name, [tensor], headers=USER, **kw)  # type: ignore[arg-type]
    out: np.ndarray = result.as_numpy("PROBABILITIES")
    return out


def _code(exc: pytest.ExceptionInfo[InferenceServerException]) -> str:
    return str(exc.value.status())


def test_health_is_open_and_the_rest_needs_a_key(client: grpcclient.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    with pytest.raises(InferenceServerException, match="missing API key") as missing:
        client.get_server_metadata()
    assert _code(missing) == "StatusCode.UNAUTHENTICATED"
    with pytest.raises(InferenceServerException, match="invalid API key") as wrong:
        client.get_model_metadata("mlp", headers={"x-api-key": "wrong"})
    assert _code(wrong) == "StatusCode.UNAUTHENTICATED"
    assert client.is_model_ready("mlp", headers={"authorization": f"Bearer {KEY}"})
    assert not client.is_model_ready("nope", headers=USER)


def test_metadata(client: grpcclient.InferenceServerClient) -> None:
    server = client.get_server_metadata(headers=USER)
    assert server.name == "nexpo"
    assert "binary_tensor_data" in server.extensions
    meta = client.get_model_metadata("mlp", headers=USER)
    assert (meta.inputs[0].name, meta.inputs[0].datatype, list(meta.inputs[0].shape)) == (
        "INPUT",
        "FP32",
        [-1, 64],
    )
    assert meta.outputs[0].name == "PROBABILITIES"
    assert meta.platform == "nexpo_mlp"
    assert list(client.get_model_metadata("multi", headers=USER).versions) == ["1", "2"]
    with pytest.raises(InferenceServerException, match="unknown model") as unknown:
        client.get_model_metadata("nope", headers=USER)
    assert _code(unknown) == "StatusCode.NOT_FOUND"


def test_infer_raw_matches_rest(server: GatewayProcess, client: grpcclient.InferenceServerClient) -> None:
    x = _rows(5)
    probabilities = _infer(client, "mlp", x, request_id="req-7")
    assert probabilities.shape == (5, 10)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)
    body = {"inputs": [{"name": "INPUT", "datatype": "FP32", "shape": [5, 64], "data": x.ravel().tolist()}]}
    rest = httpx.post(f"{server.url}/v2/models/mlp/infer", json=body, headers=USER, timeout=30).json()
    np.testing.assert_allclose(probabilities.ravel(), rest["outputs"][0]["data"], rtol=1e-6)


def test_infer_typed_contents(server: GatewayProcess, client: grpcclient.InferenceServerClient) -> None:
    """Typed ``contents`` in (the client's generated stub, no raw bytes): typed contents back."""
    x = _rows(2)
    request = service_pb2.ModelInferRequest(model_name="mlp", id="typed")
    tensor = request.inputs.add(name="INPUT", datatype="FP32", shape=[2, 64])
    tensor.contents.fp32_contents.extend(x.ravel().tolist())
    with grpc.insecure_channel(server.grpc_address) as channel:  # type: ignore[attr-defined]
        call = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=service_pb2.ModelInferRequest.SerializeToString,
            response_deserializer=service_pb2.ModelInferResponse.FromString,
        )
        response = call(request, metadata=tuple(USER.items()), timeout=30)
    assert response.id == "typed"
    assert not response.raw_output_contents
    typed = np.array(response.outputs[0].contents.fp32_contents, dtype=np.float32).reshape(2, 10)
    np.testing.assert_allclose(typed, _infer(client, "mlp", x), rtol=1e-6)


def test_versions(client: grpcclient.InferenceServerClient) -> None:
    x = _rows(1)
    for version in ("1", "2", ""):
        assert _infer(client, "multi", x, model_version=version).shape == (1, 10)
    with pytest.raises(InferenceServerException, match="unknown version 3") as missing:
        _infer(client, "multi", x, model_version="3")
    assert _code(missing) == "StatusCode.NOT_FOUND"
    with pytest.raises(InferenceServerException, match="positive integer") as bad:
        _infer(client, "multi", x, model_version="v1")
    assert _code(bad) == "StatusCode.INVALID_ARGUMENT"


def test_bad_inputs_are_invalid_argument(client: grpcclient.InferenceServerClient) -> None:
    tensor = grpcclient.InferInput("INPUT", [1, 63], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 63), dtype=np.float32))
    with pytest.raises(InferenceServerException, match="shape") as shape:
        client.infer("mlp", [tensor], headers=USER)
    assert _code(shape) == "StatusCode.INVALID_ARGUMENT"
    wrong = grpcclient.InferInput("INPUT", [1, 64], "FP64")
    wrong.set_data_from_numpy(np.zeros((1, 64), dtype=np.float64))
    with pytest.raises(InferenceServerException, match="must be FP32") as dtype:
        client.infer("mlp", [wrong], headers=USER)
    assert _code(dtype) == "StatusCode.INVALID_ARGUMENT"


def test_too_large_a_message_is_resource_exhausted(client: grpcclient.InferenceServerClient) -> None:
    rows = MAX_BODY // (64 * 4) + 1
    with pytest.raises(InferenceServerException) as big:
        _infer(client, "mlp", np.zeros((rows, 64), dtype=np.float32))
    assert _code(big) == "StatusCode.RESOURCE_EXHAUSTED"
    assert client.is_server_live()  # and the server serves on


def test_a_deadline(client: grpcclient.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as late:
        _infer(client, "mlp", _rows(64), client_timeout=1e-4)
    assert _code(late) == "StatusCode.DEADLINE_EXCEEDED"
    assert _infer(client, "mlp", _rows(1), client_timeout=30).shape == (1, 10)


def test_load_unload_need_an_admin_key(client: grpcclient.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match="admin API key") as denied:
        client.unload_model("spare", headers=USER)
    assert _code(denied) == "StatusCode.PERMISSION_DENIED"
    admin = {"authorization": f"Bearer {ADMIN}"}
    client.unload_model("spare", headers=admin)
    assert not client.is_model_ready("spare", headers=USER)
    index = client.get_model_repository_index(headers=USER)
    assert {(m.name, m.state) for m in index.models} >= {("spare", "UNAVAILABLE"), ("mlp", "READY")}
    with pytest.raises(InferenceServerException) as gone:
        _infer(client, "spare", _rows(1))
    assert _code(gone) == "StatusCode.NOT_FOUND"
    client.load_model("spare", headers=admin)
    assert client.is_model_ready("spare", headers=USER)
    assert _infer(client, "spare", _rows(1)).shape == (1, 10)
    with pytest.raises(InferenceServerException, match="no model") as unknown:
        client.load_model("nope", headers=admin)
    assert _code(unknown) == "StatusCode.NOT_FOUND"


def test_readiness_is_one_decision(server: GatewayProcess, client: grpcclient.InferenceServerClient) -> None:
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    assert httpx.get(f"{server.url}/v2/health/ready", timeout=10).status_code == 200
    assert client.is_server_ready()


def test_a_taken_grpc_port_stops_a_single_worker_gateway(server: GatewayProcess, tmp_path: Path) -> None:
    """Without SO_REUSEPORT (one worker), a second gateway does not silently share the port."""
    port = server.grpc_address.rpartition(":")[2]  # type: ignore[attr-defined]
    env = {"NEXPO_STATE_DIR": str(tmp_path / "state"), "NEXPO_GRPC_PORT": port}
    with pytest.raises(RuntimeError, match="exited"), GatewayProcess(env, log_path=tmp_path / "log"):
        pass
    assert "cannot serve gRPC" in (tmp_path / "log").read_text()


def test_every_worker_serves_the_grpc_port(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "NEXPO_STATE_DIR": str(tmp_path / "state"),
        "NEXPO_API_KEYS": KEY,
        "NEXPO_WORKERS": "2",
        "NEXPO_GRPC_PORT": str(port),
    }
    with GatewayProcess(env, log_path=tmp_path / "log"):
        for _ in range(8):  # a new connection each time: the kernel spreads them over the workers
            c = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
            try:
                assert _infer(c, "digits", _rows(1)).shape == (1, 10)
            finally:
                c.close()
    log = (tmp_path / "log").read_text()
    assert log.count("gRPC (Open Inference Protocol v2) on") == 2, log[-2000:]
