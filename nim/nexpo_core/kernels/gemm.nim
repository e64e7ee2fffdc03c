## GEMM front: C = A·B (+ bias, activation) for float32/float64 with any strides, BLIS/Goto style.
##
## Loop nest per worker (rows i0 ..< i1 of C; `spec` gives mr/nr/kc/mc/nc per ISA):
##
##   for jc in n step nc:
##     for pc in k step kc:
##       pack B[pc.., jc..]               B block kc x nc       -> L2 (~1 MiB)
##       for ic in i0..i1 step mc:
##         pack A[ic.., pc..]             A block mc x kc       -> L2/L3
##         for ir in mc step mr:          A micro-panel mr x kc -> L1 (broadcast from)
##           for jr in nc step nr:        B micro-panels stream from L2 (vector loads)
##             micro-kernel: mr x nr tile of C in registers; on the last pc the bias and the
##             activation are applied to the tile while it is in L1 (bias and ReLU in
##             registers, for the direct path's full tiles on the SIMD paths)
##
## Properties:
## - one micro-kernel per ISA, picked per call from `cpu.activeIsa()` (NEXPO_ISA can force one)
## - A and B are read through signed element strides: transposed, reversed, sliced and Fortran
##   views are packed straight from their memory, never copied first
## - small problems (n <= 64, or little work) run on the calling thread; when m <= 16
##   or the product is small they take the direct path: the micro-kernel reads A and B where
##   they are (only ragged edge panels, and B when its rows are not contiguous, are packed)
## - a single row times a B of 1 MiB or more (batch-1 layers of big models) is `gemv.nim`'s:
##   B's rows streamed front to back instead of read a tile's width at a time
## - larger problems split C's rows into one part per worker thread (`scheduler.parallelFor`);
##   direct-path products (an MLP layer at batch 64) split C's columns instead; parts share
##   nothing but read-only A and B, so workers never wait on each other
## - with B packed ahead (inference weights) A is never packed either: tall products (an
##   encoder's layers at batch 64) run the direct path in parts of a few tiles' rows, whose A
##   stays in L1 while B's panels stream from L2 (when B's k block fits there), and full tiles
##   take bias/ReLU in registers
## - C is never read before it is first written (it may hold NaN garbage): the first k block
##   overwrites, later ones accumulate
## - packing buffers come from a small pool (common.nim): no page faults in steady state

import std/atomics
import ../config, ../contracts, ../cpu, ../errors
import ../runtime/scheduler
import ./common, ./packing, ./activations, ./gemm_portable, ./gemv
when x86SimdEnabled:
  import ./gemm_avx2, ./gemm_avx512

export Activation, common.releaseAllBuffers

type
  Operand*[T] = object
    ## A strided matrix view: element (i, j) is at base + i*rs + j*cs (element strides, signed).
    base*: ptr T
    rs*, cs*: int

  GemmJob[T] = object
    m, n, k: int
    a, b: Operand[T]
    c: ptr T
    ldc: int
    bias: ptr T            ## nil, or n contiguous elements
    packedB: ptr T         ## nil, or all of B packed once for spec.nr (`packWeights`)
    fusedEpilogue: bool    ## full direct tiles apply bias/ReLU in registers (spec has the kernel)
    geluAfter: bool        ## direct path, actGeluVec: tiles take the bias only, and each part's
                           ## block of C (in L2) the GELU in one pass: long vector loops, not a
                           ## call per tile
    act: Activation
    specp: ptr KernelSpec[T]  ## the caller's (a pointer: copying ~300 bytes per call costs)
    direct: bool           ## unpacked path: the micro-kernel reads A (and B) in place
    rowsPerPart: int       ## multiple of spec.mr
    colsPerPart: int       ## multiple of spec.nr (of its wide tile on the small path; 0 there:
                           ## row parts)
    outOfMemory: Atomic[bool]

template spec[T](job: GemmJob[T]): KernelSpec[T] = job.specp[]

const
  skinnyRows = 16          ## m at or below this: single thread, direct path
  narrowCols = 64          ## n at or below this: single thread
  directMaxWork = 128 * 128 * 128  ## m*n*k at or below this: direct path (packing would dominate)
  parallelMinWork = 160 * 160 * 160  ## m*n*k below this: a fork/join costs more than it saves
  directParallelMinWork = 64 * 64 * 128  ## the same for the direct path (no packing to repeat:
                                         ## two halves of an MLP layer at batch 64 pay)
  packedDirectMaxWork = 256 * 512 * 128  ## with B packed ahead, the direct path (A read in
                                         ## place, nothing packed per call): column parts up to
                                         ## this, parts of rows beyond (B permitting)
  directKc = 512           ## k block of the direct path
  packedPartBytes = 24 * 1024  ## a tall product with B packed ahead: the A rows of one part
                               ## (rows x k block), read in place, stay in L1 across B's panels
  packedPartMaxB = 512 * 1024  ## ... and every part reads all of B's k block: in L2 up to this
                               ## (larger: the blocked path, whose B block is sized for L2)
  skinnyKc = 64            ## k block when m <= skinnyRows: B is then streamed a few rows at a
                           ## time, row after row, which the hardware prefetcher follows
  maxTile = 14 * 32        ## largest mr*nr of any micro-kernel
  smallKc = 256            ## k block of the small path
  maxSmallWidth = 16       ## largest `sw` of any spec

proc ceilDiv(a, b: int): int {.inline.} = (a + b - 1) div b
proc roundUp(a, b: int): int {.inline.} = ceilDiv(a, b) * b

proc at[T](o: Operand[T], i, j: int): ptr T {.inline.} = o.base +! (i * o.rs + j * o.cs)

proc specFor[T](isa: Isa): KernelSpec[T] =
  when x86SimdEnabled:
    case isa
    of isaAvx512: return (when T is float32: avx512F32 else: avx512F64)
    of isaAvx2: return (when T is float32: avx2F32 else: avx2F64)
    of isaPortable: discard
  when T is float32: portableF32 else: portableF64

proc bPanelWidth*(isa: Isa): int =
  ## Columns of a float32 B panel on `isa`'s micro-kernel: the layout a packed constant B must
  ## have (the planner packs weights into it at load).
  specFor[float32](isa).nr

proc kcFor[T](job: GemmJob[T]): int =
  if not job.direct: min(job.spec.kc, job.k)
  elif job.m <= skinnyRows: min(job.k, skinnyKc)
  else: min(job.k, directKc)

proc workElements[T](job: GemmJob[T], rows: int): int =
  ## Elements of packing buffer one part needs: an A block, then a B block (or one B panel).
  template s: untyped = job.spec
  let kc = max(kcFor(job), 1)
  let aElems = if job.direct: roundUp(s.mr * kc, 16)
               else: roundUp(min(s.mc, roundUp(rows, s.mr)) * kc, 16)
  let bElems = if job.direct: kc * s.nr else: min(s.nc, roundUp(job.n, s.nr)) * kc
  aElems + bElems

proc storeTile[T](tile: ptr T, nr: int, c: ptr T, ldc, rows, cols: int, accumulate: bool) =
  for i in 0 ..< rows:
    let src = tile +! (i * nr)
    let dst = c +! (i * ldc)
    if accumulate:
      for j in 0 ..< cols: (dst +! j)[] = (dst +! j)[] + (src +! j)[]
    else:
      for j in 0 ..< cols: (dst +! j)[] = (src +! j)[]

proc runTile[T](s: KernelSpec[T], kc: int, ap, bp: ptr T, rsb: int, c: ptr T, ldc, rows, cols: int,
                accumulate: bool, tile: ptr T) {.inline.} =
  if rows == s.mr and cols == s.nr:
    s.uk(kc, ap, bp, rsb, c, ldc, accumulate)
  else:  # edge tile: full-size kernel into a scratch tile, then copy the valid part
    s.uk(kc, ap, bp, rsb, tile, s.nr, false)
    storeTile(tile, s.nr, c, ldc, rows, cols, accumulate)

proc finishTile[T](job: GemmJob[T], c: ptr T, rows, col, cols: int) {.inline.} =
  let act = if job.geluAfter: actNone else: job.act
  if job.bias != nil or act notin {actNone, actSoftmax}:
    let bias = if job.bias == nil: nil else: job.bias +! col
    epilogueTile(c, job.ldc, rows, cols, bias, act)

proc gemmRowsBlocked[T](job: GemmJob[T], i0, i1, j0, j1: int, buf: ptr T) =
  template s: untyped = job.spec
  let kcMax = kcFor(job)
  let ap = buf
  let bp = buf +! roundUp(min(s.mc, roundUp(i1 - i0, s.mr)) * kcMax, 16)
  var tile {.noinit.}: array[maxTile, T]
  var jc = j0
  while jc < j1:
    let nc = min(s.nc, j1 - jc)
    var pc = 0
    while pc < job.k:
      let kc = min(kcMax, job.k - pc)
      let accumulate = pc > 0
      let last = pc + kc >= job.k
      var panels = bp       # panel q of this block at panels + q * panelStep
      var panelStep = kc * s.nr
      if job.packedB == nil:
        packB(kc, nc, job.b.at(pc, jc), job.b.rs, job.b.cs, bp, s.nr)
      else:
        panels = job.packedB +! (jc * job.k + pc * s.nr)
        panelStep = job.k * s.nr
      var ic = i0
      while ic < i1:
        let mc = min(s.mc, i1 - ic)
        packA(mc, kc, job.a.at(ic, pc), job.a.rs, job.a.cs, ap, s.mr)
        var ir = 0
        while ir < mc:
          let rows = min(s.mr, mc - ir)
          var jr = 0
          while jr < nc:
            let cols = min(s.nr, nc - jr)
            let c = job.c +! ((ic + ir) * job.ldc + jc + jr)
            runTile(s, kc, ap +! (ir * kc), panels +! (jr div s.nr * panelStep), s.nr, c,
                    job.ldc, rows, cols, accumulate, tile[0].addr)
            if last: finishTile(job, c, rows, jc + jr, cols)
            jr += s.nr
          ir += s.mr
        ic += mc
      pc += kc
    jc += nc

proc directTile[T](job: GemmJob[T], uk: DirectKernel[T], row, rows, pc, kc: int, panel: ptr T,
                   rsb, jr, cols: int, accumulate, last: bool, tile: ptr T) {.inline.} =
  ## One rows x cols tile of the direct path: A read in place by `uk` (built for `rows` rows).
  let c = job.c +! (row * job.ldc + jr)
  if cols == job.spec.nr and last and rows == job.spec.mr and job.fusedEpilogue:
    # bias and ReLU applied in registers (no pass over the stored tile)
    job.spec.ukDirectEpilogue(kc, job.a.at(row, pc), job.a.rs, job.a.cs, panel, rsb, c, job.ldc,
                              accumulate, (if job.bias == nil: nil else: job.bias +! jr),
                              job.act == actRelu)
    return
  if cols == job.spec.nr:
    uk(kc, job.a.at(row, pc), job.a.rs, job.a.cs, panel, rsb, c, job.ldc, accumulate)
  else:  # ragged last column panel: compute the full width into a scratch tile
    uk(kc, job.a.at(row, pc), job.a.rs, job.a.cs, panel, rsb, tile, job.spec.nr, false)
    storeTile(tile, job.spec.nr, c, job.ldc, rows, cols, accumulate)
  if last: finishTile(job, c, rows, jr, cols)

proc gemmRowsDirect[T](job: GemmJob[T], i0, i1, j0, j1: int, buf: ptr T) =
  ## Small or skinny products: no packing. The micro-kernel broadcasts A from where it is and
  ## streams B's rows in place; rows left below a multiple of mr run on narrower kernels
  ## (8, 4, 2, 1 rows). Only B panels that are ragged or whose rows are not contiguous go
  ## through a small buffer (and A's last rows when no narrow kernel fits, on the portable path).
  template s: untyped = job.spec
  let kcMax = kcFor(job)
  let ap = buf
  let bp = buf +! roundUp(s.mr * kcMax, 16)
  var tile {.noinit.}: array[maxTile, T]
  var pc = 0
  while pc < job.k:
    let kc = min(kcMax, job.k - pc)
    let accumulate = pc > 0
    let last = pc + kc >= job.k
    var jr = j0
    while jr < j1:
      let cols = min(s.nr, j1 - jr)
      var panel = job.b.at(pc, jr)
      var rsb = job.b.rs
      if job.packedB != nil:
        panel = job.packedB +! (jr * job.k + pc * s.nr)
        rsb = s.nr
      elif cols < s.nr or job.b.cs != 1:
        packB(kc, cols, panel, job.b.rs, job.b.cs, bp, s.nr)
        panel = bp
        rsb = s.nr
      var ir = i0
      # full tiles, but a remainder that makes whole 8-row tiles with the last full one takes
      # those instead (16 rows: 8 + 8, not 14 + a 2-row tile with too few FMA chains)
      var fullEnd = i0 + (i1 - i0) div s.mr * s.mr
      if fullEnd > i0 and fullEnd < i1 and (s.mr + i1 - fullEnd) mod 8 == 0 and
          s.ukRows[0] != nil:
        fullEnd -= s.mr
      while fullEnd - ir >= s.mr:
        directTile(job, s.ukDirect, ir, s.mr, pc, kc, panel, rsb, jr, cols, accumulate, last,
                   tile[0].addr)
        ir += s.mr
      for t, rows in rowTileSizes:
        while i1 - ir >= rows and s.ukRows[t] != nil:
          directTile(job, s.ukRows[t], ir, rows, pc, kc, panel, rsb, jr, cols, accumulate, last,
                     tile[0].addr)
          ir += rows
      if ir < i1:  # no narrow kernel left (portable, 3 rows): a zero-padded full tile
        let rows = i1 - ir
        packA(rows, kc, job.a.at(ir, pc), job.a.rs, job.a.cs, ap, s.mr)
        let c = job.c +! (ir * job.ldc + jr)
        runTile(s, kc, ap, panel, rsb, c, job.ldc, rows, cols, accumulate, tile[0].addr)
        if last: finishTile(job, c, rows, jr, cols)
      jr += s.nr
    pc += kc

proc smallTile[T](job: GemmJob[T], uk: DirectKernel[T], row, rows, pc, kc: int, b: ptr T, rsb,
                  col, cols, width: int, accumulate, last: bool, tile: ptr T) {.inline.} =
  let c = job.c +! (row * job.ldc + col)
  if cols == width:
    uk(kc, job.a.at(row, pc), job.a.rs, job.a.cs, b, rsb, c, job.ldc, accumulate)
  else:  # ragged last columns: the full width into a scratch tile, then the valid part
    uk(kc, job.a.at(row, pc), job.a.rs, job.a.cs, b, rsb, tile, width, false)
    storeTile(tile, width, c, job.ldc, rows, cols, accumulate)
  if last: finishTile(job, c, rows, col, cols)

proc gemmSmall[T](job: GemmJob[T], r0, r1, j0, j1: int) =
  ## Rows r0 ..< r1 and columns j0 ..< j1 of C, for products with few rows (batch-1 inference,
  ## GEMV-like) or few columns (a classifier's last layer): nothing is packed. A tile holds up to
  ## smallRows rows, as wide as the registers allow (fewer rows, more columns: enough
  ## independent FMA chains either way); B's rows are read in place and A is broadcast from
  ## where it is. Leftover columns take one-vector tiles, the last ragged ones a zero-padded
  ## copy of their B panel (made once per k block, for every group of rows).
  template s: untyped = job.spec
  let w = s.sw
  var tile {.noinit.}: array[smallRows * maxSmallWidth, T]
  var panel {.noinit.}: array[smallKc * maxSmallWidth, T]
  let tail = j0 + (j1 - j0) div w * w  # first column of the ragged panel (== j1: none)
  var pc = 0
  while pc < job.k:
    let kc = min(smallKc, job.k - pc)
    let accumulate = pc > 0
    let last = pc + kc >= job.k
    if tail < j1: packB(kc, j1 - tail, job.b.at(pc, tail), job.b.rs, job.b.cs, panel[0].addr, w)
    var row = r0
    while row < r1:
      let rows = min(smallRows, r1 - row)
      let wide = s.snv[rows - 1] * w
      var jr = j0
      while j1 - jr >= wide:
        smallTile(job, s.smallWide[rows - 1], row, rows, pc, kc, job.b.at(pc, jr), job.b.rs, jr,
                  wide, wide, accumulate, last, tile[0].addr)
        jr += wide
      while j1 - jr >= w:
        smallTile(job, s.smallNarrow[rows - 1], row, rows, pc, kc, job.b.at(pc, jr), job.b.rs,
                  jr, w, w, accumulate, last, tile[0].addr)
        jr += w
      if jr < j1:
        smallTile(job, s.smallNarrow[rows - 1], row, rows, pc, kc, panel[0].addr, w, jr, j1 - jr,
                  w, accumulate, last, tile[0].addr)
      row += rows
    pc += kc

proc smallParts[T](lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  ## Parts of the small path: column ranges (m <= smallRows), or ranges of rows.
  let job = cast[ptr GemmJob[T]](ctx)
  for part in lo ..< hi:
    if job.colsPerPart > 0:
      let j0 = part * job.colsPerPart
      gemmSmall(job[], 0, job.m, j0, min(job.n, j0 + job.colsPerPart))
    else:
      let r0 = part * job.rowsPerPart
      gemmSmall(job[], r0, min(job.m, r0 + job.rowsPerPart), 0, job.n)

proc gemmRows[T](job: GemmJob[T], i0, i1, j0, j1: int, buf: ptr T) =
  ## Rows i0 ..< i1, columns j0 ..< j1 of the result: product, bias, activation (softmax only
  ## when the part holds whole rows; else the caller runs it after the join).
  if job.k == 0:  # empty sum: zeros, then the epilogue
    for i in i0 ..< i1: zeroMem(job.c +! (i * job.ldc + j0), (j1 - j0) * sizeof(T))
    finishTile(job, job.c +! (i0 * job.ldc + j0), i1 - i0, j0, j1 - j0)
  elif job.direct:
    gemmRowsDirect(job, i0, i1, j0, j1, buf)
  else:
    gemmRowsBlocked(job, i0, i1, j0, j1, buf)
  if job.geluAfter:
    epilogueTile(job.c +! (i0 * job.ldc + j0), job.ldc, i1 - i0, j1 - j0, nil, actGeluVec)
  if job.act == actSoftmax and j0 == 0 and j1 == job.n:
    softmaxRows(job.c +! (i0 * job.ldc), job.ldc, i1 - i0, job.n)

proc gemmParts[T](lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  ## Part p: rows (p div colParts) * rowsPerPart .., columns (p mod colParts) * colsPerPart ..
  let job = cast[ptr GemmJob[T]](ctx)
  let colParts = ceilDiv(job.n, job.colsPerPart)
  for part in lo ..< hi:
    let i0 = part div colParts * job.rowsPerPart
    let i1 = min(job.m, i0 + job.rowsPerPart)
    let j0 = part mod colParts * job.colsPerPart
    let j1 = min(job.n, j0 + job.colsPerPart)
    if i0 >= i1 or j0 >= j1: continue
    let buf = acquireBuffer(workElements(job[], i1 - i0) * sizeof(T))
    if buf == nil:
      job.outOfMemory.store(true, moRelaxed)
      continue
    gemmRows(job[], i0, i1, j0, j1, cast[ptr T](buf))
    releaseBuffer(buf)

proc gemmWithSpec*[T: float32 | float64](spec: KernelSpec[T], m, n, k: int, a, b: Operand[T],
                                          c: ptr T, ldc: int, bias: ptr T = nil, act = actNone,
                                          packedB: ptr T = nil) =
  ## `gemmStrided` with an explicit micro-kernel and blocking (tests and tuning use it).
  ## `packedB`: nil, or B as `packWeights(spec.nr, ...)` laid it out (b is still read on the
  ## small path).
  preCondition(m >= 0 and n >= 0 and k >= 0 and ldc >= n)
  if m == 0 or n == 0: return
  var job = GemmJob[T](m: m, n: n, k: k, a: a, b: b, c: c, ldc: ldc, bias: bias, act: act,
                       specp: spec.unsafeAddr, packedB: packedB,
                       fusedEpilogue: spec.ukDirectEpilogue != nil and
                                      act in {actNone, actRelu, actGeluVec} and
                                      (bias != nil or act != actNone))
  if (m <= smallRows or n <= spec.sw) and k > 0 and b.cs == 1 and spec.sw <= maxSmallWidth and
      spec.smallWide[0] != nil:
    # Small path. A large product splits between threads: its columns when m <= smallRows,
    # else its groups of smallRows rows.
    let serial = m * n * k < parallelMinWork
    var used = 1
    if m <= smallRows:
      let wide = spec.snv[m - 1] * spec.sw
      let tiles = ceilDiv(n, wide)
      job.colsPerPart = ceilDiv(tiles, if serial: 1 else: max(1, min(numThreads(), tiles))) * wide
      used = ceilDiv(n, job.colsPerPart)
    else:
      let groups = ceilDiv(m, smallRows)
      job.rowsPerPart = ceilDiv(groups, if serial: 1 else: max(1, min(numThreads(), groups))) *
                        smallRows
      used = ceilDiv(m, job.rowsPerPart)
    if used == 1: smallParts[T](0, 1, job.addr)
    else: parallelFor(0, used, 1, smallParts[T], job.addr)
    if act == actSoftmax: softmaxRows(c, ldc, m, n)
    return
  let work = m * n * k
  # B packed ahead and a tall product (an encoder's projections at batch 64): A is read in place
  # too, a few tiles' rows per part, so nothing is packed per call and full tiles take the
  # epilogue in registers; parts of rows, as many as there are (the scheduler balances them)
  let tallPacked = packedB != nil and work > packedDirectMaxWork and
                   min(k, directKc) * roundUp(n, spec.nr) * sizeof(T) <= packedPartMaxB
  job.direct = m <= skinnyRows or work <= directMaxWork or tallPacked or
               (packedB != nil and work <= packedDirectMaxWork)
  job.geluAfter = job.direct and act == actGeluVec
  let panels = ceilDiv(m, spec.mr)
  let colPanels = ceilDiv(n, spec.nr)
  var rowParts, colParts = 1
  if tallPacked:
    let rowsFit = packedPartBytes div (min(job.k, directKc) * sizeof(T))
    rowParts = ceilDiv(panels, max(1, rowsFit div spec.mr))
  elif job.direct:
    # Unpacked: the columns split (every part runs all rows on the full-height kernels, and
    # reads only its own columns of B, the larger operand here)
    if work >= directParallelMinWork and colPanels > 1:
      colParts = max(1, min(numThreads(), colPanels))
  elif not (n <= narrowCols or work < parallelMinWork):
    rowParts = max(1, min(numThreads(), panels))
  job.rowsPerPart = ceilDiv(panels, rowParts) * spec.mr
  job.colsPerPart = ceilDiv(colPanels, colParts) * spec.nr
  let used = ceilDiv(m, job.rowsPerPart) * ceilDiv(n, job.colsPerPart)
  if used == 1:
    gemmParts[T](0, 1, job.addr)
  else:
    parallelFor(0, used, 1, gemmParts[T], job.addr)
  if job.outOfMemory.load(moRelaxed):
    fail(stNoMem, "matmul: out of memory for the packing buffers")
  if act == actSoftmax and job.colsPerPart < n: softmaxRows(c, ldc, m, n)

proc kernelSpecs*[T: float32 | float64](): seq[(Isa, KernelSpec[T])] =
  ## The micro-kernel of every ISA path this CPU can run.
  for isa in availableIsas(): result.add (isa, specFor[T](isa))

proc gemmStrided*[T: float32 | float64](m, n, k: int, a, b: Operand[T], c: ptr T, ldc: int,
                                        bias: ptr T = nil, act = actNone, packedB: ptr T = nil,
                                        packedFor = isaPortable, packedNr = 0) =
  ## C[m x n] (row stride ldc) = act(A[m x k] · B[k x n] + bias), on the active ISA path.
  ## `packedB` (optional): B packed once by `packWeights` for the `packedFor` path, whose B
  ## panels are `packedNr` wide; used only while that path is the active one.
  ## Raises NexpoError(stNoMem) when the packing buffers cannot be allocated.
  if m == 1 and k > 0 and b.cs == 1 and gemvPays(n, k, sizeof(T)):  # batch-1 layer of a big model
    gemv(n, k, a.base, a.cs, b.base, b.rs, c)
    if bias != nil or act notin {actNone, actSoftmax}: epilogueTile(c, ldc, 1, n, bias, act)
    if act == actSoftmax: softmaxRows(c, ldc, 1, n)
    return
  let isa = activeIsa()
  template run(spec: KernelSpec[T]) =  # the spec constant passed in place, not copied
    let packed = if packedB != nil and packedFor == isa and packedNr == spec.nr: packedB else: nil
    gemmWithSpec(spec, m, n, k, a, b, c, ldc, bias, act, packed)
  when x86SimdEnabled:
    case isa
    of isaAvx512:
      when T is float32: run(avx512F32) else: run(avx512F64)
      return
    of isaAvx2:
      when T is float32: run(avx2F32) else: run(avx2F64)
      return
    of isaPortable: discard
  when T is float32: run(portableF32) else: run(portableF64)

proc packedWeightsLen*[T: float32 | float64](isa: Isa, k, n: int): (int, int) =
  ## (panel width, elements) of `packWeights` output for the `isa` path's micro-kernel.
  let nr = specFor[T](isa).nr
  (nr, k * roundUp(n, nr))

proc packWeights*[T: float32 | float64](nr, k, n: int, b: Operand[T], dst: ptr T) =
  ## All of B (k x n, any strides) as the micro-kernel's B panels, once: panel q (columns
  ## q*nr ..< q*nr+nr, zero-padded past n) is k rows of nr elements at dst + q*nr*k, so any
  ## k block pc of it starts at + pc*nr. A constant weight matrix packed at plan time spares
  ## every call (and every worker of a call) packing it again.
  if k > 0 and n > 0: packB(k, n, b.base, b.rs, b.cs, dst, nr)
