"""A brief run of the native-argument fuzzer (native_args.py) as part of the test suite.

``make fuzz-native`` runs it longer (FUZZ_RUNS cases). The seed is printed; replay a failure
with ``NEXPO_SEED=<seed>`` or ``python tests/fuzz/native_args.py --seed <seed> --case <n>``.
"""

from __future__ import annotations

import os
import random

from native_args import run


def test_native_arguments_survive_hostile_values() -> None:
    seed = int(os.environ.get("NEXPO_SEED", random.randrange(2**32)))
    runs = int(os.environ.get("NEXPO_FUZZ_RUNS", "8000"))
    print(f"NEXPO_SEED={seed}")
    report = run(seed, runs, batch=1000, timeout=60)
    assert not report.failures, report.summary()
