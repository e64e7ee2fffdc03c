"""/v1/transit data operations (api/routers/transit.py), Vault-shaped: every key type, tampering,
batches with a bad item, rewrap, data keys, HMAC, sign and verify, and the version rules."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, is_problem, make_settings
from nexpo.api.main import create_app
from nexpo.api.transit import AES256_GCM96, CHACHA20_POLY1305, ED25519, create_key, rotate_key

ADMIN_KEY = "admin-key-0123456789"
ADMIN = {"X-API-Key": ADMIN_KEY}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def transit(tmp_path: Path) -> Iterator[TestClient]:
    path = tmp_path / "transit.json"
    create_key(path, "aes", AES256_GCM96)
    create_key(path, "chacha", CHACHA20_POLY1305)
    create_key(path, "signer", ED25519)
    settings = make_settings(tmp_path, transit_keys_file=path, admin_api_keys=ADMIN_KEY)
    with TestClient(create_app(settings)) as c:
        yield c


def post(c: TestClient, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    answer = c.post(f"/v1/transit/{path}", headers=AUTH, json=body)
    if status != 200:
        return is_problem(answer, status)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


@pytest.mark.parametrize("key", ["aes", "chacha"])
def test_encrypt_decrypt_round_trip_per_key_type(transit: TestClient, key: str) -> None:
    for data in (b"", b"secret", bytes(range(256)) * 64):
        sealed = post(transit, f"encrypt/{key}", {"plaintext": b64(data), "context": b64(b"t1")})
        assert sealed["ciphertext"].startswith("nexpo:v1:") and sealed["key_version"] == 1
        opened = post(transit, f"decrypt/{key}", {"ciphertext": sealed["ciphertext"], "context": b64(b"t1")})
        assert base64.b64decode(opened["plaintext"]) == data


@pytest.mark.parametrize("key", ["aes", "chacha"])
def test_tampering_and_wrong_context_are_400(transit: TestClient, key: str) -> None:
    token = post(transit, f"encrypt/{key}", {"plaintext": b64(b"payload"), "context": b64(b"t1")})[
        "ciphertext"
    ]
    prefix, body = token.rsplit(":", 1)
    raw = base64.b64decode(body)
    for position in (0, 12, len(raw) - 1):  # nonce, ciphertext, tag
        altered = bytearray(raw)
        altered[position] ^= 1
        problem = post(
            transit,
            f"decrypt/{key}",
            {"ciphertext": f"{prefix}:{b64(bytes(altered))}", "context": b64(b"t1")},
            400,
        )
        assert "altered" in problem["detail"]
    post(transit, f"decrypt/{key}", {"ciphertext": token, "context": b64(b"t2")}, 400)
    other = "chacha" if key == "aes" else "aes"
    post(transit, f"decrypt/{other}", {"ciphertext": token, "context": b64(b"t1")}, 400)
    post(transit, f"decrypt/{key}", {"ciphertext": "nexpo:v1:@@"}, 400)
    post(transit, f"decrypt/{key}", {}, 400)  # neither ciphertext nor batch_input
    post(transit, f"encrypt/{key}", {"plaintext": "!"}, 400)  # not base64
    for unsupported in ({"associated_data": ""}, {"nonce": ""}, {"type": "aes256-gcm96"}):  # never ignored
        is_problem(
            transit.post(f"/v1/transit/encrypt/{key}", headers=AUTH, json={"plaintext": "", **unsupported}),
            422,
        )
    is_problem(
        transit.post(f"/v1/transit/encrypt/{key}", headers=AUTH, json={"batch_input": [{"nonce": ""}]}), 422
    )


def test_unknown_key_404_and_wrong_type_400(transit: TestClient) -> None:
    post(transit, "encrypt/nope", {"plaintext": ""}, 404)
    post(transit, "encrypt/nope", {"batch_input": [{"plaintext": ""}]}, 404)  # the whole request
    assert "do not encrypt" in post(transit, "encrypt/signer", {"plaintext": ""}, 400)["detail"]
    assert "do not sign" in post(transit, "sign/aes", {"input": ""}, 400)["detail"]
    post(transit, "encrypt/aes", {"plaintext": "", "key_version": 2}, 400)


def test_batch_with_one_bad_item(transit: TestClient) -> None:
    items = [
        {"plaintext": b64(b"one"), "reference": "a"},
        {"plaintext": "not base64!", "reference": "b"},
        {"plaintext": b64(b"three"), "context": b64(b"c3")},
    ]
    answer = transit.post("/v1/transit/encrypt/aes", headers=AUTH, json={"batch_input": items})
    problem = is_problem(answer, 400)
    assert problem["detail"] == "1 of 3 batch items failed"
    results = problem["batch_results"]
    assert [r.get("reference") for r in results] == ["a", "b", None]
    assert "not valid base64" in results[1]["error"] and "ciphertext" not in results[1]
    partial = post(transit, "encrypt/aes", {"batch_input": items, "partial_failure_response_code": 200})
    assert [("error" in r) for r in partial["batch_results"]] == [False, True, False]
    tokens = [r["ciphertext"] for r in partial["batch_results"] if "ciphertext" in r]
    batch = [{"ciphertext": tokens[0]}, {"ciphertext": tokens[1], "context": b64(b"c3")}, {"ciphertext": "x"}]
    opened = transit.post(
        "/v1/transit/decrypt/aes",
        headers=AUTH,
        json={"batch_input": batch, "partial_failure_response_code": 207},
    )
    assert opened.status_code == 207
    results = opened.json()["batch_results"]
    assert [base64.b64decode(r["plaintext"]) for r in results[:2]] == [b"one", b"three"]
    assert "malformed token" in results[2]["error"]
    everything_bad = {"batch_input": [{"ciphertext": "x"}], "partial_failure_response_code": 200}
    post(transit, "decrypt/aes", everything_bad, 400)  # all failed: no partial-success status
    post(transit, "decrypt/aes", {"batch_input": []}, 400)


def test_batch_shares_top_level_context(transit: TestClient) -> None:
    body = {"context": b64(b"shared"), "batch_input": [{"plaintext": b64(b"x")}, {"plaintext": b64(b"y")}]}
    tokens = [r["ciphertext"] for r in post(transit, "encrypt/chacha", body)["batch_results"]]
    for token in tokens:
        post(transit, "decrypt/chacha", {"ciphertext": token, "context": b64(b"shared")})
        post(transit, "decrypt/chacha", {"ciphertext": token}, 400)


def test_rewrap_after_rotation(transit: TestClient) -> None:
    token = post(transit, "encrypt/aes", {"plaintext": b64(b"keep"), "context": b64(b"c")})["ciphertext"]
    assert transit.post("/v1/transit/keys/aes/rotate", headers=ADMIN).status_code == 200
    rewrapped = post(transit, "rewrap/aes", {"ciphertext": token, "context": b64(b"c")})
    assert rewrapped["ciphertext"].startswith("nexpo:v2:") and "plaintext" not in rewrapped
    opened = post(transit, "decrypt/aes", {"ciphertext": rewrapped["ciphertext"], "context": b64(b"c")})
    assert (base64.b64decode(opened["plaintext"]), opened["key_version"]) == (b"keep", 2)
    batch = post(transit, "rewrap/aes", {"context": b64(b"c"), "batch_input": [{"ciphertext": token}]})
    assert batch["batch_results"][0]["key_version"] == 2


@pytest.mark.parametrize("bits", [128, 256, 512])
def test_datakey_plaintext_unwraps_to_the_same_key(transit: TestClient, bits: int) -> None:
    answer = post(transit, "datakey/plaintext/aes", {"bits": bits, "context": b64(b"c")})
    data_key = base64.b64decode(answer["plaintext"])
    assert len(data_key) == bits // 8
    opened = post(transit, "decrypt/aes", {"ciphertext": answer["ciphertext"], "context": b64(b"c")})
    assert base64.b64decode(opened["plaintext"]) == data_key
    wrapped = post(transit, "datakey/wrapped/aes", {"bits": bits})
    assert "plaintext" not in wrapped
    unwrapped = base64.b64decode(
        post(transit, "decrypt/aes", {"ciphertext": wrapped["ciphertext"]})["plaintext"]
    )
    assert len(unwrapped) == bits // 8


def test_datakey_bad_requests(transit: TestClient) -> None:
    is_problem(transit.post("/v1/transit/datakey/plaintext/aes", headers=AUTH, json={"bits": 64}), 422)
    is_problem(transit.post("/v1/transit/datakey/export/aes", headers=AUTH, json={}), 422)
    post(transit, "datakey/plaintext/signer", {}, 400)
    for kind in ("plaintext", "wrapped"):  # was a 500 (found by schemathesis): decoded outside the mapping
        for context in ("\u00cf", "not base64!", "YQ"):
            post(transit, f"datakey/{kind}/aes", {"context": context}, 400)
            post(transit, f"datakey/{kind}/missing-key", {"context": context}, 400)


@pytest.mark.parametrize("key", ["aes", "chacha", "signer"])
def test_hmac_and_verify(transit: TestClient, key: str) -> None:
    mac = post(transit, f"hmac/{key}", {"input": b64(b"data")})
    assert mac["hmac"].startswith("nexpo:v1:") and mac["key_version"] == 1
    assert post(transit, f"verify/{key}", {"input": b64(b"data"), "hmac": mac["hmac"]})["valid"] is True
    assert post(transit, f"verify/{key}", {"input": b64(b"datA"), "hmac": mac["hmac"]})["valid"] is False
    mac512 = post(transit, f"hmac/{key}/sha2-512", {"input": b64(b"data")})["hmac"]
    assert len(base64.b64decode(mac512.split(":")[2])) == 64
    assert post(transit, f"verify/{key}/sha2-512", {"input": b64(b"data"), "hmac": mac512})["valid"] is True
    assert post(transit, f"verify/{key}", {"input": b64(b"data"), "hmac": mac512})["valid"] is False
    post(transit, f"hmac/{key}/md5", {"input": b64(b"data")}, 400)
    batch = post(transit, f"hmac/{key}", {"batch_input": [{"input": b64(b"a")}, {"input": b64(b"b")}]})
    assert len({r["hmac"] for r in batch["batch_results"]}) == 2


def test_sign_and_verify_ed25519(transit: TestClient) -> None:
    signed = post(transit, "sign/signer", {"input": b64(b"tx")})
    assert signed["signature"].startswith("nexpo:v1:") and signed["key_version"] == 1
    good = {"input": b64(b"tx"), "signature": signed["signature"]}
    assert post(transit, "verify/signer", good)["valid"] is True
    assert post(transit, "verify/signer", {**good, "input": b64(b"tX")})["valid"] is False
    post(transit, "verify/signer", {"input": b64(b"tx")}, 400)  # neither signature nor hmac
    post(transit, "verify/signer", {**good, "hmac": "nexpo:v1:AAAA"}, 400)  # both
    post(transit, "verify/aes", good, 400)
    # the public key from keys/{name} verifies offline, with any Ed25519 implementation
    public = base64.b64decode(
        transit.get("/v1/transit/keys/signer", headers=AUTH).json()["keys"]["1"]["public_key"]
    )
    from nexpo.crypto import ed25519_verify

    assert ed25519_verify(public, b"tx", base64.b64decode(signed["signature"].split(":")[2]))
    batch = post(transit, "verify/signer", {"batch_input": [good, {**good, "input": b64(b"no")}]})
    assert [r["valid"] for r in batch["batch_results"]] == [True, False]


def test_rotate_then_min_decryption_version_over_http(transit: TestClient) -> None:
    old = post(transit, "encrypt/chacha", {"plaintext": b64(b"v1 data")})["ciphertext"]
    old_mac = post(transit, "hmac/chacha", {"input": b64(b"m")})["hmac"]
    info = transit.post("/v1/transit/keys/chacha/rotate", headers=ADMIN).json()
    assert info["latest_version"] == 2
    assert post(transit, "encrypt/chacha", {"plaintext": ""})["key_version"] == 2
    assert post(transit, "decrypt/chacha", {"ciphertext": old})["key_version"] == 1
    config = transit.post("/v1/transit/keys/chacha/config", headers=ADMIN, json={"min_decryption_version": 2})
    assert config.status_code == 200 and config.json()["min_decryption_version"] == 2
    assert "min_decryption_version" in post(transit, "decrypt/chacha", {"ciphertext": old}, 400)["detail"]
    post(transit, "verify/chacha", {"input": b64(b"m"), "hmac": old_mac}, 400)
    post(transit, "encrypt/chacha", {"plaintext": "", "key_version": 1}, 400)


def test_a_rotation_on_disk_is_picked_up(tmp_path: Path, transit: TestClient) -> None:
    rotate_key(tmp_path / "transit.json", "aes")
    transit.app.state.gateway.keyring._checked = 0.0  # type: ignore[attr-defined]
    assert post(transit, "encrypt/aes", {"plaintext": ""})["key_version"] == 2
