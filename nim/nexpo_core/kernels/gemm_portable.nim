## Portable micro-kernels (any CPU; the only path on aarch64). Plain loops over a small register
## tile; gcc vectorises them with the baseline ISA (SSE4.2 on x86-64-v2, NEON on aarch64).

import ./common

{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

template portableBody(T: typedesc, MR, NR: static int, rsa, csa: untyped) {.dirty.} =
  var acc: array[MR * NR, T]
  var pa = a
  var pb = b
  for p in 0 ..< kc:
    for i in 0 ..< MR:
      let av = (pa +! (i * rsa))[]
      for j in 0 ..< NR:
        acc[i * NR + j] += av * (pb +! j)[]
    pa = pa +! csa
    pb = pb +! rsb
  for i in 0 ..< MR:
    let row = c +! (i * ldc)
    if accumulate:
      for j in 0 ..< NR: (row +! j)[] = (row +! j)[] + acc[i * NR + j]
    else:
      for j in 0 ..< NR: (row +! j)[] = acc[i * NR + j]

proc ukPortableF32(kc: int, a, b: ptr float32, rsb: int, c: ptr float32, ldc: int,
                   accumulate: bool) {.nimcall, gcsafe, raises: [].} =
  portableBody(float32, 4, 8, 1, 4)

proc ukPortableF64(kc: int, a, b: ptr float64, rsb: int, c: ptr float64, ldc: int,
                   accumulate: bool) {.nimcall, gcsafe, raises: [].} =
  portableBody(float64, 4, 4, 1, 4)

proc ukPortableF32Direct(kc: int, a: ptr float32, rsa, csa: int, b: ptr float32, rsb: int,
                         c: ptr float32, ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [].} =
  portableBody(float32, 4, 8, rsa, csa)

proc ukPortableF64Direct(kc: int, a: ptr float64, rsa, csa: int, b: ptr float64, rsb: int,
                         c: ptr float64, ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [].} =
  portableBody(float64, 4, 4, rsa, csa)

proc ukPortableF32Rows2(kc: int, a: ptr float32, rsa, csa: int, b: ptr float32, rsb: int,
                        c: ptr float32, ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [].} =
  portableBody(float32, 2, 8, rsa, csa)

proc ukPortableF32Rows1(kc: int, a: ptr float32, rsa, csa: int, b: ptr float32, rsb: int,
                        c: ptr float32, ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [].} =
  portableBody(float32, 1, 8, rsa, csa)

proc ukPortableF64Rows2(kc: int, a: ptr float64, rsa, csa: int, b: ptr float64, rsb: int,
                        c: ptr float64, ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [].} =
  portableBody(float64, 2, 4, rsa, csa)

proc ukPortableF64Rows1(kc: int, a: ptr float64, rsa, csa: int, b: ptr float64, rsb: int,
                        c: ptr float64, ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [].} =
  portableBody(float64, 1, 4, rsa, csa)

const portableSmallNv = [4, 4, 2, 2, 2, 2, 1, 1]  ## vectors per wide small-path tile, by rows - 1
defineSmallKernels("smallPortableF32", "float32", portableSmallNv,
  "portableBody(float32, $MR, 8 * $NV, rsa, csa)", "")
defineSmallKernels("smallPortableF64", "float64", portableSmallNv,
  "portableBody(float64, $MR, 8 * $NV, rsa, csa)", "")

{.pop.}

const
  portableF32* = KernelSpec[float32](mr: 4, nr: 8, kc: 256, mc: 128, nc: 2048, uk: ukPortableF32, ukDirect: ukPortableF32Direct,
    ukRows: [nil, nil, ukPortableF32Rows2, ukPortableF32Rows1],
    sw: 8, snv: portableSmallNv, smallWide: smallPortableF32Wide, smallNarrow: smallPortableF32Narrow)
  portableF64* = KernelSpec[float64](mr: 4, nr: 4, kc: 256, mc: 128, nc: 2048, uk: ukPortableF64, ukDirect: ukPortableF64Direct,
    ukRows: [nil, nil, ukPortableF64Rows2, ukPortableF64Rows1],
    sw: 8, snv: portableSmallNv, smallWide: smallPortableF64Wide, smallNarrow: smallPortableF64Narrow)
