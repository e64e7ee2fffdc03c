"""The report's goals: each issue's performance target next to what this run measured.

Two sources:

- ``GROUP_GOALS``: targets on a group's ratio (the fastest nexpo row ÷ the best peer, as in the
  summary) and, optionally, on its p50 latency (a group whose timed call is one call: the median
  of pytest-benchmark is that call's p50), matched by area and case;
- ``extra_info["goals"]`` of a benchmark that measures its own ratios (e.g. interleaved rounds of
  a load test): a list of ``{"goal", "value", "target", "higher": bool, "unit"}``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bench import BenchResult


@dataclass(frozen=True)
class GroupGoal:
    area: str
    case: str  # regular expression, fullmatch on the case
    min_ratio: float  # nexpo ÷ best peer, throughput
    latency_pattern: str | None = None  # cases (fullmatch) whose p50 must not exceed the peer's
    source: str = ""


GROUP_GOALS = (
    GroupGoal("inference", r"(mlp|cnn|encoder) batch \d+", 1.0, r".* batch 1", "issue 17"),
    GroupGoal("matmul", r"float(32|64) \d+t n=64", 1.0, None, "issue 17"),
    GroupGoal("matmul", r"skinny .*", 1.0, None, "issue 17"),
)


@dataclass(frozen=True)
class GoalRow:
    area: str
    goal: str
    measured: str
    target: str
    met: bool


def _fmt_time(seconds: float) -> str:
    for unit, scale in (("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _group_rows(results: Sequence[BenchResult]) -> list[GoalRow]:
    groups: dict[str, list[BenchResult]] = defaultdict(list)
    for r in results:
        groups[r.group].append(r)
    rows: list[GoalRow] = []
    for _, members in sorted(groups.items()):
        head = members[0]
        goal = next((g for g in GROUP_GOALS if g.area == head.area and re.fullmatch(g.case, head.case)), None)
        ours = [r for r in members if r.is_nexpo]
        peers = [r for r in members if not r.is_nexpo]
        if goal is None or not ours or not peers:
            continue
        best_ours = max(ours, key=lambda r: r.speed())
        best_peer = max(peers, key=lambda r: r.speed())
        ratio = best_ours.speed() / best_peer.speed() if best_peer.speed() > 0 else float("inf")
        rows.append(
            GoalRow(
                head.area,
                f"{head.case}: throughput vs {best_peer.implementation} ({goal.source})",
                f"{ratio:.2f}×",
                f"≥ {goal.min_ratio:g}×",
                ratio >= goal.min_ratio,
            )
        )
        if goal.latency_pattern and re.fullmatch(goal.latency_pattern, head.case):
            timed = [r for r in peers if r.rounds > 0]  # external peers have no timed calls
            if timed:
                fastest = min(timed, key=lambda r: r.median_s)
                rows.append(
                    GoalRow(
                        head.area,
                        f"{head.case}: p50 latency of one call vs {fastest.implementation} ({goal.source})",
                        f"{_fmt_time(best_ours.median_s)} vs {_fmt_time(fastest.median_s)}",
                        "≤ the peer's",
                        best_ours.median_s <= fastest.median_s,
                    )
                )
    return rows


def _recorded_rows(results: Iterable[BenchResult]) -> list[GoalRow]:
    rows: list[GoalRow] = []
    for r in results:
        goals: Any = r.extra.get("goals")
        if not isinstance(goals, list):
            continue
        for goal in goals:
            value, target = float(goal["value"]), float(goal["target"])
            higher = bool(goal.get("higher", True))
            unit = str(goal.get("unit", "×"))
            rows.append(
                GoalRow(
                    r.area,
                    str(goal["goal"]),
                    f"{value:.3g}{unit}",
                    f"{'≥' if higher else '≤'} {target:g}{unit}",
                    value >= target if higher else value <= target,
                )
            )
    return rows


def goal_rows(results: Sequence[BenchResult]) -> list[GoalRow]:
    return _group_rows(results) + _recorded_rows(results)


def render_goals(results: Sequence[BenchResult]) -> str:
    """The goals table ("" when no result has a goal)."""
    rows = goal_rows(results)
    if not rows:
        return ""
    lines = ["| area | goal | measured | target | met |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(
            f"| {row.area} | {row.goal} | {row.measured} | {row.target} | {'yes' if row.met else '**no**'} |"
        )
    return "\n".join(lines)
