"""The server a user would write without nexpo: FastAPI, one route, one onnxruntime session, JSON in
and out (``NEXPO_BENCH_ONNX``: the model's path). The peer of benchmarks/test_gateway_v2.py."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
session = onnxruntime.InferenceSession(os.environ["NEXPO_BENCH_ONNX"])


class Rows(BaseModel):
    inputs: list[list[float]]


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/infer")
def infer(rows: Rows) -> dict[str, list[list[float]]]:
    (probabilities,) = session.run(None, {"INPUT": np.asarray(rows.inputs, dtype=np.float32)})
    return {"outputs": probabilities.tolist()}
