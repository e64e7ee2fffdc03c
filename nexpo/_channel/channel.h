/* nexpo._channel: the C type behind nexpo.Channel, shared by the files of this folder.
 *
 * One file per concern (see CONTRIBUTING.md): type.c (the type, its method table, creation,
 * properties, close), send.c / recv.c (one message), batch.c (send_many / recv_many), wait.c
 * (timeouts and the blocking wait, GIL released), shared.c (create_shared / open_shared),
 * lend.c (bytes lent to in-process rings and given back by copying receivers), errors.c
 * (status -> exception, argument errors). Every method calls the Nim C ABI (capi/runtime.h,
 * capi/binding.h) directly: a call that can proceed at once keeps the GIL (one C call, like
 * queue.SimpleQueue's put/get); one that must wait releases it around the native bounded wait,
 * as CPython's _queue does, and runs signal handlers between slices.
 */
#pragma once
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "binding.h"
#include "core.h"
#include "runtime.h"

/* Copies are gathered CH_BATCH messages (and at most CH_SCRATCH bytes) to a native call. */
#define CH_SCRATCH 16384
#define CH_BATCH 256
/* Copies at least this long are made with the GIL released, as hashlib does for long inputs. */
#define CH_GIL_FREE_COPY (64 * 1024)
#define CH_FAILED (-1000) /* a Python exception is set */
#define CH_MAX_RECV_MANY (1 << 24)
#define CH_MAX_CAPACITY (1 << 24)

#define CH_RECV 1 /* interests of nexpo_channel_wait */
#define CH_SEND 2

#if defined(__GNUC__)
#define CH_COLD __attribute__((cold, noinline))
#define CH_NOINLINE __attribute__((noinline))
#define CH_LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define CH_COLD
#define CH_NOINLINE
#define CH_LIKELY(x) (x)
#endif

typedef struct {
    PyObject_HEAD
    nexpo_channel *ch;     /* owned (adopted once, released with the object); NULL: unbound */
    char lend;             /* in-process ring: bytes messages are lent, not copied (lend.c) */
    char creator;          /* created the shared-memory name: unlinks it on close */
    PyObject *name;        /* shared-memory name (str), or NULL for an in-process channel */
    PyObject *weakrefs;
} ChannelObject;

extern PyTypeObject ChannelType;

#define CH(self) (((ChannelObject *)(self))->ch)

/* errors.c ---------------------------------------------------------------------------- */
int ch_errors_init(void);
/* Raise the exception for a failed status of operation `op` ("send", "recv", ...); NULL. */
PyObject *ch_fail(int32_t status, const char *op);
/* The exception set is ChannelClosed. */
int ch_closed_pending(void);
/* NULL with ValueError: this object has no native channel (never initialised). */
PyObject *ch_unbound(void);
/* A message's bytes: exact bytes directly (view->obj NULL), else the buffer protocol. On a
 * failure the precise TypeError/ValueError naming `what` (e.g. "msg", "msgs[3]"). */
int ch_message(PyObject *msg, Py_buffer *view, const char *what);
static inline void ch_release(Py_buffer *view)
{
    if (view->obj != NULL)
        PyBuffer_Release(view);
}
/* TypeError for a non-bytes-like message (str gets the hint to encode it). */
void ch_not_bytes_like(PyObject *msg, const char *what);
/* An int in [lo, hi] (bool refused), as "name must be ..." errors; -1 with an error set. */
int ch_int_arg(PyObject *value, const char *name, long long lo, long long hi, long long *out);
/* Unpack (args, kwnames) into out[0..n) by `names`; the first `npos_only` only positionally,
 * the first `required` required; absent optional ones are NULL. -1 with TypeError. */
int ch_args(const char *fn, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
            const char *const *names, int n, int npos_only, int required, PyObject **out);

/* wait.c ------------------------------------------------------------------------------ */
/* A deadline on CLOCK_MONOTONIC in ns, or -1 for none; from a timeout in seconds (None or
 * inf: none). -2 with TypeError/ValueError for a bad timeout. */
int64_t ch_deadline(PyObject *timeout);
/* Wait (GIL released, in slices with signal handlers run between them) until the channel may
 * be ready for `interest` or closed. 1: try again; 0: the deadline passed; -1: an exception
 * (a signal handler's, or the native wait's). */
int ch_wait(ChannelObject *self, int32_t interest, int64_t deadline);

/* lend.c ------------------------------------------------------------------------------ */
int ch_lend_init(void);
/* Drop references copying receivers gave back (GIL held); cheap when there are none. */
void ch_settle_slow(void);
extern size_t ch_pending_len;
static inline void ch_settle(void)
{
    if (__atomic_load_n(&ch_pending_len, __ATOMIC_RELAXED) != 0)
        ch_settle_slow();
}
/* Lend objs[0..n) (exact bytes, n <= CH_BATCH) with one claim; *sent counts what went.
 * NEXPO_EUNSUPPORTED: the ring takes no references (the caller copies from then on). */
int32_t ch_lend(nexpo_channel *ch, PyObject *const *objs, size_t n, size_t *sent);
/* ch_lend for one exact bytes object (the per-item send): no run arrays. Inline: a call
 * through this library's PLT cost more than its body. */
static inline int32_t ch_lend_one(nexpo_channel *ch, PyObject *obj)
{
    Py_INCREF(obj); /* the ring's reference */
    int32_t status = nexpo_channel_send_ref(ch, obj, PyBytes_AS_STRING(obj),
                                            (size_t)PyBytes_GET_SIZE(obj));
    if (status != NEXPO_OK)
        Py_DECREF(obj); /* not taken: the caller still holds it */
    return status;
}
/* What a lending channel holds for `msg`: msg itself when it is bytes, else a bytes copy. */
PyObject *ch_lendable(PyObject *msg, const char *what);
PyObject *ch_pending_count(PyObject *mod, PyObject *unused);
PyObject *ch_release_pending(PyObject *mod, PyObject *unused);

/* send.c / recv.c --------------------------------------------------------------------- */
/* One non-blocking send of `msg`: a NEXPO_* status, or CH_FAILED with an exception. */
int32_t ch_send_attempt(ChannelObject *self, PyObject *msg, const char *what);
/* Up to `want` (<= CH_BATCH) messages ready now into out[]: the status, or CH_FAILED. */
int32_t ch_take_ready(nexpo_channel *ch, size_t want, PyObject **out, size_t *count);
PyObject *ch_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ch_try_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ch_recv(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ch_try_recv(PyObject *self, PyObject *unused);
PyObject *ch_iternext(PyObject *self);

/* batch.c ----------------------------------------------------------------------------- */
PyObject *ch_send_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ch_recv_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);

/* shared.c ---------------------------------------------------------------------------- */
PyObject *ch_create_shared(PyObject *cls, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ch_open_shared(PyObject *cls, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
/* "spsc".."mpmc" -> 0..3; -1 with ValueError. */
int ch_mode_code(PyObject *mode);
/* Own a new handle: adopt it (so no _bind can take it), set name/creator. -1 releases it. */
int ch_own(ChannelObject *self, nexpo_channel *ch, PyObject *name, int creator);
