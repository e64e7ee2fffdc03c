## Scheduler overhead, no Python in the loop: fib(n) with one spawn+sync per call, the
## fibonacci-style bench nim-taskpools and weave publish. Prints one JSON line per case.
##
## Overhead per task = (time with spawn/sync on 1 thread - serial time) / tasks.
## Clock: wall clock (std/monotimes). Built and run by benchmarks/nim/run.py.

import std/[monotimes, os, strutils, times]
import nexpo_core/runtime/scheduler

proc fibSerial(n: int): int =
  if n < 2: n else: fibSerial(n - 1) + fibSerial(n - 2)

proc fibTask(t: ptr Task) {.nimcall, gcsafe, raises: [].} =
  let n = t.lo
  if n < 2:
    t.hi = n
    return
  var g: TaskGroup
  var left = Task(run: fibTask, lo: n - 1)
  spawn(g, left)
  var right = Task(run: fibTask, lo: n - 2)
  fibTask(addr right)
  sync(g)
  t.hi = left.hi + right.hi

proc fibPar(n: int): int =
  var root = Task(run: fibTask, lo: n)
  fibTask(addr root)
  root.hi

proc spawns(n: int): int =
  ## Calls of fibTask with n >= 2 spawn once each.
  if n < 2: 0 else: 1 + spawns(n - 1) + spawns(n - 2)

proc best(reps: int, body: proc (): int): (float, int) =
  result[0] = Inf
  for _ in 0 ..< reps:
    let t0 = getMonoTime()
    result[1] = body()
    result[0] = min(result[0], (getMonoTime() - t0).inNanoseconds.float)

let n = if paramCount() >= 1: parseInt(paramStr(1)) else: 30
let reps = if paramCount() >= 2: parseInt(paramStr(2)) else: 5
let tasks = spawns(n)
let (serialNs, expected) = best(reps, proc (): int = fibSerial(n))
echo """{"case": "fib-serial", "n": $1, "threads": 1, "ns": $2, "tasks": $3}""" % [
  $n, $serialNs, $tasks]
for threads in [1, 2]:
  setNumThreads(threads)
  discard fibPar(10)   # start the workers
  let (ns, got) = best(reps, proc (): int = fibPar(n))
  doAssert got == expected
  let perTask = if threads == 1: (ns - serialNs) / tasks.float else: ns / tasks.float
  echo """{"case": "fib-spawn-sync", "n": $1, "threads": $2, "ns": $3, "tasks": $4, "ns_per_task": $5, "speedup_vs_1": null}""" % [
    $n, $threads, $ns, $tasks, formatFloat(perTask, ffDecimal, 2)]
