"""Native-argument fuzzer: every public native-backed function (kernels, crypto, scheduler; the
channels have their own tests) called with hostile arguments, batches of cases in subprocesses.

Each case must return the reference answer or raise a refusal with a message (see cases.py);
a signal, a hang (the batch's kill timeout) or a wrong answer is a failure. Cases are numbered
and derived from (seed, number), so any failure replays alone:

    python tests/fuzz/native_args.py --runs 2000 [--seed S] [--timeout 120]
    python tests/fuzz/native_args.py --seed S --case N        # replay one case, in-process

Run under the sanitizer build by setting NEXPO_CORE_OVERRIDE (and LD_PRELOAD) as
``make test-sanitize`` does: the worker processes inherit the environment.
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DONE = "batch done"


@dataclass
class Report:
    seed: int
    runs: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        head = f"native-args fuzz: seed {self.seed}, {self.runs} cases, {len(self.failures)} failures"
        return "\n".join([f"{head} in {self.seconds:.1f} s", *self.failures])


def _show(value: object) -> str:
    try:
        return repr(value)[:160]
    except Exception:
        return f"a {type(value).__name__}"


def run_case(seed: int, index: int) -> str | None:
    """Run case ``index``; None when it behaved, else what went wrong."""
    from cases import REFUSE, make_case

    case = make_case(seed, index)
    where = f"seed {seed} case {index} ({case.name}; {', '.join(map(str, case.labels))})"
    try:
        got = case.call()
    except case.refusals as exc:
        if not str(exc):
            return f"{where}: {type(exc).__name__} without a message"
        if case.expect is REFUSE or case.lax:
            return None
        return f"{where}: refused a valid call: {type(exc).__name__}: {exc}"
    except BaseException as exc:
        if isinstance(exc, MemoryError) and str(exc) and case.lax:
            return None
        return f"{where}: raised {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"
    if case.expect is REFUSE:
        return f"{where}: accepted an invalid call, returned {_show(got)}"
    why = case.check(got, case.expect) if case.check else (None if got == case.expect else "wrong answer")
    return None if why is None else f"{where}: {why}"


def worker(seed: int, start: int, count: int) -> int:
    """Run cases [start, start + count), announcing each before it runs (the parent reads the
    last announcement when this process dies) and the end of the batch after the last."""
    importlib.import_module("cases")  # a broken import fails here, before the first case
    failed = 0
    for index in range(start, start + count):
        print(f"case {index}", flush=True)
        problem = run_case(seed, index)
        if problem:
            failed += 1
            print("FAIL " + problem.replace("\n", "\n    "), flush=True)
    print(DONE, flush=True)
    return 1 if failed else 0


def _spawn(seed: int, start: int, count: int, timeout: float) -> tuple[int | None, str]:
    cmd = [sys.executable, str(HERE / "native_args.py"), "--worker", "--seed", str(seed),
           "--start", str(start), "--runs", str(count)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return None, out
    return done.returncode, done.stdout + done.stderr[-4000:]


def run(seed: int, runs: int, batch: int = 100, timeout: float = 120.0) -> Report:
    """Fuzz ``runs`` cases in worker processes of ``batch`` cases each. A worker that dies or
    hangs is reported with the case it was running, and the rest of its batch runs anew."""
    report = Report(seed)
    began = time.monotonic()
    start, end = 0, runs
    while start < end:
        count = min(batch, end - start)
        code, out = _spawn(seed, start, count, timeout)
        report.failures += [line[5:] for line in out.split("\n") if line.startswith("FAIL ")]
        started = [int(line.split()[1]) for line in out.split("\n") if line.startswith("case ")]
        if code in (0, 1) and DONE in out.split("\n"):  # a handler may turn a signal into exit(1)
            start += count
            continue
        what = "hung (killed after the batch timeout)" if code is None else f"died with exit code {code}"
        said = "\n    ".join(line for line in out.split("\n") if not line.startswith("case "))[-2000:]
        if not started:  # it never got to a case: retrying case by case would only repeat that
            report.failures.append(f"seed {seed}: a worker {what} before its first case\n    {said}")
            break
        report.failures.append(f"seed {seed} case {started[-1]}: the worker {what}\n    {said}")
        start = started[-1] + 1
    report.runs = runs
    report.seconds = time.monotonic() - began
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=int(os.environ.get("FUZZ_RUNS", "2000")))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per batch")
    parser.add_argument("--case", type=int, default=None, help="replay one case in this process")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    sys.path.insert(0, str(HERE))
    if args.worker:
        return worker(seed, args.start, args.runs)
    if args.case is not None:
        problem = run_case(seed, args.case)
        print(problem or f"seed {seed} case {args.case}: ok")
        return 1 if problem else 0
    report = run(seed, args.runs, args.batch, args.timeout)
    print(report.summary())
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
