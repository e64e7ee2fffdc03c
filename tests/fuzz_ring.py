"""Fuzz the shared-ring reader: corrupt a shared channel's memory, then use the channel.

Each case (one seed) runs in its own process with a kill timeout: it creates a shared ring,
sends a few honest messages, corrupts the memory as a peer process could (random, zeroed or
0xFF rings, a truncated file, one header or slot field set to a hostile value, random bytes,
or a thread scribbling on head/tail/sequences while we work), before or after a second handle
opens it, then runs a few channel calls on both handles. A case passes when every call ends
in a message, ``ChannelCorrupted``, ``TimeoutError``, ``ChannelClosed`` or a ValueError
with a message (an SPSC side a peer marked busy, a header refused at open): never a signal,
a hang or another exception.

    python tests/fuzz_ring.py --runs 1000 --seed 1 --jobs 4     # the campaign (make fuzz-ring)
    python tests/fuzz_ring.py --case 1234                       # replay one case, in-process

Seeds are reproducible: case i of a campaign with seed S is ``--case S*1000003+i``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ring_peer import HEADER_FIELDS, HEADER_SPAN, SLOT_FIELDS, Peer

KINDS = ("random", "zero", "ff", "truncate", "header", "slot", "bytes", "scribble")
ACCEPTED = {"ok", "message", "ChannelCorrupted", "TimeoutError", "ChannelClosed", "ValueError"}
CASE_TIMEOUT = 30.0
MULTIPLIER = 1000003


def hostile_value(rng: random.Random, width: int, near: int) -> int:
    """A value a fuzzer would try for a field of `width` bytes whose honest value is `near`."""
    top = (1 << (8 * width)) - 1
    return rng.choice(
        [0, 1, 2, 3, top, top - 1, top >> 1, (top >> 1) + 1, near + 1, near - 1 & top, near * 2 & top,
         near + (1 << 32) & top, 150, 1 << 20, 1 << 31, rng.randrange(top + 1), rng.randrange(64)]
    )


def corrupt(peer: Peer, rng: random.Random, kind: str) -> dict[str, Any]:
    """Apply one corruption of `kind`; returns what it did (for the report)."""
    size = peer.size
    if kind == "random":
        peer.write(0, rng.randbytes(size))
        return {}
    if kind == "zero":
        peer.write(0, bytes(size))
        return {}
    if kind == "ff":
        peer.write(0, b"\xff" * size)
        return {}
    if kind == "truncate":
        new = rng.choice([0, HEADER_SPAN // 2, HEADER_SPAN, rng.randrange(size), size - 1])
        peer.truncate(new)
        return {"size": new}
    if kind == "header":
        field = rng.choice(sorted(HEADER_FIELDS))
        width = 8 if HEADER_FIELDS[field][1] == "Q" else 4
        value = hostile_value(rng, width, peer.get(field))
        peer.set(field, value)
        return {"field": field, "value": value}
    if kind == "slot":
        field = rng.choice(sorted(SLOT_FIELDS))
        position = rng.randrange(peer.capacity * 2)
        width = 8 if SLOT_FIELDS[field][1] == "Q" else 4
        value = hostile_value(rng, width, peer.get_slot(position, field))
        peer.set_slot(position, field, value)
        return {"slot": position % peer.capacity, "field": field, "value": value}
    if kind == "bytes":
        spots = [(rng.randrange(size), rng.randrange(256)) for _ in range(rng.randrange(1, 16))]
        for offset, byte in spots:
            peer.write(offset, bytes([byte]))
        return {"bytes": len(spots)}
    raise ValueError(kind)


def run_case(seed: int) -> dict[str, Any]:
    """One case, in this process: returns its report (raises on an unexpected exception)."""
    from nexpo import Channel, ChannelClosed, ChannelCorrupted, select

    rng = random.Random(seed)
    mode = rng.choice(["spsc", "mpsc", "spmc", "mpmc"])
    capacity = rng.choice([2, 4, 8, 64])
    max_message = rng.choice([0, 8, 16, 32, 100, 4096])
    kind = rng.choice(KINDS)
    before_open = rng.random() < 0.4
    name = f"nexpo-fuzz-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    report: dict[str, Any] = {"seed": seed, "mode": mode, "capacity": capacity, "max_message": max_message,
                              "kind": kind, "before_open": before_open, "calls": {}}
    creator = Channel.create_shared(name, capacity, mode=mode, max_message_size=max_message)  # type: ignore[arg-type]
    stop = threading.Event()
    scribbler = None
    try:
        for i in range(rng.randrange(capacity + 1)):
            creator.try_send(bytes([i]) * min(max_message, i + 1))
        handles = [creator]
        peer = Peer(name)
        if kind == "scribble":
            def scribble() -> None:
                r = random.Random(seed + 1)
                while not stop.is_set():
                    if r.random() < 0.5:
                        peer.set(r.choice(["head", "tail", "closed", "send_guard", "recv_guard"]),
                                 hostile_value(r, 8, peer.get("tail")))
                    else:
                        peer.set_slot(r.randrange(capacity), r.choice(sorted(SLOT_FIELDS)),
                                      hostile_value(r, 8, 0))
            scribbler = threading.Thread(target=scribble, daemon=True)
            scribbler.start()
        elif before_open:
            report["did"] = corrupt(peer, rng, kind)
        try:
            handles.append(Channel.open_shared(name))
        except (ChannelCorrupted, ValueError) as exc:
            report["open"] = type(exc).__name__
        if kind != "scribble" and not before_open:
            report["did"] = corrupt(peer, rng, kind)
        calls: dict[str, Callable[[Any], object]] = {
            "recv": lambda ch: ch.recv(timeout=0.1),
            "try_recv": lambda ch: ch.try_recv(),
            "recv_many": lambda ch: ch.recv_many(rng.randrange(1, 9), timeout=0.1),
            "send": lambda ch: ch.send(b"s" * min(max_message, 5), timeout=0.1),
            "try_send": lambda ch: ch.try_send(b""),
            "send_many": lambda ch: ch.send_many([b"a"[:max_message]] * rng.randrange(1, 9), timeout=0.1),
            "select": lambda ch: select([ch], timeout=0.1),
            "len": len,
            "repr": repr,
        }
        outcomes: collections.Counter[str] = collections.Counter()
        for _ in range(rng.randrange(4, 12)):
            ch = rng.choice(handles)
            call = rng.choice(sorted(calls))
            try:
                got = calls[call](ch)
                outcome = "message" if isinstance(got, bytes | list | tuple) else "ok"
            except (ChannelCorrupted, TimeoutError, ChannelClosed, ValueError) as exc:
                outcome = type(exc).__name__
                if outcome == "ValueError":
                    report.setdefault("value_errors", []).append(str(exc)[:60])
            outcomes[outcome] += 1
        report["calls"] = dict(outcomes)
        for ch in handles[1:]:
            ch.close()
    finally:
        stop.set()
        if scribbler is not None:
            scribbler.join()
        creator.close()
        Path("/dev/shm", name).unlink(missing_ok=True)
    return report


def run_isolated(seed: int, timeout: float) -> dict[str, Any]:
    """Run one case in a subprocess; classify how it ended (and remove what a killed case left)."""
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, __file__, "--case", str(seed)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"seed": seed, "end": "hang", "seconds": timeout}
    finally:
        for leftover in Path("/dev/shm").glob(f"nexpo-fuzz-{proc.pid}-*"):
            leftover.unlink(missing_ok=True)
    took = round(time.monotonic() - start, 2)
    if proc.returncode < 0:
        return {"seed": seed, "end": "signal", "signal": -proc.returncode, "seconds": took}
    if proc.returncode != 0:
        return {"seed": seed, "end": "error", "stderr": err[-2000:], "seconds": took}
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    report.update(end="pass", seconds=took)
    return report


def campaign(runs: int, seed: int, jobs: int, timeout: float) -> int:
    seeds = [seed * MULTIPLIER + i for i in range(runs)]
    start = time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:
        reports = list(pool.map(lambda s: run_isolated(s, timeout), seeds))
    took = time.monotonic() - start
    ends = collections.Counter(r["end"] for r in reports)
    calls: collections.Counter[str] = collections.Counter()
    for r in reports:
        calls.update(r.get("calls", {}))
    opens = collections.Counter(r.get("open", "opened") for r in reports if r["end"] == "pass")
    value_errors = collections.Counter(m for r in reports for m in r.get("value_errors", []))
    print(f"fuzz-ring: {runs} cases (seed {seed}, {jobs} jobs) in {took:.1f} s")
    print(f"  ends:  {dict(ends)}")
    print(f"  calls: {dict(calls)}")
    print(f"  open:  {dict(opens)}")
    print(f"  ValueError messages: {dict(value_errors.most_common(5))}")
    bad = [r for r in reports if r["end"] != "pass" or not set(r.get("calls", {})) <= ACCEPTED]
    for r in bad[:20]:
        print(f"  FAILED: replay with `python {Path(__file__).name} --case {r['seed']}`: {r}")
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=int(os.environ.get("FUZZ_RUNS", "100")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "1")))
    jobs = int(os.environ.get("FUZZ_JOBS", str(os.cpu_count() or 2)))
    parser.add_argument("--jobs", type=int, default=jobs)
    parser.add_argument("--timeout", type=float, default=CASE_TIMEOUT)
    parser.add_argument("--case", type=int, help="run one case in this process and print its report")
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(run_case(args.case)))
        return 0
    return campaign(args.runs, args.seed, args.jobs, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
