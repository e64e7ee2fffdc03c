## Nim-level tests of the core plumbing: status codes, `cabi`, CPU detection and ISA forcing.

import std/[unittest, strutils, os]
import nexpo_core
import nexpo_core/capi

suite "errors":
  test "status numbers match capi/core.h":
    let header = readFile(currentSourcePath().parentDir.parentDir.parentDir /
                          "nim/nexpo_core/capi/core.h")
    for (st, name) in [(stOk, "NEXPO_OK"), (stInvalid, "NEXPO_EINVAL"), (stType, "NEXPO_ETYPE"),
                     (stNoMem, "NEXPO_ENOMEM"), (stAuth, "NEXPO_EAUTH"),
                     (stTimeout, "NEXPO_ETIMEOUT"), (stClosed, "NEXPO_ECLOSED"),
                     (stAgain, "NEXPO_EAGAIN"), (stInternal, "NEXPO_EINTERNAL"),
                     (stUnsupported, "NEXPO_EUNSUPPORTED"), (stCorrupt, "NEXPO_ECORRUPT")]:
      check (name & " = " & $ord(st)) in header

  test "cabi maps exceptions to codes and keeps the message":
    proc failing(): cint = cabi: fail(stAuth, "bad tag")
    check failing() == cint(ord(stAuth))
    check $lastErrorCString() == "bad tag"
    proc defect(): cint =
      cabi:
        var s: seq[int]
        discard s[3]
    check defect() == cint(ord(stInternal))
    check "IndexDefect" in $lastErrorCString()
    proc fine(): cint = cabi: discard
    check fine() == 0

  test "string outputs reject NULL and short buffers":
    check nexpo_init() == 0
    var buf: array[64, char]
    check nexpo_nim_version(cast[ptr UncheckedArray[char]](buf[0].addr), 64) == 0
    check $cast[cstring](buf[0].addr) == NimVersion
    check nexpo_nim_version(nil, 10) == cint(ord(stInvalid))
    check nexpo_nim_version(cast[ptr UncheckedArray[char]](buf[0].addr), 3) == cint(ord(stInvalid))
    check "too small" in $nexpo_last_error()

suite "cpu":
  test "every available ISA can be forced, wider ones are refused":
    check nexpo_init() == 0
    for isa in Isa:
      if isa in availableIsas():
        check setIsa(isa)
        check activeIsa() == isa
      else:
        check not setIsa(isa)
    check setIsa(best())
    when defined(amd64):
      check isaPortable in availableIsas()
