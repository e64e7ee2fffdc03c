## Packing: copy a block of A or B, read through any (signed) strides, into the contiguous
## micro-panel layout the micro-kernels stream through.
##
##   A block (mc x kc) -> ceil(mc/mr) panels; panel r holds rows r*mr ..< r*mr+mr, column by
##   column:  [a(0,0) a(1,0) .. a(mr-1,0)] [a(0,1) .. a(mr-1,1)] ...   (mr*kc elements)
##   B block (kc x nc) -> ceil(nc/nr) panels; panel q holds columns q*nr ..< q*nr+nr, row by row:
##   [b(0,0) .. b(0,nr-1)] [b(1,0) .. b(1,nr-1)] ...                   (kc*nr elements)
##
## Rows/columns past the edge are zero-filled, so edge tiles run the same full-size kernel.
## Properties: reads each source element once; writes sequentially; any stride (including 0,
## negative and non-unit in both directions) is supported; no allocation.

import ./common

{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

proc packPanelRowMajor[T; MR: static int](kc: int, src: ptr T, rs: int, dst: ptr T) =
  ## One full panel whose MR elements per step lie in MR separate streams (rows of a row-major A,
  ## columns of a Fortran-order B), read in step so the panel is written in order.
  var rows {.noinit.}: array[MR, ptr T]
  unroll i, MR:
    rows[i] = src +! (i * rs)
  var d = dst
  for p in 0 ..< kc:
    unroll i, MR:
      (d +! i)[] = (rows[i] +! p)[]
    d = d +! MR

proc packPanelColMajor[T; MR: static int](kc: int, src: ptr T, cs: int, dst: ptr T) =
  ## One full panel whose MR elements per step are contiguous in the source: a straight copy.
  var s = src
  var d = dst
  for p in 0 ..< kc:
    unroll i, MR:
      (d +! i)[] = (s +! i)[]
    s = s +! cs
    d = d +! MR

template dispatchWidth(w: int, call: untyped, fallback: untyped) =
  ## Run `call` with the compile-time width `W` bound to w when it is a tile size we build.
  case w
  of 4: (const W {.inject.} = 4; call)
  of 6: (const W {.inject.} = 6; call)
  of 8: (const W {.inject.} = 8; call)
  of 14: (const W {.inject.} = 14; call)
  of 16: (const W {.inject.} = 16; call)
  of 32: (const W {.inject.} = 32; call)
  else: fallback

proc packA*[T](mc, kc: int, src: ptr T, rs, cs: int, dst: ptr T, mr: int) =
  var ir = 0
  while ir < mc:
    let rows = min(mr, mc - ir)
    let panel = dst +! (ir * kc)
    let s0 = src +! (ir * rs)
    if rows == mr and rs == 1:  # column-major source (a transposed C array): copy runs
      dispatchWidth(mr, packPanelColMajor[T, W](kc, s0, cs, panel)):
        for p in 0 ..< kc:
          for i in 0 ..< mr: (panel +! (p * mr + i))[] = (s0 +! (p * cs + i))[]
    elif rows == mr and cs == 1:  # row-major source: mr streams read in step
      dispatchWidth(mr, packPanelRowMajor[T, W](kc, s0, rs, panel)):
        for i in 0 ..< mr:
          for p in 0 ..< kc: (panel +! (p * mr + i))[] = (s0 +! (i * rs + p))[]
    else:
      if rows < mr:
        zeroMem(panel, kc * mr * sizeof(T))
      for i in 0 ..< rows:
        let s = s0 +! (i * rs)
        let d = panel +! i
        for p in 0 ..< kc: (d +! (p * mr))[] = (s +! (p * cs))[]
    ir += mr

proc packB*[T](kc, nc: int, src: ptr T, rs, cs: int, dst: ptr T, nr: int) =
  var jr = 0
  while jr < nc:
    let cols = min(nr, nc - jr)
    let panel = dst +! (jr * kc)
    let s0 = src +! (jr * cs)
    if cols == nr and cs == 1:  # row-major source: copy runs
      dispatchWidth(nr, packPanelColMajor[T, W](kc, s0, rs, panel)):
        for p in 0 ..< kc:
          for j in 0 ..< nr: (panel +! (p * nr + j))[] = (s0 +! (p * rs + j))[]
    elif cols == nr and rs == 1:  # column-major source (Fortran order): nr streams in step
      dispatchWidth(nr, packPanelRowMajor[T, W](kc, s0, cs, panel)):
        for j in 0 ..< nr:
          for p in 0 ..< kc: (panel +! (p * nr + j))[] = (s0 +! (j * cs + p))[]
    else:
      if cols < nr:
        zeroMem(panel, kc * nr * sizeof(T))
      for j in 0 ..< cols:
        let s = s0 +! (j * cs)
        let d = panel +! j
        for p in 0 ..< kc: (d +! (p * nr))[] = (s +! (p * rs))[]
    jr += nr

{.pop.}
