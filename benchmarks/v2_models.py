"""Models and servers of the v2 load benchmark (benchmarks/test_gateway_v2.py).

- ``export_onnx``: the bundled digits MLP (64 → 128 → 64 → 10) as an ONNX graph, same weights;
- ``export_encoder``: issue 17's transformer encoder block (d=128, 4 heads, seq 32, ff 512), ``x``
  FP32 [batch, 32, 128] (tests/unit/_inference_models.py).
- ``python benchmarks/v2_models.py gateway [serve options]``: ``nexpo serve`` whose ONNX models run
  on nexpo's engine when it is installed, else on onnxruntime standing in for it (same session API).
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np


def export_onnx(safetensors_path: Path, out: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper
    from safetensors import safe_open

    with safe_open(str(safetensors_path), "np") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        activations = json.loads(f.metadata()["activations"])
    nodes, initializers, current = [], [], "INPUT"
    for i, activation in enumerate(activations):
        w, b = f"w{i}", f"b{i}"
        initializers += [
            numpy_helper.from_array(np.asarray(tensors[f"layers.{i}.weight"], np.float32), w),
            numpy_helper.from_array(np.asarray(tensors[f"layers.{i}.bias"], np.float32), b),
        ]
        nodes += [
            helper.make_node("MatMul", [current, w], [f"mm{i}"]),
            helper.make_node("Add", [f"mm{i}", b], [f"z{i}"]),
        ]
        last = i == len(activations) - 1
        name = "PROBABILITIES" if last else f"h{i}"
        op = {"relu": "Relu", "softmax": "Softmax", "tanh": "Tanh", "sigmoid": "Sigmoid"}[activation]
        nodes.append(helper.make_node(op, [f"z{i}"], [name], **({"axis": -1} if op == "Softmax" else {})))
        current = name
    graph = helper.make_graph(
        nodes,
        "digits",
        [helper.make_tensor_value_info("INPUT", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("PROBABILITIES", TensorProto.FLOAT, ["batch", 10])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    out.write_bytes(model.SerializeToString())


def export_encoder(out: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
    import _inference_models

    out.write_bytes(_inference_models.encoder(seq=32).SerializeToString())


def _gateway(argv: list[str]) -> int:
    from nexpo.api.repository import onnx_backend
    from nexpo.api.server import main

    try:
        onnx_backend.engine_session_factory()
    except onnx_backend.BackendError:  # no engine: onnxruntime stands in (the benchmark says which)
        import onnxruntime

        module = types.ModuleType("onnxruntime_stand_in")
        module.InferenceSession = onnxruntime.InferenceSession  # type: ignore[attr-defined]
        sys.modules[module.__name__] = module
        onnx_backend.ENGINE_MODULE = module.__name__
    return main(argv)


if __name__ == "__main__":
    if sys.argv[1:2] != ["gateway"]:
        raise SystemExit("usage: v2_models.py gateway [serve options]")
    raise SystemExit(_gateway(sys.argv[2:]))
