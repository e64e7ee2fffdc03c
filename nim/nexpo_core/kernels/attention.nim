## Fused scaled-dot-product attention: softmax(Q·Kᵀ·scale + mask)·V for every (batch, head),
## reading Q, K, V and writing the output through strides, so the head split and merge
## transposes of an encoder are never materialised, and the scores never leave L1.
##
## One task per (batch, head): Kᵀ and V are copied once into zero-padded local panels (rows of
## a multiple of `tileCols` columns), then blocks of `blockRows` query rows run two products on
## the GEMM's register tile (common.simdMicroKernelBody), scores = Q·Kᵀ over dk and out = P·V
## over the keys, with the softmax of each score row in between (P is normalised before P·V,
## as the unfused ops do). The body is compiled for each ISA path like vmath.nim's loops.
##
## NaN or Inf anywhere in a row's scores gives what the unfused ops give: a NaN row (softmax of
## a row holding +Inf or NaN) that propagates through P·V.

import std/atomics
import ../config, ../cpu, ../targets, ../errors
import ../runtime/scheduler
import ./common, ./vmath
when x86SimdEnabled: import ./simd

{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

type F32s = ptr UncheckedArray[float32]

const
  tileCols = 32   ## columns of a register tile (two zmm, four ymm); panels are padded to it
  blockRows = 4   ## query rows per register tile
  lanes = 16      ## lanes of the softmax's vectorised max and sum (folded 8, 4, 2, 1)
  minParallelFlops = 1 shl 19  ## below this the heads run on the caller (measured: the fork/join
                               ## of 4 heads of 32x32x32 costs more than it saves)

type
  Attention* = object
    batches*, heads*, sq*, sk*, dk*, dv*: int
    scale*: float32
    q*, k*, v*, o*, mask*: ptr float32   ## mask may be nil
    qs*, ks*, vs*, os*: array[3, int]     ## (batch, head, row) strides in elements; columns are 1
    ms*: array[4, int]                    ## mask's (batch, head, row, column) strides
    failed: Atomic[bool]

proc roundUp(n: int): int {.inline.} = (n + tileCols - 1) div tileCols * tileCols

proc scratchFloats*(a: Attention): int =
  ## Local floats one head needs: Kᵀ and V panels, a block of Q rows, score rows and outputs.
  a.dk * roundUp(a.sk) + a.sk * roundUp(a.dv) + blockRows * (a.dk + roundUp(a.sk) + tileCols)

# --- the 4 x 32 tile C = A·B (A: element (i, p) at a + i*rsa + p, B: rows of rsb) per ISA ------

const noTrap = "optimize(\"no-trapping-math\")"
const avx2Decl = "__attribute__((target(\"" & avx2Targets & "\"), " & noTrap & ")) $# $#$#"
const avx512Decl = "__attribute__((target(\"" & avx512Targets & "\"), " & noTrap & ")) $# $#$#"
const portableDecl = "__attribute__((" & noTrap & ")) $# $#$#"

proc tilePortable(kc: int, a: ptr float32, rsa: int, b: ptr float32, rsb: int, c: ptr float32,
                  ldc: int) {.codegenDecl: portableDecl.} =
  for part in 0 ..< tileCols div 8:  # 4 x 8 at a time: what SSE's registers hold
    var acc: array[blockRows * 8, float32]
    var pb = b +! (8 * part)
    for p in 0 ..< kc:
      for i in 0 ..< blockRows:
        let av = (a +! (i * rsa + p))[]
        for j in 0 ..< 8: acc[i * 8 + j] += av * (pb +! j)[]
      pb = pb +! rsb
    for i in 0 ..< blockRows:
      for j in 0 ..< 8: (c +! (i * ldc + 8 * part + j))[] = acc[i * 8 + j]

when x86SimdEnabled:
  proc tileAvx512(kc: int, a: ptr float32, rsa: int, b: ptr float32, rsb: int, c: ptr float32,
                  ldc: int) {.codegenDecl: avx512Decl.} =
    const accumulate = false
    simdMicroKernelBody(M512, blockRows, 2, 16, mm512_setzero_ps, mm512_loadu_ps,
                        mm512_set1_ps, mm512_fmadd_ps, mm512_add_ps, mm512_storeu_ps, rsa, 1)

  proc tileAvx2Half(kc: int, a: ptr float32, rsa: int, b: ptr float32, rsb: int, c: ptr float32,
                    ldc: int) {.codegenDecl: avx2Decl.} =
    const accumulate = false
    simdMicroKernelBody(M256, blockRows, 2, 8, mm256_setzero_ps, mm256_loadu_ps,
                        mm256_set1_ps, mm256_fmadd_ps, mm256_add_ps, mm256_storeu_ps, rsa, 1)

  proc tileAvx2(kc: int, a: ptr float32, rsa: int, b: ptr float32, rsb: int, c: ptr float32,
                ldc: int) {.codegenDecl: avx2Decl.} =
    tileAvx2Half(kc, a, rsa, b, rsb, c, ldc)
    tileAvx2Half(kc, a, rsa, b +! 16, rsb, c +! 16, ldc)

# --- one head ----------------------------------------------------------------------------------

template softmaxRow(row: F32s, n: int, scale: float32, hasMask: bool, m: F32s, mcol: int) =
  ## row = softmax(row·scale + mask) over n elements, in three loops the compiler vectorises
  ## (the max and the sum in `lanes` partial results: a scalar reduction would stay scalar).
  ## The max skips NaN (a plain vector max): a NaN score still makes the sum, so the row, NaN.
  var hv {.noinit.}: array[lanes, float32]
  for l in 0 ..< lanes: hv[l] = -Inf.float32
  var t = 0
  while t + lanes <= n:
    for l in 0 ..< lanes:
      var x = row[t + l] * scale
      if hasMask: x = x + m[(t + l) * mcol]
      row[t + l] = x
      hv[l] = (if x > hv[l]: x else: hv[l])
    t += lanes
  var hi = -Inf.float32
  while t < n:
    var x = row[t] * scale
    if hasMask: x = x + m[t * mcol]
    row[t] = x
    hi = (if x > hi: x else: hi)
    inc t
  # fold the lanes pairwise (constant bounds: a vector op per step, not 16 dependent scalar ones)
  template foldMax(half: static int) =
    for l in 0 ..< half:
      hv[l] = (if hv[l + half] > hv[l]: hv[l + half] else: hv[l])
  foldMax(8); foldMax(4); foldMax(2); foldMax(1)
  hi = (if hv[0] > hi: hv[0] else: hi)
  # exp and sum in fixed 16-wide steps (a whole vector each, no loop prologue), then the tail
  var sv {.noinit.}: array[lanes, float32]
  for l in 0 ..< lanes: sv[l] = 0'f32
  t = 0
  while t + lanes <= n:
    for l in 0 ..< lanes:
      let x = row[t + l] - hi
      var e = fastExp(x)
      if x != x: e = x
      row[t + l] = e
      sv[l] = sv[l] + e
    t += lanes
  var total = 0'f32
  while t < n:
    let x = row[t] - hi
    var e = fastExp(x)
    if x != x: e = x
    row[t] = e
    total = total + e
    inc t
  template foldSum(half: static int) =
    for l in 0 ..< half: sv[l] = sv[l] + sv[l + half]
  foldSum(8); foldSum(4); foldSum(2); foldSum(1)
  total = total + sv[0]
  let inv = 1'f32 / total
  t = 0
  while t + lanes <= n:
    for l in 0 ..< lanes: row[t + l] = row[t + l] * inv
    t += lanes
  while t < n:
    row[t] = row[t] * inv
    inc t

template packKtBody(k: F32s, ks, sk, dk, skp: int, kt: F32s, gather: untyped) =
  ## kt[j, t] = k[t, j], rows padded with zeros to skp; `gather(dst, src)` moves 16 keys' column
  ## at once where the ISA has gathers, else it is `false` and the loop is scalar.
  for j in 0 ..< dk:
    let dst = cast[F32s](kt[j * skp].addr)
    var t = 0
    while t + 16 <= sk and gather(dst[t].addr, k[t * ks + j].addr): t += 16
    while t < sk:
      dst[t] = k[t * ks + j]
      inc t
    for t in sk ..< skp: dst[t] = 0'f32

template noGather(dst, src: ptr float32): bool = false

proc packKtPortable(k: F32s, ks, sk, dk, skp: int, kt: F32s) {.codegenDecl: portableDecl.} =
  packKtBody(k, ks, sk, dk, skp, kt, noGather)

when x86SimdEnabled:
  proc mm512_i32gather_ps(idx: M512i, base: pointer, scale: cint): M512 {.
      importc: "_mm512_i32gather_ps", header: "<immintrin.h>".}

  proc packKtAvx2(k: F32s, ks, sk, dk, skp: int, kt: F32s) {.codegenDecl: avx2Decl.} =
    packKtBody(k, ks, sk, dk, skp, kt, noGather)

  proc packKtAvx512(k: F32s, ks, sk, dk, skp: int, kt: F32s) {.codegenDecl: avx512Decl.} =
    var idx {.noinit.}: array[16, int32]
    for l in 0 ..< 16: idx[l] = int32(l * ks)
    let rows = mm512_loadu_si512(idx[0].addr)
    let wide = 16 * ks < high(int32)  # (indices are int32)
    template gather(dst, src: ptr float32): bool =
      wide and (mm512_storeu_ps(dst, mm512_i32gather_ps(rows, src, 4)); true)
    packKtBody(k, ks, sk, dk, skp, kt, gather)

template headBody(a: ptr Attention, task: int, buf: F32s, tile, packKt: untyped) =
  let bi = task div a.heads
  let hi = task mod a.heads
  let q = a.q +! (bi * a.qs[0] + hi * a.qs[1])
  let k = cast[F32s](a.k +! (bi * a.ks[0] + hi * a.ks[1]))
  let v = cast[F32s](a.v +! (bi * a.vs[0] + hi * a.vs[1]))
  let o = a.o +! (bi * a.os[0] + hi * a.os[1])
  let hasMask = a.mask != nil
  let m = (if hasMask: a.mask +! (bi * a.ms[0] + hi * a.ms[1]) else: a.q)
  let (sq, sk, dk, dv) = (a.sq, a.sk, a.dk, a.dv)
  let skp = roundUp(sk)
  let dvp = roundUp(dv)
  let kt = buf                                       # Kᵀ: dk x skp
  let vp = cast[F32s](buf[dk * skp].addr)            # V: sk x dvp
  let qb = cast[F32s](vp[sk * dvp].addr)             # a short block's Q rows: blockRows x dk
  let p = cast[F32s](qb[blockRows * dk].addr)        # scores, then P: blockRows x skp
  let ob = cast[F32s](p[blockRows * skp].addr)       # a partial output tile: blockRows x tileCols
  packKt(k, a.ks[2], sk, dk, skp, kt)
  var vb = a.v +! (bi * a.vs[0] + hi * a.vs[1])  # V in place when its rows fill whole tiles
  var rsv = a.vs[2]
  if dv != dvp:
    for t in 0 ..< sk:
      copyMem(vp[t * dvp].addr, v[t * rsv].addr, 4 * dv)
      zeroMem(vp[t * dvp + dv].addr, 4 * (dvp - dv))
    vb = vp[0].addr
    rsv = dvp
  var s0 = 0
  while s0 < sq:
    let rows = min(blockRows, sq - s0)
    var qa = q +! (s0 * a.qs[2])
    var rsq = a.qs[2]
    if rows < blockRows:  # the last rows, then zeros: the tile always reads blockRows rows
      for r in 0 ..< blockRows:
        for j in 0 ..< dk: qb[r * dk + j] = (if r < rows: (qa +! (r * rsq + j))[] else: 0'f32)
      qa = qb[0].addr
      rsq = dk
    var tc = 0
    while tc < skp:
      tile(dk, qa, rsq, kt[tc].addr, skp, p[tc].addr, skp)
      tc += tileCols
    for r in 0 ..< rows:
      softmaxRow(cast[F32s](p[r * skp].addr), sk, a.scale, hasMask, cast[F32s](m +! ((s0 + r) * a.ms[2])),
                 a.ms[3])
    var cc = 0
    while cc < dvp:
      let orow = o +! (s0 * a.os[2] + cc)
      if rows == blockRows and cc + tileCols <= dv:
        tile(sk, p[0].addr, skp, vb +! cc, rsv, orow, a.os[2])
      else:
        tile(sk, p[0].addr, skp, vb +! cc, rsv, ob[0].addr, tileCols)
        for r in 0 ..< rows:
          for c in 0 ..< min(tileCols, dv - cc): (orow +! (r * a.os[2] + c))[] = ob[r * tileCols + c]
      cc += tileCols
    s0 += blockRows

proc headsPortable(a: ptr Attention, lo, hi: int, buf: F32s) {.codegenDecl: portableDecl.} =
  for t in lo ..< hi: headBody(a, t, buf, tilePortable, packKtPortable)

when x86SimdEnabled:
  proc headsAvx2(a: ptr Attention, lo, hi: int, buf: F32s) {.codegenDecl: avx2Decl.} =
    for t in lo ..< hi: headBody(a, t, buf, tileAvx2, packKtAvx2)

  proc headsAvx512(a: ptr Attention, lo, hi: int, buf: F32s) {.codegenDecl: avx512Decl.} =
    for t in lo ..< hi: headBody(a, t, buf, tileAvx512, packKtAvx512)

proc runHeads(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let a = cast[ptr Attention](ctx)
  let buf = cast[F32s](acquireBuffer(4 * a[].scratchFloats))
  if buf == nil:
    a.failed.store(true, moRelaxed)
    return
  when x86SimdEnabled:
    case activeIsa()
    of isaAvx512: headsAvx512(a, lo, hi, buf)
    of isaAvx2: headsAvx2(a, lo, hi, buf)
    of isaPortable: headsPortable(a, lo, hi, buf)
  else:
    headsPortable(a, lo, hi, buf)
  releaseBuffer(buf)

proc attention*(a: var Attention) =
  ## Every (batch, head)'s output rows; raises NexpoError(stNoMem) when the local panels could
  ## not be allocated. Sizes and strides are the caller's to check (inference/exec.nim).
  let tasks = a.batches * a.heads
  if tasks == 0 or a.sq == 0 or a.dv == 0: return
  if a.sk == 0:  # no keys: P·V is an empty sum
    for t in 0 ..< tasks:
      let o = a.o +! ((t div a.heads) * a.os[0] + (t mod a.heads) * a.os[1])
      for s in 0 ..< a.sq: zeroMem(o +! (s * a.os[2]), 4 * a.dv)
    return
  let flops = tasks * a.sq * a.sk * (a.dk + a.dv)
  if tasks == 1 or numThreads() <= 1 or flops < minParallelFlops:
    runHeads(0, tasks, a.addr)
  else:
    parallelFor(0, tasks, max(1, tasks div (4 * numThreads())), runHeads, a.addr)
  if a.failed.load(moRelaxed):
    fail(stNoMem, "attention: out of memory for the key and value panels")
