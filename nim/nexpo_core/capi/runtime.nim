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
