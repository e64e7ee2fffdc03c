## Batched SHA-256, HMAC-SHA-256 and Merkle leaf hashing: one native call per batch, split into
## ranges over the scheduler's workers (`parallelFor`).
##
## Properties:
## - each worker writes only its own 32-byte output slots: no sharing, no locks
## - the path is the caller's `Sha256Impl` (`implOf()`): with 16 lanes (AVX-512, with or
##   without SHA-NI), runs of sixteen equal-length messages go through the multi-buffer
##   compression (`sha256/sha256_avx512.nim`); with SHA-NI, neighbouring messages of equal
##   length are hashed two at a time (interleaved streams); the rest one at a time
## - the HMAC key's pad states are computed once per batch and wiped when the batch is done

import ../config, ../cpu
import ../runtime/scheduler
import ./sha256, ./hmac, ./batch, ./ct
when x86SimdEnabled:
  import ./sha256/sha256_avx512

type
  JobKind* = enum
    jobSha256     ## SHA-256(m)
    jobHmac       ## HMAC-SHA-256(key, m)
    jobLeaf       ## SHA-256(0x00 ‖ m): an RFC 9162 leaf hash

  OutPtrs* = ptr UncheckedArray[ptr UncheckedArray[byte]]

  HashJob* = object
    kind*: JobKind
    impl*: Sha256Impl
    batch*: ptr MessageBatch
    key*: ptr HmacKey
    output*: ptr UncheckedArray[byte]  ## digest i at output[32*i ..< 32*i+32] ...
    outs*: OutPtrs                     ## ... or, when set, at outs[i][0 ..< 32]

const leafTempMax = 191  ## leaves up to this long are re-packed on the stack for the pair path

template outAt(job: ptr HashJob, i: int): ptr UncheckedArray[byte] =
  if job.outs != nil: job.outs[i] else: cast[ptr UncheckedArray[byte]](job.output[32 * i].addr)

proc hashOne(job: ptr HashJob, i: int) {.raises: [].} =
  let p = job.batch[].msgPtr(i)
  let n = job.batch[].msgLen(i)
  case job.kind
  of jobSha256: sha256(job.impl, p, n, job.outAt(i))
  of jobHmac: hmac(job.impl, job.key[], p, n, job.outAt(i))
  of jobLeaf:
    var ctx: Sha256Ctx
    ctx.init()
    var prefix = [0x00'u8]
    ctx.update(job.impl, cast[ptr UncheckedArray[byte]](prefix[0].addr), 1)
    ctx.update(job.impl, p, n)
    ctx.finish(job.impl, job.outAt(i))

proc hashPair(job: ptr HashJob, i: int) {.raises: [].} =
  ## Messages i and i+1, of equal length.
  let a = job.batch[].msgPtr(i)
  let b = job.batch[].msgPtr(i + 1)
  let n = job.batch[].msgLen(i)
  case job.kind
  of jobSha256: sha256TwoFrom(job.impl, sha256Iv, 0, a, b, n, job.outAt(i), job.outAt(i + 1))
  of jobHmac: hmacTwo(job.impl, job.key[], a, b, n, job.outAt(i), job.outAt(i + 1))
  of jobLeaf:
    var ta, tb: array[leafTempMax + 1, byte]
    ta[0] = 0; tb[0] = 0
    if n > 0:
      copyMem(ta[1].addr, a[0].addr, n)
      copyMem(tb[1].addr, b[0].addr, n)
    sha256TwoFrom(job.impl, sha256Iv, 0, cast[ptr UncheckedArray[byte]](ta[0].addr),
                  cast[ptr UncheckedArray[byte]](tb[0].addr), n + 1, job.outAt(i), job.outAt(i + 1))

proc sameLength(b: ptr MessageBatch, i, count: int): bool {.inline.} =
  let n = b[].msgLen(i)
  for k in 1 ..< count:
    if b[].msgLen(i + k) != n: return false
  true

when x86SimdEnabled:
  proc hashSixteen(job: ptr HashJob, i: int) {.raises: [].} =
    ## Messages i ..< i+16, all of the same length.
    let n = job.batch[].msgLen(i)
    var msgs, outs: Lanes16
    for k in 0 ..< 16:
      msgs[k] = job.batch[].msgPtr(i + k)
      outs[k] = job.outAt(i + k)
    case job.kind
    of jobSha256: hash16From(sha256Iv, 0, msgs, n, outs)
    of jobHmac:
      var inner: array[16, array[32, byte]]
      var innerPtrs: Lanes16
      for k in 0 ..< 16: innerPtrs[k] = cast[ptr UncheckedArray[byte]](inner[k][0].addr)
      hash16From(job.key.inner, 64, msgs, n, innerPtrs)
      hash16From(job.key.outer, 64, innerPtrs, 32, outs)
      wipe(inner)
    of jobLeaf:
      var temps: array[16, array[leafTempMax + 1, byte]]
      var tempPtrs: Lanes16
      for k in 0 ..< 16:
        temps[k][0] = 0
        if n > 0: copyMem(temps[k][1].addr, msgs[k][0].addr, n)
        tempPtrs[k] = cast[ptr UncheckedArray[byte]](temps[k][0].addr)
      hash16From(sha256Iv, 0, tempPtrs, n + 1, outs)

proc prefetch(p: pointer) {.importc: "__builtin_prefetch", nodecl.}

proc prefetchMessages(b: ptr MessageBatch, lo, hi: int) {.inline.} =
  ## Ask for the first two cache lines of messages lo ..< hi: messages apart in memory (pointer
  ## batches) are otherwise a DRAM round trip each when their lane loads them.
  for k in lo ..< hi:
    let p = b[].msgPtr(k)
    prefetch(p)
    if b[].msgLen(k) > 32: prefetch(p[min(b[].msgLen(k), 128) - 1].addr)

proc hashRange*(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let job = cast[ptr HashJob](ctx)
  let pairs = job.impl.usesShaNi
  let wide16 = job.impl.hasLanes16
  var i = lo
  while i < hi:
    let n = job.batch[].msgLen(i)
    when x86SimdEnabled:
      if wide16 and i + 16 <= hi and (job.kind != jobLeaf or n <= leafTempMax) and
         sameLength(job.batch, i, 16):
        if job.batch[].isScattered: prefetchMessages(job.batch, i + 16, min(i + 32, hi))
        hashSixteen(job, i)
        i += 16
        continue
    if pairs and i + 1 < hi and job.batch[].msgLen(i + 1) == n and
       (job.kind != jobLeaf or n <= leafTempMax):
      hashPair(job, i)
      i += 2
    else:
      hashOne(job, i)
      i += 1

proc grainFor*(b: MessageBatch): int =
  ## About 64 KiB of input per task, and never fewer than 64 messages. The average is the whole
  ## batch's (total / count): one long or short first message must not set every task's size.
  let avg = if b.n == 0: 0 else: b.total div b.n
  max(64, 65536 div (avg + 64))

proc hashMany*(kind: JobKind, impl: Sha256Impl, b: var MessageBatch,
               output: ptr UncheckedArray[byte], key: ptr HmacKey = nil) =
  ## output[32*i ..< 32*i+32] = hash of message i, for every i < b.n.
  var job = HashJob(kind: kind, impl: impl, batch: b.addr, key: key, output: output)
  parallelFor(0, b.n, grainFor(b), hashRange, job.addr)
