"""nexpo/bench_node.py: the report's Node.js section from node/bench/bench.js's results."""

from __future__ import annotations

import json
from pathlib import Path

from nexpo.bench_node import render_node_section

RESULT = {
    "name": "sha256Many 100000 x 64 B",
    "baseline": "node:crypto createHash loop",
    "nexpo_s": 0.0175,
    "baseline_s": 0.24,
    "speedup": 13.7,
    "goal": 10,
    "met": True,
}


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "node-latest.json"
    path.write_text(json.dumps(data))
    return path


def test_a_row_per_result_with_its_goal(tmp_path: Path) -> None:
    slow = {**RESULT, "name": "matmul n=512 float32", "speedup": 0.5, "goal": 20, "met": False}
    data = {
        "datetime": "2026-12-07",
        "node": "v20.20.2",
        "cpus": 2,
        "cpu_model": "AMD EPYC",
        "results": [RESULT, slow],
    }
    section = render_node_section(_write(tmp_path, data))
    assert section is not None and section.startswith("## node")
    assert (
        "| sha256Many 100000 x 64 B | 17.5 ms | node:crypto createHash loop (240 ms) | 13.70× | ≥ 10× | yes |"
        in section
    )
    assert "| matmul n=512 float32 |" in section and "| ≥ 20× | **no** |" in section
    assert "v20.20.2" in section


def test_missing_or_malformed_results_leave_the_section_out(tmp_path: Path) -> None:
    assert render_node_section(tmp_path / "absent.json") is None
    assert render_node_section(_write(tmp_path, {"results": [RESULT]})) is None  # no machine
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert render_node_section(broken) is None
    assert render_node_section(_write(tmp_path, [1, 2])) is None
