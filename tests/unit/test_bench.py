"""The speedup report: throughput units, tables, charts and regression gating."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nexpo import bench, cli


def _bench(group: str, impl: str, median: float, **extra: Any) -> dict[str, Any]:
    name = f"test_x[{group}-{impl}]"
    return {
        "group": group,
        "name": name,
        "fullname": f"benchmarks/test_x.py::{name}",
        "param": impl,
        "params": {"impl": impl},
        "extra_info": {"implementation": impl, **extra},
        "stats": {"median": median, "mean": median, "rounds": 5},
    }


def _write(path: Path, benches: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"benchmarks": benches, "machine_info": {}}))
    return path


@pytest.fixture
def results_file(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "new.json",
        [
            _bench("matmul: f32 n=512", "nexpo", 0.001, flops=2 * 512**3, n=512, correct=True),
            _bench("matmul: f32 n=512", "numpy", 0.002, flops=2 * 512**3, n=512, correct=True),
            _bench("crypto: sha256 64 MiB", "nexpo", 0.02, bytes=64 << 20, correct=True),
            _bench("crypto: sha256 64 MiB", "hashlib", 0.04, bytes=64 << 20, correct=True),
            _bench("gateway: hash", "nexpo", 10.0, throughput=8000, unit="req/s", p50_us=900, p99_us=2000),
            _bench("gateway: hash", "bare FastAPI", 10.0, throughput=9000, unit="req/s"),
        ],
    )


def test_throughput_units(results_file: Path) -> None:
    by_key = {(r.group, r.implementation): r for r in bench.load_results(results_file)}
    gflops = by_key[("matmul: f32 n=512", "nexpo")].throughput
    assert gflops is not None
    assert gflops[1] == "GFLOPS"
    assert gflops[0] == pytest.approx(2 * 512**3 / 0.001 / 1e9)
    assert by_key[("crypto: sha256 64 MiB", "hashlib")].throughput == pytest.approx(
        ((64 << 20) / 0.04 / 1e9, "GB/s")
    )
    assert by_key[("gateway: hash", "nexpo")].throughput == (8000.0, "req/s")


def test_summary_compares_nexpo_with_the_best_peer(results_file: Path) -> None:
    rows = {
        (area, case): ratio
        for area, case, _, _, ratio in bench.summary_rows(bench.load_results(results_file))
    }
    assert rows[("matmul", "f32 n=512")] == pytest.approx(2.0)
    assert rows[("crypto", "sha256 64 MiB")] == pytest.approx(2.0)
    assert rows[("gateway", "hash")] == pytest.approx(8000 / 9000)


def test_report_has_a_table_per_area_and_the_command(results_file: Path) -> None:
    report = bench.render_report(bench.load_results(results_file), {"cpu": "test"}, "nexpo bench --quick")
    assert "`nexpo bench --quick`" in report
    for area in ("## matmul", "## crypto", "## gateway"):
        assert area in report
    assert "p50 900 µs" in report


def test_charts_are_written(results_file: Path, tmp_path: Path) -> None:
    from nexpo.bench_charts import draw_charts

    charts = draw_charts(bench.load_results(results_file), tmp_path)
    names = {c.name for c in charts}
    assert "matmul_gflops.png" in names
    assert "crypto_speedup.png" in names
    assert all(c.stat().st_size > 1000 for c in charts)


def test_compare_flags_only_regressions_beyond_the_threshold(tmp_path: Path) -> None:
    old = _write(
        tmp_path / "old.json", [_bench("a: x", "nexpo", 1.0, items=1), _bench("b: y", "nexpo", 1.0, items=1)]
    )
    new = _write(
        tmp_path / "n.json", [_bench("a: x", "nexpo", 1.05, items=1), _bench("b: y", "nexpo", 1.5, items=1)]
    )
    regressions = bench.compare(bench.load_results(old), bench.load_results(new), 0.10)
    assert [r.fullname for r in regressions] == ["benchmarks/test_x.py::test_x[b: y-nexpo]"]
    assert regressions[0].slowdown == pytest.approx(1 - 1 / 1.5)


def test_cli_compare_exits_non_zero_on_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = _write(tmp_path / "old.json", [_bench("a: x", "nexpo", 1.0, items=1, correct=True)])
    new = _write(tmp_path / "new.json", [_bench("a: x", "nexpo", 2.0, items=1, correct=True)])
    out = tmp_path / "out"
    assert cli.main(["bench", "--results", str(new), "--out", str(out), "--compare", str(old)]) == 1
    assert "REGRESSION 50.0% slower" in capsys.readouterr().out
    assert (out / "REPORT.md").is_file()
    assert cli.main(["bench", "--results", str(old), "--out", str(out), "--compare", str(old)]) == 0


def test_cli_fails_on_a_wrong_result(tmp_path: Path) -> None:
    new = _write(tmp_path / "new.json", [_bench("a: x", "nexpo", 1.0, items=1, correct=False)])
    assert cli.main(["bench", "--results", str(new), "--out", str(tmp_path / "out")]) == 1


def test_cli_without_benchmarks_folder_is_a_clear_error(tmp_path: Path) -> None:
    assert cli.main(["bench", "--benchmarks", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2


def test_external_peers_rows_and_load_tests(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "r.json",
        [
            _bench(
                "matmul: f32 n=64",
                "nexpo",
                0.001,
                flops=2e9,
                n=64,
                external_peers=[{"implementation": "numpy SkylakeX", "throughput": 1000.0, "unit": "GFLOPS"}],
            ),
            _bench("gateway: ping", "nexpo gateway", 3.0, req_per_s=12000.0, p50_ms=5.0, p99_ms=8.0),
            _bench("gateway: ping", "bare FastAPI", 3.0, req_per_s=8000.0),
            _bench("channels: nim", "nexpo nim", 1.0, rows=[{"case": "spsc", "msgs_per_s": 1.5e8}]),
        ],
    )
    results = bench.load_results(path)
    peer = next(r for r in results if r.implementation == "numpy SkylakeX")
    assert peer.throughput == (1000.0, "GFLOPS")
    assert peer.group == "matmul: f32 n=64"
    rows = {(area, case): ratio for area, case, _, _, ratio in bench.summary_rows(results)}
    assert rows[("matmul", "f32 n=64")] == pytest.approx(2.0)
    assert rows[("gateway", "ping")] == pytest.approx(1.5)
    report = bench.render_report(results, {}, "cmd")
    assert "p50 5 ms" in report
    assert "| spsc | 1.5e+08 |" in report
