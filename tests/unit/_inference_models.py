"""ONNX models built with onnx.helper for the inference tests and benchmarks: an MLP, a CNN with
BatchNorm and pooling, and a transformer encoder block (multi-head attention, GELU and
LayerNormalization either as operators or decomposed into elementary ones)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


class GraphBuilder:
    def __init__(self, seed: int = 0) -> None:
        self.nodes: list[NodeProto] = []
        self.inits: list[TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def init(self, array: Any, prefix: str = "w") -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, *shape: int, scale: float | None = None) -> str:
        s = scale if scale is not None else 1 / np.sqrt(shape[0] if len(shape) == 2 else np.prod(shape[1:]))
        return self.init((self.rng.standard_normal(shape) * s).astype(np.float32))

    def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> Any:
        outs = [self.name(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self.name("n"), **attrs))
        return outs[0] if n_out == 1 else outs

    def model(self, inputs: list[Any], outputs: list[Any], opset: int = 17) -> ModelProto:
        graph = helper.make_graph(self.nodes, "g", inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        return model


def mlp(dims: tuple[int, ...] = (64, 256, 128, 10), seed: int = 0) -> ModelProto:
    g = GraphBuilder(seed)
    x = "x"
    for i, (a, c) in enumerate(itertools.pairwise(dims)):
        if i % 2 == 0:
            x = g.node("Add", [g.node("MatMul", [x, g.weight(a, c)]), g.weight(c, scale=0.1)])
        else:
            x = g.node("Gemm", [x, g.weight(c, a), g.weight(c, scale=0.1)], transB=1)
        if i < len(dims) - 2:
            x = g.node("Relu", [x])
    out = g.node("Softmax", [x], axis=-1)
    return g.model([helper.make_tensor_value_info("x", F, ["batch", dims[0]])],
                   [helper.make_tensor_value_info(out, F, ["batch", dims[-1]])])


def _batchnorm(g: GraphBuilder, x: str, c: int) -> str:
    rng = g.rng
    params = [rng.uniform(0.5, 1.5, c), rng.standard_normal(c) * 0.1, rng.standard_normal(c) * 0.1,
              rng.uniform(0.5, 2.0, c)]
    return g.node("BatchNormalization", [x, *(g.init(p.astype(np.float32)) for p in params)],
                  epsilon=1e-5)


def cnn(seed: int = 0, channels: tuple[int, int] = (16, 32)) -> ModelProto:
    """Conv-BN-ReLU-MaxPool, Conv-BN-ReLU-AveragePool, GlobalAveragePool, Flatten, Gemm on 3x32x32."""
    g = GraphBuilder(seed)
    c1, c2 = channels
    x = g.node("Conv", ["x", g.weight(c1, 3, 3, 3), g.weight(c1, scale=0.1)], pads=[1, 1, 1, 1])
    x = g.node("MaxPool", [g.node("Relu", [_batchnorm(g, x, c1)])], kernel_shape=[2, 2], strides=[2, 2])
    x = g.node("Conv", [x, g.weight(c2, c1, 3, 3)], pads=[1, 1, 1, 1], strides=[1, 1])
    x = g.node("Relu", [_batchnorm(g, x, c2)])
    x = g.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x])], axis=1)
    out = g.node("Gemm", [x, g.weight(c2, 10), g.weight(10, scale=0.1)])
    return g.model([helper.make_tensor_value_info("x", F, ["batch", 3, 32, 32])],
                   [helper.make_tensor_value_info(out, F, ["batch", 10])])


def _layernorm(g: GraphBuilder, x: str, d: int, as_op: bool) -> str:
    gamma = g.init((1 + 0.1 * g.rng.standard_normal(d)).astype(np.float32))
    beta = g.init((0.1 * g.rng.standard_normal(d)).astype(np.float32))
    if as_op:
        return g.node("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-5)
    mean = g.node("ReduceMean", [x], axes=[-1], keepdims=1)
    centred = g.node("Sub", [x, mean])
    var = g.node("ReduceMean", [g.node("Pow", [centred, g.init(np.float32(2))])], axes=[-1])
    std = g.node("Sqrt", [g.node("Add", [var, g.init(np.float32(1e-5))])])
    return g.node("Add", [g.node("Mul", [g.node("Div", [centred, std]), gamma]), beta])


def _gelu(g: GraphBuilder, x: str, as_op: bool) -> str:
    if as_op:
        return g.node("Gelu", [x])
    erf = g.node("Erf", [g.node("Div", [x, g.init(np.float32(np.sqrt(2)))])])
    return g.node("Mul", [g.node("Mul", [x, g.node("Add", [erf, g.init(np.float32(1))])]),
                          g.init(np.float32(0.5))])


def encoder(d: int = 128, heads: int = 4, ff: int = 512, *, seq: int | str = "seq",
            ops: bool = True, seed: int = 0) -> ModelProto:
    """One post-norm encoder block; the head split reshapes are computed from Shape at run time."""
    g = GraphBuilder(seed)
    dh = d // heads
    shape = g.node("Shape", ["x"])
    n = g.node("Unsqueeze", [g.node("Gather", [shape, g.init(np.int64(0))], axis=0), g.init(np.array([0]))])
    s = g.node("Unsqueeze", [g.node("Gather", [shape, g.init(np.int64(1))], axis=0), g.init(np.array([0]))])
    split_shape = g.node("Concat", [n, s, g.init(np.array([heads, dh]))], axis=0)
    merge_shape = g.node("Concat", [n, s, g.init(np.array([d]))], axis=0)

    def proj(x: str, a: int, c: int) -> str:
        return g.node("Add", [g.node("MatMul", [x, g.weight(a, c)]), g.weight(c, scale=0.1)])

    def heads_of(x: str, perm: list[int]) -> str:
        return g.node("Transpose", [g.node("Reshape", [x, split_shape])], perm=perm)

    q = heads_of(proj("x", d, d), [0, 2, 1, 3])
    k = heads_of(proj("x", d, d), [0, 2, 3, 1])
    v = heads_of(proj("x", d, d), [0, 2, 1, 3])
    scores = g.node("Mul", [g.node("MatMul", [q, k]), g.init(np.float32(1 / np.sqrt(dh)))])
    attn = g.node("MatMul", [g.node("Softmax", [scores], axis=-1), v])
    merged = g.node("Reshape", [g.node("Transpose", [attn], perm=[0, 2, 1, 3]), merge_shape])
    x1 = _layernorm(g, g.node("Add", ["x", proj(merged, d, d)]), d, ops)
    hidden = _gelu(g, proj(x1, d, ff), ops)
    out = _layernorm(g, g.node("Add", [x1, proj(hidden, ff, d)]), d, ops)
    opset = 20 if ops else 17
    return g.model([helper.make_tensor_value_info("x", F, ["batch", seq, d])],
                   [helper.make_tensor_value_info(out, F, ["batch", seq, d])], opset=opset)


def single_op(op: str, inputs: list[tuple[str, int, list[Any]]], outputs: list[tuple[str, int]],
              inits: dict[str, Any] | None = None, opset: int = 18, **attrs: Any) -> ModelProto:
    """One node; ``inputs`` are graph inputs (name, elem type, shape), ``inits`` initializers."""
    g = GraphBuilder()
    for name, value in (inits or {}).items():
        g.inits.append(numpy_helper.from_array(np.asarray(value), name))
    names = [i[0] for i in inputs] + list(inits or {})
    g.nodes.append(helper.make_node(op, names, [o[0] for o in outputs], name="op", **attrs))
    return g.model([helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                   [helper.make_tensor_value_info(n, t, None) for n, t in outputs], opset=opset)
