## The portable paths' vector: four float32 lanes as a plain object whose loops GCC maps to
## SSE (x86-64) or NEON (aarch64) registers. The direct and Winograd convolutions' portable
## kernels are written on it with the same shape as their AVX2/AVX-512 ones.

{.push raises: [], boundChecks: off, overflowChecks: off, rangeChecks: off.}

type F4* = object
  v*: array[4, float32]

proc f4zero*(): F4 {.inline.} = discard
proc f4load*(p: ptr float32): F4 {.inline.} = copyMem(result.v[0].addr, p, 16)
proc f4store*(p: ptr float32, x: F4) {.inline.} = copyMem(p, x.v[0].unsafeAddr, 16)
proc f4set1*(x: float32): F4 {.inline.} =
  for i in 0 ..< 4: result.v[i] = x
proc f4fma*(a, b, c: F4): F4 {.inline.} =
  for i in 0 ..< 4: result.v[i] = c.v[i] + a.v[i] * b.v[i]
proc f4add*(a, b: F4): F4 {.inline.} =
  for i in 0 ..< 4: result.v[i] = a.v[i] + b.v[i]
proc f4sub*(a, b: F4): F4 {.inline.} =
  for i in 0 ..< 4: result.v[i] = a.v[i] - b.v[i]
proc f4max*(a, b: F4): F4 {.inline.} =
  ## As max_ps: when either lane is NaN, the second operand's lane is the result.
  for i in 0 ..< 4: result.v[i] = (if a.v[i] > b.v[i]: a.v[i] else: b.v[i])

{.pop.}
