"""The server a user would write without nexpo: FastAPI, one route, one onnxruntime session, JSON in
and out (``NEXPO_BENCH_ONNX``: the model's path; its first input, of rank 2 or 3, is fed). The peer
of benchmarks/test_gateway_v2.py."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnxruntime
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
session = onnxruntime.InferenceSession(os.environ["NEXPO_BENCH_ONNX"])


INPUT = session.get_inputs()[0]


class Rows(BaseModel):
    inputs: list[list[float]]


class Sequences(BaseModel):
    inputs: list[list[list[float]]]


Body = Sequences if len(INPUT.shape) == 3 else Rows


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/infer")
def infer(rows: Body) -> dict[str, list[Any]]:  # type: ignore[valid-type]
    (outputs,) = session.run(None, {INPUT.name: np.asarray(rows.inputs, dtype=np.float32)})
    return {"outputs": outputs.tolist()}
