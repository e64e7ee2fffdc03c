"""The model repository: layout, config.json, version policies, hostile files, and the store's
swap/retire/unload rules."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from nexpo.api.repository import BatchingDefaults, ModelRepository
from nexpo.api.repository.config import ConfigError, parse_config
from nexpo.api.repository.layout import scan
from nexpo.api.settings import DEFAULT_MODELS_DIR

DIGITS = DEFAULT_MODELS_DIR / "digits.safetensors"


def _version(root: Path, name: str, version: int | str, file: str = "model.safetensors") -> Path:
    directory = root / name / str(version)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DIGITS, directory / file)
    return directory / file


def _config(root: Path, name: str, doc: object) -> None:
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "config.json").write_text(json.dumps(doc))


async def _run(fn: object, *args: object, cost: int) -> object:
    assert cost >= 0  # priced like Gateway.run
    return fn(*args)  # type: ignore[operator]


def _repository(root: Path | None, flat: Path | None = None, **defaults: object) -> ModelRepository:
    return ModelRepository(root, flat, _run, BatchingDefaults(**defaults))  # type: ignore[arg-type]


def test_layout_versions_and_policies(tmp_path: Path) -> None:
    for v in (1, 2, 10):
        _version(tmp_path, "latest", v)
        _version(tmp_path, "all", v)
        _version(tmp_path, "some", v)
    _version(tmp_path, "latest", "notaversion")
    _version(tmp_path, "latest", "0")
    _config(tmp_path, "all", {"version_policy": {"all": {}}})
    _config(tmp_path, "some", {"version_policy": {"specific": {"versions": [2, 7]}}})
    _version(tmp_path, "two", 1)
    _version(tmp_path, "two", 3)
    _config(tmp_path, "two", {"version_policy": {"latest": {"num_versions": 2}}})
    models, error = scan(tmp_path, None)
    assert error is None
    assert list(models["latest"].versions) == [10]  # Triton's default: the latest one
    assert list(models["all"].versions) == [1, 2, 10]
    assert list(models["some"].versions) == [2]
    assert list(models["two"].versions) == [1, 3]


def test_flat_models_dir_is_version_one_and_the_repository_wins(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copyfile(DIGITS, flat / "digits.safetensors")
    shutil.copyfile(DIGITS, flat / "other.safetensors")
    _version(tmp_path / "repo", "digits", 4)
    models, _ = scan(tmp_path / "repo", flat)
    assert list(models["other"].versions) == [1]
    assert list(models["digits"].versions) == [4]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "JSON object"),
        ({"max_batch_size": -1}, "max_batch_size"),
        ({"max_batch_size": True}, "max_batch_size"),
        ({"dynamic_batching": {}}, "max_batch_size > 0"),
        ({"max_batch_size": 4, "dynamic_batching": {"max_queue_delay_us": 10**9}}, "max_queue_delay_us"),
        ({"max_batch_size": 4, "dynamic_batching": {"preferred_batch_size": [0]}}, "preferred"),
        ({"version_policy": {"newest": {}}}, "unknown version_policy"),
        ({"version_policy": {"all": {}, "latest": {}}}, "exactly one"),
        ({"version_policy": {"latest": {"num_versions": 0}}}, "num_versions"),
        ({"version_policy": {"specific": {"versions": []}}}, "non-empty"),
        ({"labels": {"a": 1}}, "labels"),
    ],
)
def test_bad_configs_say_why(doc: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(doc)


def test_config_values() -> None:
    config = parse_config(
        {
            "max_batch_size": 8,
            "dynamic_batching": {"max_queue_delay_us": 100, "preferred_batch_size": [4]},
            "labels": {"team": "vision"},
        }
    )
    assert (config.max_batch_size, config.dynamic_batching, config.max_queue_delay_us) == (8, True, 100)
    assert config.describe("m")["labels"] == {"team": "vision"}


def test_hostile_files_are_errors_by_name(tmp_path: Path) -> None:
    fifo_dir = tmp_path / "fifo" / "1"
    fifo_dir.mkdir(parents=True)
    os.mkfifo(fifo_dir / "model.safetensors")
    (tmp_path / "dir" / "1" / "model.onnx").mkdir(parents=True)
    _config(tmp_path, "fifocfg", {})
    (tmp_path / "fifocfg" / "config.json").unlink()
    os.mkfifo(tmp_path / "fifocfg" / "config.json")
    _version(tmp_path, "fifocfg", 1)
    _config(tmp_path, "badjson", {})
    (tmp_path / "badjson" / "config.json").write_bytes(b"[" * 60_000)
    _version(tmp_path, "badjson", 1)
    _config(tmp_path, "huge", {})
    (tmp_path / "huge" / "config.json").write_bytes(b" " * (1 << 20))
    _version(tmp_path, "huge", 1)
    _version(tmp_path, "both", 1)
    _version(tmp_path, "both", 1, "model.onnx")
    (tmp_path / "empty").mkdir()
    (tmp_path / "garbage" / "1").mkdir(parents=True)
    (tmp_path / "garbage" / "1" / "model.safetensors").write_bytes(os.urandom(256))
    _version(tmp_path, "good", 1)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")

    repository = _repository(tmp_path)
    asyncio.run(repository.sync())
    assert repository.get("good") is not None
    assert not repository.ready()
    states = {(r["name"], r.get("version")): r for r in repository.index()}
    assert "not a regular file (a FIFO)" in states["fifo", "1"]["reason"]
    assert "not a regular file" in states["fifocfg", None]["reason"]
    assert (
        "JSON nested too deeply" in states["badjson", None]["reason"]
        or "not JSON" in states["badjson", None]["reason"]
    )
    assert "limit" in states["huge", None]["reason"]
    assert "both" in states["both", "1"]["reason"]
    assert "a directory" in states["dir", "1"]["reason"]
    assert "no version" in states["empty", None]["reason"]
    assert "safetensors" in states["garbage", "1"]["reason"]
    assert states["good", "1"]["state"] == "READY"
    assert all(str(tmp_path) not in r["reason"] for r in states.values())  # no paths in answers


def test_onnx_without_the_engine_is_a_load_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nexpo.api.repository import onnx_backend

    monkeypatch.setattr(onnx_backend, "ENGINE_MODULE", "nexpo.no_such_engine")
    (tmp_path / "o" / "1").mkdir(parents=True)
    (tmp_path / "o" / "1" / "model.onnx").write_bytes(b"onnx")
    repository = _repository(tmp_path)
    asyncio.run(repository.sync())
    (row,) = repository.index()
    assert row["reason"] == "ONNX engine not available (nexpo.inference.InferenceSession)"


def test_versions_swap_retire_and_unload_sticks(tmp_path: Path) -> None:
    async def scenario() -> None:
        _version(tmp_path, "m", 1)
        _config(tmp_path, "m", {"max_batch_size": 8, "dynamic_batching": {"max_queue_delay_us": 0}})
        repository = _repository(tmp_path)
        await repository.sync()
        v1 = repository.get("m")
        assert v1 is not None and v1.batcher is not None
        x = np.zeros((2, 64), np.float32)
        with v1.hold():  # a request in flight on version 1
            _version(tmp_path, "m", 2)
            await repository.sync()
            assert repository.get("m").version == 2  # type: ignore[union-attr]
            await asyncio.sleep(0.01)
            out = await repository.infer(v1, {"INPUT": x})  # the old version still answers
            assert out["PROBABILITIES"].shape == (2, 10)
        await asyncio.sleep(0.01)
        assert v1.batcher._closed  # retired once idle
        assert await repository.unload("m")
        await repository.sync()
        assert repository.get("m") is None  # the poller does not bring it back
        await repository.load("m")
        assert repository.get("m") is not None
        with pytest.raises(KeyError):
            await repository.load("ghost")
        shutil.rmtree(tmp_path / "m")
        await repository.sync()
        assert repository.get("m") is None and repository.index() == []
        await repository.close()

    asyncio.run(scenario())


def test_a_changed_file_reloads_the_version(tmp_path: Path) -> None:
    async def scenario() -> None:
        path = _version(tmp_path, "m", 1)
        repository = _repository(tmp_path, enabled=False)
        await repository.sync()
        first = repository.get("m")
        await repository.sync()
        assert repository.get("m") is first  # unchanged: kept
        staging = path.with_name("new")
        shutil.copyfile(DIGITS, staging)
        staging.rename(path)
        await repository.sync()
        assert repository.get("m") is not first
        await repository.close()

    asyncio.run(scenario())


def test_a_failed_file_is_not_retried_until_it_changes_and_a_failed_reload_keeps_serving(
    tmp_path: Path,
) -> None:
    from nexpo.api.repository.store import load_backend

    calls: list[str] = []

    def counting(source, name):  # type: ignore[no-untyped-def]
        calls.append(name)
        return load_backend(source, name)

    async def scenario() -> None:
        bad = tmp_path / "bad" / "1"
        bad.mkdir(parents=True)
        (bad / "model.safetensors").write_bytes(b"broken")
        good = _version(tmp_path, "good", 1)
        repository = ModelRepository(tmp_path, None, _run, BatchingDefaults(enabled=False), counting)  # type: ignore[arg-type]
        await repository.sync()
        await repository.sync()
        assert calls.count("bad") == 1  # same broken file: not read again every poll
        await repository.load("bad")  # an explicit load retries
        assert calls.count("bad") == 2
        serving = repository.get("good")
        staging = good.with_name("tmp")
        staging.write_bytes(b"half a copy")
        staging.rename(good)
        await repository.sync()
        assert repository.get("good") is serving  # the loaded version keeps serving
        (row,) = [r for r in repository.index() if r["name"] == "good"]
        assert row["state"] == "READY" and row["reason"].startswith("reload failed")
        assert not repository.ready()  # "bad" failed in the first scan and still does
        shutil.rmtree(tmp_path / "bad")
        await repository.sync()
        assert repository.ready()  # a later failure ("good"'s reload) keeps no pod out of rotation
        await repository.close()

    asyncio.run(scenario())


def test_a_broken_replacement_never_leaves_a_model_without_a_version(tmp_path: Path) -> None:
    async def scenario() -> None:
        _version(tmp_path, "m", 1)
        repository = _repository(tmp_path, enabled=False)
        await repository.sync()
        broken = tmp_path / "m" / "2"
        broken.mkdir()
        (broken / "model.safetensors").write_bytes(b"broken")
        await repository.sync()
        assert repository.get("m").version == 1  # type: ignore[union-attr]
        rows = {r.get("version"): r["state"] for r in repository.index()}
        assert rows == {"1": "READY", "2": "UNAVAILABLE"}
        _version(tmp_path, "m", 2)
        await repository.sync()
        assert repository.get("m").version == 2  # type: ignore[union-attr]
        assert repository.get("m", 1) is None
        await repository.close()

    asyncio.run(scenario())


def test_the_old_version_serves_while_the_new_one_loads(tmp_path: Path) -> None:
    import threading

    from nexpo.api.repository.store import load_backend

    entered, release = threading.Event(), threading.Event()

    def slow(source, name):  # type: ignore[no-untyped-def]
        if source.path.parent.name == "2":
            entered.set()
            release.wait(10)
        return load_backend(source, name)

    async def scenario() -> None:
        _version(tmp_path, "m", 1)
        repository = ModelRepository(tmp_path, None, _run, BatchingDefaults(enabled=False), slow)  # type: ignore[arg-type]
        await repository.sync()
        _version(tmp_path, "m", 2)
        syncing = asyncio.create_task(repository.sync())
        for _ in range(1000):
            if entered.is_set():
                break
            await asyncio.sleep(0.01)
        assert repository.get("m").version == 1  # type: ignore[union-attr]
        release.set()
        await syncing
        assert repository.get("m").version == 2  # type: ignore[union-attr]
        await repository.close()

    asyncio.run(scenario())


class _RecordingBackend:
    """Doubles its input and records the batch sizes it was called with."""

    def __init__(self) -> None:
        from nexpo.api.repository.backends import TensorSpec

        self.inputs = (TensorSpec("x", "FP32", (-1, 2)),)
        self.outputs = (TensorSpec("y", "FP32", (-1, 2)),)
        self.calls: list[int] = []

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls.append(inputs["x"].shape[0])
        return {"y": inputs["x"] * 2}


@pytest.mark.parametrize(("rows", "chunks"), [(37, [32, 4, 1]), (64, [64]), (1, [1]), (3, [2, 1])])
def test_onnx_batches_run_in_power_of_two_chunks_in_order(rows: int, chunks: list[int]) -> None:
    from nexpo.api.repository.store import _Rows

    backend = _RecordingBackend()
    x = np.arange(rows * 2, dtype=np.float32).reshape(rows, 2)
    np.testing.assert_array_equal(_Rows("m/1", backend, power_of_two_chunks=True).forward(x), x * 2)
    assert backend.calls == chunks
    backend.calls.clear()
    _Rows("m/1", backend).forward(x)  # other backends: one call per batch
    assert backend.calls == [rows]
