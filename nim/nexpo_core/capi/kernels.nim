# Included by capi.nim: the kernels exports (declared in kernels.h).

import ../kernels/gemm

proc checkDims(m, n, k: int) =
  for (v, name) in [(m, "m"), (n, "n"), (k, "k")]:
    if v < 0: fail(stInvalid, name & ": negative dimension " & $v)

proc checkAddr(address: uint, elements: int, name: string) =
  if address == 0 and elements > 0: fail(stInvalid, name & ": NULL pointer for " & $elements & " elements")

proc runGemm[T](m, n, k: int, a: uint, rsa, csa: int, b: uint, rsb, csb: int, bias: uint,
                act: Activation, c: uint, ldc: int) =
  checkDims(m, n, k)
  checkAddr(a, m * k, "a")
  checkAddr(b, k * n, "b")
  checkAddr(c, m * n, "out")
  if m > 0 and n > 0: check(ldc >= n, "out: row stride " & $ldc & " is smaller than n = " & $n)
  for (address, name) in [(a, "a"), (b, "b"), (c, "out"), (bias, "bias")]:
    check(address mod uint(sizeof(T)) == 0, name & ": address is not aligned to the element size")
  gemmStrided[T](m, n, k, Operand[T](base: cast[ptr T](a), rs: rsa, cs: csa),
          Operand[T](base: cast[ptr T](b), rs: rsb, cs: csb), cast[ptr T](c), ldc,
          cast[ptr T](bias), act)

proc gemmBytes(m, n, k, dtype: int): int =
  (m * k + k * n + m * n) * (if dtype == 0: 4 else: 8)

proc dispatchGemm(dtype: int32, m, n, k: int, a: uint, rsa, csa: int, b: uint, rsb, csb: int,
                  bias: uint, act: Activation, c: uint, ldc: int) =
  case dtype
  of 0: runGemm[float32](m, n, k, a, rsa, csa, b, rsb, csb, bias, act, c, ldc)
  of 1: runGemm[float64](m, n, k, a, rsa, csa, b, rsb, csb, bias, act, c, ldc)
  else: fail(stType, "dtype: expected NEXPO_F32 (0) or NEXPO_F64 (1), got " & $dtype)

proc nexpo_matmul*(dtype: int32, m, n, k: int, a: uint, rsa, csa: int, b: uint, rsb, csb: int,
                   c: uint, ldc: int): int32 {.exportc, cdecl.} =
  cabi:
    dispatchGemm(dtype, m, n, k, a, rsa, csa, b, rsb, csb, 0, actNone, c, ldc)
    countCall(kMatmul, gemmBytes(m, n, k, dtype))

proc nexpo_linear*(dtype: int32, m, n, k: int, x: uint, rsx, csx: int, w: uint, rsw, csw: int,
                   bias: uint, activation: int32, output: uint, ldo: int): int32 {.exportc, cdecl.} =
  cabi:
    check(activation >= ord(low(Activation)) and activation <= ord(high(Activation)),
          "activation: unknown code " & $activation)
    dispatchGemm(dtype, m, n, k, x, rsx, csx, w, rsw, csw, bias, Activation(activation), output, ldo)
    countCall(kLinear, gemmBytes(m, n, k, dtype))
