"""A short fuzz campaign against the shared-ring reader (tests/fuzz_ring.py; `make fuzz-ring`
runs a long one). Every case runs in its own process with a kill timeout: a signal, a hang or an
unexpected exception in any of them fails this test, with the seed that replays it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parents[1] / "fuzz_ring.py"


def test_corrupted_shared_rings_end_in_an_error_never_a_crash_or_hang() -> None:
    runs = os.environ.get("NEXPO_FUZZ_RUNS", "40")
    seed = os.environ.get("NEXPO_FUZZ_SEED", "7")
    proc = subprocess.run(
        [sys.executable, str(FUZZ), "--runs", runs, "--seed", seed, "--jobs", "2"],
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{runs} cases" in proc.stdout and "'pass': " + runs in proc.stdout, proc.stdout
