# Included by capi.nim: the runtime exports (declared in runtime.h).

proc nexpo_get_num_threads*(): int32 {.exportc, cdecl.} = int32(scheduler.numThreads())

proc nexpo_set_num_threads*(n: int32): int32 {.exportc, cdecl.} =
  cabi:
    check(n >= 1 and n <= 1024, "n: thread count must be between 1 and 1024, got " & $n)
    scheduler.setNumThreads(n)
