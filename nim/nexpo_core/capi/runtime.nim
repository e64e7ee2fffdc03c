# Included by capi.nim: the runtime exports (declared in runtime.h).

proc nexpo_get_num_threads*(): int32 {.exportc, cdecl.} = int32(scheduler.numThreads())

proc nexpo_set_num_threads*(n: int32): int32 {.exportc, cdecl.} =
  cabi:
    check(n >= 1 and n <= 1024, "n: thread count must be between 1 and 1024, got " & $n)
    check(not scheduler.onPoolThread(), "set_num_threads: not allowed from a pool worker thread")
    scheduler.setNumThreads(n)

proc nexpo_scheduler_stats*(output: ptr UncheckedArray[uint64], cap: int,
                            workers: ptr int32): int32 {.exportc, cdecl.} =
  cabi:
    checkPtr(output, cap, "out")
    check(workers != nil, "workers: NULL pointer")
    let all = scheduler.workerStats()
    workers[] = int32(all.len)
    check(cap >= 4 * all.len, "out: room for " & $cap & " counters, need " & $(4 * all.len))
    for w, s in all:
      output[4*w] = s.spawned
      output[4*w + 1] = s.executed
      output[4*w + 2] = s.stolen
      output[4*w + 3] = s.parks

# --- channels ---------------------------------------------------------------------------
# The per-message exports return status codes directly (no exception machinery on the hot
# path); only setup goes through `cabi`.

import std/[atomics, tables]
import ../runtime/[channel, ring]

# Live channel handles, and whether a binding owns each (`nexpo_channel_adopt`): a binding that
# takes an address from its callers checks it here before it ever dereferences it.
var handleLock: Atomic[bool]
var liveHandles: Table[uint, bool]

template withHandles(body: untyped) =
  while handleLock.exchange(true, moAcquire): discard
  try:
    body
  finally:
    handleLock.store(false, moRelease)

proc registered(ch: ptr ByteChannel): ptr ByteChannel =
  withHandles:
    liveHandles[cast[uint](ch)] = false
  ch

template statusOf(st: Status): int32 =
  ## A hot-path status: its message, if any, was recorded by `failed` (errors.nim).
  int32(ord(st))

proc nexpo_channel_new*(mode: int32, capacity, maxMessage: int,
                        output: ptr ptr ByteChannel): int32 {.exportc, cdecl.} =
  cabi:
    check(output != nil, "out: NULL pointer")
    check(mode >= 0 and mode <= 3, "mode: must be 0..3 (spsc, mpsc, spmc, mpmc), got " & $mode)
    output[] = registered(newChannel(ChannelMode(mode), capacity, maxMessage))

proc nexpo_channel_create_shared*(name: cstring, mode: int32, capacity, maxMessage: int,
                                  output: ptr ptr ByteChannel): int32 {.exportc, cdecl.} =
  cabi:
    check(output != nil and name != nil, "name/out: NULL pointer")
    check(mode >= 0 and mode <= 3, "mode: must be 0..3 (spsc, mpsc, spmc, mpmc), got " & $mode)
    output[] = registered(createShared($name, ChannelMode(mode), capacity, maxMessage))

proc nexpo_channel_open_shared*(name: cstring, output: ptr ptr ByteChannel): int32 {.exportc, cdecl.} =
  cabi:
    check(output != nil and name != nil, "name/out: NULL pointer")
    output[] = registered(openShared($name))

proc nexpo_channel_release*(ch: ptr ByteChannel) {.exportc, cdecl.} =
  try:
    withHandles:
      liveHandles.del(cast[uint](ch))
    release(ch)
  except CatchableError:
    discard

proc nexpo_channel_close*(ch: ptr ByteChannel): int32 {.exportc, cdecl.} =
  cabi:
    check(ch != nil, "channel: NULL pointer")
    close(ch)

proc nexpo_channel_info*(ch: ptr ByteChannel, output: ptr UncheckedArray[uint64],
                         cap: int): int32 {.exportc, cdecl.} =
  cabi:
    check(ch != nil, "channel: NULL pointer")
    checkPtr(output, cap, "out")
    check(cap >= 6, "out: need 6 counters")
    let r = ch.ring
    output[0] = uint64(ord(r.mode))
    output[1] = r.capacity
    output[2] = r.maxMessage
    output[3] = uint64(channel.len(ch))
    output[4] = uint64(ch.isClosed)
    output[5] = uint64(r.isShared)

proc nexpo_channel_len*(ch: ptr ByteChannel): int64 {.exportc, cdecl.} =
  int64(channel.len(ch))

proc nexpo_channel_send*(ch: ptr ByteChannel, msg: pointer, len: int,
                         timeoutNs: int64): int32 {.exportc, cdecl.} =
  if msg == nil and len > 0:
    return setError(stInvalid, "msg: NULL pointer")
  statusOf(send(ch, msg, len, timeoutNs))

proc nexpo_channel_send_many*(ch: ptr ByteChannel, data: pointer, lens: ptr UncheckedArray[int],
                              n: int, timeoutNs: int64, sent: ptr int): int32 {.exportc, cdecl.} =
  var count = 0
  let st = sendMany(ch, data, lens, n, timeoutNs, count)
  sent[] = count
  statusOf(st)

proc nexpo_channel_select*(chs: ptr UncheckedArray[ptr ByteChannel], n: int, timeoutNs: int64,
                           index: ptr int, buf: pointer, cap: int, outLen: ptr int,
                           heap: ptr pointer): int32 {.exportc, cdecl.} =
  if n < 1:
    return setError(stInvalid, "channels: need at least one channel")
  var res: ReadResult
  var i = 0
  var st: Status
  try:
    st = select(chs, n, timeoutNs, i, buf, cap, res)
  except CatchableError as e:
    return setError(stInternal, e.msg)
  if st == stOk:
    index[] = i
    outLen[] = res.len
    heap[] = res.heap
  statusOf(st)

proc nexpo_channel_watch*(ch: ptr ByteChannel, fd: int32, interest: int32,
                          id: ptr int32): int32 {.exportc, cdecl.} =
  cabi:
    check(fd >= 0, "fd: must be an open file descriptor")
    check(interest in [1'i32, 2, 3], "interest: 1 (readable), 2 (writable) or 3")
    let w = watch(ch, cint(fd), nil, uint32(interest))
    check(w >= 0, "channel: too many asyncio watchers on one channel")
    id[] = int32(w)

proc nexpo_channel_unwatch*(ch: ptr ByteChannel, id: int32): int32 {.exportc, cdecl.} =
  unwatch(ch, int(id))
  0

proc nexpo_channel_try_recv_arm*(ch: ptr ByteChannel, id: int32, buf: pointer, cap: int,
                                 outLen: ptr int, heap: ptr pointer): int32 {.exportc, cdecl.} =
  if not validWatcher(ch, int(id)):
    return setError(stInvalid, "id: not a registered watcher")
  var res: ReadResult
  let st = tryRecvArm(ch, int(id), buf, cap, res)
  if st == stOk:
    outLen[] = res.len
    heap[] = res.heap
  statusOf(st)

proc nexpo_channel_try_send_arm*(ch: ptr ByteChannel, id: int32, msg: pointer,
                                 len: int): int32 {.exportc, cdecl.} =
  if not validWatcher(ch, int(id)):
    return setError(stInvalid, "id: not a registered watcher")
  statusOf(trySendArm(ch, int(id), msg, len))

proc nexpo_free*(p: pointer) {.exportc, cdecl.} =
  c_free(p)

proc nexpo_channel_wait*(ch: ptr ByteChannel, interest: int32, timeoutNs: int64): int32 {.exportc, cdecl.} =
  let side = interest and not 4'i32   # 4: wait on another thread's behalf (see runtime.h)
  if side != 1 and side != 2:
    return setError(stInvalid, "interest: 1 (readable) or 2 (writable), plus 4 to not claim the side")
  statusOf(waitReady(ch, uint32(side), timeoutNs, claimSide = (interest and 4) == 0))

# --- lent references: for C bindings only (declared in binding.h, not in the cffi interface) --

proc nexpo_channel_adopt*(address: uint): int32 {.exportc, cdecl.} =
  ## Ownership of a handle passes to the binding: NEXPO_OK once per live handle, else EINVAL.
  var ok = false
  try:
    withHandles:
      if liveHandles.getOrDefault(address, true) == false:
        liveHandles[address] = true
        ok = true
  except CatchableError:
    discard
  if ok: 0'i32
  else: setError(stInvalid, "channel: not a live channel handle, or already owned")

proc nexpo_channel_set_ref_release*(fn: RefRelease) {.exportc, cdecl.} =
  ring.refRelease = fn

proc nexpo_channel_serialise*(ch: ptr ByteChannel): int32 {.exportc, cdecl.} =
  if serialise(ch): 0'i32
  else: setError(stUnsupported, "channel: only an in-process ring can be serialised")

proc nexpo_channel_send_refs*(ch: ptr ByteChannel, objs, datas: ptr UncheckedArray[pointer],
                              lens: ptr UncheckedArray[int], n: int, sent: ptr int): int32 {.exportc, cdecl.} =
  var count = 0
  let st = sendRefs(ch, objs, datas, lens, n, count)
  sent[] = count
  statusOf(st)

proc nexpo_channel_recv_visit*(ch: ptr ByteChannel, maxN: int, visit: RefVisit, ctx: pointer,
                               count: ptr int): int32 {.exportc, cdecl.} =
  var got = 0
  let st = recvVisit(ch, maxN, visit, ctx, got)
  count[] = got
  statusOf(st)

proc nexpo_channel_send_ref*(ch: ptr ByteChannel, obj, data: pointer, len: int): int32 {.exportc, cdecl.} =
  statusOf(sendRef(ch, obj, data, len))

proc nexpo_channel_recv_one*(ch: ptr ByteChannel, visit: RefVisit, ctx: pointer): int32 {.exportc, cdecl.} =
  statusOf(recvOne(ch, visit, ctx))

# --- work on a binding's behalf (declared in binding.h) --------------------------------------

type
  CRangeFn = proc (lo, hi: csize_t, ctx: pointer) {.cdecl, gcsafe, raises: [].}
  CRange = object
    fn: CRangeFn
    ctx: pointer

proc runCRange(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let r = cast[ptr CRange](ctx)
  r.fn(csize_t(lo), csize_t(hi), r.ctx)

proc nexpo_parallel_for*(n, grain: csize_t, fn: CRangeFn, ctx: pointer): int32 {.exportc, cdecl.} =
  if fn == nil: return setError(stInvalid, "fn: NULL callback")
  if n > csize_t(high(int)): return setError(stInvalid, "n: " & $n & " ranges' worth is too large")
  var r = CRange(fn: fn, ctx: ctx)
  let g = if grain == 0 or grain > n: max(int(n), 1) else: int(grain)
  scheduler.parallelFor(0, int(n), g, runCRange, r.addr)
  0'i32
