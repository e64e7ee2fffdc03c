## Function-level target pragmas for the wide x86 paths: `{.avx2fn.}`, `{.avx512fn.}`,
## `{.shanifn.}`, `{.aesnifn.}`, `{.vaesfn.}`, `{.ifmafn.}` add a GCC `target(...)` attribute to a proc, so one build compiled for the
## x86-64-v2 baseline can carry AVX2/AVX-512/SHA-NI code that runs only when `cpu.nim` selects it.
##
## They are macro pragmas (not `{.pragma: ...}` aliases) because Nim 1.6 cannot export the
## latter; every module that needs one imports this module. Every helper proc that a wide proc
## inlines must carry the same pragma, or GCC refuses to inline it across targets.

import std/macros

const
  avx2Targets* = "avx2,fma"
  avx512Targets* = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"
  shaNiTargets* = "sha,sse4.1,ssse3"
  aesNiTargets* = "aes,pclmul,avx2,fma"             # AES-NI + PCLMULQDQ, VEX-encoded
  vaesTargets* = avx512Targets & ",aes,pclmul,vaes,vpclmulqdq"
  ifmaTargets* = avx512Targets & ",avx512ifma"      # 52-bit multiply-accumulate (Poly1305)

proc withTarget(p: NimNode, targets: string, prefix = ""): NimNode =
  result = p
  result.addPragma(newColonExpr(ident"codegenDecl",
                                newLit(prefix & "__attribute__((target(\"" & targets & "\"))) $# $#$#")))

macro avx2fn*(p: untyped): untyped = withTarget(p, avx2Targets)
macro avx512fn*(p: untyped): untyped = withTarget(p, avx512Targets)
macro shanifn*(p: untyped): untyped = withTarget(p, shaNiTargets)
macro aesnifn*(p: untyped): untyped = withTarget(p, aesNiTargets)
macro vaesfn*(p: untyped): untyped = withTarget(p, vaesTargets)
macro ifmafn*(p: untyped): untyped = withTarget(p, ifmaTargets)
# The same, for small helpers of a hot loop: a target attribute replaces Nim's `static inline`,
# and an extern function in a shared object is interposable, so GCC would call it via the PLT.
const inlinePrefix = "static inline __attribute__((always_inline)) "
macro aesniInline*(p: untyped): untyped = withTarget(p, aesNiTargets, inlinePrefix)
macro vaesInline*(p: untyped): untyped = withTarget(p, vaesTargets, inlinePrefix)
