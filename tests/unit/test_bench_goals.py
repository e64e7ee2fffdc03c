"""The report's goals: group ratios and latencies against the issues' targets, recorded goals."""

from __future__ import annotations

from typing import Any

from nexpo import bench
from nexpo.bench_goals import goal_rows, render_goals


def _result(group: str, impl: str, median: float, rounds: int = 5, **extra: Any) -> bench.BenchResult:
    return bench.BenchResult(f"x::{group}::{impl}", group, impl, median, median, rounds, True, extra)


def test_inference_groups_get_throughput_and_batch_one_latency_rows() -> None:
    results = [
        _result("inference: mlp batch 1", "nexpo", 5e-6, samples=1),
        _result("inference: mlp batch 1", "onnxruntime", 6e-6, samples=1),
        _result("inference: cnn batch 8", "nexpo", 2e-4, samples=8),
        _result("inference: cnn batch 8", "onnxruntime", 1e-4, samples=8),
    ]
    rows = {(r.goal.split(":")[0], r.goal.split(":")[1].split()[0]): r for r in goal_rows(results)}
    assert rows[("cnn batch 8", "throughput")].measured == "0.50×"
    assert not rows[("cnn batch 8", "throughput")].met
    assert rows[("mlp batch 1", "throughput")].met
    latency = rows[("mlp batch 1", "p50")]
    assert latency.measured == "5 µs vs 6 µs" and latency.met
    assert ("cnn batch 8", "p50") not in rows  # latency goals are batch 1's


def test_matmul_n64_and_skinny_against_the_best_peer_including_external_ones() -> None:
    results = [
        _result("matmul: float32 2t n=64", "nexpo", 1.0, throughput=80, unit="GFLOPS"),
        _result("matmul: float32 2t n=64", "numpy", 1.0, throughput=70, unit="GFLOPS"),
        _result("matmul: float32 2t n=64", "numpy SkylakeX", 1.0, rounds=0, throughput=100, unit="GFLOPS"),
        _result("matmul: float32 2t n=256", "nexpo", 1.0, throughput=80, unit="GFLOPS"),
        _result("matmul: float32 2t n=256", "numpy", 1.0, throughput=70, unit="GFLOPS"),
    ]
    (row,) = goal_rows(results)
    assert row.goal.startswith("float32 2t n=64: throughput vs numpy SkylakeX")
    assert row.measured == "0.80×" and not row.met


def test_recorded_goals_and_the_report_section() -> None:
    goals = [
        {"goal": "REST ÷ bare", "value": 2.5, "target": 2},
        {"goal": "p99 ÷ bare", "value": 1.2, "target": 1, "higher": False},
    ]
    results = [_result("gateway v2: goal ratios (interleaved rounds)", "nexpo", 1.0, goals=goals)]
    table = render_goals(results)
    assert "| gateway v2 | REST ÷ bare | 2.5× | ≥ 2× | yes |" in table
    assert "| gateway v2 | p99 ÷ bare | 1.2× | ≤ 1× | **no** |" in table
    report = bench.render_report(results, {"cpu": "x"}, "nexpo bench --quick")
    assert "## Goals" in report and "REST ÷ bare" in report
    assert render_goals([]) == ""
