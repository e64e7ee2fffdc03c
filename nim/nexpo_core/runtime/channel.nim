## Bounded channels of byte messages: the four ring algorithms behind one blocking API with
## close, timeouts, batch operations, select, event-fd watchers (asyncio) and shared memory.
##
## ::
##
##   ByteChannel (one handle per process)    ring (malloc'd, or POSIX shm shared by processes)
##   +----------------------------+          +-------------------------------------------------+
##   | ring -------------------------------->| header: tail | head | closed | notEmpty/notFull |
##   | watchers[]: eventfd / word |          | slots:  [seq|len|kind|payload] x capacity       |
##   | shm name, creator flag     |          +-------------------------------------------------+
##   +----------------------------+
##
## The operations live in one file per concern; this module re-exports them all:
##
## =====================  ==================================================================
## file                   what
## =====================  ==================================================================
## channel_handle.nim     the handle: construction, validation at open, corruption state
## watchers.nim           event-fd / futex-word watchers (asyncio, select)
## wake.nim               waiting and waking (`waitLoop`, `notify*`), close, SPSC guards
## channel_ops.nim        the ring operations for every mode; one-message send/recv
## channel_batch.nim      `sendMany` / `recvMany`
## lending.nim            lent references (`sendRefs` / `recvVisit`; `sendRef` / `recvOne`)
## select.nim             `waitReady`, asyncio's arm-and-retry calls, `select`
## =====================  ==================================================================
##
## Modes: SPSC is Lamport's ring (spsc.nim); MPSC, SPMC and MPMC are Vyukov's queue (vyukov.nim)
## with a CAS on the shared side(s) and on the send side (the close mark, see wake.nim); a single
## receiver claims with a fetch-add.
##
## Crashed peers (shared rings): a process that dies holding nothing loses nothing. One that dies
## between claiming a slot and publishing it (a few instructions plus the copy) leaves that slot
## unpublished: with Vyukov modes, receivers stop at it (timed waits expire with ETIMEOUT, the
## channel must be recreated); with SPSC the half-written message is simply never seen.
## Messages still in the ring when every process exits are lost with it. An SPSC side left
## "busy" by a crash makes later calls on that side fail with EINVAL rather than corrupt data;
## after a close, receivers then cannot tell the ring is drained and wait out their timeouts.
##
## Hostile peers (shared rings; ring.nim has the threat model): the per-message code takes the
## geometry from the handle's `RingView` (this process's copy), checks every slot it takes, and
## turns a state no honest peer produces into stCorrupt, remembered in the handle (`corruption`,
## also set by ring_guard.nim's SIGBUS handler when the file shrinks): every later call on it
## returns stCorrupt at once.
##
## Properties:
##
## - messages are copied in and out (bytes semantics), or lent as immutable objects by a
##   binding; at most `maxMessage` bytes, empty allowed
## - in-process rings keep messages up to `inlineMax` bytes in the slot; longer ones go to a
##   malloc'd block referenced by the slot (shared rings: every message is inline)
## - the handle is never copied (`=copy` is an error) and is freed by `release`

import ./channel_batch, ./channel_handle, ./channel_ops, ./lending, ./select, ./wake, ./watchers

export channel_batch, channel_handle, channel_ops, lending, select, wake, watchers
