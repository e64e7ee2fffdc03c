## A batch of messages in one buffer, as the C ABI passes it: the messages concatenated in
## `data`, with either one length per message or (no lengths) `n` equal slices.
##
## ::
##
##   data:    | m0 ....... | m1 .. | m2 ............ |
##   offsets: 0            o1      o2               o3 = len
##
## Properties:
## - or (`initBatchPtrs`) one pointer and one length per message, for messages that already
##   sit apart in memory (the items of a Python list of bytes): nothing is copied
## - validated once on construction: the lengths must add up to exactly `len`
## - `msgPtr(i)`/`msgLen(i)` are O(1), so a batch can be split into ranges for
##   `scheduler.parallelFor`; equal lengths side by side let the SHA-NI path pair neighbours
##   into one interleaved call (many.nim's `sameLength`)

import ../errors

proc c_malloc(size: csize_t): pointer {.importc: "malloc", header: "<stdlib.h>".}
proc c_free(p: pointer) {.importc: "free", header: "<stdlib.h>".}

type
  HashBuffer* = object
    ## Scratch room for `nodes` 32-byte hashes. malloc'ed and checked: Nim's -d:useMalloc
    ## allocator returns nil on failure, and a tree of n leaves needs 32·n bytes however
    ## small its input (an (n, 0) array of empty leaves).
    p*: ptr UncheckedArray[byte]

  MessageBatch* = object
    data*: ptr UncheckedArray[byte]
    n*: int
    total*: int            ## bytes in all messages together
    stride: int            ## message length when all are equal (`offsets` empty)
    offsets: seq[int]      ## n+1 prefix sums when lengths vary
    ptrs: ptr UncheckedArray[ptr UncheckedArray[byte]]  ## per-message pointers (pointer mode)
    lens: ptr UncheckedArray[uint64]                    ## their lengths (pointer mode)

proc initBatch*(data: ptr UncheckedArray[byte], len: int, lengths: ptr UncheckedArray[uint64],
                n: int, name: string): MessageBatch =
  checkPtr(data, len, name)
  check(n >= 0, name & ": negative message count " & $n)
  result.data = data
  result.n = n
  result.total = len
  if lengths == nil:
    check(n > 0 or len == 0, name & ": " & $len & " bytes for zero messages")
    if n > 0:
      check(len mod n == 0, name & ": " & $len & " bytes do not split into " & $n & " equal rows")
      result.stride = len div n
  else:
    result.offsets = newSeqUninitialized[int](n + 1)
    var total = 0'u64
    result.offsets[0] = 0
    for i in 0 ..< n:
      check(lengths[i] <= uint64(len), name & ": message " & $i & " is longer than the buffer")
      total += lengths[i]
      check(total <= uint64(len), name & ": message lengths add up to more than " & $len & " bytes")
      result.offsets[i + 1] = int(total)
    check(total == uint64(len), name & ": message lengths add up to " & $total & ", not " & $len)

proc initBatchPtrs*(ptrs: ptr UncheckedArray[ptr UncheckedArray[byte]],
                    lens: ptr UncheckedArray[uint64], n: int, name: string): MessageBatch =
  ## Message i is ptrs[i][0 ..< lens[i]]; a NULL pointer is allowed only for an empty message.
  check(n >= 0, name & ": negative message count " & $n)
  check(n == 0 or (ptrs != nil and lens != nil), name & ": NULL pointer or length array")
  var total = 0'u64
  for i in 0 ..< n:
    check(lens[i] <= uint64(high(int)) - total, name & ": message lengths overflow")
    check(ptrs[i] != nil or lens[i] == 0, name & ": message " & $i & " has a NULL pointer")
    total += lens[i]
  result.n = n
  result.total = int(total)
  result.ptrs = ptrs
  result.lens = lens

proc isScattered*(b: MessageBatch): bool {.inline.} =
  ## Messages apart in memory (pointer mode), rather than one buffer.
  b.ptrs != nil

proc msgLen*(b: MessageBatch, i: int): int {.inline.} =
  if b.ptrs != nil: int(b.lens[i])
  elif b.offsets.len == 0: b.stride
  else: b.offsets[i + 1] - b.offsets[i]

proc msgPtr*(b: MessageBatch, i: int): ptr UncheckedArray[byte] {.inline.} =
  if b.ptrs != nil: return b.ptrs[i]
  let off = if b.offsets.len == 0: i * b.stride else: b.offsets[i]
  cast[ptr UncheckedArray[byte]](cast[uint](b.data) + uint(off))

proc `=destroy`*(b: var HashBuffer) =
  if b.p != nil: c_free(b.p)

proc `=copy`*(dst: var HashBuffer, src: HashBuffer) {.error.}

proc initHashBuffer*(nodes: int, name: string): HashBuffer =
  if nodes < 0 or nodes > high(int) div 32:
    fail(stNoMem, name & ": " & $nodes & " hashes do not fit in memory")
  let p = c_malloc(csize_t(max(32 * nodes, 1)))
  if p == nil:
    fail(stNoMem, name & ": cannot allocate " & $nodes & " 32-byte hashes")
  result.p = cast[ptr UncheckedArray[byte]](p)
