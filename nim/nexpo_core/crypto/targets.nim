## Function-level target pragmas for the crypto kernels' wide paths, usable from any module.
##
## `cpu.nim` declares the same attributes with `{.pragma: ...}`, but Nim 1.6 cannot export a
## user pragma, so other modules cannot name them; these macro pragmas add the identical
## `codegenDecl`. Keep the target lists in sync with cpu.nim.

import std/macros

proc withTarget(p: NimNode, targets: string): NimNode =
  result = p
  result.addPragma(newColonExpr(ident"codegenDecl",
                                newLit("__attribute__((target(\"" & targets & "\"))) $# $#$#")))

macro shanifn*(p: untyped): untyped = withTarget(p, "sha,sse4.1,ssse3")
macro avx2fn*(p: untyped): untyped = withTarget(p, "avx2,fma")
macro avx512fn*(p: untyped): untyped = withTarget(p, "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")
