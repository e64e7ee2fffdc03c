"""``nexpo.info()`` and the kernel counters."""

from __future__ import annotations

import nexpo
from nexpo import _info


def test_info_reports_the_build() -> None:
    data = nexpo.info()
    assert data["version"] == nexpo.__version__
    assert data["nim_version"].count(".") == 2
    assert data["build_profile"] in {"release", "debug", "sanitize", "tsan"}
    assert "portable" in data["isa_available"]
    assert data["isa_active"] in data["isa_available"]
    assert data["isa_best"] == data["isa_available"][-1]
    assert isinstance(data["sha_ni"], bool)
    assert isinstance(data["ifma"], bool) and isinstance(data["ifma_active"], bool)
    assert data["threads"] >= 1


def test_info_follows_the_forced_isa(isa: str) -> None:
    assert nexpo.info()["isa_active"] == isa


def test_kernel_stats_lists_every_kernel_with_counts() -> None:
    stats = _info.kernel_stats()
    assert {"matmul", "linear", "sha256", "chacha20poly1305"} <= set(stats)
    for counters in stats.values():
        assert counters["calls"] >= 0
        assert counters["bytes"] >= 0
