## Constant-time helpers shared by the crypto kernels.
##
## Properties:
## - `ctEqual` reads every byte of both buffers whatever they hold: its time depends on the
##   length only (lengths are public)
## - `wipe` uses libc's `explicit_bzero`, which the compiler may not remove as a dead store

proc explicitBzero(p: pointer, n: csize_t) {.importc: "explicit_bzero", header: "<string.h>".}

proc wipe*(p: pointer, n: int) {.inline.} =
  ## Zero `n` bytes of key material at `p` in a way the optimiser cannot elide.
  if n > 0: explicitBzero(p, csize_t(n))

template wipe*[T](x: var T) =
  wipe(x.addr, sizeof(T))

proc ctEqual*(a, b: ptr UncheckedArray[byte], n: int): bool =
  ## a[0..n) == b[0..n), without an early exit.
  var acc = 0'u32
  for i in 0 ..< n: acc = acc or uint32(a[i] xor b[i])
  # (acc - 1) >> 31 is 1 exactly when acc == 0; no branch on the data.
  result = ((acc - 1) shr 31) == 1

template bytesOf*(a: openArray[byte]): ptr UncheckedArray[byte] =
  ## The address of an openArray's bytes for the pointer-based kernels (nil when empty).
  (if a.len == 0: nil else: cast[ptr UncheckedArray[byte]](a[0].unsafeAddr))
