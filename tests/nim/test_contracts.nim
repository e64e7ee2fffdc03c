## Contracts (contracts.nim): on in the debug, sanitize and tsan profiles, where a broken one
## prints its condition and the value of each operand and aborts; off (not even evaluated) in
## release. And the SPSC ring's contract fires on an in-process ring whose relations were broken
## behind its back. The broken cases run in a child process (this program, re-run with
## NEXPO_CONTRACT_CASE set), since a broken contract ends its process.

import std/[atomics, os, osproc, strutils, unittest]
import nexpo_core/[config, contracts, errors]
import nexpo_core/runtime/[channel, ring]

proc sideEffect(counter: var int): int =
  inc counter
  5

proc brokenPlain() =
  let a = 3
  let b = 7
  invariant(a >= b and b < 10)

proc brokenRing() =
  let ch = newChannel(cmSpsc, 8, 16)
  var v = 1'u64
  for i in 0 ..< 8:
    doAssert send(ch, addr v, sizeof(v), 0) == stOk   # full: the next send re-reads the head
  ch.ring.head.store(100, moRelaxed)                   # what no sender or receiver does
  discard send(ch, addr v, sizeof(v), 0)

proc runCase(name: string): tuple[output: string, exitCode: int] =
  putEnv("NEXPO_CONTRACT_CASE", name)
  defer: delEnv("NEXPO_CONTRACT_CASE")
  execCmdEx(quoteShell(getAppFilename()))

case getEnv("NEXPO_CONTRACT_CASE")
of "plain": brokenPlain(); quit(0)
of "ring": brokenRing(); quit(0)
else: discard

suite "contracts":
  test "a broken contract shows its condition and operands, then aborts (or is compiled out)":
    var calls = 0
    when contractsEnabled:
      let (output, code) = runCase("plain")
      check code != 0
      check "invariant broken: a >= b and b < 10" in output
      check "a = 3" in output and "b = 7" in output
      check "test_contracts.nim(" in output
      preCondition(sideEffect(calls) == 5)
      check calls == 1
    else:
      brokenPlain()                     # compiled to nothing: no failure
      preCondition(sideEffect(calls) == 0)
      check calls == 0

  test "a held contract is silent":
    let h = 2'u64
    let t = 5'u64
    invariant(h <= t and t - h <= 8)
    postCondition(not (h > t))

  test "the SPSC ring's contract catches a head past the tail (in-process ring)":
    when contractsEnabled:
      let (output, code) = runCase("ring")
      check code != 0
      check "invariant broken" in output and "spsc.nim" in output and "h = 100" in output
