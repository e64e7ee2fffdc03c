# Included by capi.nim: initialisation, errors, build and CPU information (declared in core.h).

import std/atomics

proc nexpoNimMain() {.importc, cdecl.}

var initState: Atomic[int]  # 0 = not started, 1 = running, 2 = done

proc nexpo_init*(): int32 {.exportc, cdecl.} =
  var expected = 0
  if initState.compareExchange(expected, 1):
    when not testProgram:  # a test program's own main() already ran it
      nexpoNimMain()
    cpu.detect()
    initState.store(2)
  else:
    while initState.load() != 2: cpuRelax()
  0

proc nexpo_last_error*(): cstring {.exportc, cdecl.} = lastErrorCString()

proc nexpo_noop*() {.exportc, cdecl.} = discard

proc copyOut(s: string, output: ptr UncheckedArray[char], cap: int): cint =
  cabi:
    checkPtr(output, cap, "out")
    check(cap > s.len, "out: buffer of " & $cap & " bytes is too small, need " & $(s.len + 1))
    if s.len > 0: copyMem(output, unsafeAddr s[0], s.len)
    output[s.len] = '\0'

proc nexpo_nim_version*(output: ptr UncheckedArray[char], cap: int): int32 {.exportc, cdecl.} =
  copyOut(NimVersion, output, cap)

proc nexpo_build_profile*(output: ptr UncheckedArray[char], cap: int): int32 {.exportc, cdecl.} =
  copyOut(nexpoProfile, output, cap)

proc nexpo_isa_available*(): int32 {.exportc, cdecl.} =
  for isa in availableIsas(): result = result or (1'i32 shl ord(isa))

proc nexpo_isa_best*(): int32 {.exportc, cdecl.} = int32(ord(best()))
proc nexpo_isa_active*(): int32 {.exportc, cdecl.} = int32(ord(activeIsa()))

proc nexpo_isa_set*(isa: int32): int32 {.exportc, cdecl.} =
  cabi:
    check(isa >= ord(low(Isa)) and isa <= ord(high(Isa)), "isa: unknown path " & $isa)
    if not setIsa(Isa(isa)):
      fail(stUnsupported, "isa: this CPU cannot run the " & isaNames[Isa(isa)] & " path (best: " &
           isaNames[best()] & ")")

proc nexpo_has_sha_ni*(): int32 {.exportc, cdecl.} = int32(hasShaNi())
proc nexpo_sha_ni_active*(): int32 {.exportc, cdecl.} = int32(useShaNi())
proc nexpo_sha_ni_enabled*(): int32 {.exportc, cdecl.} = int32(shaNiEnabled())

proc nexpo_sha_ni_set*(enabled: int32): int32 {.exportc, cdecl.} =
  ## Switching SHA-NI off always works; on is a request (used only if the CPU has it).
  cabi:
    check(enabled in 0'i32 .. 1'i32, "sha_ni: expected 0 or 1, got " & $enabled)
    setShaNi(enabled == 1)

proc nexpo_has_ifma*(): int32 {.exportc, cdecl.} = int32(hasIfma())
proc nexpo_ifma_active*(): int32 {.exportc, cdecl.} = int32(useIfma())
proc nexpo_ifma_enabled*(): int32 {.exportc, cdecl.} = int32(ifmaEnabled())

proc nexpo_ifma_set*(enabled: int32): int32 {.exportc, cdecl.} =
  ## As nexpo_sha_ni_set: off always works; on is used only on an IFMA CPU's AVX-512 path.
  cabi:
    check(enabled in 0'i32 .. 1'i32, "ifma: expected 0 or 1, got " & $enabled)
    setIfma(enabled == 1)

proc nexpo_kernel_count*(): int32 {.exportc, cdecl.} = int32(ord(high(Kernel)) + 1)

var kernelNames: array[Kernel, string]  # filled by the module initialiser (nexpo_init)
for k in Kernel: kernelNames[k] = $k

proc nexpo_kernel_name*(i: int32): cstring {.exportc, cdecl.} =
  if i < 0 or i > ord(high(Kernel)): nil else: cstring(kernelNames[Kernel(i)])

proc nexpo_kernel_stats*(calls, bytes: ptr UncheckedArray[uint64], n: int): int32 {.exportc, cdecl.} =
  cabi:
    checkPtr(calls, n, "calls")
    checkPtr(bytes, n, "bytes")
    for k in Kernel:
      if ord(k) >= n: break
      calls[ord(k)] = callsOf(k)
      bytes[ord(k)] = bytesOf(k)
