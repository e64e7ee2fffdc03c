"""api/routers/{hash,hmac,merkle,matmul}.py against hashlib, hmac and numpy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, is_problem

NPY = {**AUTH, "content-type": "application/x-npy"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def npy(*arrays: np.ndarray) -> bytes:
    out = io.BytesIO()
    for array in arrays:
        np.save(out, array, allow_pickle=False)
    return out.getvalue()


def test_hash_data_and_items(client: TestClient) -> None:
    big = bytes(range(256)) * 1000  # off the event loop
    for data in (b"", b"abc", big):
        body = client.post("/v1/hash", headers=AUTH, json={"data": b64(data)}).json()
        assert body == {"algorithm": "sha256", "digest": hashlib.sha256(data).hexdigest()}
    items = [b"", b"a", b"x" * 1000]
    body = client.post("/v1/hash", headers=AUTH, json={"items": [b64(i) for i in items]}).json()
    assert body["digests"] == [hashlib.sha256(i).hexdigest() for i in items]


def test_hash_errors(client: TestClient) -> None:
    is_problem(client.post("/v1/hash", headers=AUTH, json={}), 422)
    is_problem(client.post("/v1/hash", headers=AUTH, json={"data": "", "items": []}), 422)
    assert "base64" in is_problem(client.post("/v1/hash", headers=AUTH, json={"data": "@@"}), 422)["detail"]
    body = is_problem(client.post("/v1/hash", headers=AUTH, json={"items": ["AA==", "!"]}), 422)
    assert "items[1]" in body["detail"]


def test_stream_hash_of_a_chunked_body(client: TestClient) -> None:
    chunk = bytes(range(256)) * 4096  # 1 MiB

    def body() -> Iterator[bytes]:
        for _ in range(5):
            yield chunk
        yield b"tail"

    expected = hashlib.sha256(chunk * 5 + b"tail").hexdigest()
    response = client.post("/v1/hash/stream", headers=AUTH, content=body())
    assert response.json() == {"algorithm": "sha256", "digest": expected, "bytes": 5 * len(chunk) + 4}
    empty = client.post("/v1/hash/stream", headers=AUTH, content=b"").json()
    assert empty["digest"] == hashlib.sha256(b"").hexdigest()


def test_hmac_mac_verify_and_items(client: TestClient) -> None:
    key, data = b"k" * 40, b"message"
    tag = hmac.new(key, data, hashlib.sha256).hexdigest()
    body = client.post("/v1/hmac", headers=AUTH, json={"key": b64(key), "data": b64(data)}).json()
    assert body["mac"] == tag
    ok = client.post("/v1/hmac", headers=AUTH, json={"key": b64(key), "data": b64(data), "expected": tag})
    assert ok.json()["valid"] is True
    bad_tag = ("0" if tag[0] != "0" else "1") + tag[1:]
    no = client.post("/v1/hmac", headers=AUTH, json={"key": b64(key), "data": b64(data), "expected": bad_tag})
    assert no.json()["valid"] is False
    items = [b"", b"a", b"b" * 100]
    macs = client.post("/v1/hmac", headers=AUTH, json={"key": b64(key), "items": [b64(i) for i in items]})
    assert macs.json()["macs"] == [hmac.new(key, i, hashlib.sha256).hexdigest() for i in items]
    is_problem(
        client.post("/v1/hmac", headers=AUTH, json={"key": b64(key), "data": "", "expected": "zz"}), 422
    )
    is_problem(
        client.post("/v1/hmac", headers=AUTH, json={"key": b64(key), "items": [], "expected": tag}), 422
    )


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle Tree Hash, straight from the definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _verify(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2 inclusion proof verification."""
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = hashlib.sha256(b"\x00" + leaf).digest()
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 8, 33])
def test_merkle_root_and_proof(client: TestClient, n: int) -> None:
    leaves = [f"leaf-{i}".encode() for i in range(n)]
    body = client.post("/v1/merkle", headers=AUTH, json={"leaves": [b64(x) for x in leaves]}).json()
    assert body["root"] == _mth(leaves).hex()
    assert body["tree_size"] == n
    assert body["proof"] is None
    for index in range(n):
        payload = {"leaves": [b64(x) for x in leaves], "index": index}
        proved = client.post("/v1/merkle", headers=AUTH, json=payload).json()
        proof = [bytes.fromhex(p) for p in proved["proof"]]
        assert _verify(leaves[index], index, n, proof, bytes.fromhex(body["root"]))


def test_merkle_errors(client: TestClient) -> None:
    leaves = [b64(b"a"), b64(b"b")]
    assert (
        "outside"
        in is_problem(client.post("/v1/merkle", headers=AUTH, json={"leaves": leaves, "index": 2}), 422)[
            "detail"
        ]
    )
    is_problem(client.post("/v1/merkle", headers=AUTH, json={"leaves": leaves, "index": -1}), 422)
    is_problem(client.post("/v1/merkle", headers=AUTH, json={"leaves": ["%%"]}), 422)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_json(client: TestClient, dtype: str) -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 7)), rng.standard_normal((7, 3))
    response = client.post(
        "/v1/matmul", headers=AUTH, json={"a": a.tolist(), "b": b.tolist(), "dtype": dtype}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["shape"] == [5, 3]
    assert body["dtype"] == dtype
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(np.array(body["result"]), a @ b, rtol=tol, atol=tol)


def test_matmul_npy_round_trip_any_order(client: TestClient) -> None:
    rng = np.random.default_rng(2)
    a = np.asfortranarray(rng.standard_normal((70, 80)).astype(np.float32))
    b = rng.standard_normal((80, 90)).astype(np.float32)
    response = client.post("/v1/matmul", headers=NPY, content=npy(a, b))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-npy"
    c = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert c.dtype == np.float32
    assert c.shape == (70, 90)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)
    big_endian = client.post("/v1/matmul", headers=NPY, content=npy(a.astype(">f8"), b.astype(">f8")))
    np.testing.assert_allclose(np.load(io.BytesIO(big_endian.content)), a @ b, rtol=1e-4, atol=1e-3)


def test_matmul_errors(client: TestClient) -> None:
    def post_json(payload: object) -> dict[str, object]:
        return is_problem(client.post("/v1/matmul", headers=AUTH, json=payload), 422)

    assert "do not chain" in str(post_json({"a": [[1.0, 2.0]], "b": [[1.0, 2.0]]})["detail"])
    assert "ragged" in str(post_json({"a": [[1.0, 2.0], [1.0]], "b": [[1.0], [2.0]]})["detail"])
    post_json({"a": [], "b": [[1.0]]})
    post_json({"a": [[1.0]], "b": [[1.0]], "dtype": "int8"})
    assert "overflows" in str(post_json({"a": [[1e30]], "b": [[1e30]], "dtype": "float32"})["detail"])
    unsupported = client.post("/v1/matmul", headers={**AUTH, "content-type": "text/plain"}, content=b"1")
    is_problem(unsupported, 415)
    ones = np.ones((2, 2))
    is_problem(client.post("/v1/matmul", headers=NPY, content=b"not npy at all"), 400)
    is_problem(client.post("/v1/matmul", headers=NPY, content=npy(ones)), 400)  # b missing
    is_problem(client.post("/v1/matmul", headers=NPY, content=npy(ones, ones) + b"x"), 400)
    is_problem(client.post("/v1/matmul", headers=NPY, content=npy(ones.astype(np.int64), ones)), 422)
    is_problem(client.post("/v1/matmul", headers=NPY, content=npy(np.ones(3), ones)), 422)
    is_problem(client.post("/v1/matmul", headers=NPY, content=npy(ones, ones.astype(np.float32))), 422)
    # a header claiming a huge shape is refused before anything is allocated
    lying = npy(ones, ones).replace(b"(2, 2)", b"(99999, 99999)", 1)
    is_problem(client.post("/v1/matmul", headers=NPY, content=lying), 422)
    short = npy(ones, ones).replace(b"(2, 2)", b"(2, 9)", 1)
    is_problem(client.post("/v1/matmul", headers=NPY, content=short), 400)


def test_matmul_zero_sized_npy(client: TestClient) -> None:
    a, b = np.ones((0, 3)), np.ones((3, 4))
    response = client.post("/v1/matmul", headers=NPY, content=npy(a, b))
    assert np.load(io.BytesIO(response.content)).shape == (0, 4)
