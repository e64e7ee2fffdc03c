## Reading a compiled inference plan: the int64 instruction stream that nexpo/inference/_plan.py
## writes, and the buffers ("spaces") its operands point into.
##
## Instruction: [opcode, length (words, header included), payload...]. An operand is three
## words, (space, byte offset, byte length): space -1 is "none", 0 the arena of intermediates,
## 1 the constants, 2.. the run's inputs. Every operand is checked against its space before a
## kernel sees it, and every strided view against its operand, so a bad plan is an error, never
## an access outside the buffers the caller passed.

import ../errors

type
  Spaces* = object
    bases*: ptr UncheckedArray[pointer]
    sizes*: ptr UncheckedArray[int]
    count*: int

  Reader* = object
    code*: ptr UncheckedArray[int64]
    pos*, stop*: int     ## next word, end of the current instruction
    op*: string          ## name of the current instruction, for messages

  Buf* = object
    p*: pointer
    bytes*: int

proc word*(r: var Reader): int =
  if r.pos >= r.stop: fail(stInvalid, "inference plan: " & r.op & " instruction is truncated")
  result = int(r.code[r.pos])
  inc r.pos

proc nonNegative*(r: var Reader, what: string): int =
  result = r.word
  if result < 0: fail(stInvalid, "inference plan: " & r.op & ": negative " & what)

proc real*(r: var Reader): float32 = float32(cast[float64](r.word))

proc operand*(r: var Reader, sp: Spaces, elemSize: int, optional = false): Buf =
  let space = r.word
  let offset = r.word
  let length = r.word
  if space == -1 and optional: return Buf(p: nil, bytes: 0)
  if space < 0 or space >= sp.count:
    fail(stInvalid, "inference plan: " & r.op & ": no buffer space " & $space)
  if offset < 0 or length < 0 or offset > sp.sizes[space] or length > sp.sizes[space] - offset:
    fail(stInvalid, "inference plan: " & r.op & ": operand [" & $offset & ", +" & $length &
         ") is outside buffer " & $space & " of " & $sp.sizes[space] & " bytes")
  let p = cast[pointer](cast[int](sp.bases[space]) + offset)
  if length > 0 and cast[int](p) mod elemSize != 0:
    fail(stInvalid, "inference plan: " & r.op & ": operand is not aligned to its elements")
  Buf(p: (if length == 0: nil else: p), bytes: length)

proc need*(r: Reader, o: Buf, bytes: int, what: string) =
  ## The operand must hold at least `bytes` bytes (a kernel will touch that many).
  if bytes > 0 and (o.p == nil or o.bytes < bytes):
    fail(stInvalid, "inference plan: " & r.op & ": " & what & " needs " & $bytes &
         " bytes, its buffer has " & $o.bytes)

proc extent*(shape, strides: openArray[int]): int =
  ## Elements spanned by a view with non-negative strides (0 when it is empty).
  for d in 0 ..< shape.len:
    if shape[d] < 0: fail(stInvalid, "inference plan: negative dimension")
  result = 1
  for d in 0 ..< shape.len:
    if shape[d] == 0: return 0
    if strides[d] < 0: fail(stInvalid, "inference plan: negative stride")
    result += (shape[d] - 1) * strides[d]
