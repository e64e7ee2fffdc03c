"""The Open Inference Protocol driven by the real Triton HTTP client (``tritonclient.http``)
against a real gateway on a loopback port: health, metadata, JSON and binary tensors, versions,
load/unload, auth, and a new version rolled in by copying it into the repository."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from nexpo.api.devserver import GatewayProcess
from nexpo.api.settings import DEFAULT_MODELS_DIR

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

KEY = "v2-user-key"
ADMIN = "v2-admin-key"
POLL_S = 0.5
DIGITS = DEFAULT_MODELS_DIR / "digits.safetensors"


def _version(repository: Path, name: str, version: int) -> None:
    directory = repository / name / str(version)
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / ".model.safetensors.tmp"  # copied in, then renamed: the poller sees a whole file
    shutil.copyfile(DIGITS, staging)
    staging.rename(directory / "model.safetensors")


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repository")
    _version(root, "mlp", 1)
    (root / "mlp" / "config.json").write_text(
        json.dumps({"max_batch_size": 64, "dynamic_batching": {"max_queue_delay_us": 500}})
    )
    for v in (1, 2):
        _version(root, "multi", v)
    (root / "multi" / "config.json").write_text(json.dumps({"version_policy": {"all": {}}}))
    _version(root, "rolling", 1)
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, repository: Path) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("v2")
    env = {
        "NEXPO_API_KEYS": KEY,
        "NEXPO_ADMIN_API_KEYS": ADMIN,
        "NEXPO_STATE_DIR": str(tmp / "state"),
        "NEXPO_MODEL_REPOSITORY": str(repository),
        "NEXPO_REPOSITORY_POLL_S": str(POLL_S),
        "NEXPO_MAX_BODY_BYTES": str(1024 * 1024),
        "NEXPO_RATE_LIMIT_RPS": "0",
    }
    with GatewayProcess(env, log_path=tmp / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def client(server: GatewayProcess) -> Iterator[httpclient.InferenceServerClient]:
    url = server.url.removeprefix("http://")
    c = httpclient.InferenceServerClient(url, concurrency=4, network_timeout=30)
    yield c
    c.close()


def user() -> dict[str, str]:
    return {"X-API-Key": KEY}


ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(n).random((n, 64), dtype=np.float32) * 16


def _infer(
    client: httpclient.InferenceServerClient,
    name: str,
    x: np.ndarray,
    *,
    binary: bool = True,
    version: str = "",
    request_id: str = "",
) -> httpclient.InferResult:
    tensor = httpclient.InferInput("INPUT", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    outputs = [httpclient.InferRequestedOutput("PROBABILITIES", binary_data=binary)]
    return client.infer(
        name, [tensor], model_version=version, outputs=outputs, headers=user(), request_id=request_id
    )


def test_health_is_open_and_the_rest_needs_a_key(client: httpclient.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    with pytest.raises(InferenceServerException, match="API key"):
        client.get_server_metadata()
    with pytest.raises(InferenceServerException, match="invalid API key"):
        client.get_model_metadata("mlp", headers={"X-API-Key": "wrong"})
    assert client.is_model_ready("mlp", headers=user())
    assert not client.is_model_ready("nope", headers=user())


def test_metadata(client: httpclient.InferenceServerClient) -> None:
    server = client.get_server_metadata(headers=user())
    assert server["name"] == "nexpo"
    assert "binary_tensor_data" in server["extensions"]
    meta = client.get_model_metadata("mlp", headers=user())
    assert meta["inputs"] == [{"name": "INPUT", "datatype": "FP32", "shape": [-1, 64]}]
    assert meta["outputs"][0]["name"] == "PROBABILITIES"
    assert meta["platform"] == "nexpo_mlp"
    assert client.get_model_metadata("multi", headers=user())["versions"] == ["1", "2"]
    config = client.get_model_config("mlp", headers=user())
    assert config["max_batch_size"] == 64
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 500


@pytest.mark.parametrize("binary", [True, False])
def test_infer_json_and_binary_tensors(client: httpclient.InferenceServerClient, binary: bool) -> None:
    x = _rows(5)
    result = _infer(client, "mlp", x, binary=binary, request_id="req-7")
    probabilities = result.as_numpy("PROBABILITIES")
    assert probabilities.shape == (5, 10)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)
    response = result.get_response()
    assert response["id"] == "req-7"
    assert response["model_name"] == "mlp"


def test_binary_and_json_agree_and_all_outputs_by_default(client: httpclient.InferenceServerClient) -> None:
    x = _rows(3)
    a = _infer(client, "mlp", x, binary=True).as_numpy("PROBABILITIES")
    b = _infer(client, "mlp", x, binary=False).as_numpy("PROBABILITIES")
    np.testing.assert_allclose(a, b, rtol=1e-6)
    tensor = httpclient.InferInput("INPUT", [3, 64], "FP32")
    tensor.set_data_from_numpy(x)
    c = client.infer("mlp", [tensor], headers=user()).as_numpy("PROBABILITIES")  # no outputs: all, binary
    np.testing.assert_allclose(a, c, rtol=1e-6)


def test_concurrent_requests_are_batched(client: httpclient.InferenceServerClient) -> None:
    pending = []
    for i in range(64):  # the client's own concurrency (gevent: one client is not for several threads)
        tensor = httpclient.InferInput("INPUT", [1 + i % 4, 64], "FP32")
        tensor.set_data_from_numpy(_rows(1 + i % 4))
        pending.append(client.async_infer("mlp", [tensor], headers=user()))
    results = [p.get_result(timeout=30) for p in pending]
    assert all(r.as_numpy("PROBABILITIES").shape[0] == 1 + i % 4 for i, r in enumerate(results))


def test_versions(client: httpclient.InferenceServerClient) -> None:
    for version in ("1", "2"):
        assert client.is_model_ready("multi", version, headers=user())
        result = _infer(client, "multi", _rows(2), version=version)
        assert result.get_response()["model_version"] == version
    assert _infer(client, "multi", _rows(2)).get_response()["model_version"] == "2"  # latest
    with pytest.raises(InferenceServerException, match="unknown version 3"):
        _infer(client, "multi", _rows(2), version="3")


def test_bad_requests_are_protocol_errors(client: httpclient.InferenceServerClient) -> None:
    tensor = httpclient.InferInput("INPUT", [2, 64], "FP64")
    tensor.set_data_from_numpy(np.zeros((2, 64)))
    with pytest.raises(InferenceServerException, match="must be FP32"):
        client.infer("mlp", [tensor], headers=user())
    with pytest.raises(InferenceServerException, match="unknown model"):
        _infer(client, "nope", _rows(1))
    with pytest.raises(InferenceServerException, match="exceeds the limit of 64"):
        _infer(client, "mlp", _rows(65))


def test_load_unload_need_an_admin_key(client: httpclient.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match="admin API key"):
        client.unload_model("multi", headers=user())
    client.unload_model("multi", headers=ADMIN_HEADERS)
    assert not client.is_model_ready("multi", headers=user())
    time.sleep(POLL_S * 3)  # an unload sticks: the poller does not bring it back
    assert not client.is_model_ready("multi", headers=user())
    index = client.get_model_repository_index(headers=user())
    assert {"name": "multi", "state": "UNAVAILABLE", "reason": "unloaded"} in index
    client.load_model("multi", headers=ADMIN_HEADERS)
    assert client.is_model_ready("multi", "1", headers=user())
    with pytest.raises(InferenceServerException, match="no model 'ghost'"):
        client.load_model("ghost", headers=ADMIN_HEADERS)


def test_a_broken_model_is_reported_and_the_others_serve(
    client: httpclient.InferenceServerClient, repository: Path
) -> None:
    broken = repository / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    try:
        deadline = time.monotonic() + 30
        row: dict[str, str] = {}
        while not row and time.monotonic() < deadline:
            index = client.get_model_repository_index(headers=user())
            row = next((r for r in index if r["name"] == "broken"), {})
            time.sleep(0.05)
        # a model that breaks after startup is reported, and takes no pod out of rotation
        assert client.is_server_ready()
        assert row["state"] == "UNAVAILABLE"
        assert "safetensors" in row["reason"]
        assert not client.is_model_ready("broken", headers=user())
        assert _infer(client, "mlp", _rows(1)).as_numpy("PROBABILITIES").shape == (1, 10)
    finally:
        shutil.rmtree(repository / "broken")


def test_a_new_version_rolls_in_without_dropping_requests(
    server: GatewayProcess, client: httpclient.InferenceServerClient, repository: Path
) -> None:
    stop = threading.Event()
    versions: list[str] = []
    errors: list[BaseException] = []

    def load() -> None:
        own = httpclient.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=30)
        try:
            while not stop.is_set():
                try:
                    versions.append(_infer(own, "rolling", _rows(2)).get_response()["model_version"])
                except BaseException as exc:
                    errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        _version(repository, "rolling", 2)
        copied = time.monotonic()
        while time.monotonic() - copied < 30 and (not versions or versions[-1] != "2"):
            time.sleep(0.02)
        served_after = time.monotonic() - copied
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors, [str(e) for e in errors[:3]]
    assert versions[0] == "1" and versions[-1] == "2"
    # one poll interval, plus generous room for a loaded machine (a hardening bound, not a speed claim)
    assert served_after < POLL_S + 5, served_after
    assert not client.is_model_ready("rolling", "1", headers=user())  # latest-1 policy: v1 retired
