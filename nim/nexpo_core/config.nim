## Every compile-time switch of the Nim core, in one place.
##
## Profiles in `nimble.toml` set these with `-d:`; nothing else in the core reads `defined(...)`
## for a nexpo switch directly, it reads the constants below (platform tests such as
## `defined(linux)` stay where they are used).
##
## ==================  =======================================================================
## define              meaning
## ==================  =======================================================================
## nexpoProfile=NAME   name of the build profile, reported by `nexpo.info()` (release/debug/...)
## nexpoContracts      runtime checks of internal pre/post-conditions and invariants
##                     (contracts.nim); compile to nothing when off
## nexpoSanitize       built for AddressSanitizer + UndefinedBehaviorSanitizer
## nexpoTsan           built for ThreadSanitizer
## nexpoTestProgram    set by the Nim test runner: the program's main() initialises Nim, so
##                     `nexpo_init` must not run the initialisers again
## nexpoNoX86Simd      leave out the AVX2/AVX-512/SHA-NI paths even on x86-64 (portable only)
## nexpoNoFutex        park with parking.nim's condition-variable fallback even on Linux
## ==================  =======================================================================
##
## C-compiler flags (baseline `-march=x86-64-v2`, sanitizer flags, optimisation level) are not
## visible here: they live in `nimble.toml` next to the profile that uses them.

const
  nexpoProfile* {.strdefine.} = "custom"
  contractsEnabled* = defined(nexpoContracts)
  sanitizeEnabled* = defined(nexpoSanitize)
  tsanEnabled* = defined(nexpoTsan)
  testProgram* = defined(nexpoTestProgram)
  futexDisabled* = defined(nexpoNoFutex)
  x86SimdEnabled* = (defined(amd64) or defined(i386)) and not defined(nexpoNoX86Simd)
  cacheLineSize* = 64 ## alignment used against false sharing
