"""The speedup report: run ``benchmarks/`` (pytest-benchmark), tabulate nexpo against its peers
measured in the same run, draw charts, and gate releases on regressions.

Conventions the benchmarks follow (``benchmark.extra_info``):

- ``implementation``: who ran (``"nexpo ..."`` for ours, else the peer: ``"numpy"``, ``"hashlib"``);
- ``correct``: whether that implementation's result matched the reference;
- one unit of work per timed call, to turn seconds into throughput: ``flops`` (GFLOPS),
  ``bytes`` (GB/s) or ``items`` (M items/s; ``samples``, ``msgs``, ``ops``, ``calls`` and ``requests`` are
  read as items);
- or a throughput measured inside the benchmark: ``throughput`` with its ``unit``, or
  ``req_per_s`` (a load test); optional latencies ``p50_us``/``p99_us`` or ``p50_ms``/``p99_ms``;
- ``external_peers``: peers timed outside pytest-benchmark (e.g. numpy in a subprocess with
  another BLAS core type), each ``{"implementation", "throughput", "unit"}``: listed as rows of
  the same group;
- ``rows``: a table of sub-results (e.g. Nim-level benches), shown under the area's table;
- ``n``: the problem size, the x axis of the matmul chart.

``benchmark.group`` is ``"<area>: <case>"``; the report has one table per area.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BenchResult",
    "Regression",
    "compare",
    "load_results",
    "machine_summary",
    "record_command",
    "recorded_command",
    "render_report",
    "run_benchmarks",
    "summary_rows",
]

_ITEM_KEYS = ("items", "samples", "messages", "msgs", "ops", "calls", "requests")


@dataclass(frozen=True)
class BenchResult:
    """One benchmark of one implementation, as pytest-benchmark recorded it."""

    fullname: str
    group: str
    implementation: str
    median_s: float
    mean_s: float
    rounds: int
    correct: bool | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def area(self) -> str:
        return self.group.split(":", 1)[0].strip() if ":" in self.group else self.group

    @property
    def case(self) -> str:
        return self.group.split(":", 1)[1].strip() if ":" in self.group else self.group

    @property
    def is_nexpo(self) -> bool:
        return self.implementation.lower().startswith("nexpo")

    @property
    def throughput(self) -> tuple[float, str] | None:
        """(value, unit), higher is better; None when the benchmark records no unit of work."""
        if "throughput" in self.extra:
            return float(self.extra["throughput"]), str(self.extra.get("unit", "ops/s"))
        if "req_per_s" in self.extra:
            return float(self.extra["req_per_s"]), "req/s"
        if self.median_s <= 0:
            return None
        if "flops" in self.extra:
            return float(self.extra["flops"]) / self.median_s / 1e9, "GFLOPS"
        if "bytes" in self.extra:
            return float(self.extra["bytes"]) / self.median_s / 1e9, "GB/s"
        for key in _ITEM_KEYS:
            if key in self.extra:
                return float(self.extra[key]) / self.median_s / 1e6, f"M {key}/s"
        return None

    def speed(self) -> float:
        """A number where higher is faster, comparable within one group."""
        tp = self.throughput
        if tp is not None:
            return tp[0]
        return 1.0 / self.median_s if self.median_s > 0 else 0.0


def load_results(path: Path) -> list[BenchResult]:
    data = json.loads(path.read_text())
    results = []
    for bench in data.get("benchmarks", []):
        extra = dict(bench.get("extra_info") or {})
        impl = extra.pop("implementation", None) or bench.get("param") or bench["name"]
        correct = extra.pop("correct", None)
        stats = bench["stats"]
        group = bench.get("group") or bench["name"]
        results.append(
            BenchResult(
                fullname=bench["fullname"],
                group=group,
                implementation=str(impl),
                median_s=float(stats["median"]),
                mean_s=float(stats["mean"]),
                rounds=int(stats["rounds"]),
                correct=None if correct is None else bool(correct),
                extra=extra,
            )
        )
        for peer in extra.pop("external_peers", []):
            results.append(
                BenchResult(
                    fullname=f"{bench['fullname']}::{peer['implementation']}",
                    group=group,
                    implementation=str(peer["implementation"]),
                    median_s=float(stats["median"]),
                    mean_s=float(stats["mean"]),
                    rounds=0,
                    correct=None,
                    extra={
                        "throughput": peer["throughput"],
                        "unit": peer["unit"],
                        **{k: extra[k] for k in ("n", "m", "series") if k in extra},
                    },
                )
            )
    return results


# --- the machine ---------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_summary() -> dict[str, Any]:
    from nexpo import info

    nexpo_info = info()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "isa_active": nexpo_info["isa_active"],
        "sha_ni": nexpo_info["sha_ni"],
        "threads": nexpo_info["threads"],
        "python": platform.python_version(),
        "nexpo": nexpo_info["version"],
        "nim": nexpo_info["nim_version"],
        "build_profile": nexpo_info["build_profile"],
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
    }


# --- the report ----------------------------------------------------------------------------


def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _fmt_tp(result: BenchResult) -> str:
    tp = result.throughput
    return "—" if tp is None else f"{tp[0]:.4g} {tp[1]}"


def by_group(results: Iterable[BenchResult]) -> dict[str, list[BenchResult]]:
    groups: dict[str, list[BenchResult]] = defaultdict(list)
    for r in results:
        groups[r.group].append(r)
    return dict(groups)


def reference(rows: Sequence[BenchResult]) -> BenchResult | None:
    """The nexpo row the peers are compared with: the fastest nexpo implementation."""
    ours = [r for r in rows if r.is_nexpo]
    return max(ours, key=BenchResult.speed) if ours else None


def speed_ratio(ours: BenchResult, peer: BenchResult) -> float:
    return ours.speed() / peer.speed() if peer.speed() > 0 else math.inf


def _correct_mark(value: bool | None) -> str:
    return {True: "yes", False: "**NO**", None: "—"}[value]


def summary_rows(results: Iterable[BenchResult]) -> list[tuple[str, str, str, str, float]]:
    """(area, case, nexpo throughput, best peer (throughput), nexpo ÷ best peer) per group."""
    rows = []
    for _group, members in sorted(by_group(results).items()):
        ours = reference(members)
        peers = [r for r in members if not r.is_nexpo]
        if ours is None or not peers:
            continue
        best = max(peers, key=BenchResult.speed)
        rows.append(
            (
                ours.area,
                ours.case,
                _fmt_tp(ours),
                f"{best.implementation} ({_fmt_tp(best)})",
                speed_ratio(ours, best),
            )
        )
    return rows


def render_summary(results: Iterable[BenchResult]) -> str:
    lines = [
        "| area | case | nexpo | best peer in the same run | nexpo ÷ peer |",
        "| --- | --- | --- | --- | --- |",
    ]
    for area, case, ours, peer, ratio in summary_rows(results):
        lines.append(f"| {area} | {case} | {ours} | {peer} | {ratio:.2f}× |")
    return "\n".join(lines)


def render_report(results: Sequence[BenchResult], machine: dict[str, Any], command: str) -> str:
    out = [
        "# nexpo speedup report",
        "",
        f"Command: `{command}`",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()),
        "",
        "Every ratio compares implementations measured in the same run. `nexpo ÷ peer` > 1 means",
        "nexpo is faster; `correct` says whether that implementation's result matched the reference.",
        "",
        "## Summary",
        "",
        render_summary(results),
        "",
    ]
    from .bench_goals import render_goals

    goals = render_goals(results)
    if goals:
        out += ["## Goals", "", "Each issue's performance target against this run (`met`: reached here).", "",
                goals, ""]  # fmt: skip
    by_area: dict[str, list[BenchResult]] = defaultdict(list)
    for r in results:
        by_area[r.area].append(r)
    for area in sorted(by_area):
        out += [
            f"## {area}",
            "",
            "| case | implementation | median time | throughput | nexpo ÷ this | correct |",
        ]
        out.append("| --- | --- | --- | --- | --- | --- |")
        for _group, members in sorted(by_group(by_area[area]).items()):
            ours = reference(members)
            for r in sorted(members, key=lambda m: (not m.is_nexpo, -m.speed())):
                ratio = "—" if ours is None or r is ours else f"{speed_ratio(ours, r):.2f}×"
                shown_time = "—" if r.rounds == 0 else _fmt_time(r.median_s)
                out.append(
                    f"| {r.case} | {r.implementation} | {shown_time} | {_fmt_tp(r)}{_latency(r)} "
                    f"| {ratio} | {_correct_mark(r.correct)} |"
                )
        out.append("")
        for r in by_area[area]:
            out += _sub_table(r)
    return "\n".join(out)


def _latency(result: BenchResult) -> str:
    for unit, label in (("us", "µs"), ("ms", "ms")):
        if f"p50_{unit}" in result.extra:
            p50, p99 = result.extra[f"p50_{unit}"], result.extra.get(f"p99_{unit}", float("nan"))
            return f" (p50 {p50:.3g} {label}, p99 {p99:.3g} {label})"
    return ""


def _sub_table(result: BenchResult) -> list[str]:
    rows = result.extra.get("rows")
    if not isinstance(rows, list) or not rows:
        return []
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = [f"{result.case} — {result.implementation}:", "", "| " + " | ".join(columns) + " |"]
    lines.append("|" + " --- |" * len(columns))
    for row in rows:
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in (row.get(c, "") for c in columns)]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


# --- regressions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Regression:
    fullname: str
    old_speed: float
    new_speed: float

    @property
    def slowdown(self) -> float:
        """How much slower, as a fraction (0.25 = 25% slower)."""
        return 1.0 - self.new_speed / self.old_speed if self.old_speed > 0 else 0.0


def compare(old: Sequence[BenchResult], new: Sequence[BenchResult], threshold: float) -> list[Regression]:
    """Benchmarks of nexpo that got slower than ``threshold`` (a fraction) between two runs."""
    before = {r.fullname: r for r in old}
    regressions = []
    for r in new:
        prior = before.get(r.fullname)
        if prior is None or not r.is_nexpo:
            continue
        reg = Regression(r.fullname, prior.speed(), r.speed())
        if reg.slowdown > threshold:
            regressions.append(reg)
    return sorted(regressions, key=lambda g: -g.slowdown)


# --- running -------------------------------------------------------------------------------


def run_benchmarks(
    benchmarks_dir: Path, json_out: Path, mode: str, select: str | None = None, extra_args: Sequence[str] = ()
) -> tuple[int, str]:
    """Run pytest-benchmark over ``benchmarks_dir``; returns (exit code, the command line)."""
    args = [
        sys.executable,
        "-m",
        "pytest",
        str(benchmarks_dir),
        "--benchmark-enable",
        "--benchmark-only",
        f"--benchmark-json={json_out}",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    if mode == "quick":
        args += ["--benchmark-max-time=0.5", "--benchmark-min-rounds=5"]
    else:
        args += ["--benchmark-max-time=2.0", "--benchmark-min-rounds=5"]
    if select:
        args += ["-k", select]
    args += list(extra_args)
    env = {**os.environ, "NEXPO_BENCH_MODE": mode}
    proc = subprocess.run(args, env=env)
    return proc.returncode, shlex.join(["nexpo", "bench", f"--{mode}", *(["-k", select] if select else [])])


def record_command(path: Path, command: str) -> None:
    """Keep the command that produced a results file inside it, for reports made later."""
    data = json.loads(path.read_text())
    data["nexpo_command"] = command
    path.write_text(json.dumps(data))


def recorded_command(path: Path) -> str | None:
    command = json.loads(path.read_text()).get("nexpo_command")
    return str(command) if command else None


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")
