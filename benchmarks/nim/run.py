"""Build and run the Nim-level benchmarks (no Python in the timed loop).

    .venv/bin/python benchmarks/nim/run.py [NAME ...] [-- ARGS]

Each ``benchmarks/nim/bench_<name>.nim`` is compiled with the release profile of nimble.toml
(same flags as the extension) and run; it prints one JSON object per line. ``benchmarks/test_
scheduler.py`` and ``benchmarks/test_channels.py`` call :func:`run_bench` so the numbers also
land in pytest-benchmark's ``extra_info``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "nim"))

import nimbuild  # noqa: E402


def build_bench(name: str) -> Path:
    cfg = nimbuild.load_config()
    nim = nimbuild.require_nim(cfg)
    with nimbuild.build_lock("nimbench"):
        src = ROOT / "benchmarks" / "nim" / f"bench_{name}.nim"
        return nimbuild.build_test(nim, cfg, "release", src)


def run_bench(name: str, *args: str) -> list[dict[str, Any]]:
    exe = build_bench(name)
    out = subprocess.run([str(exe), *args], capture_output=True, text=True, check=True, timeout=600)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main(argv: list[str]) -> int:
    names, args = argv, []
    if "--" in argv:
        i = argv.index("--")
        names, args = argv[:i], argv[i + 1 :]
    if not names:
        sources = sorted((ROOT / "benchmarks" / "nim").glob("bench_*.nim"))
        names = [p.stem.removeprefix("bench_") for p in sources]
    for name in names:
        for row in run_bench(name, *args):
            print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
