## nexpo's Nim core, for Nim users and the Nim-level tests: imports and re-exports only.
## The C ABI that Python uses is `nexpo_core/capi.nim`.

import ./nexpo_core/[config, errors, cpu, stats]
import ./nexpo_core/runtime/scheduler

export config, errors, cpu, stats, scheduler
