"""Load from h2load (nghttp2's load generator, in C: Debian's nghttp2-client), when it is installed.

The Python load generators of the gateway benchmarks share the 2 cores with the server, and a
grpc.aio client costs more per call than the minimal HTTP/1.1 client: with them, "gRPC against
REST" measures the clients as much as the server. h2load drives both protocols from C, the same
way: 64 HTTP/1.1 connections for REST, 8 HTTP/2 connections × 8 streams for gRPC.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

H2LOAD = shutil.which("h2load")
_RATE = re.compile(r"finished in [^,]+, ([\d.]+) req/s")
_DONE = re.compile(
    r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored"
)


def _rest_args(raw: bytes, port: int, body: Path) -> list[str]:
    """h2load arguments replaying a raw HTTP/1.1 request (its path, headers and body)."""
    head, _, payload = raw.partition(b"\r\n\r\n")
    request_line, *lines = head.decode("latin-1").split("\r\n")
    body.write_bytes(payload)
    headers = [h for h in lines if h.split(":", 1)[0].lower() not in ("host", "content-length")]
    args = ["--h1", "-c", "64", "-d", str(body)]
    for header in headers:
        args += ["-H", header]
    return [*args, f"http://127.0.0.1:{port}{request_line.split()[1]}"]


def _grpc_args(message: bytes, port: int, body: Path, key: str) -> list[str]:
    body.write_bytes(b"\0" + struct.pack(">I", len(message)) + message)  # one uncompressed gRPC frame
    headers = ["content-type: application/grpc", "te: trailers", f"x-api-key: {key}"]
    args = ["-c", "8", "-m", "8", "-d", str(body)]
    for header in headers:
        args += ["-H", header]
    return [*args, f"http://127.0.0.1:{port}/inference.GRPCInferenceService/ModelInfer"]


def measure(kind: str, port: int, payload: bytes, seconds: int, key: str) -> tuple[float, int]:
    """(requests per second, requests that failed) over ``seconds`` after a 1-second warm-up.
    gRPC statuses ride in trailers h2load does not read: the Python cases check the same payloads."""
    if H2LOAD is None:
        raise RuntimeError("h2load is not installed (Debian: nghttp2-client)")
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "body"
        args = _grpc_args(payload, port, body, key) if kind == "grpc" else _rest_args(payload, port, body)
        command = [H2LOAD, "-D", str(seconds), "--warm-up-time", "1", *args]
        out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout
    rate, done = _RATE.search(out), _DONE.search(out)
    if rate is None or done is None:
        raise RuntimeError(f"unexpected h2load output: {out[-400:]}")
    return float(rate.group(1)), int(done.group(2)) + int(done.group(3))
