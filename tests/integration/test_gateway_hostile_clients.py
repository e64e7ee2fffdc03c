"""Hostile clients against a real gateway on a loopback port: header floods, slowloris and idle
sockets, too many connections (api/http_limits.py), and request bodies at the size limit
(api/bodies.py): memory stays bounded, connections get closed, /livez stays responsive.

Memory is read from /proc/<pid>/status; the peak (VmHWM) is reset through /proc/<pid>/clear_refs
before each measurement, so it is the peak of that measurement alone."""

from __future__ import annotations

import contextlib
import io
import json
import select
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from nexpo.api.devserver import GatewayProcess

KEY = "hostile-key"
AUTH = {"X-API-Key": KEY}
MiB = 1024 * 1024
BODY_LIMIT = 8 * MiB
MAX_CONNECTIONS = 64
HEAD_TIMEOUT_S = 2.0
IDLE_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("hostile")
    env = {
        "NEXPO_API_KEYS": KEY,
        "NEXPO_STATE_DIR": str(tmp / "state"),
        "NEXPO_RATE_LIMIT_RPS": "0",
        "NEXPO_MAX_BODY_BYTES": str(BODY_LIMIT),
        "NEXPO_HEAD_TIMEOUT_S": str(HEAD_TIMEOUT_S),
        "NEXPO_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S),
        "NEXPO_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    with GatewayProcess(env, log_path=tmp / "server.log") as process:
        yield process


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
    return out


def _reset_peak(pid: int) -> int:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    return _status(pid)["VmRSS"]


def _pid(server: GatewayProcess) -> int:
    assert server.process is not None
    return server.process.pid


def _connect(server: GatewayProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.setblocking(False)
    return sock


def _closed_by_peer(sock: socket.socket) -> bool:
    """True once the server closed ``sock`` (EOF or reset); drains what it sent."""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def _wait_all_closed(socks: list[socket.socket], within_s: float) -> float:
    started = time.monotonic()
    open_ = list(socks)
    while open_ and time.monotonic() - started < within_s:
        select.select(open_, [], [], 0.2)
        open_ = [s for s in open_ if not _closed_by_peer(s)]
    assert not open_, f"{len(open_)} of {len(socks)} connections still open after {within_s} s"
    return time.monotonic() - started


@pytest.mark.rss
def test_header_flood_is_cut_off_with_bounded_memory(server: GatewayProcess) -> None:
    pid = _pid(server)
    baseline = _reset_peak(pid)
    chunk = b"X-Flood: " + b"a" * (256 * 1024 - 11) + b"\r\n"
    socks = [_connect(server) for _ in range(40)]
    for sock in socks:
        sock.sendall(b"GET /v1/info HTTP/1.1\r\nHost: x\r\n")  # no key: the head never reaches auth
    sent = dict.fromkeys(socks, 0)
    live = list(socks)
    while live:  # up to 50 MiB of header each, until the server cuts the connection
        for sock in list(live):
            try:
                sock.send(chunk)
                sent[sock] += len(chunk)
            except BlockingIOError:
                pass
            except OSError:
                live.remove(sock)
                continue
            if sent[sock] >= 50 * MiB:
                live.remove(sock)
        if live:
            select.select(live, live, [], 0.05)
            live = [s for s in live if not _closed_by_peer(s)]
    _wait_all_closed(socks, 10)
    grown = _status(pid)["VmHWM"] - baseline
    most = max(sent.values()) / MiB
    print(f"header flood: 40 connections, <= {most:.1f} MiB sent on one, peak RSS +{grown / MiB:.1f} MiB")
    assert max(sent.values()) < 50 * MiB, "a connection took 50 MiB of header"
    assert grown < 48 * MiB
    for sock in socks:
        sock.close()


def test_oversized_head_gets_431_problem(server: GatewayProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (80 * 1024) + b"\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert b"application/problem+json" in answer and b"connection: close" in answer


def test_slow_heads_and_idle_connections_are_closed(server: GatewayProcess) -> None:
    idle = [_connect(server) for _ in range(20)]
    slow = [_connect(server) for _ in range(20)]
    crlf = [_connect(server) for _ in range(5)]  # bytes that start no request do not keep it open
    for sock in slow:
        sock.sendall(b"GET /livez HTTP/1.1\r\n")
    started = time.monotonic()
    while time.monotonic() - started < HEAD_TIMEOUT_S + 3:
        for sock in slow + crlf:
            with contextlib.suppress(OSError):
                sock.send(b"X-a: b\r\n" if sock in slow else b"\r\n")
        if all(_closed_by_peer(s) for s in idle + slow + crlf):
            break
        time.sleep(0.3)
    took = _wait_all_closed(idle + slow + crlf, 1)
    print(f"slowloris/idle: 45 connections closed within {time.monotonic() - started:.1f} s ({took:.1f})")
    for sock in idle + slow + crlf:
        sock.close()
    assert httpx.get(server.url + "/livez", timeout=5).status_code == 200


def test_connections_beyond_the_cap_are_refused_at_once(server: GatewayProcess) -> None:
    held = [_connect(server) for _ in range(MAX_CONNECTIONS)]
    time.sleep(0.3)  # let the server accept them all
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as extra:
        started = time.monotonic()
        try:
            answer = extra.recv(65536)
        except ConnectionResetError:
            answer = b""
        assert time.monotonic() - started < 2
    assert answer == b"" or answer.startswith(b"HTTP/1.1 503 "), answer[:100]
    for sock in held:
        sock.close()
    time.sleep(0.3)
    assert httpx.get(server.url + "/livez", timeout=5).status_code == 200


def _hostile_infer_body() -> bytes:
    rows = (BODY_LIMIT - 64) // 3  # "[]," per row: ~2.8M rows
    return b'{"inputs":[' + b"[]," * (rows - 1) + b"[]]}"


def _max_json_matmul_body() -> bytes:
    numbers = (BODY_LIMIT - 64) // 2  # "0," per number
    half = numbers // 2
    return b'{"a":[[' + b"0," * (half - 1) + b'0]],"b":[[' + b"0," * (half - 1) + b"0]]}"


def _max_npy_body() -> bytes:
    a = np.ones((BODY_LIMIT // 8 - 1024, 1))
    out = io.BytesIO()
    np.save(out, a)
    np.save(out, np.ones((1, 1)))
    return out.getvalue()


def _valid_json_matmul_body() -> bytes:
    rng = np.random.default_rng(0)  # at the default JSON limit: 256 × 256 each
    return json.dumps({"a": rng.random((256, 256)).tolist(), "b": rng.random((256, 256)).tolist()}).encode()


def _valid_infer_body() -> bytes:
    rng = np.random.default_rng(0)  # at the default row limit
    return json.dumps({"inputs": (rng.random((1024, 64)) * 16).tolist()}).encode()


BODIES = {
    "infer of 1024 rows": ("/v1/models/digits/infer", "application/json", _valid_infer_body),
    "json matmul of 256 × 256 @ 256 × 256": ("/v1/matmul", "application/json", _valid_json_matmul_body),
    "infer of 2.8M empty rows": ("/v1/models/digits/infer", "application/json", _hostile_infer_body),
    "json matmul of 4M numbers": ("/v1/matmul", "application/json", _max_json_matmul_body),
    "npy matmul of 1M × 1 @ 1 × 1": ("/v1/matmul", "application/x-npy", _max_npy_body),
}


@pytest.mark.rss
@pytest.mark.parametrize("name", list(BODIES))
def test_a_body_at_the_limit_costs_at_most_four_times_its_size(server: GatewayProcess, name: str) -> None:
    path, content_type, make = BODIES[name]
    body = make()
    assert len(body) <= BODY_LIMIT
    pid = _pid(server)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        http.post(path, headers={**AUTH, "content-type": content_type}, content=b"{}")  # warm the route
        baseline = _reset_peak(pid)
        response = http.post(path, headers={**AUTH, "content-type": content_type}, content=body)
    grown = _status(pid)["VmHWM"] - baseline
    print(
        f"{name}: {len(body) / MiB:.1f} MiB body -> {response.status_code}, peak RSS +{grown / MiB:.1f} MiB"
    )
    assert response.status_code in (200, 422), response.text[:300]
    assert response.status_code == 200 or "problem+json" in response.headers["content-type"]
    assert grown <= 4 * len(body) + 16 * MiB


# One client process: posts `body_file` to `path` until stdin closes, then prints the statuses.
_CLIENT = """
import sys, threading, httpx
url, path, key, body_file = sys.argv[1:5]
body = open(body_file, "rb").read()
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
statuses = set()
with httpx.Client(base_url=url, timeout=60) as http:
    while not stop.is_set():
        statuses.add(http.post(path, headers={"X-API-Key": key}, content=body).status_code)
print(*sorted(statuses))
"""


@pytest.mark.slow
def test_livez_stays_responsive_while_four_bodies_at_the_limit_run(
    server: GatewayProcess, tmp_path: Path
) -> None:
    (tmp_path / "infer.json").write_bytes(_hostile_infer_body())
    (tmp_path / "matmul.json").write_bytes(_max_json_matmul_body())
    targets = [("/v1/models/digits/infer", "infer.json"), ("/v1/matmul", "matmul.json")] * 2
    clients = [  # other processes: the probes below share no GIL with them
        subprocess.Popen(
            [sys.executable, "-c", _CLIENT, server.url, path, KEY, str(tmp_path / name)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for path, name in targets
    ]
    latencies = []
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            time.sleep(1.0)
            ends = time.monotonic() + 6
            while time.monotonic() < ends:
                started = time.perf_counter()
                assert http.get("/livez").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.01)
    finally:
        answered = [client.communicate("", timeout=60)[0].split() for client in clients]
    p50 = statistics.median(latencies) * 1000
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    print(f"/livez under 4 max-size bodies: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(latencies)} probes)")
    assert all(statuses == ["422"] for statuses in answered), answered
    # The goal is a p99 under 100 ms (measured: ~50 ms on 2 shared cores); the bounds are generous
    # against a loaded machine, and still far below the seconds this cost before.
    assert p50 < 100
    assert p99 < 500
