## Shared pieces of the GEMM kernels: pointer arithmetic, compile-time unrolling, the
## micro-kernel signature and blocking parameters, and a pool of reusable work buffers.

import std/[macros, atomics, strutils]

template `+!`*[T](p: ptr T, n: int): ptr T =
  ## `p` advanced by `n` elements (n may be negative: reversed views have negative strides).
  cast[ptr T](cast[int](p) +% n *% sizeof(T))

proc replaceIdent(n: NimNode, name: string, by: NimNode): NimNode =
  if n.kind in {nnkIdent, nnkSym} and n.eqIdent(name): return by.copyNimTree
  result = n.copyNimNode
  for child in n: result.add replaceIdent(child, name, by)

macro unroll*(idx: untyped, count: static int, body: untyped): untyped =
  ## `body` repeated `count` times with `idx` replaced by the literals 0..count-1, so register
  ## arrays are indexed by constants and gcc keeps them in vector registers.
  result = newStmtList()
  for i in 0 ..< count:
    result.add newBlockStmt(replaceIdent(body, $idx, newLit(i)))

const smallRows* = 8  ## m at or below this takes the small path (no packing, tile = all rows)

type
  MicroKernel*[T] = proc (kc: int, a, b: ptr T, rsb: int, c: ptr T, ldc: int,
                          accumulate: bool) {.nimcall, gcsafe, raises: [].}
    ## (see below)
  DirectKernel*[T] = proc (kc: int, a: ptr T, rsa, csa: int, b: ptr T, rsb: int, c: ptr T,
                           ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [].}
    ## The same tile with A read in place: element (i, p) at a + i*rsa + p*csa. Small problems
    ## use it so that nothing is packed.
  EpilogueKernel*[T] = proc (kc: int, a: ptr T, rsa, csa: int, b: ptr T, rsb: int, c: ptr T,
                             ldc: int, accumulate: bool, bias: ptr T, relu: bool)
                            {.nimcall, gcsafe, raises: [].}
    ## A `DirectKernel` for the last k block that also adds `bias` (nil: none; nr elements) and
    ## applies ReLU to the tile in registers, instead of a pass over the stored tile.
    ## C[0..mr, 0..nr] (=|+=) Apanel * Bpanel over kc steps.
    ## `a`: packed MR x kc micro-panel (column p at a + p*MR); `b`: row p of the kc x NR panel at
    ## b + p*rsb with NR contiguous elements (rsb = NR when packed, the source row stride when B
    ## is read in place); C row-major with row stride ldc. accumulate=false overwrites C without
    ## reading it (C may hold garbage or NaN).

  KernelSpec*[T] = object
    ## A micro-kernel with its register tile (mr x nr) and cache blocking (kc for L1, mc for L2,
    ## nc for L3), as in the BLIS/Goto loop nest.
    mr*, nr*, kc*, mc*, nc*: int
    uk*: MicroKernel[T]
    ukDirect*: DirectKernel[T]
    ukDirectEpilogue*: EpilogueKernel[T]    ## nil where not built (then the epilogue pass)
    ukRows*: array[4, DirectKernel[T]]
      ## direct kernels for `rowTileSizes` rows (nil where not built): the rows left over
      ## below a multiple of mr run on these instead of a zero-padded full tile
    sw*: int                                ## small path: elements per column vector
    snv*: array[smallRows, int]             ## vectors per wide tile, by row count - 1
    smallWide*, smallNarrow*: array[smallRows, DirectKernel[T]]
      ## small path (m <= smallRows): an m x snv[m-1]*sw and an m x sw tile, A and B in place

const rowTileSizes* = [8, 4, 2, 1]

macro defineSmallKernels*(prefix, T: static string, nvs: static array[8, int],
                          body, pragmas: static string): untyped =
  ## The small path's kernels of one ISA and dtype: `<prefix>Wide<m>` (m rows, nvs[m-1] vectors)
  ## and `<prefix>Narrow<m>` (m rows, one vector) for m in 1..8, as DirectKernels, and the
  ## tables `<prefix>Wide` / `<prefix>Narrow` of them. `body` is the kernel body with $MR and
  ## $NV for the tile; `pragmas` the target pragma. (Tile shapes differ by row count: fewer rows
  ## take more columns, so there are always enough independent FMA chains to hide latency.)
  var src = ""
  for kind in ["Wide", "Narrow"]:
    var names: seq[string]
    for mr in 1 .. 8:
      let nv = if kind == "Wide": nvs[mr - 1] else: 1
      let name = prefix & kind & $mr
      names.add name
      src.add "proc " & name & "(kc: int, a: ptr " & T & ", rsa, csa: int, b: ptr " & T &
        ", rsb: int, c: ptr " & T & ", ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: []" &
        (if pragmas.len > 0: ", " & pragmas else: "") & ".} =\n  " & body.replace("$MR", $mr).replace("$NV", $nv) & "\n"
    src.add "const " & prefix & kind & "* = [DirectKernel[" & T & "](" & names[0] & "), " &
      names[1 .. ^1].join(", ") & "]\n"
  parseStmt(src)

# --- work buffers ------------------------------------------------------------------------------
#
# Packing needs an A block (mc x kc) and a B block (kc x nc) per worker: megabytes. A fresh
# malloc of that size is an mmap with page faults on every call, so finished calls park their
# buffers here for the next one. Lock-free: each slot is swapped atomically.
#
#   slot[0..7]: nil | buffer  ->  buffer = [capacity header (64 B)][payload, 64-byte aligned]

proc posixMemalign(p: ptr pointer, align, size: csize_t): cint {.importc: "posix_memalign",
    header: "<stdlib.h>".}
proc cFree(p: pointer) {.importc: "free", header: "<stdlib.h>".}

const poolSlots = 8
var pool: array[poolSlots, Atomic[pointer]]

proc capacityOf(buf: pointer): int {.inline.} = cast[ptr int](buf)[]

proc acquireBuffer*(bytes: int): pointer {.gcsafe, raises: [].} =
  ## A 64-byte aligned buffer of at least `bytes` bytes (nil when out of memory); give it back
  ## with `releaseBuffer`.
  for s in 0 ..< poolSlots:
    let buf = pool[s].exchange(nil, moAcquire)
    if buf != nil:
      if capacityOf(buf) >= bytes: return cast[pointer](cast[int](buf) + 64)
      cFree(buf)
  var raw: pointer
  if posixMemalign(raw.addr, 64, csize_t(bytes + 64)) != 0 or raw == nil: return nil
  cast[ptr int](raw)[] = bytes
  cast[pointer](cast[int](raw) + 64)

proc releaseBuffer*(payload: pointer) {.gcsafe, raises: [].} =
  if payload == nil: return
  let buf = cast[pointer](cast[int](payload) - 64)
  for s in 0 ..< poolSlots:
    var expected: pointer = nil
    if pool[s].compareExchange(expected, buf, moRelease, moRelaxed): return
  cFree(buf)

proc releaseAllBuffers*() =
  ## Free every parked buffer (tests use it to check for leaks).
  for s in 0 ..< poolSlots:
    let buf = pool[s].exchange(nil, moAcquire)
    if buf != nil: cFree(buf)

# --- the register-tiled micro-kernel, written once for every SIMD width -------------------------

template simdTileProduct*(V: typedesc, MR, NV, W: static int, zero, load, bcast, fma: untyped,
                          rsa, csa: untyped) {.dirty.} =
  ## `acc` = the MR x NV*W product of A's micro-panel and B's panel over kc steps.
  var acc {.noinit.}: array[MR, array[NV, V]]
  unroll ii, MR:
    unroll jj, NV:
      acc[ii][jj] = zero()
  var pa = a
  var pb = b
  for p in 0 ..< kc:
    var bv {.noinit.}: array[NV, V]
    unroll jj, NV:
      bv[jj] = load(pb +! (jj * W))
    unroll ii, MR:
      let av = bcast((pa +! (ii * rsa))[])
      unroll jj, NV:
        acc[ii][jj] = fma(av, bv[jj], acc[ii][jj])
    pa = pa +! csa
    pb = pb +! rsb

template simdMicroKernelBody*(V: typedesc, MR, NV, W: static int,
                              zero, load, bcast, fma, add, store: untyped,
                              rsa, csa: untyped) {.dirty.} =
  ## Body of a micro-kernel proc with the `MicroKernel` parameters (kc, a, b, rsb, c, ldc,
  ## accumulate): an MR x (NV*W) tile of C held in MR*NV vector registers. Each k step loads NV
  ## vectors of the B row, broadcasts MR elements of the A column and issues MR*NV FMAs.
  ## A is packed (pass rsa = 1, csa = MR: constants) or, for `DirectKernel`, read in place.
  simdTileProduct(V, MR, NV, W, zero, load, bcast, fma, rsa, csa)
  if accumulate:
    unroll ii, MR:
      unroll jj, NV:
        let cp = c +! (ii * ldc + jj * W)
        store(cp, add(load(cp), acc[ii][jj]))
  else:
    unroll ii, MR:
      unroll jj, NV:
        store(c +! (ii * ldc + jj * W), acc[ii][jj])

template simdEpilogueKernelBody*(V: typedesc, MR, NV, W: static int,
                                 zero, load, bcast, fma, add, vmax, store: untyped,
                                 rsa, csa: untyped) {.dirty.} =
  ## Body of an `EpilogueKernel`: the tile as in `simdMicroKernelBody`, then (C +) acc + bias,
  ## ReLU as vmax(0, x), which keeps NaN and -0 as `activations.relu` does, one store. The
  ## additions are those of the kernel then the epilogue pass, in the same order: same bits.
  simdTileProduct(V, MR, NV, W, zero, load, bcast, fma, rsa, csa)
  var biasv {.noinit.}: array[NV, V]
  unroll jj, NV:
    biasv[jj] = (if bias == nil: zero() else: load(bias +! (jj * W)))
  unroll ii, MR:
    unroll jj, NV:
      let cp = c +! (ii * ldc + jj * W)
      var x = acc[ii][jj]
      if accumulate: x = add(load(cp), x)
      if bias != nil: x = add(x, biasv[jj])
      if relu: x = vmax(zero(), x)
      store(cp, x)
