## The C ABI of the Nim core: the one module the Python extension `nexpo._core` is built from.
##
## Conventions (see CONTRIBUTING.md):
## - every export is `{.exportc, cdecl.}` and declared once, in the `.h` beside its section;
## - buffers travel as pointer + length (`int`/`size_t`), outputs through caller-owned buffers;
## - fallible exports return a status code (`errors.Status`) built by `cabi`, which catches every
##   Nim exception: nothing ever unwinds into C; the message is read with `nexpo_last_error()`.
##
## Each area keeps its exports in an include file beside its header, so this stays one module.

import ./config, ./errors, ./cpu, ./stats
import ./runtime/scheduler

include ./capi/core
include ./capi/kernels
include ./capi/crypto
include ./capi/sha512
include ./capi/ed25519
include ./capi/aes
include ./capi/runtime
include ./capi/inference
