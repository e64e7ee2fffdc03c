"""Charts of the speedup report: GFLOPS against n for matmul, nexpo-vs-peer ratio bars for the
other areas (matplotlib, imported only when charts are drawn)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from nexpo.bench import BenchResult, by_group, reference, speed_ratio


def draw_charts(results: Sequence[BenchResult], out_dir: Path) -> list[Path]:
    """GFLOPS vs n for matmul; nexpo-vs-peer ratio bars for every other area."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    # Square problems only (m == n): skinny cases share n but are not on the same curve.
    sized = [
        r
        for r in results
        if r.area == "matmul"
        and r.extra.get("n")
        and r.extra.get("m", r.extra["n"]) == r.extra["n"]
        and r.throughput is not None
    ]
    if sized:
        panels: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
        for r in sized:
            series = str(r.extra.get("series") or r.case.rsplit(" ", 1)[0])
            dtype, _, threads = series.partition(" ")
            tp = r.throughput
            assert tp is not None
            panels[dtype][f"{r.implementation} — {threads or series}"].append((int(r.extra["n"]), tp[0]))
        fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 5.5), squeeze=False)
        for ax, (dtype, series_map) in zip(axes[0], sorted(panels.items()), strict=True):
            for label, points in sorted(series_map.items()):
                points.sort()
                style = "-" if label.lower().startswith("nexpo") else (":" if "CORETYPE" in label else "--")
                ax.plot(
                    [p[0] for p in points], [p[1] for p in points], marker="o", label=label, linestyle=style
                )
            ax.set_xscale("log", base=2)
            ax.set_xlabel("n (n×n @ n×n)")
            ax.set_ylabel("GFLOPS")
            ax.set_title(f"matmul {dtype}: GFLOPS vs n (same run)")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=6)
        path = out_dir / "matmul_gflops.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    by_area: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for _group, members in sorted(by_group(results).items()):
        ours = reference(members)
        if ours is None:
            continue
        for peer in members:
            if not peer.is_nexpo and ours.area != "matmul":
                by_area[ours.area].append((f"{ours.case}\nvs {peer.implementation}", speed_ratio(ours, peer)))
    for area, bars in sorted(by_area.items()):
        fig, ax = plt.subplots(figsize=(9, 0.45 * len(bars) + 1.5))
        labels = [b[0] for b in bars]
        values = [b[1] for b in bars]
        colors = ["tab:green" if v >= 1 else "tab:red" for v in values]
        # Bars grow from 1× (parity) towards the ratio, so slower and faster read alike on a log axis.
        ax.barh(range(len(bars)), [v - 1.0 for v in values], left=1.0, color=colors)
        for y, v in enumerate(values):
            ax.annotate(
                f"{v:.2f}×",
                (v, y),
                xytext=(3 if v >= 1 else -3, 0),
                textcoords="offset points",
                ha="left" if v >= 1 else "right",
                va="center",
                fontsize=7,
            )
        ax.set_yticks(range(len(bars)), labels, fontsize=7)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlim(min(*values, 1.0) / 2, max(*values, 1.0) * 2)
        ax.set_xlabel("nexpo speed ÷ peer speed (log scale; > 1 is faster)")
        ax.set_title(f"{area}: nexpo vs peers (same run)")
        ax.invert_yaxis()
        fig.tight_layout()
        safe = "".join(c if c.isalnum() else "_" for c in area)
        path = out_dir / f"{safe}_speedup.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
