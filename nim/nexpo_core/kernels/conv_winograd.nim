## Winograd F(2x2, 3x3) convolution (NCHW, float32): 3x3 kernels of unit stride and dilation,
## one group, even output sizes. Each 2x2 output tile is A^T [(G g G^T) . (B^T d B)] A of its
## 4x4 input patch d: 16 multiply-adds an input channel instead of 36, which pays once there
## are enough input channels for the transforms to be small beside the products (the planner's
## `WINOGRAD_MIN_CIN`, nexpo/inference/_ops_nn.py).
##
## Per image: the input is zero-padded one channel at a time with its even and odd columns
## apart, so the transform of a row of tiles reads contiguous runs (a tile's columns 2tx..2tx+3
## are even[tx], odd[tx], even[tx+1], odd[tx+1]); V[pos][ci][tile] holds the transformed input.
## The planner transforms the weights once: U[block][pos][ci][8 output channels]. A work item
## (block of 8 output channels, chunk of tiles: the register tile's width) runs the 16 products
## V[pos] x U[pos] with the direct kernel's register tile (CO channels x NV vectors of tiles),
## leaves them in a small buffer, and its output transform adds the bias, applies ReLU and
## either stores the 2x2 outputs, their max (a fused 2x2/2 MaxPool: a tile is one pooled
## output) or their sum (a fused GlobalAveragePool, added up per channel after the join).
## Threads split the images, or with fewer images than threads, each image's input channels
## (the transform) and then its items. Outputs differ from the direct sum by rounding only,
## except that a non-finite input spreads to the whole 2x2 tile whose 4x4 patch holds it.

import std/atomics
import ../config, ../cpu, ../errors, ../targets
import ../runtime/scheduler
import ./common, ./conv_shape, ./vec4
when x86SimdEnabled:
  import ./simd

# Operand sizes are checked by the executor (inference/exec.nim) before a kernel runs.
{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

const
  winoBlock* = 8     ## output channels a block of the transformed weights
  positions = 16     ## elements of a 4x4 transformed tile
  maxChunk = 32      ## tiles an item covers at most (AVX-512: 2 vectors of 16)
  splitMinWork = 1 shl 16  ## products of one image below which it stays on one thread

type
  WinoJob = object
    c: ConvShape
    th, tw, tiles, tp, chunk, chunks, coBlocks, items, half, hp: int
    pstride: int          ## V: one position's planes, plus a cache line (see winogradConv)
    width: int
    src, weight, bias, dst, partial: ptr float32
    relu: bool
    pool: ConvPool
    image: int
    v: ptr float32        ## split image: its transformed input, shared
    input: InputFn
    product: ProductFn
    output: OutputFn
    failed: Atomic[bool]

  InputFn = proc (j: ptr WinoJob, image, ci0, ci1: int, pad, v: ptr float32) {.
      nimcall, gcsafe, raises: [].}
  ProductFn = proc (j: ptr WinoJob, v: ptr float32, cb, t0: int, m: ptr float32) {.
      nimcall, gcsafe, raises: [].}
  OutputFn = proc (j: ptr WinoJob, image, cb, ck: int, m: ptr float32) {.
      nimcall, gcsafe, raises: [].}

proc winogradApplies*(c: ConvShape): bool =
  ## The kernel's domain; the planner (`_winograd_applies`) chooses it within this.
  c.groups == 1 and c.cin >= 1 and c.cout >= 4 and c.g.kh == 3 and c.g.kw == 3 and
    c.g.sh == 1 and c.g.sw == 1 and c.g.dh == 1 and c.g.dw == 1 and c.g.oh >= 2 and
    c.g.ow >= 2 and c.g.oh mod 2 == 0 and c.g.ow mod 2 == 0

proc winogradWeightElements*(c: ConvShape): int =
  ## Elements of the transformed weights `winogradConv` reads.
  (c.cout + winoBlock - 1) div winoBlock * positions * c.cin * winoBlock

# --- the transforms: vectors of WT tiles (8 lanes on x86, 4 portable), a scalar tail ----------

proc sAdd(a, b: float32): float32 {.inline.} = a + b
proc sSub(a, b: float32): float32 {.inline.} = a - b
proc sMax(a, b: float32): float32 {.inline.} = (if a > b: a else: b)  # as max_ps: a NaN a loses
proc sLoad(p: ptr float32): float32 {.inline.} = p[]
proc sStore(p: ptr float32, x: float32) {.inline.} = p[] = x
proc sSet1(x: float32): float32 {.inline.} = x

template inputTiles(T: typedesc, load, store, add, sub: untyped, tx0, tx1, WT: int) =
  ## Tiles tx0 ..< tx1 (steps of WT) of the row of tiles: B^T d B, d the 4x4 patch at rows
  ## r0..r3 and columns (even, odd, even + 1, odd + 1) = 2tx .. 2tx+3.
  var tx = tx0
  while tx < tx1:
    template rowsAt(at: int): array[4, T] =
      let (a0, a1, a2, a3) = (load(pad +! (r0 + at + tx)), load(pad +! (r1 + at + tx)),
                              load(pad +! (r2 + at + tx)), load(pad +! (r3 + at + tx)))
      [sub(a0, a2), add(a1, a2), sub(a2, a1), sub(a1, a3)]  # B^T's rows
    let (e0, o0, e1, o1) = (rowsAt(0), rowsAt(half), rowsAt(1), rowsAt(half + 1))
    for i in 0 .. 3:
      let d = v +! (4 * i * pstride + o + tx)
      store(d, sub(e0[i], e1[i]))
      store(d +! pstride, add(o0[i], e1[i]))
      store(d +! (2 * pstride), sub(e1[i], o0[i]))
      store(d +! (3 * pstride), sub(o0[i], o1[i]))
    tx += WT

template deinterleaveRow(s, evens, odds: ptr float32, count: int, vec: static bool,
                         deint16: untyped) =
  ## s[0], s[2], .. to evens and s[1], s[3], .. to odds, `count` source floats; with `vec`,
  ## `deint16` does 16 at a time.
  var k = 0
  when vec:
    while 2 * k + 16 <= count:
      deint16(s +! (2 * k), evens +! k, odds +! k)
      k += 8
  while 2 * k + 1 < count:
    (evens +! k)[] = (s +! (2 * k))[]
    (odds +! k)[] = (s +! (2 * k + 1))[]
    inc k
  if 2 * k < count: (evens +! k)[] = (s +! (2 * k))[]

template inputBody(T: typedesc, WT: static int, load, store, add, sub: untyped, vecDeint: static bool,
                  deint16: untyped) {.dirty.} =
  ## One channel at a time: padded (even | odd columns), then its rows of tiles into V.
  let (h, w, pt, pl) = (j.c.g.h, j.c.g.w, j.c.g.pt, j.c.g.pl)
  let (half, tw, tp) = (j.half, j.tw, j.tp)
  let rowLen = 2 * half
  let pstride = j.pstride
  let d = cast[ptr UncheckedArray[float32]](pad)
  # padded column x + pl of source column x: even x to the even half when pl is even (else the
  # odd half), at (x + pl) shr 1; odd x to the other half
  let q = pl shr 1
  let (evenAt, oddAt) = if (pl and 1) == 0: (q, half + q) else: (half + q, q + 1)
  # zeros once: every channel then writes the same interior positions, the border stays zero
  zeroMem(pad, j.hp * rowLen * sizeof(float32))
  for ci in ci0 ..< ci1:
    let s = j.src +! ((image * j.c.cin + ci) * h * w)
    for y in 0 ..< h:
      let row = (y + pt) * rowLen
      deinterleaveRow(s +! (y * w), pad +! (row + evenAt), pad +! (row + oddAt), w, vecDeint,
                      deint16)
    for ty in 0 ..< j.th:
      let r0 = 2 * ty * rowLen
      let (r1, r2, r3) = (r0 + rowLen, r0 + 2 * rowLen, r0 + 3 * rowLen)
      let o = ci * tp + ty * tw
      let vec = tw - tw mod WT
      inputTiles(T, load, store, add, sub, 0, vec, WT)
      inputTiles(float32, sLoad, sStore, sAdd, sSub, vec, tw, 1)
    if tp > j.tiles:  # the last chunk's lanes past the tiles: zeros, never stored
      for pos in 0 ..< positions:
        for t in j.tiles ..< tp: (v +! (pos * pstride + ci * tp + t))[] = 0

template outputTiles(T: typedesc, load, store, add, sub, vmax, set1: untyped,
                     t0, t1, WT: int, sums: untyped) =
  ## Tiles t0 ..< t1 (steps of WT) of channel ii: A^T M A, bias, ReLU, then the pool (cpMean:
  ## each tile's sum added to `sums`).
  var t = t0
  let (bv, zv, lowest) = (set1(b), set1(0'f32), set1(-3.4028235e38'f32))
  while t < t1:
    let base = mm +! (ii * maxChunk + t)
    var s0 {.noinit.}, s1 {.noinit.}: array[4, T]
    for c in 0 .. 3:  # A^T M: rows m0 + m1 + m2 and m1 - m2 - m3
      let (a0, a1, a2, a3) = (load(base +! (c * ps)), load(base +! ((4 + c) * ps)),
                              load(base +! ((8 + c) * ps)), load(base +! ((12 + c) * ps)))
      s0[c] = add(add(a0, a1), a2)
      s1[c] = sub(sub(a1, a2), a3)
    var y = [add(add(add(s0[0], s0[1]), s0[2]), bv), add(sub(sub(s0[1], s0[2]), s0[3]), bv),
             add(add(add(s1[0], s1[1]), s1[2]), bv), add(sub(sub(s1[1], s1[2]), s1[3]), bv)]
    if relu:  # max_ps(0, v) keeps a NaN v, as ReLU's `v < 0` test
      for k in 0 .. 3: y[k] = vmax(zv, y[k])
    case pool
    of cpMean:
      sums = add(sums, add(add(y[0], y[1]), add(y[2], y[3])))
    of cpMax2x2:  # tile t is pooled output t: max_ps(v, m) skips a NaN v, as MaxPool's taps
      store(dst +! t, vmax(y[3], vmax(y[2], vmax(y[1], vmax(y[0], lowest)))))
    of cpNone:
      var spill {.noinit.}: array[4, array[WT, float32]]
      for k in 0 .. 3: store(spill[k][0].addr, y[k])
      for l in 0 ..< WT:
        let at = 2 * ty * ow + 2 * tx
        (dst +! at)[] = spill[0][l]
        (dst +! (at + 1))[] = spill[1][l]
        (dst +! (at + ow))[] = spill[2][l]
        (dst +! (at + ow + 1))[] = spill[3][l]
        inc tx
        if tx == tw: (tx, ty) = (0, ty + 1)
    t += WT

template outputBody(T: typedesc, WT: static int, load, store, add, sub, vmax, set1: untyped) {.dirty.} =
  ## m: [pos][channel of the block][maxChunk], the products of chunk ck's tiles.
  let t0 = ck * j.chunk
  let valid = min(j.chunk, j.tiles - t0)
  let vec = valid - valid mod WT
  let channels = min(winoBlock, j.c.cout - cb * winoBlock)
  let mm = m
  const ps = winoBlock * maxChunk  # one position's block
  let (relu, pool, ow, tw) = (j.relu, j.pool, j.c.g.ow, j.tw)
  for ii in 0 ..< channels:
    let chan = cb * winoBlock + ii
    let b = if j.bias == nil: 0'f32 else: (j.bias +! chan)[]
    let dst = case pool
              of cpMax2x2: j.dst +! ((image * j.c.cout + chan) * j.tiles + t0)
              of cpNone: j.dst +! ((image * j.c.cout + chan) * j.c.g.oh * ow)
              of cpMean: nil
    var (ty, tx) = (t0 div tw, t0 mod tw)
    var (vsum, ssum) = (set1(0'f32), 0'f32)
    outputTiles(T, load, store, add, sub, vmax, set1, 0, vec, WT, vsum)
    outputTiles(float32, sLoad, sStore, sAdd, sSub, sMax, sSet1, vec, valid, 1, ssum)
    if pool == cpMean:
      var lanes {.noinit.}: array[WT, float32]
      store(lanes[0].addr, vsum)
      var width = WT div 2  # a tree, not a chain of dependent adds
      while width > 0:
        for l in 0 ..< width: lanes[l] += lanes[l + width]
        width = width div 2
      (j.partial +! ((image * j.c.cout + chan) * j.chunks + ck))[] = lanes[0] + ssum

proc inputPortable(j: ptr WinoJob, image, ci0, ci1: int, pad, v: ptr float32) {.
    nimcall, gcsafe, raises: [].} =
  inputBody(F4, 4, f4load, f4store, f4add, f4sub, false, nil)

proc outputPortable(j: ptr WinoJob, image, cb, ck: int, m: ptr float32) {.
    nimcall, gcsafe, raises: [].} =
  outputBody(F4, 4, f4load, f4store, f4add, f4sub, f4max, f4set1)

when x86SimdEnabled:
  proc mm256_sub_ps(a, b: M256): M256 {.importc: "_mm256_sub_ps", header: "<immintrin.h>".}

  type M256i {.importc: "__m256i", header: "<immintrin.h>", bycopy.} = object
  proc mm256_shuffle_ps(a, b: M256, imm: cint): M256 {.importc: "_mm256_shuffle_ps",
                                                        header: "<immintrin.h>".}
  proc mm256_permutevar8x32_ps(a: M256, idx: M256i): M256 {.importc: "_mm256_permutevar8x32_ps",
                                                            header: "<immintrin.h>".}
  proc mm256_loadu_si256(p: pointer): M256i {.importc: "_mm256_loadu_si256",
                                              header: "<immintrin.h>".}
  let pairsInOrder = [0'i32, 1, 4, 5, 2, 3, 6, 7]

  template deintAvx2(s, evens, odds: ptr float32) =
    ## shuffle_ps picks (a0 a2 b0 b2 | a4 a6 b4 b6); the 64-bit pairs back in order
    let a = mm256_loadu_ps(s)
    let b = mm256_loadu_ps(s +! 8)
    let idx = mm256_loadu_si256(pairsInOrder[0].unsafeAddr)
    mm256_storeu_ps(evens, mm256_permutevar8x32_ps(mm256_shuffle_ps(a, b, 0x88), idx))
    mm256_storeu_ps(odds, mm256_permutevar8x32_ps(mm256_shuffle_ps(a, b, 0xDD), idx))

  # 8 lanes on both x86 paths: a row of tiles is often 8 wide (16 x 16 outputs)
  template inputX86() {.dirty.} =
    inputBody(M256, 8, mm256_loadu_ps, mm256_storeu_ps, mm256_add_ps, mm256_sub_ps, true,
              deintAvx2)
  template outputX86() {.dirty.} =
    outputBody(M256, 8, mm256_loadu_ps, mm256_storeu_ps, mm256_add_ps, mm256_sub_ps,
               mm256_max_ps, mm256_set1_ps)

  proc inputAvx2(j: ptr WinoJob, image, ci0, ci1: int, pad, v: ptr float32) {.
      nimcall, gcsafe, raises: [], avx2fn.} = inputX86()
  proc inputAvx512(j: ptr WinoJob, image, ci0, ci1: int, pad, v: ptr float32) {.
      nimcall, gcsafe, raises: [], avx512fn.} = inputX86()
  proc outputAvx2(j: ptr WinoJob, image, cb, ck: int, m: ptr float32) {.
      nimcall, gcsafe, raises: [], avx2fn.} = outputX86()
  proc outputAvx512(j: ptr WinoJob, image, cb, ck: int, m: ptr float32) {.
      nimcall, gcsafe, raises: [], avx512fn.} = outputX86()

# --- products: M[pos] = U[pos] V[pos] for a block of channels and a chunk of tiles -------------

template productBody(V: typedesc, CO, NV, W: static int, zero, load, bcast, fma, store: untyped) {.dirty.} =
  let cin = j.c.cin
  let (tp, pstride) = (j.tp, j.pstride)
  for sub in 0 ..< winoBlock div CO:
    for pos in 0 ..< positions:
      var acc {.noinit.}: array[CO, array[NV, V]]
      unroll ii, CO:
        unroll jj, NV:
          acc[ii][jj] = zero()
      var x = v +! (pos * pstride + t0)
      var pw = j.weight +! (((cb * positions + pos) * cin) * winoBlock + sub * CO)
      for ci in 0 ..< cin:
        var xs {.noinit.}: array[NV, V]
        unroll jj, NV:
          xs[jj] = load(x +! (jj * W))
        unroll ii, CO:
          let wv = bcast((pw +! ii)[])
          unroll jj, NV:
            acc[ii][jj] = fma(wv, xs[jj], acc[ii][jj])
        x = x +! tp
        pw = pw +! winoBlock
      let d = m +! ((pos * winoBlock + sub * CO) * maxChunk)
      unroll ii, CO:
        unroll jj, NV:
          store(d +! (ii * maxChunk + jj * W), acc[ii][jj])

proc productPortable(j: ptr WinoJob, v: ptr float32, cb, t0: int, m: ptr float32) {.
    nimcall, gcsafe, raises: [].} =
  productBody(F4, 4, 2, 4, f4zero, f4load, f4set1, f4fma, f4store)

when x86SimdEnabled:
  proc productAvx2(j: ptr WinoJob, v: ptr float32, cb, t0: int, m: ptr float32) {.
      nimcall, gcsafe, raises: [], avx2fn.} =
    productBody(M256, 4, 2, 8, mm256_setzero_ps, mm256_loadu_ps, mm256_set1_ps,
                mm256_fmadd_ps, mm256_storeu_ps)

  proc productAvx512(j: ptr WinoJob, v: ptr float32, cb, t0: int, m: ptr float32) {.
      nimcall, gcsafe, raises: [], avx512fn.} =
    productBody(M512, 8, 2, 16, mm512_setzero_ps, mm512_loadu_ps, mm512_set1_ps,
                mm512_fmadd_ps, mm512_storeu_ps)

# --- driver ---------------------------------------------------------------------------------

proc mElements(): int = positions * winoBlock * maxChunk

proc paddedElements(j: ptr WinoJob): int = j.hp * 2 * j.half

proc vElements(j: ptr WinoJob): int = positions * j.pstride

proc runItems(j: ptr WinoJob, image: int, v, m: ptr float32, lo, hi: int) =
  for item in lo ..< hi:
    let (cb, ck) = (item div j.chunks, item mod j.chunks)
    j.product(j, v, cb, ck * j.chunk, m)
    j.output(j, image, cb, ck, m)

proc winoImages(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let j = cast[ptr WinoJob](ctx)
  let pad = paddedElements(j)
  let buf = cast[ptr float32](acquireBuffer((pad + vElements(j) + mElements()) * sizeof(float32)))
  if buf == nil:
    j.failed.store(true, moRelaxed)
    return
  let v = buf +! pad
  let m = v +! vElements(j)
  for i in lo ..< hi:
    j.input(j, i, 0, j.c.cin, buf, v)
    runItems(j, i, v, m, 0, j.items)
  releaseBuffer(buf)

proc winoInputs(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let j = cast[ptr WinoJob](ctx)
  let buf = cast[ptr float32](acquireBuffer(paddedElements(j) * sizeof(float32)))
  if buf == nil:
    j.failed.store(true, moRelaxed)
    return
  j.input(j, j.image, lo, hi, buf, j.v)
  releaseBuffer(buf)

proc winoItems(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let j = cast[ptr WinoJob](ctx)
  let m = cast[ptr float32](acquireBuffer(mElements() * sizeof(float32)))
  if m == nil:
    j.failed.store(true, moRelaxed)
    return
  runItems(j, j.image, j.v, m, lo, hi)
  releaseBuffer(m)

proc winogradConv*(c: ConvShape, src, weight, bias, dst: ptr float32, relu: bool,
                   pool: ConvPool) =
  ## `c.winogradApplies` must hold; `weight` holds `winogradWeightElements(c)` floats.
  ## cpMax2x2: dst is the 2x2/2 max pool of the output; cpMean: the mean of each output plane.
  var j = WinoJob(c: c, src: src, weight: weight, bias: bias, dst: dst, relu: relu, pool: pool)
  (j.input, j.product, j.output, j.width) =
    (InputFn(inputPortable), ProductFn(productPortable), OutputFn(outputPortable), 4)
  when x86SimdEnabled:
    case activeIsa()
    of isaAvx512:
      (j.input, j.product, j.output, j.width) =
        (InputFn(inputAvx512), ProductFn(productAvx512), OutputFn(outputAvx512), 16)
    of isaAvx2:
      (j.input, j.product, j.output, j.width) =
        (InputFn(inputAvx2), ProductFn(productAvx2), OutputFn(outputAvx2), 8)
    of isaPortable: discard
  j.chunk = 2 * j.width  # the register tile's NV = 2 vectors
  (j.th, j.tw) = (c.g.oh div 2, c.g.ow div 2)
  j.tiles = j.th * j.tw
  j.chunks = (j.tiles + j.chunk - 1) div j.chunk
  j.tp = j.chunks * j.chunk
  # a cache line more than the planes between positions: the transform stores (and the product
  # loads) 16 positions at once, which at a multiple of 4 KiB would share one L1 set
  j.pstride = c.cin * j.tp + 16
  j.coBlocks = (c.cout + winoBlock - 1) div winoBlock
  j.items = j.coBlocks * j.chunks
  let (hp, wp) = c.paddedDims
  j.hp = hp
  j.half = (wp + 1) div 2
  let sums = if pool == cpMean: c.n * c.cout * j.chunks else: 0
  var partial: pointer = nil
  if sums > 0:
    partial = acquireBuffer(sums * sizeof(float32))
    if partial == nil: fail(stNoMem, "Conv: out of memory for the Winograd kernel's sums")
    j.partial = cast[ptr float32](partial)
  let threads = numThreads()
  let work = positions * c.cin * c.cout * j.tiles
  if c.n < threads and threads > 1 and work >= splitMinWork:
    j.v = cast[ptr float32](acquireBuffer(vElements(j.addr) * sizeof(float32)))
    if j.v != nil:
      let inGrain = max(1, (c.cin + threads - 1) div threads)
      let grain = max(1, (j.items + 2 * threads - 1) div (2 * threads))
      for i in 0 ..< c.n:
        j.image = i
        parallelFor(0, c.cin, inGrain, winoInputs, j.addr)
        if j.failed.load(moRelaxed): break
        parallelFor(0, j.items, grain, winoItems, j.addr)
      releaseBuffer(j.v)
    else:
      j.failed.store(true, moRelaxed)
  elif c.n < 2 or work * c.n < 1 shl 17:
    winoImages(0, c.n, j.addr)
  else:
    parallelFor(0, c.n, 1, winoImages, j.addr)
  if pool == cpMean and not j.failed.load(moRelaxed):
    let inv = 1'f32 / float32(c.g.oh * c.g.ow)
    for p in 0 ..< c.n * c.cout:
      var sum = 0'f32
      for ck in 0 ..< j.chunks: sum += (j.partial +! (p * j.chunks + ck))[]
      (dst +! p)[] = sum * inv
  releaseBuffer(partial)
  if j.failed.load(moRelaxed):
    fail(stNoMem, "Conv: out of memory for the Winograd kernel's buffers")
