/* nexpo exports for C bindings that lend object references to channels (nexpo/_channel/) or
 * share their own work with the scheduler (nexpo/_hashpath_list.c): declared here, implemented
 * in runtime.nim beside this file. Not part of the cffi interface: an object reference can only
 * be lent, or touched from the scheduler's threads, by code that owns it (holds the GIL for
 * CPython).
 *
 * A lent message is `len` bytes at `data`, kept alive by `obj`, for in-process channels only.
 * Receivers that copy (every cffi receive, select, asyncio) copy the bytes and pass `obj` to
 * the release function, from whatever thread they run on, without any lock of the binding. */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct nexpo_channel nexpo_channel;
typedef void (*nexpo_ref_release_fn)(void *obj);
/* Receives one message in place (data is valid during the call only); obj is the lent
 * reference when the message is one (the visitor owns it from then on), else NULL. */
typedef void (*nexpo_visit_fn)(void *ctx, const char *data, size_t len, void *obj);

/* Take ownership of the handle at address `ch` (then release it with nexpo_channel_release):
 * NEXPO_OK when it is a live handle no binding owns yet, else NEXPO_EINVAL. A binding that is
 * given addresses by its callers checks them here before it uses one. */
int32_t nexpo_channel_adopt(uintptr_t ch);
/* Set once, before the first nexpo_channel_send_refs. */
void nexpo_channel_set_ref_release(nexpo_ref_release_fn fn);
/* Promise that from now on every nexpo_channel_send_refs / nexpo_channel_recv_visit on `ch`
 * is made holding one lock of the binding (the GIL), so an SPSC ring skips its side guards on
 * those calls (runtime/wake.nim, "the serialised path"); any other call that moves a message
 * turns that off for good. Call it before the handle is used by a second thread. NEXPO_OK, or
 * NEXPO_EUNSUPPORTED (a shared ring, or no asymmetric barrier on this system): nothing changes. */
int32_t nexpo_channel_serialise(nexpo_channel *ch);
/* Non-blocking: lend up to n messages with one claim; *sent = how many went (the caller keeps
 * the rest). NEXPO_OK when at least one went; NEXPO_EAGAIN full; NEXPO_ECLOSED; NEXPO_EINVAL the
 * first is over max_message; NEXPO_EUNSUPPORTED the channel is shared by processes. */
int32_t nexpo_channel_send_refs(nexpo_channel *ch, void *const *objs, const char *const *datas,
                                const size_t *lens, size_t n, size_t *sent);
/* Non-blocking: take up to max_n ready messages with one claim, each handed to visit in order.
 * NEXPO_OK (*count > 0), NEXPO_EAGAIN empty, NEXPO_ECLOSED closed and drained. */
int32_t nexpo_channel_recv_visit(nexpo_channel *ch, size_t max_n, nexpo_visit_fn visit, void *ctx,
                                 size_t *count);
/* The same two calls for one message (a binding's per-item send and receive), cheaper than
 * n = 1 of the batch calls: send_ref lends obj (NEXPO_OK: the ring holds it; anything else: the
 * caller still does; statuses as send_refs); recv_one visits at most one message (NEXPO_OK: it
 * was visited; statuses as recv_visit). */
int32_t nexpo_channel_send_ref(nexpo_channel *ch, void *obj, const char *data, size_t len);
int32_t nexpo_channel_recv_one(nexpo_channel *ch, nexpo_visit_fn visit, void *ctx);

/* Run fn(lo, hi, ctx) over ranges of [0, n), each at least `grain` long (0: one range), on the
 * scheduler's threads and this one; returns once every range has run. For work a binding does
 * on its caller's behalf while that caller holds the binding's lock (the GIL) and waits here:
 * fn runs on other threads, so it must not need that lock itself. NEXPO_OK, or NEXPO_EINVAL
 * (NULL fn). */
typedef void (*nexpo_range_fn)(size_t lo, size_t hi, void *ctx);
int32_t nexpo_parallel_for(size_t n, size_t grain, nexpo_range_fn fn, void *ctx);
