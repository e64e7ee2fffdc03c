"""The ``nexpo`` command: ``nexpo info``, ``nexpo bench`` (in ``COMMANDS``), and subcommands that
other packages register under the ``nexpo.commands`` entry point group (``nexpo serve``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TypeAlias


def _cmd_info(args: argparse.Namespace) -> int:
    from nexpo import info

    data = info()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    width = max(map(len, data))
    for key, value in data.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        print(f"{key:<{width}}  {shown}")
    return 0


def _add_info(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Callable[..., int]:
    parser = sub.add_parser("info", help="show the build, the CPU paths in use and the thread count")
    parser.add_argument("--json", action="store_true", help="print JSON")
    return _cmd_info


def _cmd_bench(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from nexpo import bench

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    mode = "full" if args.full else "quick"
    if args.results:
        new_json = Path(args.results)
        command = bench.recorded_command(new_json) or f"nexpo bench --results {new_json}"
    else:
        bench_dir = Path(args.benchmarks)
        if not bench_dir.is_dir():
            print(
                f"nexpo bench: no benchmarks folder at {bench_dir} (run it from a nexpo checkout)",
                file=sys.stderr,
            )
            return 2
        new_json = out_dir / f"{mode}-{bench.timestamp()}.json"
        code, command = bench.run_benchmarks(bench_dir, new_json, mode, args.select)
        if not new_json.is_file():
            print(f"nexpo bench: pytest exited with {code} and wrote no results", file=sys.stderr)
            return code or 1
        bench.record_command(new_json, command)
        shutil.copyfile(new_json, out_dir / f"latest-{mode}.json")
    results = bench.load_results(new_json)
    report = bench.render_report(results, bench.machine_summary(), command)
    from nexpo.bench_node import NODE_RESULTS, render_node_section

    node = render_node_section(out_dir / NODE_RESULTS)
    (out_dir / "REPORT.md").write_text(report + ("\n\n" + node if node else "") + "\n")
    from nexpo.bench_charts import draw_charts

    charts = draw_charts(results, out_dir)
    print(bench.render_summary(results))
    print(f"\nreport: {out_dir / 'REPORT.md'}; charts: {', '.join(str(c) for c in charts) or 'none'}")
    status = 0
    wrong = [r for r in results if r.correct is False]
    for r in wrong:
        print(f"WRONG RESULT: {r.fullname} ({r.implementation})", file=sys.stderr)
        status = 1
    if args.compare:
        regressions = bench.compare(bench.load_results(Path(args.compare)), results, args.threshold)
        for reg in regressions:
            print(f"REGRESSION {reg.slowdown:.1%} slower: {reg.fullname}")
        if regressions:
            status = 1
        else:
            print(f"no regression beyond {args.threshold:.0%} against {args.compare}")
    return status


def _add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Callable[..., int]:
    parser = sub.add_parser("bench", help="measure nexpo against its peers and write the speedup report")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="short runs, small sizes (default; ~5 min)")
    size.add_argument("--full", action="store_true", help="every size, longer runs")
    parser.add_argument("-k", dest="select", help="only benchmarks matching this pytest -k expression")
    parser.add_argument("--benchmarks", default="benchmarks", help="the benchmarks folder")
    parser.add_argument("--out", default="benchmarks/results", help="where JSON, report and charts go")
    parser.add_argument("--results", help="report on this pytest-benchmark JSON instead of running")
    parser.add_argument("--compare", metavar="OLD.json", help="exit 1 when a nexpo benchmark regressed")
    parser.add_argument("--threshold", type=float, default=0.10, help="regression threshold (0.10 = 10%%)")
    return _cmd_bench


AddCommand: TypeAlias = "Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], Callable[..., int]]"

# name -> function that adds the subparser and returns the handler
COMMANDS: dict[str, AddCommand] = {
    "info": _add_info,
    "bench": _add_bench,
}
# More subcommands come from installed entry points (the gateway's `serve` is nexpo.api.cli), so the
# core never imports its gateway and works without the gateway's dependencies.
ENTRY_POINT_GROUP = "nexpo.commands"


def _entry_point_commands() -> dict[str, AddCommand]:
    from importlib.metadata import entry_points

    found: dict[str, AddCommand] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in COMMANDS or ep.name in found:
            continue
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken plugin must not take `nexpo info` down with it
            print(f"nexpo: skipping the {ep.name!r} command ({ep.value}): {exc}", file=sys.stderr)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    from nexpo import __version__

    parser = argparse.ArgumentParser(prog="nexpo", description="nexpo: a Nim core for Python")
    parser.add_argument("--version", action="version", version=f"nexpo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    handlers = {name: add(sub) for name, add in {**COMMANDS, **_entry_point_commands()}.items()}
    args = parser.parse_args(argv)
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
