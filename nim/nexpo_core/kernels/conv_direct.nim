## Direct 2-D convolution (NCHW, float32) for unit column stride: no im2col matrix.
##
## A register tile holds CO output channels x NV vectors of W output columns (a vector
## never crosses an output row; a row's last vector may be partial). Per kernel tap (input
## channel, ky, kx) it loads one vector of the zero-padded input per tile vector, broadcasts CO
## weights, and issues one FMA per pair; bias and ReLU are applied on store. The planner packs
## the weights (nexpo/inference/_ops_nn.py): per group, blocks of `packedBlock` output channels,
## each taps x packedBlock with zero channels past the group's end, so every path reads them in
## order. The padded input is built once per image (every channel), with `padSlack` zeros after
## it so a partial vector's unused lanes read inside the buffer.
##
## Work items are (group, channel block, sub-block of CO channels, spatial tile). Batch > 1: the
## images are split across the scheduler's threads and each image runs all its items on one
## thread (one join per layer). Fewer images than threads: each image's items are split.
## Chosen per call from `activeIsa()`: AVX-512 8 x 2 x 16, AVX2 4 x 2 x 8, portable 4 x 2 x 4.
## With `pool` = cpMax2x2 (the planner fused a 2x2/2 MaxPool), a tile's two vectors are rows 2r
## and 2r+1 of the same columns and it stores row r of the pooled plane; with cpMean (a fused
## GlobalAveragePool) a tile stores one sum a channel, which `directConv` adds up per channel
## after the join. Either way the conv output is never written.

import std/atomics
import ../config, ../cpu, ../errors, ../targets
import ../runtime/scheduler
import ./common, ./conv_shape, ./vec4
when x86SimdEnabled:
  import ./simd

# Operand sizes are checked by the executor (inference/exec.nim) before a kernel runs.
{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

const
  packedBlock* = 8  ## output channels a block of the packed weights
  padSlack = 16     ## zeros after the padded input: the widest vector's over-read
  splitMinWork = 1 shl 17  ## multiply-adds of one image below which it stays on one thread

type
  Slot = object
    inOff, outOff, lanes: int  ## one tile vector: input and output offsets, valid lanes (0: none)

  TileArgs = object
    taps: int
    tapOff: ptr UncheckedArray[int]   ## input offset of each tap (channel, ky, kx)
    weights: ptr float32              ## the tile's first channel in its packed block
    input: ptr float32                ## the group's padded planes
    output: ptr float32               ## the tile's first output channel plane
    plane, channels: int              ## output plane size, valid channels of the tile
    bias: ptr float32                 ## at the tile's first channel, or nil
    relu: bool
    pool: ConvPool                    ## cpMean: output is the tile's sum slot (channel stride plane)
    slots: ptr UncheckedArray[Slot]   ## the tile's NV slots

  TileFn = proc (t: ptr TileArgs) {.nimcall, gcsafe, raises: [].}

  DirectJob = object
    c: ConvShape
    hp, wp, taps, plane, co, nv, coBlocks, subBlocks, spatialTiles, items: int
    tile: TileFn
    tapOff: ptr UncheckedArray[int]
    slots: ptr UncheckedArray[Slot]
    src, weight, bias, dst: ptr float32
    partial: ptr float32              ## cpMean: per (image, channel) the spatial tiles' sums
    relu: bool
    pool: ConvPool
    image: int
    padded: ptr float32               ## split image: its padded input, shared
    failed: Atomic[bool]

template max2x2(a, b, c, d: float32): float32 =
  ## MaxPool's 2x2 window in pool.nim's tap order (a NaN is skipped; all NaN gives `lowest`).
  var m = -3.4028235e38'f32
  if a > m: m = a
  if b > m: m = b
  if c > m: m = c
  if d > m: m = d
  m

template poolStoreSpilled(d: ptr float32, r0, r1: typed, outputs: int,
                           spill: var array, store: untyped, W: static int) =
  ## The 2x2 max of rows r0, r1 (W lanes each) into `outputs` floats at d, via the stack.
  store(spill[0].addr, r0)
  store(spill[W].addr, r1)
  for l in 0 ..< outputs:
    (d +! l)[] = max2x2(spill[2 * l], spill[2 * l + 1], spill[W + 2 * l], spill[W + 2 * l + 1])

template directTileBody(V: typedesc, CO, NV, W: static int,
                        zero, load, bcast, fma, add, vmax, store, poolStore, hsum: untyped) {.dirty.} =
  var acc {.noinit.}: array[CO, array[NV, V]]
  unroll ii, CO:
    unroll jj, NV:
      acc[ii][jj] = zero()
  var src {.noinit.}: array[NV, ptr float32]
  unroll jj, NV:
    src[jj] = t.input +! t.slots[jj].inOff
  var pw = t.weights
  for k in 0 ..< t.taps:
    let off = t.tapOff[k]
    var x {.noinit.}: array[NV, V]
    unroll jj, NV:
      x[jj] = load(src[jj] +! off)
    unroll ii, CO:
      let wv = bcast((pw +! ii)[])
      unroll jj, NV:
        acc[ii][jj] = fma(wv, x[jj], acc[ii][jj])
    pw = pw +! packedBlock
  let z = zero()
  var spill {.noinit.}: array[2 * W, float32]
  unroll ii, CO:
    if ii < t.channels:
      let b = if t.bias == nil: z else: bcast((t.bias +! ii)[])
      var r {.noinit.}: array[NV, V]
      unroll jj, NV:
        r[jj] = add(acc[ii][jj], b)
        if t.relu: r[jj] = vmax(z, r[jj])  # max(0, NaN) keeps the NaN, as ReLU's `v < 0` test
      if t.pool == cpMax2x2:  # NV = 2: rows 2r and 2r+1 of the same columns, into row r
        let d = t.output +! (ii * t.plane + t.slots[0].outOff)
        poolStore(d, r[0], r[1], t.slots[0].lanes div 2, spill)
      elif t.pool == cpMean:  # the sum of the tile's valid lanes
        var sum = z
        var rest = 0'f32
        unroll jj, NV:
          let lanes = t.slots[jj].lanes
          if lanes == W:
            sum = add(sum, r[jj])
          elif lanes > 0:
            store(spill[0].addr, r[jj])
            for l in 0 ..< lanes: rest += spill[l]
        (t.output +! (ii * t.plane))[] = hsum(sum, spill) + rest
      else:
        unroll jj, NV:
          let lanes = t.slots[jj].lanes
          let d = t.output +! (ii * t.plane + t.slots[jj].outOff)
          if lanes == W:
            store(d, r[jj])
          elif lanes > 0:
            store(spill[0].addr, r[jj])
            for l in 0 ..< lanes: (d +! l)[] = spill[l]


template f4PoolStore(d: ptr float32, r0, r1: F4, outputs: int, spill: var array) =
  poolStoreSpilled(d, r0, r1, outputs, spill, f4store, 4)

template f4Sum(x: F4, spill: var array): float32 = (x.v[0] + x.v[1]) + (x.v[2] + x.v[3])

proc tilePortable(t: ptr TileArgs) {.nimcall, gcsafe, raises: [].} =
  directTileBody(F4, 4, 2, 4, f4zero, f4load, f4set1, f4fma, f4add, f4max, f4store, f4PoolStore,
                 f4Sum)

when x86SimdEnabled:
  template avx2PoolStore(d: ptr float32, r0, r1: M256, outputs: int, spill: var array) =
    poolStoreSpilled(d, r0, r1, outputs, spill, mm256_storeu_ps, 8)

  template avx2Sum(v: M256, spill: var array): float32 =
    mm256_storeu_ps(spill[0].addr, v)
    ((spill[0] + spill[4]) + (spill[1] + spill[5])) + ((spill[2] + spill[6]) + (spill[3] + spill[7]))

  proc tileAvx2(t: ptr TileArgs) {.nimcall, gcsafe, raises: [], avx2fn.} =
    directTileBody(M256, 4, 2, 8, mm256_setzero_ps, mm256_loadu_ps, mm256_set1_ps,
                   mm256_fmadd_ps, mm256_add_ps, mm256_max_ps, mm256_storeu_ps, avx2PoolStore,
                   avx2Sum)

  proc mm512_reduce_add_ps(a: M512): float32 {.importc: "_mm512_reduce_add_ps",
                                               header: "<immintrin.h>".}

  template avx512Sum(v: M512, spill: var array): float32 = mm512_reduce_add_ps(v)

  let evenOdd = [0'i32, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15]

  template avx512PoolStore(d: ptr float32, r0, r1: M512, outputs: int, spill: var array) =
    ## In registers: each row's even lanes to the low half, odd to the high; then MaxPool's tap
    ## order a, b (row 0), c, d (row 1) as max_ps(v, m) = (v > m ? v : m), which skips a NaN.
    if outputs == 8:
      let idx = mm512_loadu_si512(evenOdd[0].unsafeAddr)
      let p0 = mm512_permutexvar_ps(idx, r0)
      let p1 = mm512_permutexvar_ps(idx, r1)
      var m = mm256_max_ps(mm512_castps512_ps256(p0), mm256_set1_ps(-3.4028235e38'f32))
      m = mm256_max_ps(mm512_extractf32x8_ps(p0, 1), m)
      m = mm256_max_ps(mm512_castps512_ps256(p1), m)
      m = mm256_max_ps(mm512_extractf32x8_ps(p1, 1), m)
      mm256_storeu_ps(d, m)
    else:
      poolStoreSpilled(d, r0, r1, outputs, spill, mm512_storeu_ps, 16)

  proc tileAvx512(t: ptr TileArgs) {.nimcall, gcsafe, raises: [], avx512fn.} =
    directTileBody(M512, 8, 2, 16, mm512_setzero_ps, mm512_loadu_ps, mm512_set1_ps,
                   mm512_fmadd_ps, mm512_add_ps, mm512_max_ps, mm512_storeu_ps, avx512PoolStore,
                   avx512Sum)

proc paddedElements(j: ptr DirectJob): int = j.c.cin * j.hp * j.wp + padSlack

template padImageBody(j: ptr DirectJob, image: int, dst: ptr float32) =
  ## Every input channel of `image` into dst (hp x wp planes) with zeros around them: the whole
  ## buffer zeroed in one pass, then each row copied in 64-byte pieces (inline vector moves,
  ## not a memcpy call for a few dozen floats; per-row zero runs cost more than the one pass).
  let (h, w, pt, pl, hp, wp) = (j.c.g.h, j.c.g.w, j.c.g.pt, j.c.g.pl, j.hp, j.wp)
  let s = cast[ptr UncheckedArray[float32]](j.src +! (image * j.c.cin * h * w))
  let d = cast[ptr UncheckedArray[float32]](dst)
  zeroMem(dst, paddedElements(j) * sizeof(float32))
  for ch in 0 ..< j.c.cin:
    for y in 0 ..< h:
      let row = (ch * hp + y + pt) * wp + pl
      let src = (ch * h + y) * w
      var x = 0
      while x + 16 <= w:
        copyMem(d[row + x].addr, s[src + x].addr, 64)
        x += 16
      while x < w:
        d[row + x] = s[src + x]
        inc x

const noCalls = "optimize(\"no-tree-loop-distribute-patterns\")"

proc padImagePortable(j: ptr DirectJob, image: int, dst: ptr float32) {.
    codegenDecl: "__attribute__((" & noCalls & ")) $# $#$#".} =
  padImageBody(j, image, dst)

when x86SimdEnabled:
  proc padImageAvx2(j: ptr DirectJob, image: int, dst: ptr float32) {.
      codegenDecl: "__attribute__((target(\"" & avx2Targets & "\"), " & noCalls & ")) $# $#$#".} =
    padImageBody(j, image, dst)

  proc padImageAvx512(j: ptr DirectJob, image: int, dst: ptr float32) {.
      codegenDecl: "__attribute__((target(\"" & avx512Targets & "\"), " & noCalls & ")) $# $#$#".} =
    padImageBody(j, image, dst)

proc padImage(j: ptr DirectJob, image: int, dst: ptr float32) =
  when x86SimdEnabled:
    case activeIsa()
    of isaAvx512: padImageAvx512(j, image, dst)
    of isaAvx2: padImageAvx2(j, image, dst)
    of isaPortable: padImagePortable(j, image, dst)
  else:
    padImagePortable(j, image, dst)

proc runItems(j: ptr DirectJob, image: int, padded: ptr float32, lo, hi: int) =
  let cinG = j.c.cin div j.c.groups
  let coutG = j.c.cout div j.c.groups
  var t = TileArgs(taps: j.taps, tapOff: j.tapOff, plane: j.plane, relu: j.relu, pool: j.pool)
  # item = ((grp * coBlocks + cb) * subBlocks + sub) * spatialTiles + st, decomposed once
  var st = lo mod j.spatialTiles - 1
  var blk = lo div j.spatialTiles  # (grp, cb, sub)
  var (sub, cb, grp) = (0, 0, 0)
  for item in lo ..< hi:
    inc st
    if st == j.spatialTiles: (st, blk) = (0, blk + 1)
    if item == lo or st == 0:
      sub = blk mod j.subBlocks
      cb = (blk div j.subBlocks) mod j.coBlocks
      grp = blk div (j.subBlocks * j.coBlocks)
    let ch0 = cb * packedBlock + sub * j.co  # within the group
    if ch0 >= coutG: continue
    let chan = grp * coutG + ch0
    t.channels = min(j.co, coutG - ch0)
    t.weights = j.weight +! ((grp * j.coBlocks + cb) * j.taps * packedBlock + sub * j.co)
    t.input = padded +! (grp * cinG * j.hp * j.wp)
    t.output = if j.pool == cpMean: j.partial +! ((image * j.c.cout + chan) * j.plane + st)
               else: j.dst +! ((image * j.c.cout + chan) * j.plane)
    t.bias = if j.bias == nil: nil else: j.bias +! chan
    t.slots = cast[ptr UncheckedArray[Slot]](j.slots[st * j.nv].addr)
    j.tile(t.addr)

proc directImages(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let j = cast[ptr DirectJob](ctx)
  let buf = cast[ptr float32](acquireBuffer(paddedElements(j) * sizeof(float32)))
  if buf == nil:
    j.failed.store(true, moRelaxed)
    return
  for i in lo ..< hi:
    padImage(j, i, buf)
    runItems(j, i, buf, 0, j.items)
  releaseBuffer(buf)

proc directItems(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let j = cast[ptr DirectJob](ctx)
  runItems(j, j.image, j.padded, lo, hi)

proc packedWeightElements*(c: ConvShape): int =
  ## Elements of the packed weights `directConv` reads.
  let coBlocks = (c.cout div c.groups + packedBlock - 1) div packedBlock
  c.groups * coBlocks * packedBlock * (c.cin div c.groups) * c.g.kh * c.g.kw

proc meanOfTiles(j: var DirectJob) =
  ## cpMean: each (image, channel)'s tile sums into dst, divided by the plane.
  let inv = 1'f32 / float32(j.c.g.oh * j.c.g.ow)
  for p in 0 ..< j.c.n * j.c.cout:
    var sum = 0'f32
    for st in 0 ..< j.spatialTiles: sum += (j.partial +! (p * j.spatialTiles + st))[]
    (j.dst +! p)[] = sum * inv

proc directConv*(c: ConvShape, src, packedWeight, bias, dst: ptr float32, relu: bool,
                 pool: ConvPool) =
  ## `c.directApplies` must hold; `packedWeight` holds `packedWeightElements(c)` floats.
  ## cpMax2x2: dst is the 2x2/2 max pool of the output (oh div 2 x ow div 2 planes; oh, ow >= 2);
  ## cpMean: dst is the mean of each output plane (n x cout values).
  var j = DirectJob(c: c, src: src, weight: packedWeight, bias: bias, dst: dst, relu: relu,
                    pool: pool)
  var width = 4
  (j.tile, j.co, j.nv) = (TileFn(tilePortable), 4, 2)
  when x86SimdEnabled:
    case activeIsa()
    of isaAvx512: (j.tile, j.co, j.nv, width) = (TileFn(tileAvx512), 8, 2, 16)
    of isaAvx2: (j.tile, j.co, j.nv, width) = (TileFn(tileAvx2), 4, 2, 8)
    of isaPortable: discard
  (j.hp, j.wp) = c.paddedDims
  let cinG = c.cin div c.groups
  j.taps = cinG * c.g.kh * c.g.kw
  let max2 = pool == cpMax2x2
  let (ph, pw) = (c.g.oh div 2, c.g.ow div 2)  # max2: the pooled plane
  j.coBlocks = (c.cout div c.groups + packedBlock - 1) div packedBlock
  j.subBlocks = packedBlock div j.co
  let perRow = ((if max2: 2 * pw else: c.g.ow) + width - 1) div width
  j.spatialTiles = if max2: ph * perRow else: (c.g.oh * perRow + j.nv - 1) div j.nv
  j.plane = case pool
            of cpMax2x2: ph * pw
            of cpMean: j.spatialTiles  # the tile sums of a channel
            of cpNone: c.g.oh * c.g.ow
  j.items = c.groups * j.coBlocks * j.subBlocks * j.spatialTiles
  let sums = if pool == cpMean: c.n * c.cout * j.spatialTiles else: 0
  let meta = acquireBuffer((j.taps + 3 * j.spatialTiles * j.nv) * sizeof(int) +
                           sums * sizeof(float32))
  if meta == nil: fail(stNoMem, "Conv: out of memory for the direct kernel's tables")
  j.tapOff = cast[ptr UncheckedArray[int]](meta)
  j.slots = cast[ptr UncheckedArray[Slot]](j.tapOff[j.taps].addr)
  j.partial = cast[ptr float32](j.slots[j.spatialTiles * j.nv].addr)
  var k = 0
  for ci in 0 ..< cinG:
    for ky in 0 ..< c.g.kh:
      for kx in 0 ..< c.g.kw:
        j.tapOff[k] = (ci * j.hp + ky * c.g.dh) * j.wp + kx * c.g.dw
        inc k
  var s = 0  # slots in order, without a division each (this runs on every call)
  if max2:  # tile (r, q): conv rows 2r, 2r+1 at columns x0 (lanes: conv columns, even)
    for r in 0 ..< ph:
      for q in 0 ..< perRow:
        let x0 = q * width
        for half in 0 .. 1:
          j.slots[s] = Slot(inOff: (2 * r + half) * c.g.sh * j.wp + x0, outOff: r * pw + x0 div 2,
                            lanes: min(width, 2 * pw - x0))
          inc s
  else:
    var oy = 0
    while s < j.spatialTiles * j.nv:
      for q in 0 ..< perRow:
        if s == j.spatialTiles * j.nv: break
        let x0 = q * width
        j.slots[s] = if oy < c.g.oh: Slot(inOff: oy * c.g.sh * j.wp + x0, outOff: oy * c.g.ow + x0,
                                           lanes: min(width, c.g.ow - x0))
                     else: Slot()  # past the last row: computes on offset 0, stores nothing
        inc s
      inc oy
  let work = c.g.oh * c.g.ow * c.cout * j.taps
  let threads = numThreads()
  if c.n < threads and threads > 1 and work >= splitMinWork:
    j.padded = cast[ptr float32](acquireBuffer(paddedElements(j.addr) * sizeof(float32)))
    if j.padded == nil:
      releaseBuffer(meta)
      fail(stNoMem, "Conv: out of memory for the padded input")
    # two chunks a thread: an item is a few hundred ns, a task's push, pop or steal tens of ns
    let grain = max(1, (j.items + 2 * threads - 1) div (2 * threads))
    for i in 0 ..< c.n:
      j.image = i
      padImage(j.addr, i, j.padded)
      parallelFor(0, j.items, grain, directItems, j.addr)
    releaseBuffer(j.padded)
  elif c.n < 2 or work * c.n < 1 shl 16:
    directImages(0, c.n, j.addr)
  else:
    parallelFor(0, c.n, 1, directImages, j.addr)
  if pool == cpMean and not j.failed.load(moRelaxed): meanOfTiles(j)
  releaseBuffer(meta)
  if j.failed.load(moRelaxed):
    fail(stNoMem, "Conv: out of memory for the padded input")
