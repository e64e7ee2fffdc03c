"""Load and unload act on every worker process: with ``NEXPO_WORKERS=2`` a request reaches one
worker, and the other follows its decision within one poll interval (api/repository/decisions.py).
Every check opens fresh connections, so both workers answer some of them (over HTTP they accept
from one shared socket; over gRPC ``SO_REUSEPORT`` spreads connections)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import httpx
import pytest
from nexpo.api.devserver import GatewayProcess, free_port
from nexpo.api.settings import DEFAULT_MODELS_DIR

grpcclient = pytest.importorskip("tritonclient.grpc")

KEY = "workers-user-key"
ADMIN = "workers-admin-key"
POLL_S = 1.0
CONNECTIONS = 24  # fresh ones per check: all on one worker by chance ~ 2**-23
ROW = {"inputs": [{"name": "INPUT", "datatype": "FP32", "shape": [1, 64], "data": [0.5] * 64}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("v2-workers")
    for name in ("mlp", "other"):
        (tmp / "repository" / name / "1").mkdir(parents=True)
        shutil.copyfile(
            DEFAULT_MODELS_DIR / "digits.safetensors", tmp / "repository" / name / "1" / "model.safetensors"
        )
    env = {
        "NEXPO_WORKERS": "2",
        "NEXPO_API_KEYS": KEY,
        "NEXPO_ADMIN_API_KEYS": ADMIN,
        "NEXPO_STATE_DIR": str(tmp / "state"),
        "NEXPO_MODEL_REPOSITORY": str(tmp / "repository"),
        "NEXPO_REPOSITORY_POLL_S": str(POLL_S),
        "NEXPO_RATE_LIMIT_RPS": "0",
        "NEXPO_GRPC_PORT": str(free_port()),
    }
    with GatewayProcess(env, log_path=tmp / "server.log") as process:
        process.grpc_address = f"127.0.0.1:{env['NEXPO_GRPC_PORT']}"  # type: ignore[attr-defined]
        _until_every_worker_serves(process)
        yield process


def _until_every_worker_serves(process: GatewayProcess) -> None:
    """/readyz answered by one worker: wait (bounded) until fresh connections all succeed."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(s == 200 for s in _ready_statuses(process.url, "mlp")):
            return
        time.sleep(0.2)
    raise TimeoutError("the second worker never became ready")


def _ready_statuses(url: str, model: str) -> list[int]:
    statuses = []
    for _ in range(CONNECTIONS):  # a new client per request: a new connection
        with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=10) as client:
            statuses.append(client.get(f"/v2/models/{model}/ready").status_code)
    return statuses


def _grpc_ready(address: str, model: str) -> list[bool]:
    answers = []
    for _ in range(CONNECTIONS):
        client = grpcclient.InferenceServerClient(address)  # a new channel: a new connection
        try:
            answers.append(client.is_model_ready(model, headers={"x-api-key": KEY}))
        finally:
            client.close()
    return answers


def _control(url: str, action: str, model: str) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=30) as client:
        return client.post(f"/v2/repository/models/{model}/{action}", headers={"X-API-Key": ADMIN})


def test_unload_and_load_reach_every_worker(server: GatewayProcess) -> None:
    assert _control(server.url, "unload", "mlp").status_code == 200
    time.sleep(POLL_S)
    assert _ready_statuses(server.url, "mlp") == [404] * CONNECTIONS
    with httpx.Client(base_url=server.url, headers={"X-API-Key": KEY}, timeout=10) as client:
        assert client.post("/v2/models/mlp/infer", json=ROW).status_code == 404
        assert client.post("/v2/models/other/infer", json=ROW).status_code == 200  # the others serve
    assert not any(_grpc_ready(server.grpc_address, "mlp"))  # type: ignore[attr-defined]
    time.sleep(POLL_S * 2)  # sticky: no worker's poller brings it back from the disk
    assert _ready_statuses(server.url, "mlp") == [404] * CONNECTIONS

    assert _control(server.url, "load", "mlp").status_code == 200
    time.sleep(POLL_S)
    assert _ready_statuses(server.url, "mlp") == [200] * CONNECTIONS
    assert all(_grpc_ready(server.grpc_address, "mlp"))  # type: ignore[attr-defined]


def test_grpc_unload_reaches_every_worker_and_needs_an_admin_key(server: GatewayProcess) -> None:
    client = grpcclient.InferenceServerClient(server.grpc_address)  # type: ignore[attr-defined]
    try:
        with pytest.raises(grpcclient.InferenceServerException, match="admin API key"):
            client.unload_model("other", headers={"x-api-key": KEY})
        assert _ready_statuses(server.url, "other") == [200] * CONNECTIONS  # refused: nothing changed
        client.unload_model("other", headers={"x-api-key": ADMIN})
        time.sleep(POLL_S)
        assert _ready_statuses(server.url, "other") == [404] * CONNECTIONS
        client.load_model("other", headers={"x-api-key": ADMIN})
        time.sleep(POLL_S)
        assert _ready_statuses(server.url, "other") == [200] * CONNECTIONS
    finally:
        client.close()
