## Merkle Tree Hash and audit paths of RFC 9162 §2.1 (Certificate Transparency v2):
##
## ::
##
##   MTH({})        = SHA-256()
##   MTH({d0})      = SHA-256(0x00 ‖ d0)                    leaf hash
##   MTH(D[0:n])    = SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n]))   k = largest power of 2 < n
##
## Built bottom-up, level by level: pairing neighbours and carrying an odd last node up
## unchanged gives exactly the split at the largest power of two below n.
##
##   level 2:        r
##   level 1:     h01    h2     (h2 carried up: no right sibling)
##   level 0:   h0  h1   h2
##
## Properties:
## - leaves and each level's nodes are hashed in parallel ranges (`parallelFor`), two at a time
##   on SHA-NI; levels ping-pong between two buffers so no range reads what another writes
## - audit paths list siblings from the leaf up, as RFC 9162 §2.1.3.1 orders them
## - `verifyPath` is the verification algorithm of RFC 9162 §2.1.3.2

import ../config, ../cpu
import ../runtime/scheduler
import ./sha256, ./batch, ./many, ./ct
when x86SimdEnabled:
  import ./sha256/sha256_avx512

type
  NodeJob = object
    impl: Sha256Impl
    src, dst: ptr UncheckedArray[byte]

proc nodeHash*(impl: Sha256Impl, left, right: ptr UncheckedArray[byte],
               output: ptr UncheckedArray[byte]) =
  var t: array[65, byte]
  t[0] = 0x01
  copyMem(t[1].addr, left[0].addr, 32)
  copyMem(t[33].addr, right[0].addr, 32)
  sha256(impl, cast[ptr UncheckedArray[byte]](t[0].addr), 65, output)

proc leafHash*(impl: Sha256Impl, data: ptr UncheckedArray[byte], len: int,
               output: ptr UncheckedArray[byte]) =
  var ctx: Sha256Ctx
  ctx.init()
  var prefix = [0x00'u8]
  ctx.update(impl, cast[ptr UncheckedArray[byte]](prefix[0].addr), 1)
  ctx.update(impl, data, len)
  ctx.finish(impl, output)

template at(p: ptr UncheckedArray[byte], i: int): ptr UncheckedArray[byte] =
  cast[ptr UncheckedArray[byte]](p[32 * i].addr)

proc nodeRange(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  ## dst[i] = node(src[2i], src[2i+1]) for i in [lo, hi).
  let job = cast[ptr NodeJob](ctx)
  var i = lo
  when x86SimdEnabled:
    if job.impl.hasLanes16:
      var temps: array[16, array[65, byte]]
      var tempPtrs, outs: Lanes16
      for k in 0 ..< 16:
        temps[k][0] = 0x01
        tempPtrs[k] = cast[ptr UncheckedArray[byte]](temps[k][0].addr)
      while i + 16 <= hi:
        for k in 0 ..< 16:
          copyMem(temps[k][1].addr, job.src.at(2 * (i + k))[0].addr, 64)
          outs[k] = job.dst.at(i + k)
        hash16From(sha256Iv, 0, tempPtrs, 65, outs)
        i += 16
  if job.impl.usesShaNi:
    var ta, tb: array[65, byte]
    ta[0] = 0x01; tb[0] = 0x01
    while i + 1 < hi:
      copyMem(ta[1].addr, job.src.at(2 * i)[0].addr, 64)
      copyMem(tb[1].addr, job.src.at(2 * i + 2)[0].addr, 64)
      sha256TwoFrom(job.impl, sha256Iv, 0, cast[ptr UncheckedArray[byte]](ta[0].addr),
                    cast[ptr UncheckedArray[byte]](tb[0].addr), 65, job.dst.at(i), job.dst.at(i + 1))
      i += 2
  while i < hi:
    nodeHash(job.impl, job.src.at(2 * i), job.src.at(2 * i + 1), job.dst.at(i))
    i += 1

proc nextLevel(impl: Sha256Impl, src, dst: ptr UncheckedArray[byte], m: int): int =
  ## Hash level `src` (m nodes) into `dst`; returns the new node count.
  var job = NodeJob(impl: impl, src: src, dst: dst)
  parallelFor(0, m div 2, 1024, nodeRange, job.addr)
  if m mod 2 == 1: copyMem(dst.at(m div 2), src.at(m - 1), 32)
  (m + 1) div 2

proc merkleRoot*(impl: Sha256Impl, b: var MessageBatch, output: ptr UncheckedArray[byte]) =
  if b.n == 0:
    sha256(impl, nil, 0, output)
    return
  let bufA = initHashBuffer(b.n, "leaves")
  let bufB = initHashBuffer((b.n + 1) div 2, "leaves")
  var src = bufA.p
  var dst = bufB.p
  hashMany(jobLeaf, impl, b, src)
  var m = b.n
  while m > 1:
    m = nextLevel(impl, src, dst, m)
    swap(src, dst)
  copyMem(output, src, 32)

proc merkleProof*(impl: Sha256Impl, b: var MessageBatch, index: int,
                  output: ptr UncheckedArray[byte]): int =
  ## Write the audit path of leaf `index` (32 bytes per node) to `output`; returns its length.
  ## `output` must hold 64 nodes (the deepest possible path).
  let bufA = initHashBuffer(b.n, "leaves")
  let bufB = initHashBuffer((b.n + 1) div 2, "leaves")
  var src = bufA.p
  var dst = bufB.p
  hashMany(jobLeaf, impl, b, src)
  var m = b.n
  var idx = index
  while m > 1:
    let sibling = idx xor 1
    if sibling < m:
      copyMem(output.at(result), src.at(sibling), 32)
      inc result
    idx = idx div 2
    m = nextLevel(impl, src, dst, m)
    swap(src, dst)

proc verifyPath*(impl: Sha256Impl, leaf: ptr UncheckedArray[byte], leafLen: int,
                 index, treeSize: uint64, path: ptr UncheckedArray[byte], pathLen: int,
                 root: ptr UncheckedArray[byte]): bool =
  ## RFC 9162 §2.1.3.2: does `path` prove that `leaf` is entry `index` of the tree of
  ## `treeSize` leaves whose root is `root`?
  if index >= treeSize: return false
  var fn = index
  var sn = treeSize - 1
  var r: array[32, byte]
  let rp = cast[ptr UncheckedArray[byte]](r[0].addr)
  leafHash(impl, leaf, leafLen, rp)
  for k in 0 ..< pathLen:
    if sn == 0: return false
    let p = path.at(k)
    if (fn and 1) == 1 or fn == sn:
      nodeHash(impl, p, rp, rp)
      if (fn and 1) == 0:
        while (fn and 1) == 0 and fn != 0:
          fn = fn shr 1
          sn = sn shr 1
    else:
      nodeHash(impl, rp, p, rp)
    fn = fn shr 1
    sn = sn shr 1
  sn == 0 and ctEqual(rp, root, 32)
