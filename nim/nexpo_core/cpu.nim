## CPU feature detection and the active instruction-set path.
##
## One build runs on any x86-64 CPU: the baseline is x86-64-v2, and kernels carry wider paths
## compiled with function-level target attributes (`avx2fn`, `avx512fn`, `shanifn` from
## `targets.nim`, re-exported here).
## Front files pick a path per call from `activeIsa()`; `setIsa` (and so `NEXPO_ISA`) can force a
## lower path so tests exercise every path this CPU has.
##
## Properties:
## - detection runs once (`detect`, from `nexpo_init`), reading cpuid and XCR0 (the OS's saved state)
## - `activeIsa` is one relaxed atomic load: cheap enough to read on every kernel call
## - AVX512-IFMA (Poly1305) is used only on the AVX-512 path; `setIfma(false)` switches it off so
##   tests cover the plain AVX-512 path (Skylake-SP's) on an IFMA CPU too
## - SHA-NI is used only when present, not switched off (`setShaNi(false)`, so `NEXPO_SHA_NI=0`)
##   and the active path is not forced down to `isaPortable`. Switching it off on an AVX-512 CPU
##   gives the Skylake-SP/Cascade Lake combination (AVX-512, no SHA-NI) that tests must cover.

import std/atomics
import ./config, ./targets

export targets

type
  Isa* = enum
    isaPortable = 0  ## plain C, any CPU (the only path on aarch64)
    isaAvx2 = 1      ## AVX2 + FMA + BMI1/2 (x86-64-v3)
    isaAvx512 = 2    ## AVX-512 F/BW/DQ/VL (x86-64-v4)

const isaNames*: array[Isa, string] = ["portable", "avx2", "avx512"]

when x86SimdEnabled:
  # cpuid and XCR0 read directly, not through __builtin_cpu_supports: that builtin needs the
  # compiler runtime's __cpu_model, which zig's (the release wheels' compiler) leaves all zero.
  {.emit: """/*INCLUDESECTION*/
#include <cpuid.h>
static unsigned long long nexpo_xcr0(void) {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((unsigned long long)hi << 32) | lo;
}
static int nexpo_cpu_flags(void) {
  unsigned a, b, c1, d, c, b7 = 0, flags = 0;
  if (!__get_cpuid(1, &a, &b, &c1, &d)) return 0;
  /* the OS saves the wide registers: XMM+YMM for AVX2, plus opmask and ZMM for AVX-512 */
  unsigned long long xcr0 = ((c1 >> 27) & 1) ? nexpo_xcr0() : 0;
  int ymm = (xcr0 & 0x6) == 0x6, zmm = ymm && (xcr0 & 0xe0) == 0xe0;
  if (!__get_cpuid_count(7, 0, &a, &b7, &c, &d)) b7 = 0;
  int avx = (c1 >> 28) & 1, fma = (c1 >> 12) & 1, ssse3 = (c1 >> 9) & 1, sse41 = (c1 >> 19) & 1;
  if (b7 == 0) c = 0;
  int avx2 = (b7 >> 5) & 1, bmi = ((b7 >> 3) & 1) && ((b7 >> 8) & 1), sha = (b7 >> 29) & 1;
  int avx512 = ((b7 >> 16) & 1) && ((b7 >> 17) & 1) && ((b7 >> 30) & 1) && ((b7 >> 31) & 1); /* F DQ BW VL */
  if (ymm && avx && avx2 && fma && bmi) flags |= 1;  /* x86-64-v3 has BMI1/2 too (SHA-512's rorx, andn) */
  if (zmm && avx512) flags |= 2;
  if (sha && ssse3 && sse41) flags |= 4;
  if (((c1 >> 25) & 1) && ((c1 >> 1) & 1)) flags |= 8;             /* AES-NI + PCLMULQDQ */
  if ((flags & 2) && ((c >> 9) & 1) && ((c >> 10) & 1)) flags |= 16; /* VAES + VPCLMULQDQ (zmm) */
  if ((flags & 2) && ((b7 >> 21) & 1)) flags |= 32;                  /* AVX512-IFMA */
  return (int)flags;
}
""".}
  proc cpuFlags(): cint {.importc: "nexpo_cpu_flags", nodecl.}
else:
  proc cpuFlags(): cint = 0

var
  bestIsa: Isa
  shaNiPresent: bool
  aesNiPresent: bool   # AES-NI + PCLMULQDQ
  vaesPresent: bool    # VAES + VPCLMULQDQ on zmm (implies the AVX-512 path)
  ifmaPresent: bool    # AVX512-IFMA (implies the AVX-512 path)
  ifmaOff: Atomic[bool]
  activeIsaVar: Atomic[int]
  forcedPortable: Atomic[bool]
  shaNiOff: Atomic[bool]

proc detect*() =
  let flags = cpuFlags()
  bestIsa = if (flags and 2) != 0 and (flags and 1) != 0: isaAvx512
            elif (flags and 1) != 0: isaAvx2
            else: isaPortable
  shaNiPresent = (flags and 4) != 0
  aesNiPresent = (flags and 8) != 0
  vaesPresent = (flags and 16) != 0
  ifmaPresent = (flags and 32) != 0
  activeIsaVar.store(ord(bestIsa), moRelaxed)

proc best*(): Isa = bestIsa
proc hasShaNi*(): bool = shaNiPresent
proc hasAesNi*(): bool = aesNiPresent
proc hasVaes*(): bool = vaesPresent
proc hasIfma*(): bool = ifmaPresent

proc activeIsa*(): Isa {.inline.} = Isa(activeIsaVar.load(moRelaxed))

proc useShaNi*(): bool {.inline.} =
  shaNiPresent and not forcedPortable.load(moRelaxed) and not shaNiOff.load(moRelaxed)

proc setShaNi*(enabled: bool) =
  ## Allow (the default) or forbid the SHA extensions, independently of the ISA path.
  shaNiOff.store(not enabled, moRelaxed)

proc shaNiEnabled*(): bool = not shaNiOff.load(moRelaxed)

proc useIfma*(): bool {.inline.} =
  ## The IFMA kernels run only on the AVX-512 path (forcing a lower ISA turns them off too).
  ifmaPresent and activeIsa() == isaAvx512 and not ifmaOff.load(moRelaxed)

proc setIfma*(enabled: bool) =
  ## Allow (the default) or forbid the IFMA kernels: with them off an IFMA CPU runs the plain
  ## AVX-512 paths (Skylake-SP's), so tests can cover both on one machine.
  ifmaOff.store(not enabled, moRelaxed)

proc ifmaEnabled*(): bool = not ifmaOff.load(moRelaxed)

proc setIsa*(isa: Isa): bool =
  ## Select a path no wider than the CPU supports; false (and no change) otherwise.
  if isa > bestIsa: return false
  activeIsaVar.store(ord(isa), moRelaxed)
  forcedPortable.store(isa == isaPortable and bestIsa != isaPortable, moRelaxed)
  true

proc availableIsas*(): set[Isa] =
  for isa in Isa:
    if isa <= bestIsa: result.incl isa
