# Included by capi.nim: the kernels exports (declared in kernels.h).

import ../kernels/gemm

template checkDim(v: int, name: string) =
  if v < 0: fail(stInvalid, name & ": negative dimension " & $v)

template checkAddr(T: typedesc, address: pointer, elements: int, name: string) =
  if address == nil and elements > 0:
    fail(stInvalid, name & ": NULL pointer for " & $elements & " elements")
  if cast[uint](address) mod uint(sizeof(T)) != 0:
    fail(stInvalid, name & ": address is not aligned to the element size")

proc runGemm[T](m, n, k: int, a: pointer, rsa, csa: int, b: pointer, rsb, csb: int, bias: pointer,
                act: Activation, c: pointer, ldc: int) =
  checkDim(m, "m")
  checkDim(n, "n")
  checkDim(k, "k")
  checkAddr(T, a, m * k, "a")
  checkAddr(T, b, k * n, "b")
  checkAddr(T, c, m * n, "out")
  checkAddr(T, bias, 0, "bias")
  if m > 0 and n > 0 and ldc < n:
    fail(stInvalid, "out: row stride " & $ldc & " is smaller than n = " & $n)
  gemmStrided[T](m, n, k, Operand[T](base: cast[ptr T](a), rs: rsa, cs: csa),
          Operand[T](base: cast[ptr T](b), rs: rsb, cs: csb), cast[ptr T](c), ldc,
          cast[ptr T](bias), act)

proc gemmBytes(m, n, k, dtype: int): int =
  (m * k + k * n + m * n) * (if dtype == 0: 4 else: 8)

proc dispatchGemm(dtype: int32, m, n, k: int, a: pointer, rsa, csa: int, b: pointer, rsb, csb: int,
                  bias: pointer, act: Activation, c: pointer, ldc: int) =
  case dtype
  of 0: runGemm[float32](m, n, k, a, rsa, csa, b, rsb, csb, bias, act, c, ldc)
  of 1: runGemm[float64](m, n, k, a, rsa, csa, b, rsb, csb, bias, act, c, ldc)
  else: fail(stType, "dtype: expected NEXPO_F32 (0) or NEXPO_F64 (1), got " & $dtype)

proc nexpo_matmul*(dtype: int32, m, n, k: int, a: pointer, rsa, csa: int, b: pointer, rsb, csb: int,
                   c: pointer, ldc: int): int32 {.exportc, cdecl.} =
  cabi:
    dispatchGemm(dtype, m, n, k, a, rsa, csa, b, rsb, csb, nil, actNone, c, ldc)
    countCall(kMatmul, gemmBytes(m, n, k, dtype))

proc nexpo_linear*(dtype: int32, m, n, k: int, x: pointer, rsx, csx: int, w: pointer, rsw, csw: int,
                   bias: pointer, activation: int32, output: pointer, ldo: int): int32 {.exportc, cdecl.} =
  cabi:
    check(activation >= ord(low(Activation)) and activation <= ord(actSoftmax),
          "activation: unknown code " & $activation)
    dispatchGemm(dtype, m, n, k, x, rsx, csx, w, rsw, csw, bias, Activation(activation), output, ldo)
    countCall(kLinear, gemmBytes(m, n, k, dtype))

proc nexpo_gemm_b_panel_width*(isa: int32): int32 {.exportc, cdecl.} =
  if isa < ord(low(Isa)) or isa > ord(high(Isa)): 0'i32
  else: int32(bPanelWidth(Isa(isa)))

proc nexpo_gemm_pack_weights*(isa: int32, k, n: int, b, dst: pointer): int32 {.exportc, cdecl.} =
  cabi:
    check(isa >= ord(low(Isa)) and isa <= ord(high(Isa)), "isa: unknown path " & $isa)
    checkDim(k, "k")
    checkDim(n, "n")
    checkAddr(float32, b, k * n, "b")
    let (nr, elems) = packedWeightsLen[float32](Isa(isa), k, n)
    checkAddr(float32, dst, elems, "dst")
    packWeights[float32](nr, k, n, Operand[float32](base: cast[ptr float32](b), rs: n, cs: 1),
                         cast[ptr float32](dst))
