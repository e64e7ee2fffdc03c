## POSIX shared memory for channel rings that cross processes.
##
## `createRegion` makes a new named object (shm_open with O_CREAT|O_EXCL, mode 0600: only this
## user's processes may open it), sizes it (ftruncate zero-fills) and maps it; `openRegion`
## maps an existing one read-write. Names follow shm_open: one leading '/', no other '/'.
## The object lives in /dev/shm on Linux until `unlinkRegion` (the creator's close) and the
## last munmap.

import std/posix
import ../errors

type Region* = object
  base*: pointer
  len*: int

proc shmName*(name: string): string =
  ## Validate a user-given name and return the shm_open form ("/name").
  let bare = if name.len > 0 and name[0] == '/': name[1 .. ^1] else: name
  check(bare.len > 0, "name: must not be empty")
  check(bare.len <= 200, "name: at most 200 characters, got " & $bare.len)
  for c in bare:
    check(c notin {'/', '\0'}, "name: must not contain '/' or NUL: " & name)
  "/" & bare

proc osError(what, name: string): string =
  what & " " & name & ": " & $strerror(errno)

proc createRegion*(name: string, size: int): Region =
  let path = shmName(name)
  let fd = shm_open(cstring(path), O_CREAT or O_EXCL or O_RDWR, Mode(0o600))
  if fd < 0:
    if errno == EEXIST:
      fail(stInvalid, "name: a shared channel named " & path & " already exists")
    fail(stInvalid, osError("shm_open", path))
  if ftruncate(fd, Off(size)) != 0:
    let msg = osError("ftruncate", path)
    discard close(fd)
    discard shm_unlink(cstring(path))
    fail(stNoMem, msg)
  let p = mmap(nil, size, PROT_READ or PROT_WRITE, MAP_SHARED, fd, 0)
  discard close(fd)
  if p == MAP_FAILED:
    discard shm_unlink(cstring(path))
    fail(stNoMem, osError("mmap", path))
  Region(base: p, len: size)

proc openRegion*(name: string, minSize: int): Region =
  let path = shmName(name)
  let fd = shm_open(cstring(path), O_RDWR, Mode(0o600))
  if fd < 0:
    if errno == ENOENT:
      fail(stInvalid, "name: no shared channel named " & path)
    fail(stInvalid, osError("shm_open", path))
  var st: Stat
  if fstat(fd, st) != 0:
    let msg = osError("fstat", path)
    discard close(fd)
    fail(stInvalid, msg)
  let size = int(st.st_size)
  if size < minSize:
    discard close(fd)
    fail(stInvalid, "name: " & path & " is not a nexpo channel (too small)")
  let p = mmap(nil, size, PROT_READ or PROT_WRITE, MAP_SHARED, fd, 0)
  discard close(fd)
  if p == MAP_FAILED:
    fail(stNoMem, osError("mmap", path))
  Region(base: p, len: size)

proc unmapRegion*(r: Region) =
  if r.base != nil:
    discard munmap(r.base, r.len)

proc unlinkRegion*(name: string) =
  discard shm_unlink(cstring(shmName(name)))
