## A SHA-256 batch whose messages the caller hands over chunk by chunk (`hashStream`), hashed by
## the pool while the caller prepares the next chunk.
##
## Why: for a Python list of 1M short `bytes`, reading the items and creating the 1M digest
## objects cost about as much as the hashing, and both need the caller's thread (the GIL). Done
## up front they would add to the hashing time; here they overlap with it.
##
## ::
##
##   caller:  fill(0) │ fill(1)  sync(0) │ fill(2)  sync(1) │ ...      (sync: helps hashing)
##   pool:            │ hash(0) ........ │ hash(1) ........ │ ...
##
## Properties:
## - `fill` runs only on the calling thread, one call at a time, never inside a task
## - at most two chunks are live: when `fill` is called for chunk k+1, chunk k may be hashing and
##   every chunk before it is done (`done` says up to which message)
## - every chunk is checked (lengths, NULL pointers) before any of it is hashed; a failing `fill`
##   or check stops the batch after the chunk in flight has finished

import ../errors
import ../runtime/scheduler
import ./sha256, ./batch, ./many

type
  Bytes = ptr UncheckedArray[byte]
  FillFn* = proc (lo, hi, done: csize_t, ptrs: ptr UncheckedArray[Bytes],
                  lens: ptr UncheckedArray[uint64], outs: OutPtrs, ctx: pointer): int32
                 {.cdecl, gcsafe, raises: [].}

  ChunkBuf = object
    ## One chunk's slots, filled by the caller.
    ptrs: seq[Bytes]
    lens: seq[uint64]
    outs: seq[ptr UncheckedArray[byte]]

const defaultChunk* = 8192  ## messages per chunk: ~0.5 ms of hashing at 64 B, ~120 syncs per 1M

proc initChunkBuf(size: int): ChunkBuf =
  ChunkBuf(ptrs: newSeq[Bytes](size), lens: newSeq[uint64](size),
           outs: newSeq[ptr UncheckedArray[byte]](size))

proc checkedChunk(buf: var ChunkBuf, count: int): MessageBatch =
  result = initBatchPtrs(cast[ptr UncheckedArray[Bytes]](buf.ptrs[0].addr),
                         cast[ptr UncheckedArray[uint64]](buf.lens[0].addr), count, "messages")
  for i in 0 ..< count:
    check(buf.outs[i] != nil, "messages: digest slot " & $i & " of a chunk is NULL")

proc runChunk(t: ptr Task) {.nimcall, gcsafe, raises: [].} =
  let job = cast[ptr HashJob](t.arg)
  parallelFor(0, job.batch.n, grainFor(job.batch[]), hashRange, job)

proc hashStream*(impl: Sha256Impl, n, chunk: int, fill: FillFn, ctx: pointer,
                 total: var int): int32 =
  ## Hash messages 0 ..< n, which `fill` describes chunk by chunk, into the slots it names;
  ## `total` counts the bytes hashed. Returns 0, or the first non-zero status `fill` returned
  ## (nothing is hashed after it).
  check(n >= 0, "messages: negative message count " & $n)
  check(fill != nil, "fill: NULL callback")
  if n == 0: return 0
  let chunk = if chunk <= 0: defaultChunk else: chunk
  let size = min(chunk, n)
  var bufs = [initChunkBuf(size), initChunkBuf(size)]
  var lo = 0
  var hi = size
  var cur = 0
  var status = fill(csize_t(lo), csize_t(hi), 0, cast[ptr UncheckedArray[Bytes]](bufs[cur].ptrs[0].addr),
                    cast[ptr UncheckedArray[uint64]](bufs[cur].lens[0].addr),
                    cast[OutPtrs](bufs[cur].outs[0].addr), ctx)
  while status == 0:
    var b = checkedChunk(bufs[cur], hi - lo)
    total += b.total
    var job = HashJob(kind: jobSha256, impl: impl, batch: b.addr,
                      outs: cast[OutPtrs](bufs[cur].outs[0].addr))
    if hi >= n:
      # The last chunk: nothing left to overlap with.
      parallelFor(0, b.n, grainFor(b), hashRange, job.addr)
      break
    var group: TaskGroup
    var task = Task(run: runChunk, arg: job.addr)
    spawn(group, task)
    let next = 1 - cur
    let nhi = min(hi + chunk, n)
    status = fill(csize_t(hi), csize_t(nhi), csize_t(lo), cast[ptr UncheckedArray[Bytes]](bufs[next].ptrs[0].addr),
                  cast[ptr UncheckedArray[uint64]](bufs[next].lens[0].addr),
                  cast[OutPtrs](bufs[next].outs[0].addr), ctx)
    sync(group)
    lo = hi
    hi = nhi
    cur = next
  status
