## Contracts: `preCondition`, `postCondition` and `invariant`, checked in the debug, sanitize and
## tsan profiles (`-d:nexpoContracts`, config.nim's `contractsEnabled`) and compiled to nothing
## in release (the condition is not even type-checked into code).
##
## A broken contract prints, on stderr, the kind, the condition as written, where it is, and the
## value of every operand of its comparisons, then aborts the process, e.g.
##
## ::
##
##   invariant broken: h <= t0 and t0 - h <= q.capacity   [spsc.nim(52, 14)]
##       h = 17
##       t0 = 12
##       t0 - h = 18446744073709551611
##       q.capacity = 1024
##
## The operands are evaluated again to print them (only after a failure): in lock-free code,
## write contracts over locals the code already read, not over fresh atomic loads.
##
## Ideas from Weave's instrumentation/contracts.nim (a contract shows its operands).

import std/[macros, strutils]
import ./config

proc c_abort() {.importc: "abort", header: "<stdlib.h>", noreturn.}
proc c_write(fd: cint, p: pointer, n: csize_t): int {.importc: "write", header: "<unistd.h>".}

proc contractFailed(msg: string) {.noinline, noreturn, raises: [].} =
  ## Print and abort: a broken relation of a lock-free structure means memory is about to be
  ## corrupted, so nothing unwinds (no exception through `raises: []` code, no atexit).
  let line = msg & "\n"
  discard c_write(2, unsafeAddr line[0], csize_t(line.len))
  c_abort()

proc extractFilename(path: string): string =
  var i = path.len
  while i > 0 and path[i - 1] notin {'/', '\\'}: dec i
  path[i .. ^1]

proc contractValue*[T](x: T): string {.raises: [].} =
  ## An operand as the failure message shows it.
  when T is pointer or T is ptr:
    "0x" & toHex(cast[uint](x))
  elif compiles($x):
    try: $x
    except Exception: "?"
  else:
    "?"

proc readable(code: string): string =
  ## `repr` of template code, without the `gensymNN suffixes of the template's locals.
  var i = 0
  while i < code.len:
    if code[i] == '`' and code.continuesWith("gensym", i + 1):
      i += 7
      while i < code.len and code[i] in {'0'..'9'}: inc i
    else:
      result.add code[i]
      inc i

proc opName(n: NimNode): string =
  if n.kind in {nnkOpenSymChoice, nnkClosedSymChoice}: $n[0]
  elif n.kind in {nnkIdent, nnkSym}: $n
  else: ""

proc operands(cond: NimNode, into: var seq[NimNode]) =
  ## The operands of the comparisons in `cond` (through `and`, `or`, `not`).
  case cond.kind
  of nnkInfix:
    let op = opName(cond[0])
    if op in ["and", "or"]:
      operands(cond[1], into)
      operands(cond[2], into)
    elif op in ["<", "<=", "==", "!=", ">", ">=", "in", "notin"]:
      for side in [cond[1], cond[2]]:
        if side.kind notin nnkLiterals:
          into.add side
  of nnkPrefix:
    if opName(cond[0]) == "not": operands(cond[1], into)
  of nnkPar:
    if cond.len == 1: operands(cond[0], into)
  else: discard

proc contractImpl(kind: string, cond: NimNode): NimNode =
  if not contractsEnabled:
    return newEmptyNode()
  let info = cond.lineInfoObj
  let where = extractFilename(info.filename) & "(" & $info.line & ", " & $info.column & ")"
  let head = kind & ": " & readable(cond.repr) & "   [" & where & "]"
  var ops: seq[NimNode]
  operands(cond, ops)
  let msg = genSym(nskVar, "msg")
  var report = newStmtList(newVarStmt(msg, newLit(head)))
  for op in ops:
    let line = newLit("\n    " & readable(op.repr) & " = ")
    report.add quote do:
      `msg`.add `line`
      `msg`.add contractValue(`op`)
  report.add newCall(bindSym"contractFailed", msg)
  result = quote do:
    if not (`cond`):
      `report`

macro preCondition*(cond: untyped): untyped =
  ## What the caller must have made true.
  contractImpl("precondition failed", cond)

macro postCondition*(cond: untyped): untyped =
  ## What the code promises on the way out.
  contractImpl("postcondition failed", cond)

macro invariant*(cond: untyped): untyped =
  ## What holds at this point whatever the interleaving (the lock-free structures' relations).
  contractImpl("invariant broken", cond)
