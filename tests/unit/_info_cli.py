"""`nexpo info --json` in a fresh interpreter with extra environment variables: how the tests see
what a switch read at import (NEXPO_ISA, NEXPO_SHA_NI, NEXPO_IFMA) does to a new process."""

from __future__ import annotations

import os
import subprocess
import sys


def info_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nexpo", "info", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
