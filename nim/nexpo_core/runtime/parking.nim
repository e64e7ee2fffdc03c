## Parking: block a thread until a 32-bit word changes, with an optional timeout.
##
## The one blocking primitive of the runtime (scheduler workers, join waiters and channel
## waiters all park through it). It is the futex contract:
##
## - `parkWait(word, expected, timeoutNs, shared)` sleeps only while `word == expected`
##   (checked atomically with going to sleep, so a change in between is never missed); it may
##   return early (spurious wakeups, signals), so callers always re-check their condition.
## - `parkWake(word, n, shared)` wakes up to `n` threads waiting on `word`.
## - `shared = true` makes the wait visible across processes (the word lives in shared memory):
##   no FUTEX_PRIVATE_FLAG, the kernel keys the wait on the physical page.
##
## Backends:
## - Linux: the futex(2) system call via `syscall` (no glibc wrapper exists).
## - elsewhere (or `-d:nexpoNoFutex`, config.nim's `futexDisabled`): a condition-variable
##   fallback, `condvarWait`/`condvarWake`, also usable directly (the tests exercise it on Linux too). Waits and wakes go through a small
##   table of (mutex, condvar) buckets hashed by address, so a wake can never slip between a
##   waiter's check and its sleep. Across processes the fallback cannot block on another
##   process's memory, so shared waits degrade to 1 ms polling sleeps.
##
## Ideas from Linux futex(2), "Futexes Are Tricky" (U. Drepper,
## https://www.akkadia.org/drepper/futex.pdf) and the parking lot of WebKit/Rust.

import std/[atomics, locks, monotimes]
import ../config

const useFutex* = defined(linux) and not futexDisabled

type ParkWord* = Atomic[uint32] ## the word threads park on; 4-byte aligned as futex wants

proc nowNs*(): int64 {.inline.} =
  ## Monotonic clock in nanoseconds (deadlines of timed waits).
  getMonoTime().ticks

# --- condition-variable fallback --------------------------------------------------------

const bucketCount = 64

type Bucket = object
  lock {.align: 64.}: Lock
  cond: Cond

var buckets: array[bucketCount, Bucket]

proc initBuckets() =
  for b in buckets.mitems:
    initLock(b.lock)
    initCond(b.cond)

initBuckets()

proc bucketOf(word: ptr ParkWord): ptr Bucket {.inline.} =
  addr buckets[(cast[uint](word) shr 2) mod bucketCount]

type
  Timespec {.importc: "struct timespec", header: "<time.h>".} = object
    tv_sec: clong
    tv_nsec: clong

proc pthread_cond_timedwait(c: ptr Cond, m: ptr Lock, t: ptr Timespec): cint {.
  importc, header: "<pthread.h>".}
proc clock_gettime(clk: cint, t: ptr Timespec): cint {.importc, header: "<time.h>".}
var CLOCK_REALTIME {.importc, header: "<time.h>".}: cint

proc condvarWait*(word: ptr ParkWord, expected: uint32, timeoutNs: int64) =
  ## The fallback backend of `parkWait` (same contract, one process only).
  let b = bucketOf(word)
  acquire(b.lock)
  if word[].load(moAcquire) == expected:
    if timeoutNs < 0:
      wait(b.cond, b.lock)
    else:
      var ts: Timespec
      discard clock_gettime(CLOCK_REALTIME, addr ts)
      let total = int64(ts.tv_nsec) + timeoutNs
      ts.tv_sec = clong(int64(ts.tv_sec) + total div 1_000_000_000)
      ts.tv_nsec = clong(total mod 1_000_000_000)
      discard pthread_cond_timedwait(addr b.cond, addr b.lock, addr ts)
  release(b.lock)

proc condvarWake*(word: ptr ParkWord) =
  ## The fallback backend of `parkWake`: wakes every waiter of the bucket (they re-check).
  let b = bucketOf(word)
  acquire(b.lock)   # orders this wake after any waiter's check-then-sleep
  release(b.lock)
  broadcast(b.cond)

# --- futex ------------------------------------------------------------------------------

when useFutex:
  var SYS_futex {.importc, header: "<sys/syscall.h>".}: clong
  proc syscall(number: clong): clong {.importc, header: "<unistd.h>", varargs.}
  const
    futexWaitOp = 0.cint
    futexWakeOp = 1.cint
    futexPrivate = 128.cint

  proc futexWait(word: ptr ParkWord, expected: uint32, timeoutNs: int64, shared: bool) {.inline.} =
    let op = if shared: futexWaitOp else: futexWaitOp or futexPrivate
    if timeoutNs < 0:
      discard syscall(SYS_futex, word, op, expected, nil, nil, 0.cint)
    else:
      var ts = Timespec(tv_sec: clong(timeoutNs div 1_000_000_000),
                        tv_nsec: clong(timeoutNs mod 1_000_000_000))
      discard syscall(SYS_futex, word, op, expected, addr ts, nil, 0.cint)

  proc futexWake(word: ptr ParkWord, n: int32, shared: bool) {.inline.} =
    let op = if shared: futexWakeOp else: futexWakeOp or futexPrivate
    discard syscall(SYS_futex, word, op, n, nil, nil, 0.cint)

# --- the interface ----------------------------------------------------------------------

proc parkWait*(word: ptr ParkWord, expected: uint32, timeoutNs: int64 = -1,
               shared = false) =
  ## Sleep while `word[] == expected`, at most `timeoutNs` (negative: no limit). May return
  ## early; the caller re-checks its condition and its deadline.
  when useFutex:
    futexWait(word, expected, timeoutNs, shared)
  else:
    if shared:
      if word[].load(moAcquire) == expected:
        let nap = if timeoutNs < 0: 1_000_000'i64 else: min(timeoutNs, 1_000_000'i64)
        var ts = Timespec(tv_sec: 0, tv_nsec: clong(nap))
        proc nanosleep(a, b: ptr Timespec): cint {.importc, header: "<time.h>".}
        discard nanosleep(addr ts, nil)
    else:
      condvarWait(word, expected, timeoutNs)

proc parkWake*(word: ptr ParkWord, n: int32 = high(int32), shared = false) =
  ## Wake up to `n` threads parked on `word` (all of them by default).
  when useFutex:
    futexWake(word, n, shared)
  else:
    if not shared:
      condvarWake(word)

proc remainingNs*(deadline: int64): int64 {.inline.} =
  ## Time left until `deadline` (from `nowNs`), or -1 for "no deadline" (deadline < 0).
  if deadline < 0: -1'i64 else: max(0'i64, deadline - nowNs())

proc deadlineAfter*(timeoutNs: int64): int64 {.inline.} =
  ## The absolute deadline of a relative timeout; -1 (no deadline) for a negative timeout.
  if timeoutNs < 0: -1'i64 else: nowNs() + timeoutNs
