## The inference executor: runs a compiled plan (program.nim) start to finish in one call.
## The Python planner has already inferred every shape, folded constants, fused what it could
## and laid out the arena; this only decodes, checks operands, and calls the kernels.

import ../errors, ../cpu
import ../kernels/[common, gemm, elementwise, norm, pool, conv, tensor_ops, batched_gemm,
                   split_rows, attention]
import ./program

type
  OpCode* = enum
    opGemm = 1, opUnary, opBinary, opWhere, opSoftmax, opLayerNorm, opAffine, opInstanceNorm,
    opConv, opPool, opReduce, opCopy, opGather, opCast, opNot,
    opAttention

const opNames: array[OpCode, string] = ["gemm", "unary", "binary", "where", "softmax",
  "layernorm", "affine", "instancenorm", "conv", "pool", "reduce", "copy", "gather", "cast", "not",
  "attention"]

proc dims(r: var Reader, rank: int): Dims =
  for d in 0 ..< maxRank:
    let v = r.word
    if d < rank: result[d] = v

proc checkRank(r: Reader, rank, limit: int) =
  if rank < 0 or rank > limit: fail(stInvalid, "inference plan: " & r.op & ": bad rank " & $rank)

proc execGemm(r: var Reader, sp: Spaces) =
  let m = r.nonNegative("m")
  let n = r.nonNegative("n")
  let k = r.nonNegative("k")
  let rsa = r.word
  let csa = r.word
  let rsb = r.word
  let csb = r.word
  let ldc = r.word
  let act = r.word
  let brank = r.word
  checkRank(r, brank, 4)
  var bshape, bsa, bsb, bsc: array[4, int]
  for arr in [addr bshape, addr bsa, addr bsb, addr bsc]:
    for d in 0 ..< 4: arr[][d] = r.word
  let a = r.operand(sp, 4)
  let b = r.operand(sp, 4)
  let bias = r.operand(sp, 4, optional = true)
  let c = r.operand(sp, 4)
  # B packed at plan time (`packWeights`) for one ISA path, or none (-1): ignored when another
  # path is active, so a plan stays valid whatever NEXPO_ISA says
  let packedIsa = r.word
  let packedNr = r.word
  let packed = r.operand(sp, 4, optional = true)
  if act < ord(low(Activation)) or act > ord(high(Activation)) or ldc < n:
    fail(stInvalid, "inference plan: gemm: bad activation or row stride")
  template matrixExtent(strides: array[4, int], rows, cols, rs, cs: int): int =
    var shape6, strides6: array[6, int]
    for d in 0 ..< brank:
      shape6[d] = bshape[d]
      strides6[d] = strides[d]
    shape6[brank] = rows
    shape6[brank + 1] = cols
    strides6[brank] = rs
    strides6[brank + 1] = cs
    extent(shape6.toOpenArray(0, brank + 1), strides6.toOpenArray(0, brank + 1))
  r.need(a, 4 * matrixExtent(bsa, m, k, rsa, csa), "A")
  r.need(b, 4 * matrixExtent(bsb, k, n, rsb, csb), "B")
  r.need(c, 4 * matrixExtent(bsc, m, n, ldc, 1), "C")
  if bias.p != nil: r.need(bias, 4 * n, "bias")
  if packed.p != nil and brank == 0 and packedIsa >= ord(low(Isa)) and
      packedIsa <= ord(high(Isa)) and packedNr > 0:
    let (nr, elems) = packedWeightsLen[float32](Isa(packedIsa), k, n)
    if nr == packedNr:
      r.need(packed, 4 * elems, "packed B")
      gemmStrided[float32](m, n, k, Operand[float32](base: cast[ptr float32](a.p), rs: rsa, cs: csa),
                           Operand[float32](base: cast[ptr float32](b.p), rs: rsb, cs: csb),
                           cast[ptr float32](c.p), ldc, cast[ptr float32](bias.p), Activation(act),
                           cast[ptr float32](packed.p), Isa(packedIsa), packedNr)
      return
  var job = BatchedGemm(m: m, n: n, k: k, rsa: rsa, csa: csa, rsb: rsb, csb: csb, ldc: ldc,
                        act: Activation(act), brank: brank, bshape: bshape, bsa: bsa, bsb: bsb,
                        bsc: bsc, a: cast[ptr float32](a.p), b: cast[ptr float32](b.p),
                        c: cast[ptr float32](c.p), bias: cast[ptr float32](bias.p))
  batchedGemm(job)

proc execBroadcast(r: var Reader, sp: Spaces, isWhere: bool) =
  var kind = bAdd
  var dtype = dtF32
  var elemSize = 4
  if isWhere:
    elemSize = r.word
    if elemSize notin [1, 4, 8]: fail(stInvalid, "inference plan: where: element size")
  else:
    let k = r.word
    let t = r.word
    if k < ord(low(BinaryKind)) or k > ord(high(BinaryKind)) or t < 0 or t > 2:
      fail(stInvalid, "inference plan: binary: bad kind or dtype")
    kind = BinaryKind(k)
    dtype = DType(t)
    elemSize = [4, 8, 1][t]
  let rank = r.word
  checkRank(r, rank, maxRank)
  let shape = r.dims(rank)
  let nin = if isWhere: 3 else: 2
  var strides: array[3, Dims]
  for j in 0 ..< nin: strides[j] = r.dims(rank)
  var total = 1
  for d in 0 ..< rank: total *= shape[d]
  var ins: array[3, Buf]
  for j in 0 ..< nin:
    let size = if isWhere and j == 0: 1 else: elemSize
    ins[j] = r.operand(sp, size)
    r.need(ins[j], size * extent(shape.toOpenArray(0, rank - 1), strides[j].toOpenArray(0, rank - 1)), "input " & $j)
  let outSize = if not isWhere and kind.isComparison: 1 else: elemSize
  let o = r.operand(sp, outSize)
  r.need(o, outSize * total, "output")
  if total == 0: return
  if isWhere:
    whereSelect(elemSize, rank, shape, strides[0], strides[1], strides[2], ins[0].p, ins[1].p,
                ins[2].p, o.p)
  else:
    binaryBroadcast(kind, dtype, rank, shape, strides[0], strides[1], ins[0].p, ins[1].p, o.p)

const maxMeanElements = 1 shl 28  ## conv outputs a fused mean may cover (nexpo/inference/_plan.py)

proc execConv(r: var Reader, sp: Spaces) =
  var c: ConvShape
  c.n = r.nonNegative("n"); c.cin = r.nonNegative("cin"); c.g.h = r.nonNegative("h")
  c.g.w = r.nonNegative("w"); c.cout = r.nonNegative("cout"); c.g.kh = r.nonNegative("kh")
  c.g.kw = r.nonNegative("kw"); c.g.oh = r.nonNegative("oh"); c.g.ow = r.nonNegative("ow")
  c.g.sh = r.nonNegative("sh"); c.g.sw = r.nonNegative("sw"); c.g.pt = r.nonNegative("pt")
  c.g.pl = r.nonNegative("pl"); c.g.dh = r.nonNegative("dh"); c.g.dw = r.nonNegative("dw")
  c.groups = r.nonNegative("groups")
  let relu = r.word != 0
  let layout = r.word  # the weights: 0 OIHW, 1 the direct kernel's blocks, 2 Winograd-transformed
  let (packed, winograd) = (layout == 1, layout == 2)
  let poolWord = r.word     # a 2x2/2 MaxPool or GlobalAveragePool fused (ConvPool, packed only)
  let x = r.operand(sp, 4)
  let w = r.operand(sp, 4)
  let bias = r.operand(sp, 4, optional = true)
  let o = r.operand(sp, 4)
  if c.groups == 0 or c.cin mod c.groups != 0 or c.cout mod c.groups != 0:
    fail(stInvalid, "inference plan: conv: inconsistent geometry")
  let g = c.g
  r.need(x, 4 * c.n * c.cin * g.h * g.w, "input")
  if layout < 0 or layout > 2:
    fail(stInvalid, "inference plan: conv: bad weight layout " & $layout)
  if packed and not c.directApplies:
    fail(stInvalid, "inference plan: conv: packed weights for a shape the direct kernel does not take")
  if winograd and not c.winogradApplies:
    fail(stInvalid, "inference plan: conv: Winograd weights for a shape the Winograd kernel does not take")
  if poolWord < ord(low(ConvPool)) or poolWord > ord(high(ConvPool)):
    fail(stInvalid, "inference plan: conv: bad fused pool " & $poolWord)
  let pool = ConvPool(poolWord)
  if pool != cpNone and layout == 0 or pool == cpMax2x2 and (g.oh < 2 or g.ow < 2):
    fail(stInvalid, "inference plan: conv: a fused pool needs packed weights (and a max pool a 2x2 output)")
  r.need(w, 4 * (if packed: packedWeightElements(c)
                 elif winograd: winogradWeightElements(c)
                 else: c.cout * (c.cin div c.groups) * g.kh * g.kw), "weight")
  if bias.p != nil: r.need(bias, 4 * c.cout, "bias")
  let (oh, ow) = case pool
                 of cpMax2x2: (g.oh div 2, g.ow div 2)
                 of cpMean: (1, 1)
                 of cpNone: (g.oh, g.ow)
  r.need(o, 4 * c.n * c.cout * oh * ow, "output")
  if pool == cpMean:  # the conv output is never stored, so no buffer bounds its plane: a limit does
    let planes = max(1, c.n * c.cout)  # (the planner's largest tensor)
    if g.oh == 0 or g.ow == 0 or g.oh > maxMeanElements div g.ow or
        g.oh * g.ow > maxMeanElements div planes:
      fail(stInvalid, "inference plan: conv: the fused mean's planes are empty or too large")
  if c.n * c.cout * oh * ow == 0: return
  conv2d(c, cast[ptr float32](x.p), cast[ptr float32](w.p), cast[ptr float32](bias.p),
         cast[ptr float32](o.p), relu, packed, pool, winograd)

proc execPool(r: var Reader, sp: Spaces) =
  let isMax = r.word == 0
  let includePad = r.word != 0
  let planes = r.nonNegative("planes")
  var g: PoolGeometry
  g.h = r.nonNegative("h"); g.w = r.nonNegative("w"); g.kh = r.nonNegative("kh")
  g.kw = r.nonNegative("kw"); g.oh = r.nonNegative("oh"); g.ow = r.nonNegative("ow")
  g.sh = r.nonNegative("sh"); g.sw = r.nonNegative("sw"); g.pt = r.nonNegative("pt")
  g.pl = r.nonNegative("pl"); g.dh = r.nonNegative("dh"); g.dw = r.nonNegative("dw")
  let x = r.operand(sp, 4)
  let o = r.operand(sp, 4)
  r.need(x, 4 * planes * g.h * g.w, "input")
  r.need(o, 4 * planes * g.oh * g.ow, "output")
  if planes * g.oh * g.ow == 0: return
  pool2d(isMax, includePad, planes, g, cast[ptr float32](x.p), cast[ptr float32](o.p))

proc execCopy(r: var Reader, sp: Spaces) =
  let elemSize = r.word
  let rank = r.word
  if elemSize notin [1, 4, 8]: fail(stInvalid, "inference plan: copy: element size")
  checkRank(r, rank, maxCopyRank)
  var shape, sin, sout: CopyDims
  for arr in [addr shape, addr sin, addr sout]:
    for d in 0 ..< maxCopyRank:
      let v = r.word
      if d < rank: arr[][d] = v
  let x = r.operand(sp, elemSize)
  let o = r.operand(sp, elemSize)
  r.need(x, elemSize * extent(shape.toOpenArray(0, rank - 1), sin.toOpenArray(0, rank - 1)), "input")
  r.need(o, elemSize * extent(shape.toOpenArray(0, rank - 1), sout.toOpenArray(0, rank - 1)),
         "output")
  if x.p == nil or o.p == nil: return
  stridedCopy(elemSize, rank, shape, sin, sout, x.p, o.p)

proc execAttention(r: var Reader, sp: Spaces) =
  var a: Attention
  a.batches = r.nonNegative("batches"); a.heads = r.nonNegative("heads")
  a.sq = r.nonNegative("query rows"); a.sk = r.nonNegative("key rows")
  a.dk = r.nonNegative("key width"); a.dv = r.nonNegative("value width")
  a.scale = r.real
  for arr in [addr a.qs, addr a.ks, addr a.vs, addr a.os]:
    for d in 0 ..< 3: arr[][d] = r.word
  for d in 0 ..< 4: a.ms[d] = r.word
  let q = r.operand(sp, 4)
  let k = r.operand(sp, 4)
  let v = r.operand(sp, 4)
  let mask = r.operand(sp, 4, optional = true)
  let o = r.operand(sp, 4)
  template span(rows, cols: int, s: array[3, int]): int =
    4 * extent([a.batches, a.heads, rows, cols], [s[0], s[1], s[2], 1])
  r.need(q, span(a.sq, a.dk, a.qs), "Q")
  r.need(k, span(a.sk, a.dk, a.ks), "K")
  r.need(v, span(a.sk, a.dv, a.vs), "V")
  r.need(o, span(a.sq, a.dv, a.os), "output")
  if mask.p != nil:
    r.need(mask, 4 * extent([a.batches, a.heads, a.sq, a.sk], a.ms), "mask")
  a.q = cast[ptr float32](q.p); a.k = cast[ptr float32](k.p); a.v = cast[ptr float32](v.p)
  a.o = cast[ptr float32](o.p); a.mask = cast[ptr float32](mask.p)
  if a.batches * a.heads * a.sq * a.dv == 0: return
  attention(a)

proc step(r: var Reader, sp: Spaces, opcode: OpCode) =
  case opcode
  of opGemm: execGemm(r, sp)
  of opBinary: execBroadcast(r, sp, false)
  of opWhere: execBroadcast(r, sp, true)
  of opConv: execConv(r, sp)
  of opPool: execPool(r, sp)
  of opCopy: execCopy(r, sp)
  of opAttention: execAttention(r, sp)
  of opUnary, opNot:
    let kind = r.word
    let n = r.nonNegative("n")
    let alpha = r.real
    let beta = r.real
    let size = if opcode == opNot: 1 else: 4
    let x = r.operand(sp, size)
    let o = r.operand(sp, size)
    r.need(x, size * n, "input")
    r.need(o, size * n, "output")
    if n == 0: return
    if opcode == opNot: logicalNot(n, cast[ptr uint8](x.p), cast[ptr uint8](o.p))
    else:
      if kind < 0 or kind > ord(high(UnaryKind)): fail(stInvalid, "inference plan: unary kind")
      unaryMapParallel(UnaryKind(kind), n, cast[ptr float32](x.p), cast[ptr float32](o.p), alpha,
                       beta)
  of opSoftmax:
    let outer = r.nonNegative("outer")
    let axis = r.nonNegative("axis")
    let inner = r.nonNegative("inner")
    let logSoftmax = r.word != 0
    let x = r.operand(sp, 4)
    let o = r.operand(sp, 4)
    r.need(x, 4 * outer * axis * inner, "input")
    r.need(o, 4 * outer * axis * inner, "output")
    if outer * axis * inner == 0: return
    softmaxParallel(outer, axis, inner, cast[ptr float32](x.p), cast[ptr float32](o.p), logSoftmax)
  of opLayerNorm:
    let rows = r.nonNegative("rows")
    let cols = r.nonNegative("cols")
    let eps = r.real
    let x = r.operand(sp, 4)
    let resid = r.operand(sp, 4, optional = true)  # a residual Add's other input, fused
    let g = r.operand(sp, 4)
    let b = r.operand(sp, 4, optional = true)
    let o = r.operand(sp, 4)
    r.need(x, 4 * rows * cols, "input")
    if resid.p != nil: r.need(resid, 4 * rows * cols, "residual")
    r.need(o, 4 * rows * cols, "output")
    r.need(g, 4 * cols, "scale")
    if b.p != nil: r.need(b, 4 * cols, "bias")
    if rows * cols == 0: return
    layerNormParallel(rows, cols, cast[ptr float32](x.p), cast[ptr float32](resid.p),
                      cast[ptr float32](o.p), cast[ptr float32](g.p), cast[ptr float32](b.p), eps)
  of opAffine, opInstanceNorm:
    let n = r.nonNegative("n")
    let c = r.nonNegative("c")
    let spatial = r.nonNegative("spatial")
    let eps = if opcode == opInstanceNorm: r.real else: 0'f32
    let x = r.operand(sp, 4)
    let g = r.operand(sp, 4)
    let b = r.operand(sp, 4)
    let o = r.operand(sp, 4)
    r.need(x, 4 * n * c * spatial, "input")
    r.need(o, 4 * n * c * spatial, "output")
    r.need(g, 4 * c, "scale")
    r.need(b, 4 * c, "bias")
    if n * c * spatial == 0: return
    if opcode == opAffine:
      channelAffine(n, c, spatial, cast[ptr float32](x.p), cast[ptr float32](o.p),
                    cast[ptr float32](g.p), cast[ptr float32](b.p))
    else:
      instanceNorm(n, c, spatial, cast[ptr float32](x.p), cast[ptr float32](o.p),
                   cast[ptr float32](g.p), cast[ptr float32](b.p), eps)
  of opReduce:
    let kind = r.word
    if kind < 0 or kind > ord(high(ReduceKind)): fail(stInvalid, "inference plan: reduce kind")
    let outer = r.nonNegative("outer")
    let n = r.nonNegative("r")
    let inner = r.nonNegative("inner")
    let x = r.operand(sp, 4)
    let outSize = if ReduceKind(kind) >= rArgMax: 8 else: 4
    let o = r.operand(sp, outSize)
    r.need(x, 4 * outer * n * inner, "input")
    r.need(o, outSize * outer * inner, "output")
    if outer * inner == 0: return
    reduceLines(ReduceKind(kind), outer, n, inner, x.p, o.p)
  of opGather:
    let elemSize = r.word
    if elemSize notin [1, 4, 8]: fail(stInvalid, "inference plan: gather: element size")
    let outer = r.nonNegative("outer")
    let axisDim = r.nonNegative("axis")
    let inner = r.nonNegative("inner")
    let nidx = r.nonNegative("indices")
    let x = r.operand(sp, elemSize)
    let idx = r.operand(sp, 8)
    let o = r.operand(sp, elemSize)
    r.need(x, elemSize * outer * axisDim * inner, "data")
    r.need(idx, 8 * nidx, "indices")
    r.need(o, elemSize * outer * nidx * inner, "output")
    if outer * nidx * inner == 0: return
    gatherAxis(elemSize, outer, axisDim, inner, nidx, x.p, cast[ptr int64](idx.p), o.p)
  of opCast:
    let src = r.word
    let dst = r.word
    if src notin 0 .. 2 or dst notin 0 .. 2: fail(stInvalid, "inference plan: cast dtype")
    let n = r.nonNegative("n")
    let x = r.operand(sp, [4, 8, 1][src])
    let o = r.operand(sp, [4, 8, 1][dst])
    r.need(x, [4, 8, 1][src] * n, "input")
    r.need(o, [4, 8, 1][dst] * n, "output")
    if n == 0: return
    castElements(DType(src), DType(dst), n, x.p, o.p)

proc runPlan*(code: ptr UncheckedArray[int64], length: int, sp: Spaces) =
  var r = Reader(code: code, pos: 0, stop: length, op: "header")
  while r.pos < length:
    let start = r.pos
    r.stop = length
    let opcode = r.word
    let size = r.word
    if opcode < ord(low(OpCode)) or opcode > ord(high(OpCode)) or size < 2 or
        size > length - start:
      fail(stInvalid, "inference plan: bad instruction at word " & $start)
    r.op = opNames[OpCode(opcode)]
    r.stop = start + size
    step(r, sp, OpCode(opcode))
    if r.pos != r.stop:
      fail(stInvalid, "inference plan: " & r.op & " instruction has " & $(r.stop - r.pos) &
           " extra words")
    r.pos = r.stop
