## Nim-level tests of the GEMM kernels: packing, every ISA's micro-kernels (packed and direct),
## the blocked/direct drivers over odd shapes and strides, the matrix-vector path, the fused
## epilogue and the C ABI.
## Sizes stay small: this also runs under ASan+UBSan.

import std/[unittest, random, math, sequtils]
import nexpo_core
import nexpo_core/capi
import nexpo_core/kernels/[common, packing, activations, gemm, gemv, vmath]
import nexpo_core/cpu

discard nexpo_init()
var rng = initRand(20261121)

proc randomSeq[T](n: int): seq[T] =
  result = newSeq[T](n)
  for x in result.mitems: x = T(rng.rand(2.0) - 1.0)

type View[T] = object
  ## A matrix stored in `data` and read through (offset, rs, cs): any layout, negative strides too.
  data: seq[T]
  offset, rs, cs: int

proc at[T](v: View[T], i, j: int): T = v.data[v.offset + i * v.rs + j * v.cs]

proc makeView[T](rows, cols: int, layout: int): View[T] =
  ## layout 0: row-major, 1: column-major, 2: rows and columns reversed, 3: every other column
  case layout
  of 0: View[T](data: randomSeq[T](rows * cols), offset: 0, rs: cols, cs: 1)
  of 1: View[T](data: randomSeq[T](rows * cols), offset: 0, rs: 1, cs: rows)
  of 2: View[T](data: randomSeq[T](rows * cols), offset: rows * cols - 1, rs: -cols, cs: -1)
  else: View[T](data: randomSeq[T](rows * cols * 2), offset: 1, rs: 2 * cols, cs: 2)

proc operand[T](v: var View[T]): Operand[T] =
  Operand[T](base: (if v.data.len == 0: nil else: v.data[v.offset].addr), rs: v.rs, cs: v.cs)

proc checkProduct[T](c: seq[T], ldc: int, a, b: View[T], m, n, k: int) =
  ## |C - C_ref| <= 4·k·eps·(|A||B|) elementwise, the reference accumulated in float64.
  let eps = (when T is float32: pow(2.0, -23.0) else: pow(2.0, -52.0))
  var worst = 0.0
  for i in 0 ..< m:
    for j in 0 ..< n:
      var exact, magnitude = 0.0
      for p in 0 ..< k:
        exact += float64(a.at(i, p)) * float64(b.at(p, j))
        magnitude += abs(float64(a.at(i, p)) * float64(b.at(p, j)))
      let err = abs(float64(c[i * ldc + j]) - exact)
      worst = max(worst, err - 4.0 * float64(max(k, 1)) * eps * magnitude)
  check worst <= 1e-300

suite "packing":
  test "packA and packB zero-pad ragged panels and follow any strides":
    for layout in 0 .. 3:
      var a = makeView[float64](11, 7, layout)
      var buf = newSeq[float64](14 * 7 + 8)
      buf[^1] = 42.0  # guard element past the panel
      let src = operand(a)
      packA(11, 7, src.base, src.rs, src.cs, buf[0].addr, 14)
      for p in 0 ..< 7:
        for i in 0 ..< 14:
          check buf[p * 14 + i] == (if i < 11: a.at(i, p) else: 0.0)
      check buf[^1] == 42.0
      var bp = newSeq[float32](2 * 6 * 16)
      var b = makeView[float32](6, 19, layout)
      let bs = operand(b)
      packB(6, 19, bs.base, bs.rs, bs.cs, bp[0].addr, 16)
      for q in 0 ..< 2:
        for p in 0 ..< 6:
          for j in 0 ..< 16:
            let col = q * 16 + j
            check bp[q * 6 * 16 + p * 16 + j] == (if col < 19: b.at(p, col) else: 0'f32)

proc testKernels[T]() =
  for (isa, spec) in kernelSpecs[T]():
    checkpoint("isa " & isaNames[isa])
    let kc = 37
    var a = randomSeq[T](spec.mr * kc)
    var b = randomSeq[T](kc * spec.nr)
    var c = newSeq[T](spec.mr * spec.nr)
    var view = View[T](data: a, rs: 1, cs: spec.mr)
    let bview = View[T](data: b, rs: spec.nr, cs: 1)
    spec.uk(kc, a[0].addr, b[0].addr, spec.nr, c[0].addr, spec.nr, false)
    checkProduct(c, spec.nr, view, bview, spec.mr, spec.nr, kc)
    # accumulate adds onto what is there
    var twice = newSeq[T](c.len)  # an explicit copy: `var twice = c` may become an alias (cursor)
    for i in 0 ..< c.len: twice[i] = c[i]
    spec.uk(kc, a[0].addr, b[0].addr, spec.nr, twice[0].addr, spec.nr, true)
    for i in 0 ..< c.len: check abs(float64(twice[i]) - 2.0 * float64(c[i])) <= 1e-5 * (1.0 + abs(float64(c[i])))
    # direct: A read row-major in place gives the same tile
    var rowMajor = newSeq[T](spec.mr * kc)
    for i in 0 ..< spec.mr:
      for p in 0 ..< kc: rowMajor[i * kc + p] = a[p * spec.mr + i]
    var direct = newSeq[T](spec.mr * spec.nr)
    spec.ukDirect(kc, rowMajor[0].addr, kc, 1, b[0].addr, spec.nr, direct[0].addr, spec.nr, false)
    check direct == c
    # the narrow kernels for leftover rows compute the first `rows` rows of the same tile
    for t, rows in rowTileSizes:
      if spec.ukRows[t] == nil or rows >= spec.mr: continue
      var narrow = newSeq[T](spec.mr * spec.nr)
      spec.ukRows[t](kc, rowMajor[0].addr, kc, 1, b[0].addr, spec.nr, narrow[0].addr, spec.nr, false)
      check narrow[0 ..< rows * spec.nr] == c[0 ..< rows * spec.nr]
      check narrow[rows * spec.nr ..< narrow.len].allIt(it == T(0))

proc testDrivers[T]() =
  for (isa, spec) in kernelSpecs[T]():
    checkpoint("isa " & isaNames[isa])
    # shapes cross every path: small (m <= 8: every row count, wide/one-vector/ragged tiles,
    # k blocks; n <= one vector: groups of 8 rows), direct (m <= 16), blocked, k blocks (kc = 256), ragged edges
    for (m, k, n) in [(1, 1, 1), (5, 3, 70), (13, 20, 33), (16, 300, 40), (17, 33, 65),
                      (27, 64, 40), (70, 290, 90), (129, 130, 131), (3, 0, 4), (1, 300, 129),
                      (2, 257, 100), (4, 64, 17), (6, 513, 40), (7, 20, 130), (8, 600, 33),
                      (64, 128, 10), (45, 300, 16), (19, 7, 3), (30, 50, 70)]:
      for la in 0 .. 3:
        let lb = (la + m) mod 4
        var a = makeView[T](m, k, la)
        var b = makeView[T](k, n, lb)
        var c = newSeq[T](m * (n + 3))
        for x in c.mitems: x = T(NaN)  # never read before written
        gemmWithSpec(spec, m, n, k, operand(a), operand(b), c[0].addr, n + 3)
        checkProduct(c, n + 3, a, b, m, n, k)

proc applyEpilogue[T](c: var seq[T], ldc, m, n: int, bias: seq[T], act: Activation) =
  ## The reference epilogue: bias, then ReLU (NaN stays NaN), GELU (libm's erf) or a row softmax.
  for i in 0 ..< m:
    for j in 0 ..< n:
      let x = c[i * ldc + j] + bias[j]
      c[i * ldc + j] = (if act == actRelu and x < 0: T(0) elif act == actGeluVec: gelu(x) else: x)
    if act == actSoftmax:
      var top = c[i * ldc]
      for j in 0 ..< n: top = max(top, c[i * ldc + j])
      var total = 0.0
      for j in 0 ..< n: total += exp(float64(c[i * ldc + j] - top))
      for j in 0 ..< n: c[i * ldc + j] = T(exp(float64(c[i * ldc + j] - top)) / total)

proc testPacked[T]() =
  ## B packed once (`packWeights`) on every ISA: the direct path (column parts on two threads
  ## past its work threshold; row parts of a few tiles for tall products, over two k blocks in
  ## the last one; the blocked path when B's k block is too large for them), ragged edges, any B layout, bias + ReLU / GELU / softmax; C prefilled with
  ## NaN is never read. Must equal the unpacked path.
  for (isa, spec) in kernelSpecs[T]():
    checkpoint("isa " & isaNames[isa])
    for (m, k, n) in [(9, 5, 33), (17, 33, 65), (70, 290, 90), (129, 130, 131), (100, 600, 70),
                      (300, 300, 100), (600, 300, 200), (40, 1, 50), (45, 0, 40), (531, 520, 70),
                      (200, 600, 300)]:
      for act in [actNone, actRelu, actGeluVec, actSoftmax]:
        checkpoint($m & "x" & $k & "x" & $n & " " & $act)
        let lb = (m + k) mod 4
        var a = makeView[T](m, k, m mod 4)
        var b = makeView[T](k, n, lb)
        var bias = randomSeq[T](n)
        var packed = newSeq[T](k * ((n + spec.nr - 1) div spec.nr * spec.nr) + 1)
        packed[^1] = 42  # guard past the panels
        packWeights(spec.nr, k, n, operand(b), packed[0].addr)
        check packed[^1] == 42
        var want = newSeq[T](m * (n + 3))
        gemmWithSpec(spec, m, n, k, operand(a), operand(b), want[0].addr, n + 3)
        checkProduct(want, n + 3, a, b, m, n, k)
        applyEpilogue(want, n + 3, m, n, bias, act)
        var c = newSeq[T](m * (n + 3))
        for x in c.mitems: x = T(NaN)
        gemmWithSpec(spec, m, n, k, operand(a), operand(b), c[0].addr, n + 3, bias[0].addr, act,
                     packed[0].addr)
        var worst = 0.0
        for i in 0 ..< m:
          for j in 0 ..< n:
            worst = max(worst, abs(float64(c[i * (n + 3) + j]) - float64(want[i * (n + 3) + j])))
        check worst <= 1e-3

proc testGemv[T]() =
  ## The matrix-vector path (m = 1, B of 1 MiB or more) on every ISA: B row-major, reversed
  ## and with a row gap (its columns must be contiguous), x with any stride.
  let previous = activeIsa()
  for isa in availableIsas():
    checkpoint("isa " & isaNames[isa])
    discard setIsa(isa)
    for (k, n) in [(1023, 257), (9, 30000), (300, 1001)]:
      check gemvPays(n, k, sizeof(T))
      for la in 0 .. 3:
        var a = makeView[T](1, k, la)
        var b = case la mod 3  # columns contiguous: row-major, rows reversed, a gap after each row
          of 0: View[T](data: randomSeq[T](k * n), offset: 0, rs: n, cs: 1)
          of 1: View[T](data: randomSeq[T](k * n), offset: (k - 1) * n, rs: -n, cs: 1)
          else: View[T](data: randomSeq[T](2 * k * n), offset: 0, rs: 2 * n, cs: 1)
        var c = newSeq[T](n + 1)
        c[n] = T(42)
        gemmStrided(1, n, k, operand(a), operand(b), c[0].addr, n)
        checkProduct(c, n, a, b, 1, n, k)
        check c[n] == T(42)  # nothing written past the row
  discard setIsa(previous)

suite "micro-kernels":
  test "float32 tiles of every ISA match the reference": testKernels[float32]()
  test "float64 tiles of every ISA match the reference": testKernels[float64]()

suite "gemm drivers":
  test "float32 on every ISA, shapes and layouts": testDrivers[float32]()
  test "float64 on every ISA, shapes and layouts": testDrivers[float64]()

suite "weights packed ahead":
  test "float32 on every ISA, paths, edges and epilogues": testPacked[float32]()
  test "float64 on every ISA, paths, edges and epilogues": testPacked[float64]()

suite "matrix-vector":
  test "float32 on every ISA, views and strides": testGemv[float32]()
  test "float64 on every ISA, views and strides": testGemv[float64]()

suite "epilogue":
  test "bias and elementwise activations":
    var tile = @[-1.0, 0.5, 2.0, NaN]
    var bias = @[0.5, 0.5, -1.0, 0.0]
    epilogueTile(tile[0].addr, 4, 1, 4, bias[0].addr, actRelu)
    check tile[0] == 0.0
    check tile[1] == 1.0
    check tile[2] == 1.0
    check tile[3].isNaN
    var g = @[1.0'f32]
    epilogueTile(g[0].addr, 1, 1, 1, nil, actGelu)
    check abs(g[0] - 0.8413447'f32) < 1e-6
    var s = @[-1000.0, 1000.0]
    epilogueTile(s[0].addr, 2, 1, 2, nil, actSigmoid)
    check s == @[0.0, 1.0]

  test "the vectorised GELU of a strided tile is vmap's, after the bias":
    for isa in availableIsas():
      checkpoint("isa " & isaNames[isa])
      let previous = activeIsa()
      discard setIsa(isa)
      var tile = randomSeq[float32](5 * 40)
      for x in tile.mitems: x *= 6
      tile[7] = NaN
      var bias = randomSeq[float32](37)
      var want = tile
      for i in 0 ..< 5:
        for j in 0 ..< 37: want[i * 40 + j] += bias[j]
        vmap(vGelu, 37, want[i * 40].addr, want[i * 40].addr)
      epilogueTile(tile[0].addr, 40, 5, 37, bias[0].addr, actGeluVec)
      for i in 0 ..< 5 * 40:
        if i == 7: check tile[i].isNaN
        else: check tile[i] == want[i]  # (columns 37 ..< 40 untouched in both)
      var g = @[1.0'f64]
      epilogueTile(g[0].addr, 1, 1, 1, nil, actGeluVec)  # float64: libm's erf
      check abs(g[0] - 0.8413447460685429) < 1e-15
      discard setIsa(previous)

  test "softmax rows are stable and sum to one":
    var rows = @[1000.0'f32, 1000.0, 999.0, -5.0, 0.0, 5.0]
    softmaxRows(rows[0].addr, 3, 2, 3)
    for r in 0 .. 1:
      check abs(rows[3*r] + rows[3*r+1] + rows[3*r+2] - 1.0) < 1e-6
    check abs(rows[0] - rows[1]) < 1e-7
    check rows[5] > rows[4] and rows[4] > rows[3]

suite "C ABI":
  test "bad arguments are status codes, not crashes":
    var a = @[1.0'f32, 2.0, 3.0, 4.0]
    var c = newSeq[float32](4)
    let pa = a[0].addr.pointer
    let pc = c[0].addr.pointer
    check nexpo_matmul(0, 2, 2, 2, pa, 2, 1, pa, 2, 1, pc, 2) == 0
    check c == @[7.0'f32, 10.0, 15.0, 22.0]
    check nexpo_matmul(7, 2, 2, 2, pa, 2, 1, pa, 2, 1, pc, 2) == cint(ord(stType))
    check nexpo_matmul(0, -1, 2, 2, pa, 2, 1, pa, 2, 1, pc, 2) == cint(ord(stInvalid))
    check nexpo_matmul(0, 2, 2, 2, nil, 2, 1, pa, 2, 1, pc, 2) == cint(ord(stInvalid))
    check nexpo_matmul(0, 2, 2, 2, pa, 2, 1, pa, 2, 1, pc, 1) == cint(ord(stInvalid))
    let misaligned = cast[pointer](cast[int](pa) + 1)
    check nexpo_matmul(0, 1, 1, 1, misaligned, 1, 1, pa, 1, 1, pc, 1) == cint(ord(stInvalid))
    check nexpo_linear(0, 2, 2, 2, pa, 2, 1, pa, 2, 1, nil, 99, pc, 2) == cint(ord(stInvalid))
    # the executor's own GELU (actGeluVec) is no NEXPO_ACT_*
    check nexpo_linear(0, 2, 2, 2, pa, 2, 1, pa, 2, 1, nil, cint(ord(actGeluVec)), pc, 2) == cint(ord(stInvalid))
    check nexpo_linear(0, 2, 2, 2, pa, 2, 1, pa, 2, 1, nil, 1, pc, 2) == 0
    check nexpo_matmul(0, 0, 0, 0, nil, 0, 0, nil, 0, 0, nil, 0) == 0

  test "the buffer pool can be emptied":
    releaseAllBuffers()
