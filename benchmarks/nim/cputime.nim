## The calling thread's CPU time, shared by the Nim benches: rates per CPU-second of a thread are
## robust when other processes share the cores (the wall clock is not).

type Timespec {.importc: "struct timespec", header: "<time.h>".} = object
  tv_sec, tv_nsec: clong
proc clock_gettime(clk: cint, t: ptr Timespec): cint {.importc, header: "<time.h>".}
var CLOCK_THREAD_CPUTIME_ID {.importc, header: "<time.h>".}: cint

proc threadCpuNs*(): float =
  ## CPU time of this thread, in nanoseconds.
  var ts: Timespec
  discard clock_gettime(CLOCK_THREAD_CPUTIME_ID, addr ts)
  ts.tv_sec.float * 1e9 + ts.tv_nsec.float
