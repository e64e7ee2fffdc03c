## What does this machine give a second thread? Register-only FMA throughput, a clock probe,
## memory reads, the GEMM micro-kernel and the whole GEMM, each on 1 thread and on 2 threads at
## once. Prints one JSON line per case. Issue 5 asks for matmul n=2048 to run >= 1.8x faster on
## 2 threads than on 1; this bench separates what the hardware allows from what nexpo does.
##
##   .venv/bin/python benchmarks/nim/run.py fma                       # every case
##   .venv/bin/python benchmarks/nim/run.py fma -- reps=9 secs=0.3 only=fma,clock
##
## Arguments (key=value): reps (7) rounds per case, secs (0.25) measuring window per round,
## only (all) comma-separated case-name prefixes, n (2048) GEMM size, quiet (0.1): a round is
## measured again (at most `discards` (50) times per case) when other processes used more than this many CPUs
## while it ran, read from /proc/stat (other sessions benchmark on the same 2 CPUs); hold (1):
## while one thread measures "alone", CPU 1 runs a `pause` loop so that no other process runs
## there (0: CPU 1 is left idle, which only means something on a quiet machine).
##
## Method. The main thread is pinned to CPU 0 and one bench thread to CPU 1 (the scheduler is not
## involved, except in the `gemm-*` rows). A round runs the body on CPU 0 alone, then on both
## CPUs at once: both start from a spin barrier and call the body in ~1 ms chunks until the
## window closes, so the two windows overlap to within a chunk. Rates are per thread and per
## CPU-second of that thread (time the guest kernel gives to other processes does not count);
## `ratio` is (rate of thread 0 + rate of thread 1) / (rate alone) in the same round: 2.0 is
## perfect scaling. The `gemm-*` rows are wall-clock times.
## Every figure is the median over the rounds, with [min, max].
##
## Cases
## - fma-{zmm,ymm,xmm,sd}-f32: 12 independent FMA chains held in registers (no loads/stores),
##   enough to keep both FMA ports busy (latency 4 x 2 ports = 8 in flight); zmm = AVX-512,
##   ymm = AVX2, xmm = 128-bit VEX, sd = scalar (vfmadd...ss). GFLOPS (one FMA = 2 flops/lane).
## - fma-zmm-chain: one dependent zmm FMA chain (latency bound: ports mostly idle).
## - clock: a chain of dependent integer adds, 1 per cycle, so its rate is the core clock in GHz.
##   clock-vs-<x>: the clock of CPU 0 while CPU 1 runs <x> (and <x>'s rate next to the probe).
##   A host-side frequency / power limit slows the probe; a shared physical core (SMT sibling on
##   the host) barely does (the probe needs one ALU port per cycle, not the FMA ports).
## - read-dram: streaming zmm loads over 512 MiB per thread (past the host's L3); read-l2: the same
##   over 1 MiB per thread (fits the private L2, as GEMM's packed B block does). GB/s.
## - uk-{avx512,avx2}-l2: GEMM's own micro-kernel over one packed kc x nc B block (1 MiB, in L2)
##   and one A micro-panel, exactly the innermost two loops of gemm.nim, per-thread buffers.
## - gemm-slab-{avx512,avx2}: gemmWithSpec f32 on half the rows of n x n (n/2 x n x n) per
##   thread, pool at 1 thread: the GEMM's own scaling, on per-thread CPU clocks, no scheduler.
## - gemm-{avx512,avx2}: gemmWithSpec f32 n x n through the scheduler, 1 vs 2 threads, wall ms
##   (sensitive to other processes: see others_cpus_max).

import std/[algorithm, math, atomics, locks, monotimes, os, strutils, times]
import nexpo_core/targets
import nexpo_core/runtime/scheduler
import nexpo_core/kernels/[common, simd, gemm, gemm_avx2, gemm_avx512]
import ./cputime

var   # the arguments
  reps = 7
  secs = 0.25
  only: seq[string]
  gemmN = 2048
  maxOthers = 0.1
  hold = true
  maxDiscards = 50

{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

# --- the bodies ---------------------------------------------------------------------------------
# A body runs `iters` units of work on bench thread `tid` and returns the work done (flops,
# cycles or bytes). Results go to `sink` so that nothing can be optimised away.

type Body = proc (iters, tid: int): float {.nimcall, gcsafe, raises: [].}

const hdr = "<immintrin.h>"
type M128 {.importc: "__m128", header: hdr, bycopy.} = object
proc mm_set1_ps(x: float32): M128 {.importc: "_mm_set1_ps", header: hdr.}
proc mm_fmadd_ps(a, b, c: M128): M128 {.importc: "_mm_fmadd_ps", header: hdr.}
proc mm_fmadd_ss(a, b, c: M128): M128 {.importc: "_mm_fmadd_ss", header: hdr.}
proc mm_add_ps(a, b: M128): M128 {.importc: "_mm_add_ps", header: hdr.}
proc mm_storeu_ps(p: ptr float32, v: M128) {.importc: "_mm_storeu_ps", header: hdr.}

var sink: array[2, array[16, float32]]   # written once per body call, read by no one

const chains = 12

template fmaChains(V: typedesc, n: static int, set1, fma, add, store: untyped, lanes: int) {.dirty.} =
  ## `n` independent chains acc = acc * m + c, `iters` steps each; 2 * lanes flops per FMA.
  var acc {.noinit.}: array[n, V]
  unroll i, n:
    acc[i] = set1(float32(i + 1) * 0.01'f32)
  let m = set1(0.9999999'f32)
  let c = set1(1e-7'f32)
  for _ in 0 ..< iters:
    unroll i, n:
      acc[i] = fma(acc[i], m, c)
  var s = acc[0]
  unroll i, n - 1:
    s = add(s, acc[i + 1])
  store(sink[tid][0].addr, s)
  return float(iters * n * 2 * lanes)

proc fmaZmm(iters, tid: int): float {.nimcall, gcsafe, raises: [], avx512fn.} =
  fmaChains(M512, chains, mm512_set1_ps, mm512_fmadd_ps, mm512_add_ps, mm512_storeu_ps, 16)
proc fmaYmm(iters, tid: int): float {.nimcall, gcsafe, raises: [], avx2fn.} =
  fmaChains(M256, chains, mm256_set1_ps, mm256_fmadd_ps, mm256_add_ps, mm256_storeu_ps, 8)
proc fmaXmm(iters, tid: int): float {.nimcall, gcsafe, raises: [], avx2fn.} =
  fmaChains(M128, chains, mm_set1_ps, mm_fmadd_ps, mm_add_ps, mm_storeu_ps, 4)
proc fmaSd(iters, tid: int): float {.nimcall, gcsafe, raises: [], avx2fn.} =
  fmaChains(M128, chains, mm_set1_ps, mm_fmadd_ss, mm_add_ps, mm_storeu_ps, 1)
proc fmaZmmChain(iters, tid: int): float {.nimcall, gcsafe, raises: [], avx512fn.} =
  fmaChains(M512, 1, mm512_set1_ps, mm512_fmadd_ps, mm512_add_ps, mm512_storeu_ps, 16)

{.emit: """
static long long nexpo_bench_add_chain(long long iters) {
  long long x = 0, one = 1;
  for (long long i = 0; i < iters; i++) {
    /* 100 dependent single-cycle register adds: 100 cycles per iteration at any clock. (Not
       `add $imm`: Golden Cove's renamer folds chains of immediate adds, >1 per cycle.) */
    __asm__ volatile(".rept 100\n\taddq %1, %0\n\t.endr" : "+r"(x) : "r"(one));
  }
  return x;
}
""".}
proc addChain(iters: clonglong): clonglong {.importc: "nexpo_bench_add_chain", nodecl.}

proc clockBody(iters, tid: int): float {.nimcall, gcsafe, raises: [].} =
  sink[tid][0] = float32(addChain(iters.clonglong))
  float(iters * 100)   # cycles

# Streaming reads: per-thread buffers, a cursor that wraps, 64 KiB per unit.
const readUnit = 64 * 1024
var readBufs: array[2, tuple[p: ptr float32, bytes, cursor: int]]

proc readBody(iters, tid: int): float {.nimcall, gcsafe, raises: [], avx512fn.} =
  var acc {.noinit.}: array[8, M512]
  unroll i, 8:
    acc[i] = mm512_set1_ps(0'f32)
  let buf = readBufs[tid].p
  let floats = readBufs[tid].bytes div 4
  var pos = readBufs[tid].cursor
  for _ in 0 ..< iters:
    if pos + readUnit div 4 > floats: pos = 0
    var p = buf +! pos
    for _ in 0 ..< readUnit div (8 * 64):
      unroll i, 8:
        acc[i] = mm512_add_ps(acc[i], mm512_loadu_ps(p +! (i * 16)))
      p = p +! 128
    pos += readUnit div 4
  readBufs[tid].cursor = pos
  unroll i, 7:
    acc[0] = mm512_add_ps(acc[0], acc[i + 1])
  mm512_storeu_ps(sink[tid][0].addr, acc[0])
  float(iters * readUnit)

# GEMM's micro-kernel over a packed B block in L2: for jr in nc step nr: uk(A panel, B panel).
var ukBufs: array[2, tuple[a, b, c: ptr float32]]

proc ukLoop(s: KernelSpec[float32], iters, tid: int): float =
  let (a, b, c) = ukBufs[tid]
  for _ in 0 ..< iters:
    var jr = 0
    while jr < s.nc:
      s.uk(s.kc, a, b +! (jr * s.kc), s.nr, c, s.nr, false)
      jr += s.nr
  float(iters * 2 * s.mr * s.nc * s.kc)

proc ukAvx512(iters, tid: int): float {.nimcall, gcsafe, raises: [].} = ukLoop(avx512F32, iters, tid)
proc ukAvx2(iters, tid: int): float {.nimcall, gcsafe, raises: [].} = ukLoop(avx2F32, iters, tid)

# GEMM itself without the scheduler: thread `tid` computes rows [tid*h, tid*h + h) of the n x n
# product, h = n/2, with the pool at 1 thread (so gemmWithSpec runs on the calling thread): the
# same split gemm.nim makes on 2 threads, timed on each thread's own CPU clock.
var slab: tuple[spec: KernelSpec[float32], n: int, a, b, c: ptr float32]

proc gemmSlab(iters, tid: int): float {.nimcall, gcsafe, raises: [].} =
  let n = slab.n
  let h = n div 2
  let opA = Operand[float32](base: slab.a +! (tid * h * n), rs: n, cs: 1)
  let opB = Operand[float32](base: slab.b, rs: n, cs: 1)
  for _ in 0 ..< iters:
    {.gcsafe.}:
      try: gemmWithSpec(slab.spec, h, n, n, opA, opB, slab.c +! (tid * h * n), n)
      except CatchableError: discard
  float(iters * 2 * h * n * n)

{.emit: """
static void nexpo_bench_pause(long long iters) {
  for (long long i = 0; i < iters; i++) __builtin_ia32_pause();
}
""".}
proc pauseLoop(iters: clonglong) {.importc: "nexpo_bench_pause", nodecl.}

proc holdBody(iters, tid: int): float {.nimcall, gcsafe, raises: [].} =
  ## Keeps CPU 1 from other processes while CPU 0 measures "alone" (`hold=1`): a `pause` loop,
  ## which leaves the core's execution units (and a host SMT sibling's) nearly idle.
  pauseLoop(iters.clonglong)
  0.0

{.pop.}

# --- the two bench threads --------------------------------------------------------------------

{.emit: """
#include <sys/syscall.h>
#include <unistd.h>
static int nexpo_bench_pin(unsigned long mask) {
  return (int)syscall(SYS_sched_setaffinity, 0, sizeof(mask), &mask);
}
""".}
proc pinMask(mask: culong): cint {.importc: "nexpo_bench_pin", nodecl.}

type Slot = object
  body: Body
  chunk: int        # iterations per ~1 ms call
  work: float
  ns: float         # this thread's CPU time in the window: rates are per CPU-second, so time
                    # the guest kernel gives to other processes does not count
  cpuShare: float   # this thread's CPU time / its wall time (< 1: preempted by another process)


var
  slots: array[2, Slot]
  participants, arrived, finished: Atomic[int]
  windowNs: int64
  stopFlag: Atomic[bool]
  lock: Lock
  cond: Cond
  generation: int   # guarded by lock
  quitting: bool    # guarded by lock

proc runSlot(tid: int) =
  discard arrived.fetchAdd(1)
  while arrived.load(moAcquire) < participants.load(moRelaxed): cpuRelax()
  let t0 = getMonoTime()
  let c0 = threadCpuNs()
  var work = 0.0
  var now = t0
  while (now - t0).inNanoseconds < windowNs and not stopFlag.load(moRelaxed):
    work += slots[tid].body(slots[tid].chunk, tid)
    now = getMonoTime()
  slots[tid].work = work
  let wall = float((now - t0).inNanoseconds)
  slots[tid].ns = threadCpuNs() - c0
  slots[tid].cpuShare = slots[tid].ns / wall
  discard finished.fetchAdd(1, moRelease)

proc benchThread(_: int) {.thread.} =
  discard pinMask(2)
  var seen = 0
  while true:
    acquire(lock)
    while generation == seen and not quitting: wait(cond, lock)
    seen = generation
    let q = quitting
    release(lock)
    if q: break
    {.gcsafe.}: runSlot(1)

proc busyJiffies(): (float, float) =
  ## (CPU time used by everything on this machine, by this process), in clock ticks.
  try:
    let cpu = readFile("/proc/stat").splitLines()[0].splitWhitespace()
    var busy = 0.0
    for i in [1, 2, 3, 6, 7, 8]: busy += parseFloat(cpu[i])   # user nice system irq softirq steal
    let self = readFile("/proc/self/stat").rsplit(')', 1)[1].splitWhitespace()
    (busy, parseFloat(self[11]) + parseFloat(self[12]))            # utime + stime
  except CatchableError, IOError: (0.0, 0.0)

type Meter = tuple[busy, self: float, t: MonoTime]

proc meter(): Meter =
  let (b, s) = busyJiffies()
  (b, s, getMonoTime())

proc othersSince(m: Meter): float =
  ## CPUs used on average by other processes since `m` (0 = quiet; the lead and other helpers
  ## benchmark on the same 2 CPUs).
  let (b, s) = busyJiffies()
  let ticks = float((getMonoTime() - m.t).inNanoseconds) * 1e-9 * 100.0  # USER_HZ
  max(0.0, ((b - m.busy) - (s - m.self)) / ticks)

var
  caseMinShare = 1.0   # lowest cpuShare of any bench thread in the kept rounds of a case
  caseOthers = 0.0     # highest othersSince of a kept round
  caseDiscarded = 0    # rounds run again because other processes took CPU time
  roundShare = 1.0

proc quietRound(m: Meter): bool =
  ## Keep a round only if other processes stayed (nearly) off the CPUs while it ran.
  let others = othersSince(m)
  if others > maxOthers and caseDiscarded < maxDiscards:
    inc caseDiscarded
    sleep(100)
    return false
  caseOthers = max(caseOthers, others)
  caseMinShare = min(caseMinShare, roundShare)
  true

proc startCase() =
  caseMinShare = 1.0
  caseOthers = 0.0
  caseDiscarded = 0

proc othersField(): string =
  ## "others_cpus_max": CPUs other processes used in the worst kept round, "rounds_discarded":
  ## rounds measured again because others used more than `quiet=` CPUs, "cpu_share_min": the
  ## lowest CPU time / wall time of a bench thread in a kept round (1 = never preempted).
  "\"others_cpus_max\": $1, \"rounds_discarded\": $2, \"cpu_share_min\": $3" % [
    formatFloat(caseOthers, ffDecimal, 2), $caseDiscarded, formatFloat(caseMinShare, ffDecimal, 3)]

proc run(bodies: openArray[(Body, int)]): array[2, float] =
  ## Run bodies[i] (with its chunk) on thread i, all at once; the rate of each (work per second).
  for i, (b, chunk) in bodies: slots[i] = Slot(body: b, chunk: chunk)
  participants.store(bodies.len)
  arrived.store(0)
  finished.store(0)
  if bodies.len > 1:
    acquire(lock)
    inc generation
    signal(cond)
    release(lock)
  runSlot(0)
  while finished.load(moAcquire) < bodies.len: cpuRelax()
  for i in 0 ..< bodies.len:
    result[i] = slots[i].work / slots[i].ns * 1e9
    roundShare = min(roundShare, slots[i].cpuShare)

var holdChunk = 1000

proc holdOn() =
  ## CPU 1 runs the pause loop until holdOff (while the main thread runs something else).
  slots[1] = Slot(body: holdBody, chunk: holdChunk)
  participants.store(1)
  arrived.store(0)
  finished.store(0)
  stopFlag.store(false)
  windowNs = int64(3600e9)
  acquire(lock)
  inc generation
  signal(cond)
  release(lock)
  while arrived.load(moAcquire) < 1: cpuRelax()

proc holdOff() =
  stopFlag.store(true)
  while finished.load(moAcquire) < 1: cpuRelax()
  stopFlag.store(false)
  windowNs = int64(secs * 1e9)

proc calibrate(b: Body): int =
  ## Iterations for ~1 ms.
  var iters = 1
  while true:
    let t0 = getMonoTime()
    discard b(iters, 0)
    let ns = (getMonoTime() - t0).inNanoseconds
    if ns > 2_000_000: return max(1, int(float(iters) * 1e6 / float(ns)))
    iters *= 2

# --- statistics and output ------------------------------------------------------------------

proc median(xs: seq[float]): float =
  let s = sorted(xs)
  if s.len mod 2 == 1: s[s.len div 2] else: (s[s.len div 2 - 1] + s[s.len div 2]) / 2

proc fmt(x: float): string = formatFloat(x, ffDecimal, 3)
proc field(name: string, xs: seq[float]): string =
  ## "name": median, "name_range": [min, max]
  "\"$1\": $2, \"$1_range\": [$3, $4]" % [name, fmt(median(xs)), fmt(min(xs)), fmt(max(xs))]

for i in 1 .. paramCount():
  let kv = paramStr(i).split('=', 1)
  if kv.len != 2: quit("usage: bench_fma [reps=N] [secs=S] [only=a,b] [n=N]")
  case kv[0]
  of "reps": reps = parseInt(kv[1])
  of "secs": secs = parseFloat(kv[1])
  of "only": only = kv[1].split(',')
  of "n": gemmN = parseInt(kv[1])
  of "quiet": maxOthers = parseFloat(kv[1])
  of "hold": hold = kv[1] != "0"
  of "discards": maxDiscards = parseInt(kv[1])
  else: quit("unknown argument " & kv[0])
windowNs = int64(secs * 1e9)

proc wanted(name: string): bool =
  ## A case is selected by an `only` entry that is a prefix of its name.
  if only.len == 0: return true
  for p in only:
    if name.startsWith(p): return true

proc wantedGroup(prefix: string): bool =
  ## A group of cases (sharing set-up) runs when any of its cases may be selected.
  if only.len == 0: return true
  for p in only:
    if prefix.startsWith(p) or p.startsWith(prefix): return true

proc scaling(name, unit: string, b: Body, scale: float) =
  ## One body alone on CPU 0, then on CPU 0 and 1 at once; `scale` converts work/s to `unit`.
  if not wanted(name): return
  let chunk = calibrate(b)
  startCase()
  var one, two0, two1, ratio: seq[float]
  while one.len < reps:
    let m = meter()
    roundShare = 1.0
    let r1 = if hold: run([(b, chunk), (holdBody, holdChunk)]) else: run([(b, chunk)])
    let r2 = run([(b, chunk), (b, chunk)])
    if not quietRound(m): continue
    one.add r1[0] * scale
    two0.add r2[0] * scale
    two1.add r2[1] * scale
    ratio.add (r2[0] + r2[1]) / r1[0]
  echo "{\"case\": \"$1\", \"unit\": \"$2\", $3, $4, $5, $6, \"reps\": $7, $8}" % [name, unit,
    field("one_thread", one), field("two_threads_cpu0", two0), field("two_threads_cpu1", two1),
    field("ratio", ratio), $reps, othersField()]

proc probe(name, unit: string, b: Body, scale: float) =
  ## The clock of CPU 0 alone, then while CPU 1 runs `b` (whose rate is compared with its own
  ## rate alone on CPU 0).
  if not wanted(name): return
  let probeChunk = calibrate(clockBody)
  let chunk = calibrate(b)
  startCase()
  var ghzAlone, ghzWith, ghzRatio, nbAlone, nbWith: seq[float]
  while ghzAlone.len < reps:
    let m = meter()
    roundShare = 1.0
    let alone = (if hold: run([(clockBody, probeChunk), (holdBody, holdChunk)])
                 else: run([(clockBody, probeChunk)]))[0] * 1e-9
    let nb = (if hold: run([(b, chunk), (holdBody, holdChunk)]) else: run([(b, chunk)]))[0] * scale
    let both = run([(clockBody, probeChunk), (b, chunk)])
    if not quietRound(m): continue
    ghzAlone.add alone
    ghzWith.add both[0] * 1e-9
    ghzRatio.add both[0] * 1e-9 / alone
    nbAlone.add nb
    nbWith.add both[1] * scale
  echo ("{\"case\": \"$1\", \"unit\": \"GHz\", $2, $3, $4, \"neighbour_unit\": \"$5\", $6, $7, " &
        "\"reps\": $8, $9}") % [name, field("ghz_alone", ghzAlone), field("ghz_with_neighbour", ghzWith),
    field("ghz_ratio", ghzRatio), unit, field("neighbour_alone", nbAlone),
    field("neighbour_next_to_probe", nbWith), $reps, othersField()]

initLock(lock)
initCond(cond)
var helper: Thread[int]
createThread(helper, benchThread, 0)
discard pinMask(1)
holdChunk = calibrate(holdBody)

scaling("fma-zmm-f32", "GFLOPS", fmaZmm, 1e-9)
scaling("fma-ymm-f32", "GFLOPS", fmaYmm, 1e-9)
scaling("fma-xmm-f32", "GFLOPS", fmaXmm, 1e-9)
scaling("fma-sd-f32", "GFLOPS", fmaSd, 1e-9)
scaling("fma-zmm-chain", "GFLOPS", fmaZmmChain, 1e-9)
scaling("clock", "GHz", clockBody, 1e-9)
probe("clock-vs-fma-zmm", "GFLOPS", fmaZmm, 1e-9)
probe("clock-vs-fma-ymm", "GFLOPS", fmaYmm, 1e-9)
probe("clock-vs-fma-sd", "GFLOPS", fmaSd, 1e-9)

if wantedGroup("read-"):
  proc setRead(bytes: int) =
    for tid in 0 .. 1:
      if readBufs[tid].p != nil: deallocShared(readBufs[tid].p)
      let p = cast[ptr float32](allocShared0(bytes))
      for i in 0 ..< bytes div 4: (p +! i)[] = 1'f32   # touch every page
      readBufs[tid] = (p, bytes, 0)
  if wanted("read-dram"):
    setRead(512 shl 20)
    scaling("read-dram", "GB/s", readBody, 1e-9)
  if wanted("read-l2"):
    setRead(1 shl 20)
    scaling("read-l2", "GB/s", readBody, 1e-9)
  for tid in 0 .. 1:
    deallocShared(readBufs[tid].p)
    readBufs[tid].p = nil

if wantedGroup("uk-"):
  for tid in 0 .. 1:
    let a = cast[ptr float32](allocShared0(14 * 256 * 4))
    let b = cast[ptr float32](allocShared0(256 * 1024 * 4))
    let c = cast[ptr float32](allocShared0(14 * 32 * 4))
    for i in 0 ..< 14 * 256: (a +! i)[] = 0.5'f32
    for i in 0 ..< 256 * 1024: (b +! i)[] = 0.25'f32
    ukBufs[tid] = (a, b, c)
  scaling("uk-avx512-l2", "GFLOPS", ukAvx512, 1e-9)
  scaling("uk-avx2-l2", "GFLOPS", ukAvx2, 1e-9)

if wantedGroup("gemm-slab"):
  let n = gemmN
  let a = cast[ptr float32](allocShared0(n * n * 4))
  let b = cast[ptr float32](allocShared0(n * n * 4))
  let c = cast[ptr float32](allocShared0(n * n * 4))
  for i in 0 ..< n * n:
    (a +! i)[] = float32((i * 7) mod 13) * 0.1'f32
    (b +! i)[] = float32((i * 5) mod 11) * 0.1'f32
  setNumThreads(1)
  let saved = secs
  secs = max(secs, 1.0)   # calls take ~50 ms: a longer window keeps the overlap tight
  windowNs = int64(secs * 1e9)
  slab = (avx512F32, n, a, b, c)
  scaling("gemm-slab-avx512", "GFLOPS", gemmSlab, 1e-9)
  slab = (avx2F32, n, a, b, c)
  scaling("gemm-slab-avx2", "GFLOPS", gemmSlab, 1e-9)
  secs = saved
  windowNs = int64(secs * 1e9)
  for p in [a, b, c]: deallocShared(p)

proc gemmCase(name: string, spec: KernelSpec[float32]) =
  if not wanted(name): return
  let n = gemmN
  var a = newSeq[float32](n * n)
  var b = newSeq[float32](n * n)
  var c = newSeq[float32](n * n)
  for i in 0 ..< n * n:
    a[i] = float32((i * 7) mod 13) * 0.1'f32
    b[i] = float32((i * 5) mod 11) * 0.1'f32
  let opA = Operand[float32](base: a[0].addr, rs: n, cs: 1)
  let opB = Operand[float32](base: b[0].addr, rs: n, cs: 1)
  var ms: array[1 .. 2, seq[float]]
  var speedup: seq[float]
  startCase()
  var r = 0
  while speedup.len < reps:
    let m = meter()
    var t: array[1 .. 2, float]
    for threads in 1 .. 2:
      # Workers inherit the affinity of the thread that starts them: CPU 0 only for 1 thread
      # (CPU 1 held by the pause loop), both CPUs before the pool starts for 2.
      discard pinMask(if threads == 1: 1 else: 3)
      setNumThreads(threads)
      gemmWithSpec(spec, 256, 256, 256, opA, opB, c[0].addr, n)   # (re)start the workers
      if threads == 1 and hold: holdOn()
      let t0 = getMonoTime()
      gemmWithSpec(spec, n, n, n, opA, opB, c[0].addr, n)
      t[threads] = float((getMonoTime() - t0).inNanoseconds) * 1e-6
      if threads == 1 and hold: holdOff()
    inc r
    if r == 1 or not quietRound(m): continue   # round 1 warms up (workers, buffers)
    for threads in 1 .. 2: ms[threads].add t[threads]
    speedup.add t[1] / t[2]
  let flops = 2.0 * float(n) ^ 3
  var g1, g2: seq[float]
  for x in ms[1]: g1.add flops / x * 1e-6
  for x in ms[2]: g2.add flops / x * 1e-6
  echo "{\"case\": \"$1\", \"n\": $2, \"unit\": \"ms\", $3, $4, $5, $6, $7, \"reps\": $8, $9}" % [
    name, $n, field("one_thread_ms", ms[1]), field("two_threads_ms", ms[2]),
    field("one_thread_gflops", g1), field("two_threads_gflops", g2), field("speedup", speedup), $reps,
    othersField()]

gemmCase("gemm-avx512", avx512F32)
gemmCase("gemm-avx2", avx2F32)

acquire(lock)
quitting = true
signal(cond)
release(lock)
joinThread(helper)
