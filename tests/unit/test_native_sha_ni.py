"""The SHA-NI switch (``_native.set_sha_ni``, ``NEXPO_SHA_NI``): SHA-NI can be switched off
whatever the ISA path, which gives the AVX-512-without-SHA-NI CPU (Skylake-SP, Cascade Lake)."""

from __future__ import annotations

import hashlib
import json

import pytest
from _info_cli import info_with

import nexpo
from nexpo import _native, crypto


def test_switching_sha_ni_off_and_on() -> None:
    previous = _native.sha_ni_enabled()
    try:
        _native.set_sha_ni(False)
        assert not _native.sha_ni_enabled()
        assert not nexpo.info()["sha_ni_active"]
        msgs = [bytes([i]) * 100 for i in range(40)]
        assert crypto.sha256_many(msgs) == [hashlib.sha256(m).digest() for m in msgs]
        _native.set_sha_ni(True)
        assert _native.sha_ni_enabled()
        if _native.isa_active() != "portable":
            assert nexpo.info()["sha_ni_active"] == _native.has_sha_ni()
    finally:
        _native.set_sha_ni(previous)


def test_set_sha_ni_takes_a_bool() -> None:
    with pytest.raises(TypeError, match="bool"):
        _native.set_sha_ni(0)  # type: ignore[arg-type]


def test_nexpo_sha_ni_environment_variable() -> None:
    proc = info_with({"NEXPO_SHA_NI": "0"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sha_ni_active"] is False
    bad = info_with({"NEXPO_SHA_NI": "maybe"})
    assert bad.returncode != 0
    assert "NEXPO_SHA_NI must be 0 or 1" in bad.stderr
