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

proc packA*[T](mc, kc: int, src: ptr T, rs, cs: int, dst: ptr T, mr: int) =
  var ir = 0
  while ir < mc:
    let rows = min(mr, mc - ir)
    let panel = dst +! (ir * kc)
    let s0 = src +! (ir * rs)
    if rows == mr and rs == 1:
      # column-major source (e.g. a transposed C array): each column of the panel is contiguous
      for p in 0 ..< kc:
        let s = s0 +! (p * cs)
        let d = panel +! (p * mr)
        for i in 0 ..< mr: (d +! i)[] = (s +! i)[]
    else:
      if rows < mr:
        zeroMem(panel, kc * mr * sizeof(T))
      for i in 0 ..< rows:
        let s = s0 +! (i * rs)
        let d = panel +! i
        if cs == 1:
          for p in 0 ..< kc: (d +! (p * mr))[] = (s +! p)[]
        else:
          for p in 0 ..< kc: (d +! (p * mr))[] = (s +! (p * cs))[]
    ir += mr

proc packB*[T](kc, nc: int, src: ptr T, rs, cs: int, dst: ptr T, nr: int) =
  var jr = 0
  while jr < nc:
    let cols = min(nr, nc - jr)
    let panel = dst +! (jr * kc)
    let s0 = src +! (jr * cs)
    if cols == nr and cs == 1:
      # row-major source: each row of the panel is a contiguous run
      for p in 0 ..< kc:
        let s = s0 +! (p * rs)
        let d = panel +! (p * nr)
        for j in 0 ..< nr: (d +! j)[] = (s +! j)[]
    else:
      if cols < nr:
        zeroMem(panel, kc * nr * sizeof(T))
      for j in 0 ..< cols:
        let s = s0 +! (j * cs)
        let d = panel +! j
        for p in 0 ..< kc: (d +! (p * nr))[] = (s +! (p * rs))[]
    jr += nr

{.pop.}
