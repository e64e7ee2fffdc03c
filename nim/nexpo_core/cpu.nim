## CPU feature detection and the active instruction-set path.
##
## One build runs on any x86-64 CPU: the baseline is x86-64-v2, and kernels carry wider paths
## compiled with function-level target attributes (`avx2fn`, `avx512fn`, `shanifn` from
## `targets.nim`, re-exported here).
## Front files pick a path per call from `activeIsa()`; `setIsa` (and so `NEXPO_ISA`) can force a
## lower path so tests exercise every path this CPU has.
##
## Properties:
## - detection runs once (`detect`, from `nexpo_init`), reading cpuid and XCR0 through GCC builtins
## - `activeIsa` is one relaxed atomic load: cheap enough to read on every kernel call
## - SHA-NI is used only when present and the active path is not forced down to `isaPortable`

import std/atomics
import ./config, ./targets

export targets

type
  Isa* = enum
    isaPortable = 0  ## plain C, any CPU (the only path on aarch64)
    isaAvx2 = 1      ## AVX2 + FMA (x86-64-v3)
    isaAvx512 = 2    ## AVX-512 F/BW/DQ/VL (x86-64-v4)

const isaNames*: array[Isa, string] = ["portable", "avx2", "avx512"]

when x86SimdEnabled:
  {.emit: """/*INCLUDESECTION*/
#include <cpuid.h>
static int nexpo_cpu_flags(void) {
  unsigned a, b, c, d, flags = 0;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) flags |= 1;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) flags |= 2;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29)) &&
      __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3")) flags |= 4;
  return (int)flags;
}
""".}
  proc cpuFlags(): cint {.importc: "nexpo_cpu_flags", nodecl.}
else:
  proc cpuFlags(): cint = 0

var
  bestIsa: Isa
  shaNiPresent: bool
  activeIsaVar: Atomic[int]
  forcedPortable: Atomic[bool]

proc detect*() =
  let flags = cpuFlags()
  bestIsa = if (flags and 2) != 0 and (flags and 1) != 0: isaAvx512
            elif (flags and 1) != 0: isaAvx2
            else: isaPortable
  shaNiPresent = (flags and 4) != 0
  activeIsaVar.store(ord(bestIsa), moRelaxed)

proc best*(): Isa = bestIsa
proc hasShaNi*(): bool = shaNiPresent

proc activeIsa*(): Isa {.inline.} = Isa(activeIsaVar.load(moRelaxed))

proc useShaNi*(): bool {.inline.} =
  shaNiPresent and not forcedPortable.load(moRelaxed)

proc setIsa*(isa: Isa): bool =
  ## Select a path no wider than the CPU supports; false (and no change) otherwise.
  if isa > bestIsa: return false
  activeIsaVar.store(ord(isa), moRelaxed)
  forcedPortable.store(isa == isaPortable and bestIsa != isaPortable, moRelaxed)
  true

proc availableIsas*(): set[Isa] =
  for isa in Isa:
    if isa <= bestIsa: result.incl isa
