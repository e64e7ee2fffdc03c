## The fused attention kernel against a naive softmax(Q·Kᵀ·scale + mask)·V on every ISA path
## (odd sequence lengths and head widths, strided layouts, masks, NaN), and the executor's
## checks on a malformed attention instruction. Sizes stay small: this also runs under ASan.

import std/[unittest, random, math]
import nexpo_core
import nexpo_core/capi
import nexpo_core/errors
import nexpo_core/cpu
import nexpo_core/kernels/attention
import nexpo_core/inference/[program, exec]

discard nexpo_init()
var rng = initRand(20261207)

proc randomSeq(n: int): seq[float32] =
  result = newSeq[float32](n)
  for x in result.mitems: x = float32(rng.rand(4.0) - 2.0)

type Case = object
  n, h, sq, sk, dk, dv: int
  merged: bool   ## Q, K, V and the output in [N, S, H, d] (else [N, H, S, d])
  mask: bool     ## a [N, 1, 1, Sk] mask

proc strides(c: Case, rows, d: int): array[3, int] =
  if c.merged: [rows * c.h * d, d, c.h * d] else: [c.h * rows * d, rows * d, d]

proc naive(c: Case, scale: float32, q, k, v, m: seq[float32]): seq[float32] =
  result = newSeq[float32](c.n * c.h * c.sq * c.dv)
  let (qs, ks, vs, os) = (strides(c, c.sq, c.dk), strides(c, c.sk, c.dk), strides(c, c.sk, c.dv),
                          strides(c, c.sq, c.dv))
  var p = newSeq[float64](c.sk)
  for b in 0 ..< c.n:
    for hh in 0 ..< c.h:
      for s in 0 ..< c.sq:
        var hi = -Inf
        for t in 0 ..< c.sk:
          var acc = 0'f64
          for j in 0 ..< c.dk:
            acc += float64(q[b * qs[0] + hh * qs[1] + s * qs[2] + j]) *
                   float64(k[b * ks[0] + hh * ks[1] + t * ks[2] + j])
          p[t] = acc * float64(scale) + (if c.mask: float64(m[b * c.sk + t]) else: 0.0)
          hi = max(hi, p[t])
        var total = 0'f64
        for t in 0 ..< c.sk:
          p[t] = exp(p[t] - hi)
          total += p[t]
        for j in 0 ..< c.dv:
          var acc = 0'f64
          for t in 0 ..< c.sk: acc += p[t] / total * float64(v[b * vs[0] + hh * vs[1] + t * vs[2] + j])
          result[b * os[0] + hh * os[1] + s * os[2] + j] = float32(acc)

proc run(c: Case, scale: float32, q, k, v, m: seq[float32]): seq[float32] =
  result = newSeq[float32](c.n * c.h * c.sq * c.dv)
  var a = Attention(batches: c.n, heads: c.h, sq: c.sq, sk: c.sk, dk: c.dk, dv: c.dv,
                    scale: scale, q: q[0].unsafeAddr, k: k[0].unsafeAddr, v: v[0].unsafeAddr,
                    o: result[0].addr, qs: strides(c, c.sq, c.dk), ks: strides(c, c.sk, c.dk),
                    vs: strides(c, c.sk, c.dv), os: strides(c, c.sq, c.dv))
  if c.mask:
    a.mask = m[0].unsafeAddr
    a.ms = [c.sk, 0, 0, 1]
  attention(a)

suite "fused attention":
  test "matches softmax(Q·Kᵀ·scale + mask)·V on every ISA path":
    let cases = [Case(n: 1, h: 4, sq: 32, sk: 32, dk: 32, dv: 32, merged: true),
                 Case(n: 2, h: 3, sq: 7, sk: 7, dk: 8, dv: 8, merged: true, mask: true),
                 Case(n: 1, h: 2, sq: 5, sk: 33, dk: 24, dv: 24),
                 Case(n: 3, h: 1, sq: 17, sk: 9, dk: 64, dv: 64, mask: true),
                 Case(n: 1, h: 2, sq: 6, sk: 40, dk: 24, dv: 8, merged: true)]
    for c in cases:
      let q = randomSeq(c.n * c.h * c.sq * c.dk)
      let k = randomSeq(c.n * c.h * c.sk * c.dk)
      let v = randomSeq(c.n * c.h * c.sk * c.dv)
      let m = randomSeq(c.n * c.sk)
      let scale = 1'f32 / sqrt(float32(c.dk))
      let want = naive(c, scale, q, k, v, m)
      for isa in availableIsas():
        check setIsa(isa)
        let got = run(c, scale, q, k, v, m)
        for i in 0 ..< want.len:
          if abs(got[i] - want[i]) > 1e-5 * (1 + abs(want[i])):
            checkpoint $isa & " " & $c & " at " & $i & ": " & $got[i] & " vs " & $want[i]
            fail()
            break
    discard setIsa(best())

  test "a NaN in a key makes every row NaN; in a value, that column":
    let c = Case(n: 1, h: 1, sq: 5, sk: 19, dk: 8, dv: 8)
    var k = randomSeq(c.sk * c.dk)
    var v = randomSeq(c.sk * c.dv)
    let q = randomSeq(c.sq * c.dk)
    for isa in availableIsas():
      check setIsa(isa)
      v[3 * c.dv + 2] = NaN
      var got = run(c, 0.5, q, k, v, @[0'f32])
      for s in 0 ..< c.sq:
        for j in 0 ..< c.dv: check (got[s * c.dv + j] != got[s * c.dv + j]) == (j == 2)
      v[3 * c.dv + 2] = 0
      k[7 * c.dk + 1] = NaN
      got = run(c, 0.5, q, k, v, @[0'f32])
      for x in got: check x != x
      k[7 * c.dk + 1] = 0
    discard setIsa(best())

  test "the executor rejects an attention operand smaller than its strides reach":
    var q = newSeq[float32](2 * 4 * 8)
    var o = newSeq[float32](2 * 4 * 8)
    var bases = [cast[pointer](q[0].addr), cast[pointer](o[0].addr)]
    var sizes = [q.len * 4, o.len * 4]
    let sp = Spaces(bases: cast[ptr UncheckedArray[pointer]](bases[0].addr),
                    sizes: cast[ptr UncheckedArray[int]](sizes[0].addr), count: 2)
    # one batch, 2 heads, 4 rows of 8 (merged layout): Q = K = V, output in space 1
    var code = @[int64(ord(opAttention)), 0, 1, 2, 4, 4, 8, 8, cast[int64](0.5'f64),
                 64, 8, 16, 64, 8, 16, 64, 8, 16, 64, 8, 16, 0, 0, 0, 0,
                 0, 0, 256, 0, 0, 256, 0, 0, 256, -1, 0, 0, 1, 0, 256]
    code[1] = int64(code.len)
    runPlan(cast[ptr UncheckedArray[int64]](code[0].addr), code.len, sp)
    code[17] = 17  # V's row stride now reaches past its 256 bytes
    expect NexpoError:
      runPlan(cast[ptr UncheckedArray[int64]](code[0].addr), code.len, sp)
    code[17] = 16
    code[5] = 5    # 5 key rows: K reaches past its buffer
    expect NexpoError:
      runPlan(cast[ptr UncheckedArray[int64]](code[0].addr), code.len, sp)
