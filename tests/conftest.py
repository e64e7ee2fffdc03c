"""Shared fixtures: every test that takes ``isa`` runs once per instruction-set path this CPU has."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest

import nexpo
from nexpo import _native

# tools/test_installed.py runs these tests against an installed wheel: make sure that is what runs
if os.environ.get("NEXPO_TEST_INSTALLED") and "site-packages" not in nexpo.__file__:
    raise pytest.UsageError(f"NEXPO_TEST_INSTALLED is set but nexpo comes from {nexpo.__file__}")

# Gateways built or started by tests serve no gRPC unless a test asks for it (NEXPO_GRPC_PORT):
# the default port 8001 would be shared by every app and subprocess the tests start.
os.environ.setdefault("NEXPO_GRPC_PORT", "0")

ISAS = _native.isa_available()
# SHA-256's paths: every ISA, plus AVX-512 with SHA-NI switched off (Skylake-SP, Cascade Lake),
# where the 16-lane batches must run without SHA-NI for the rest
SHA_PATHS = ISAS + (["avx512-nosha"] if "avx512" in ISAS and _native.has_sha_ni() else [])


@pytest.fixture(params=ISAS)
def isa(request: pytest.FixtureRequest) -> Iterator[str]:
    """Force one ISA path for the duration of the test, then restore the previous one."""
    previous = _native.isa_active()
    _native.set_isa(request.param)
    try:
        yield request.param
    finally:
        _native.set_isa(previous)


@pytest.fixture(params=SHA_PATHS)
def sha_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Like ``isa``, and ``avx512-nosha`` is ``avx512`` with SHA-NI switched off."""
    previous, previous_sha_ni = _native.isa_active(), _native.sha_ni_enabled()
    isa, _, nosha = request.param.partition("-")
    _native.set_isa(isa)
    _native.set_sha_ni(not nosha)
    try:
        yield request.param
    finally:
        _native.set_sha_ni(previous_sha_ni)
        _native.set_isa(previous)


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A seeded RNG whose seed is printed, so a failure can be replayed with NEXPO_SEED."""
    seed = int(os.environ.get("NEXPO_SEED", random.randrange(2**32)))
    print(f"[{request.node.name}] NEXPO_SEED={seed}")
    return random.Random(seed)
