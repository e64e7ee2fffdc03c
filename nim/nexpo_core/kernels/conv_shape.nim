## The geometry of a 2-D convolution (NCHW) shared by the im2col path (conv.nim) and the direct
## path (conv_direct.nim).

import ./pool

export pool.PoolGeometry

type
  ConvPool* = enum
    ## A pooling the direct kernel applies on store (conv_direct.nim); the plan's word for it.
    cpNone, cpMax2x2, cpMean  ## cpMean: GlobalAveragePool, one value a channel

  ConvShape* = object
    n*, cin*, cout*, groups*: int
    g*: PoolGeometry       ## h, w, kh, kw, oh, ow, strides, pads (top, left), dilations

proc pointwise*(c: ConvShape): bool =
  c.g.kh == 1 and c.g.kw == 1 and c.g.sh == 1 and c.g.sw == 1 and c.g.pt == 0 and
    c.g.pl == 0 and c.g.oh == c.g.h and c.g.ow == c.g.w

proc paddedDims*(c: ConvShape): (int, int) =
  ## Height and width of the zero-padded input that every window of the output reads inside.
  (max(c.g.h + c.g.pt, (c.g.oh - 1) * c.g.sh + (c.g.kh - 1) * c.g.dh + 1),
   max(c.g.w + c.g.pl, (c.g.ow - 1) * c.g.sw + (c.g.kw - 1) * c.g.dw + 1))

proc needsPadding*(c: ConvShape): bool =
  let (hp, wp) = c.paddedDims
  c.g.pt > 0 or c.g.pl > 0 or hp > c.g.h or wp > c.g.w

proc directApplies*(c: ConvShape): bool =
  ## The direct kernel's domain (the planner packs weights for it, nexpo/inference/_ops_nn.py):
  ## unit column stride, not a pointwise convolution (a GEMM on the input in place), and at
  ## least 4 output channels a group (fewer would leave most of a register tile idle).
  c.g.sw == 1 and not c.pointwise and c.groups >= 1 and c.cout div c.groups >= 4
