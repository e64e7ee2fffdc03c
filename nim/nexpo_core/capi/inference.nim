# Included by capi.nim: the inference engine's export (declared in inference.h).

import ../inference/[program, exec]

proc nexpo_infer_run*(code: ptr UncheckedArray[int64], codeLen: int,
                      bases: ptr UncheckedArray[pointer], sizes: ptr UncheckedArray[int],
                      nspaces: int): int32 {.exportc, cdecl.} =
  cabi:
    checkPtr(code, codeLen, "code")
    checkPtr(bases, nspaces, "bases")
    checkPtr(sizes, nspaces, "sizes")
    for i in 0 ..< nspaces:
      check(sizes[i] >= 0, "sizes: negative size for space " & $i)
      check(bases[i] != nil or sizes[i] == 0, "bases: NULL for space " & $i)
    runPlan(code, codeLen, Spaces(bases: bases, sizes: sizes, count: nspaces))
