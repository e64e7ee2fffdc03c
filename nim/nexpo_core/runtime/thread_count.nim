## How many threads the pool computes with by default: `NEXPO_NUM_THREADS` when set (clamped),
## else the CPUs this process may run on (its affinity mask, which a container's cpuset or
## `taskset` narrows; `countProcessors` counts the whole machine).

import std/[cpuinfo, os, strutils]

proc countSetBits(x: uint64): int {.inline.} =
  var v = x
  while v != 0:
    v = v and (v - 1)
    inc result

when defined(linux):
  # At module level: an importc var declared inside a proc is a fresh local (0, read(2)'s
  # number), so the call read stdin instead, and hung a process whose stdin was an idle pipe.
  let SYS_sched_getaffinity {.importc, header: "<sys/syscall.h>", nodecl.}: clong
  proc syscall(number: clong): clong {.importc, header: "<unistd.h>", varargs.}

proc affinityCores*(): int =
  ## CPUs this process may run on (sched_getaffinity), at least 1.
  when defined(linux):
    var mask: array[128, uint64]   # 8192 CPUs
    let bytes = syscall(SYS_sched_getaffinity, 0.cint, csize_t(sizeof(mask)), addr mask[0])
    if bytes > 0:
      var n = 0
      for i in 0 ..< int(bytes) div 8:
        n += countSetBits(mask[i])
      return max(n, 1)
  max(1, countProcessors())

proc defaultThreads*(limit: int): int =
  ## Threads to compute with, in 1 .. `limit`.
  let env = getEnv("NEXPO_NUM_THREADS")
  if env.len > 0:
    try:
      return clamp(parseInt(env), 1, limit)
    except ValueError:
      discard
  clamp(affinityCores(), 1, limit)
