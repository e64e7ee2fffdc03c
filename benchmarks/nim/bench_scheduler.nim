## Scheduler overhead, no Python in the loop: fib(n) with one spawn+sync per call, the
## fibonacci-style bench nim-taskpools and weave publish. Prints one JSON line per case.
##
## Overhead per task = (time with spawn/sync on 1 thread - serial time) / tasks, on the wall
## clock and on this thread's CPU clock (robust when other processes share the cores).
## With 2 threads: wall time / tasks, and the speedup over 1 thread.
## Built and run by benchmarks/nim/run.py (`python benchmarks/nim/run.py scheduler -- 30 5`).

import std/[monotimes, os, strutils, times]
import nexpo_core/runtime/scheduler
import ./cputime

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


proc best(reps: int, body: proc (): int): (float, int, float) =
  ## (best wall ns, result, best thread-CPU ns)
  result[0] = Inf
  result[2] = Inf
  for _ in 0 ..< reps:
    let t0 = getMonoTime()
    let c0 = threadCpuNs()
    result[1] = body()
    result[2] = min(result[2], threadCpuNs() - c0)
    result[0] = min(result[0], (getMonoTime() - t0).inNanoseconds.float)

let n = if paramCount() >= 1: parseInt(paramStr(1)) else: 30
let reps = if paramCount() >= 2: parseInt(paramStr(2)) else: 5
let tasks = spawns(n)
let (serialNs, expected, serialCpu) = best(reps, proc (): int = fibSerial(n))
echo """{"case": "fib-serial", "n": $1, "threads": 1, "ns": $2, "cpu_ns": $3, "tasks": $4}""" % [
  $n, $serialNs, $serialCpu, $tasks]
var oneThreadNs = 0.0
for threads in [1, 2]:
  setNumThreads(threads)
  discard fibPar(10)   # start the workers
  let (ns, got, cpu) = best(reps, proc (): int = fibPar(n))
  doAssert got == expected
  if threads == 1:
    oneThreadNs = ns
    echo """{"case": "fib-spawn-sync", "n": $1, "threads": 1, "ns": $2, "tasks": $3, "overhead_ns_per_task_wall": $4, "overhead_ns_per_task_cpu": $5}""" % [
      $n, $ns, $tasks, formatFloat((ns - serialNs) / tasks.float, ffDecimal, 2),
      formatFloat((cpu - serialCpu) / tasks.float, ffDecimal, 2)]
  else:
    echo """{"case": "fib-spawn-sync", "n": $1, "threads": $2, "ns": $3, "tasks": $4, "ns_per_task_wall": $5, "speedup_vs_1_thread": $6}""" % [
      $n, $threads, $ns, $tasks, formatFloat(ns / tasks.float, ffDecimal, 2),
      formatFloat(oneThreadNs / ns, ffDecimal, 2)]
