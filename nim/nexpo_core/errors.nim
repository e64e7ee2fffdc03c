## Status codes and the per-thread last-error message: the one error convention of the core.
##
## A failure is a `Status` plus a message in a thread-local buffer, read by `nexpo_last_error()`.
## Two ways to produce one, same result:
##
## - setup and validation code raises (`fail`, `check`, `checkPtr`); the export's `cabi`
##   catches everything and records status and message, so no Nim exception crosses into C;
## - hot paths (the channel operations, `{.push raises: [].}`) never raise: they return
##   `failed(status, msg)`, which records the message and returns the status, and the export
##   returns that status as it is.
##
## stAgain/stTimeout/stClosed need no message (the binding words them); every other failing
## status is recorded with one. Keep the numbers in sync with `capi/core.h`
## (tests/nim/test_core.nim checks them).

type
  Status* = enum
    stOk = 0            ## success
    stInvalid = 1       ## bad argument value (Python: ValueError)
    stType = 2          ## bad argument type (Python: TypeError)
    stNoMem = 3         ## allocation failed (Python: MemoryError)
    stAuth = 4          ## authentication failed (Python: nexpo.AuthenticationError)
    stTimeout = 5       ## a timed wait expired (Python: TimeoutError)
    stClosed = 6        ## the channel is closed (Python: nexpo.ChannelClosed)
    stAgain = 7         ## would block; not an error for try_* calls
    stInternal = 8      ## a bug in nexpo (Python: nexpo.NexpoError)
    stUnsupported = 9   ## not available on this CPU/build (Python: nexpo.NexpoError)
    stCorrupt = 10      ## another process corrupted a shared channel (Python: nexpo.ChannelCorrupted)

  NexpoError* = object of CatchableError
    status*: Status

var lastError {.threadvar.}: string

proc fail*(status: Status, msg: string) {.noreturn.} =
  ## Raise a NexpoError carrying `status`; `cabi` turns it into that code.
  var e = newException(NexpoError, msg)
  e.status = status
  raise e

template check*(cond: bool, msg: string) =
  ## Argument validation: raise stInvalid with `msg` unless `cond`.
  if not cond: fail(stInvalid, msg)

template checkPtr*(p: pointer, len: int, name: string) =
  ## A (pointer, length) argument: NULL is allowed only with length 0.
  if len < 0: fail(stInvalid, name & ": negative length " & $len)
  if p == nil and len > 0: fail(stInvalid, name & ": NULL pointer with length " & $len)

proc failed*(status: Status, msg: string): Status {.raises: [].} =
  ## Record `msg` as this thread's last error and return `status` (the non-raising convention).
  lastError = msg
  status

proc setError*(status: Status, msg: string): cint {.raises: [].} =
  ## `failed`, for an export's return value.
  cint(ord(failed(status, msg)))

proc clearError*() {.inline.} =
  if lastError.len > 0: lastError.setLen(0)

proc lastErrorCString*(): cstring =
  ## Valid until the next failing call on this thread.
  if lastError.len == 0: cstring("") else: cstring(lastError)

template cabi*(body: untyped): cint =
  ## Wrap the body of an export: returns stOk, or the status of whatever was raised.
  block:
    var code: cint
    try:
      body
      code = cint(ord(stOk))
    except NexpoError as e:
      code = setError(e.status, e.msg)
    except OutOfMemDefect:
      code = setError(stNoMem, "out of memory")
    except CatchableError as e:
      code = setError(stInternal, $e.name & ": " & e.msg)
    except Defect as e:
      code = setError(stInternal, "internal error (" & $e.name & "): " & e.msg)
    code
