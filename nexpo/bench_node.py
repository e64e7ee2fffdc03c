"""The report's Node.js section: the npm package's own benchmark (`make bench-node`, which runs
node/bench/bench.js and writes ``node-latest.json`` beside the report), against Node's peers in
the same run. Absent or unreadable results leave the section out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

NODE_RESULTS = "node-latest.json"


def _seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def _row(result: dict[str, Any]) -> str:
    met = "yes" if result["met"] else "**no**"
    return (
        f"| {result['name']} | {_seconds(float(result['nexpo_s']))} | {result['baseline']} "
        f"({_seconds(float(result['baseline_s']))}) | {float(result['speedup']):.2f}× | "
        f"≥ {result['goal']}× | {met} |"
    )


def render_node_section(path: Path) -> str | None:
    """The markdown section for the results in ``path``, or None when there are none."""
    try:
        data = json.loads(path.read_text())
        rows = [_row(result) for result in data["results"]]
        machine = f"node {data['node']}, {data['cpu_model']}, {data['cpus']} CPUs, {data['datetime']}"
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return "\n".join(
        [
            "## node",
            "",
            f"`make bench-node` (node/bench/bench.js; {machine}): the `nexpo` npm package against",
            "Node's own peers, median of interleaved rounds. Node → Python through a shared channel:",
            "`make bench-node-channel`.",
            "",
            "| case | nexpo | baseline | nexpo ÷ baseline | goal | met |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
