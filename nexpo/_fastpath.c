/* nexpo._fastpath: the channel calls that must not release the GIL.
 *
 * Compiled into the same shared object as the cffi module nexpo._core (nimble.toml,
 * [python] sources), and loaded from that file under its own name by nexpo/_native.py
 * (PEP 489: one library may export several PyInit_ functions). It calls the same C ABI as the
 * cffi module (capi/runtime.h), plus the binding-only exports of capi/binding.h, so it shares
 * the one Nim runtime.
 *
 * Why it exists: cffi releases the GIL around every call. For a call that never blocks (a
 * channel send or receive that finds room or a message) that release is pure cost, and between
 * two Python threads it is ruinous: each release hands the GIL to the other thread, a futex
 * round trip per message. These functions only ever make non-blocking attempts while holding
 * the GIL, like queue.SimpleQueue's put/get; when an attempt would block they report
 * NEXPO_EAGAIN and the Python layer waits (nexpo_channel_wait, GIL released) and tries again.
 *
 * Lending: a `bytes` object is immutable, so an in-process channel does not copy it. The ring
 * slot keeps the object (a new reference) and its data pointer; the fast receive hands the same
 * object back, and the reference with it: no copy and no allocation on either side, as with
 * queue.Queue. Other bytes-like objects are copied once, into a new bytes object that is lent
 * (the receiver would have built that object anyway). Shared rings copy every message. A
 * receiver that copies instead (cffi receives, select, asyncio; any thread, no GIL) releases a
 * lent object through fp_defer_release: the reference is parked in a list that the next call
 * made here with the GIL drains (fp_settle).
 *
 * The Python layer (nexpo/channels.py) owns argument checking; these functions trust the
 * channel handle of a ChannelCore and only check what the C API needs. That handle cannot come
 * from Python unchecked: `_bind` takes it once, only if the runtime says it is a live handle
 * nobody owns (nexpo_channel_adopt), and the ChannelCore releases it when it dies; `_addr` and
 * `_lend` are read-only.
 *
 * Nothing here trusts Python-side state across a GIL release: send_many works on a tuple (a
 * list is snapshotted first when a copy may release the GIL, since another thread could then
 * shrink it and free its items), and every message being copied is held by a buffer view.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <string.h>
#include <structmember.h>

#include "binding.h"
#include "core.h"
#include "runtime.h"

/* Copies are gathered FP_BATCH messages (and at most FP_SCRATCH bytes) to a native call. */
#define FP_SCRATCH 16384
#define FP_BATCH 256
/* Copies at least this long are made with the GIL released, as hashlib does for long inputs:
 * they take long enough for other threads to matter, and the hand-off is cheap next to them. */
#define FP_GIL_FREE_COPY (64 * 1024)
#define FP_FAILED (-1000)           /* a Python exception is set */
#define FP_MAX_RECV_MANY (1 << 24)

/* --- lent references released by copying receivers ---------------------------------- */

static pthread_mutex_t fp_pending_lock = PTHREAD_MUTEX_INITIALIZER;
static PyObject **fp_pending;
static size_t fp_pending_len;   /* written under the lock; read without it as a hint */
static size_t fp_pending_cap;

/* nexpo_ref_release_fn: any thread, no GIL. On allocation failure the reference leaks (the
 * object stays alive), which is the only safe thing to do without the GIL. */
static void fp_defer_release(void *obj)
{
    pthread_mutex_lock(&fp_pending_lock);
    if (fp_pending_len == fp_pending_cap) {
        size_t cap = fp_pending_cap ? 2 * fp_pending_cap : 256;
        PyObject **grown = realloc(fp_pending, cap * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&fp_pending_lock);
            return;
        }
        fp_pending = grown;
        fp_pending_cap = cap;
    }
    fp_pending[fp_pending_len] = (PyObject *)obj;
    __atomic_store_n(&fp_pending_len, fp_pending_len + 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&fp_pending_lock);
}

/* Drop the parked references (GIL held). Chunked so no lock is held while objects die. */
static void fp_release_pending(void)
{
    PyObject *chunk[FP_BATCH];
    for (int rounds = 0; rounds < 1 << 16; rounds++) {
        pthread_mutex_lock(&fp_pending_lock);
        size_t n = fp_pending_len < FP_BATCH ? fp_pending_len : FP_BATCH;
        size_t rest = fp_pending_len - n;
        if (n > 0) {
            memcpy(chunk, fp_pending + rest, n * sizeof *chunk);
            __atomic_store_n(&fp_pending_len, rest, __ATOMIC_RELAXED);
        }
        pthread_mutex_unlock(&fp_pending_lock);
        for (size_t i = 0; i < n; i++)
            Py_DECREF(chunk[i]);
        if (rest == 0)
            return;
    }
}

/* A fork while another thread held the lock must not leave the child's lock taken for good. */
static void fp_pending_after_fork(void)
{
    pthread_mutex_init(&fp_pending_lock, NULL);
}

static inline void fp_settle(void)
{
    if (__atomic_load_n(&fp_pending_len, __ATOMIC_RELAXED) != 0)
        fp_release_pending();
}

/* --- the channel of a call ------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    unsigned long long addr;  /* the nexpo_channel * this object owns, set once by _bind (0: unbound) */
    char lend;                /* in-process ring: bytes messages are lent, not copied */
} CoreObject;

static PyTypeObject CoreType;

#define FP_CHANNEL(self) ((nexpo_channel *)(uintptr_t)((CoreObject *)(self))->addr)
#define FP_LENDS(self) (((CoreObject *)(self))->lend != 0)

/* The ChannelCore of a module function's call (its first argument), once the count is right. */
static PyObject *fp_call_core(const char *name, PyObject *const *args, Py_ssize_t nargs,
                              Py_ssize_t want)
{
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, want, nargs);
        return NULL;
    }
    if (!PyObject_TypeCheck(args[0], &CoreType)) {
        PyErr_Format(PyExc_TypeError, "%s(): the first argument must be a Channel", name);
        return NULL;
    }
    if (FP_CHANNEL(args[0]) == NULL) {
        PyErr_Format(PyExc_ValueError, "%s(): the channel has no native handle", name);
        return NULL;
    }
    fp_settle();
    return args[0];
}

/* --- sending ----------------------------------------------------------------------------- */

/* A message's bytes: bytes objects directly, anything else through the buffer protocol.
 * view->obj is NULL when nothing needs releasing. */
static int fp_message(PyObject *msg, Py_buffer *view)
{
    if (PyBytes_CheckExact(msg)) {
        view->obj = NULL;
        view->buf = PyBytes_AS_STRING(msg);
        view->len = PyBytes_GET_SIZE(msg);
        return 0;
    }
    return PyObject_GetBuffer(msg, view, PyBUF_SIMPLE);
}

static void fp_release(Py_buffer *view)
{
    if (view->obj != NULL)
        PyBuffer_Release(view);
}

/* Lend objs[0..n) (exact bytes) with one claim; *sent counts what went. NEXPO_EUNSUPPORTED:
 * this channel takes no references (shared by processes, or slots under 16 bytes); the
 * caller clears its `lend` flag and copies from then on. */
static int32_t fp_lend(nexpo_channel *ch, PyObject *const *objs, size_t n, size_t *sent)
{
    const char *datas[FP_BATCH];
    size_t lens[FP_BATCH];
    for (size_t i = 0; i < n; i++) {
        datas[i] = PyBytes_AS_STRING(objs[i]);
        lens[i] = (size_t)PyBytes_GET_SIZE(objs[i]);
        Py_INCREF(objs[i]);  /* the ring's reference */
    }
    *sent = 0;
    int32_t status = nexpo_channel_send_refs(ch, (void *const *)objs, datas, lens, n, sent);
    for (size_t i = *sent; i < n; i++)
        Py_DECREF(objs[i]);  /* not taken: the caller still holds it */
    return status;
}

/* A new bytes object with the contents of a bytes-like `msg` (a copy made at send time, so
 * the sender may reuse its buffer), to lend in its place; long copies release the GIL. */
static PyObject *fp_bytes_copy(PyObject *msg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(msg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *out;
    if (view.len < FP_GIL_FREE_COPY) {
        out = PyBytes_FromStringAndSize(view.buf, view.len);
    } else if ((out = PyBytes_FromStringAndSize(NULL, view.len)) != NULL) {
        char *dst = PyBytes_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS
        memcpy(dst, view.buf, (size_t)view.len);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
    return out;
}

/* What a lending channel holds for `msg`: msg itself when it is bytes, else a bytes copy (a new
 * reference either way; NULL with a Python error when msg is not bytes-like). */
static PyObject *fp_lendable(PyObject *msg)
{
    return PyBytes_CheckExact(msg) ? Py_NewRef(msg) : fp_bytes_copy(msg);
}

/* One non-blocking send of `msg`, or FP_FAILED with a Python error (not bytes-like). */
static int32_t fp_send_one(PyObject *self, PyObject *msg)
{
    nexpo_channel *ch = FP_CHANNEL(self);
    if (FP_LENDS(self)) {
        PyObject *lent = fp_lendable(msg);
        if (lent == NULL)
            return FP_FAILED;
        size_t sent;
        int32_t status = fp_lend(ch, &lent, 1, &sent);
        Py_DECREF(lent);
        if (status != NEXPO_EUNSUPPORTED)
            return status;
        ((CoreObject *)self)->lend = 0;  /* this channel copies (see fp_lend) */
    }
    Py_buffer view;
    if (fp_message(msg, &view) < 0)
        return FP_FAILED;
    int32_t status;
    if (view.len < FP_GIL_FREE_COPY) {
        status = nexpo_channel_send(ch, view.buf, (size_t)view.len, 0);
    } else {
        Py_BEGIN_ALLOW_THREADS
        status = nexpo_channel_send(ch, view.buf, (size_t)view.len, 0);
        Py_END_ALLOW_THREADS
    }
    fp_release(&view);
    return status;
}

/* Copy the run of messages from items[*done] on (up to FP_BATCH, FP_SCRATCH bytes) with one
 * native call, for channels that take no references; advances *done. */
static int32_t fp_copy_run(PyObject *self, PyObject **items, Py_ssize_t n, Py_ssize_t *done)
{
    nexpo_channel *ch = FP_CHANNEL(self);
    char buf[FP_SCRATCH];
    size_t lens[FP_BATCH];
    size_t used = 0, k = 0;
    Py_ssize_t first = *done;
    while (first + (Py_ssize_t)k < n && k < FP_BATCH) {
        PyObject *item = items[first + k];
        Py_buffer view;
        if (fp_message(item, &view) < 0)
            return FP_FAILED;
        size_t len = (size_t)view.len;
        if (len > sizeof buf - used) {
            fp_release(&view);
            if (k == 0) {  /* longer than the gather buffer: on its own */
                int32_t status = fp_send_one(self, item);
                if (status == NEXPO_OK)
                    (*done)++;
                return status;
            }
            break;
        }
        memcpy(buf + used, view.buf, len);
        fp_release(&view);
        lens[k++] = len;
        used += len;
    }
    size_t sent = 0;
    int32_t status = nexpo_channel_send_many(ch, buf, lens, k, 0, &sent);
    *done += (Py_ssize_t)sent;
    return status == NEXPO_ETIMEOUT ? NEXPO_EAGAIN : status;
}

/* Sends msgs[start:] (a list or tuple) in order until one would block (NEXPO_EAGAIN), fails,
 * or all went (NEXPO_OK); *sent is the index reached. Lending channels lend runs of up to
 * FP_BATCH messages (fp_lendable); others copy runs, one native call per run. With start 0 every item
 * is checked first: when msgs[i] is not bytes-like, NEXPO_ETYPE with *sent = -1 - i and nothing
 * sent (a later start means an earlier call checked them). */
static int32_t fp_send_many_run(PyObject *self, PyObject *seq, Py_ssize_t start,
                                Py_ssize_t *sent_out);

/* A list may change whenever the GIL is released (a long copy releases it): the items would be
 * freed under us. A list whose sending may release the GIL (a copying channel, or an item
 * that is not bytes) is sent from a tuple snapshot, which holds a reference to every item;
 * a list of bytes lent to an in-process channel never releases it and is used in place. */
static int32_t fp_send_many_impl(PyObject *self, PyObject *seq, Py_ssize_t start,
                                 Py_ssize_t *sent_out)
{
    if (PyList_CheckExact(seq)) {
        int stable = FP_LENDS(self);
        Py_ssize_t n = PyList_GET_SIZE(seq);
        for (Py_ssize_t i = start; stable && i < n; i++)
            stable = PyBytes_CheckExact(PyList_GET_ITEM(seq, i));
        if (!stable) {
            PyObject *snapshot = PyList_AsTuple(seq);
            if (snapshot == NULL)
                return FP_FAILED;
            int32_t status = fp_send_many_run(self, snapshot, start, sent_out);
            Py_DECREF(snapshot);
            return status;
        }
    }
    return fp_send_many_run(self, seq, start, sent_out);
}

static int32_t fp_send_many_run(PyObject *self, PyObject *seq, Py_ssize_t start,
                                Py_ssize_t *sent_out)
{
    /* A tuple, or a list of bytes lent (no GIL release): it cannot change under us. */
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    *sent_out = start;
    for (Py_ssize_t i = start == 0 ? 0 : n; i < n; i++) {
        if (!PyBytes_CheckExact(items[i]) && !PyObject_CheckBuffer(items[i])) {
            *sent_out = -1 - i;
            return NEXPO_ETYPE;
        }
    }
    int lends = FP_LENDS(self);
    Py_ssize_t done = start;
    int32_t status = NEXPO_OK;
    while (done < n && status == NEXPO_OK) {
        if (lends) {
            PyObject *run[FP_BATCH];
            size_t k = 0, sent = 0;
            while (done + (Py_ssize_t)k < n && k < FP_BATCH
                    && (run[k] = fp_lendable(items[done + k])) != NULL)
                k++;
            if (k == 0) {
                status = FP_FAILED;  /* the copy of the first failed: its error is set */
                break;
            }
            PyErr_Clear();  /* a later copy failed: what came before goes, the next call reports it */
            status = fp_lend(FP_CHANNEL(self), run, k, &sent);
            for (size_t i = 0; i < k; i++)
                Py_DECREF(run[i]);
            done += (Py_ssize_t)sent;
            if (status == NEXPO_EUNSUPPORTED) {
                /* See fp_lend. Copies may release the GIL: a list goes on from a snapshot. */
                ((CoreObject *)self)->lend = lends = 0;
                status = NEXPO_OK;
                if (PyList_CheckExact(seq) && done < n) {
                    Py_ssize_t rest = 0;
                    status = fp_send_many_impl(self, seq, done, &rest);
                    done = rest;
                    break;
                }
            }
        } else {
            status = fp_copy_run(self, items, n, &done);
        }
    }
    *sent_out = done;
    return status;
}

/* --- receiving --------------------------------------------------------------------------- */

/* What a visit collects: new references, or the failure that stopped it. */
typedef struct {
    PyObject **out;
    size_t n;
    int failed;
} fp_taken;

/* nexpo_visit_fn: the lent object itself, or a new bytes object copied from the ring. */
static void fp_take(void *ctx, const char *data, size_t len, void *obj)
{
    fp_taken *t = (fp_taken *)ctx;
    PyObject *msg = (PyObject *)obj;
    if (t->failed) {  /* after a MemoryError the rest of this claim is dropped */
        Py_XDECREF(msg);
        return;
    }
    if (msg == NULL) {
        if (len < FP_GIL_FREE_COPY) {
            msg = PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
        } else if ((msg = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len)) != NULL) {
            char *dst = PyBytes_AS_STRING(msg);
            Py_BEGIN_ALLOW_THREADS
            memcpy(dst, data, len);
            Py_END_ALLOW_THREADS
        }
        if (msg == NULL) {
            t->failed = 1;
            return;
        }
    }
    t->out[t->n++] = msg;
}

/* Up to `want` (<= FP_BATCH) messages ready now into out[]; the status, or FP_FAILED. */
static int32_t fp_take_ready(nexpo_channel *ch, size_t want, PyObject **out, size_t *count)
{
    fp_taken t = {out, 0, 0};
    size_t got = 0;
    int32_t status = nexpo_channel_recv_visit(ch, want, fp_take, &t, &got);
    *count = t.n;
    if (t.failed || (status != NEXPO_OK && t.n > 0)) {
        /* A MemoryError, or a shared ring found corrupted after some messages of the claim:
         * the messages of this claim are lost with the error. */
        for (size_t i = 0; i < t.n; i++)
            Py_DECREF(out[i]);
        *count = 0;
        if (status == NEXPO_OK)
            return FP_FAILED;
        PyErr_Clear();
    }
    return status;
}

/* One non-blocking receive: bytes, or the status as an int (NEXPO_EAGAIN when empty). */
static PyObject *fp_recv_attempt(nexpo_channel *ch)
{
    PyObject *msg;
    size_t count;
    int32_t status = fp_take_ready(ch, 1, &msg, &count);
    if (status == FP_FAILED)
        return NULL;
    if (status != NEXPO_OK)
        return PyLong_FromLong(status);
    return msg;
}

/* Up to max_n messages ready now, as a list; when there are none, the status as an int
 * (NEXPO_EAGAIN: empty, NEXPO_ECLOSED: closed and drained). */
static PyObject *fp_recv_many_impl(nexpo_channel *ch, Py_ssize_t max_n)
{
    PyObject *got[FP_BATCH];
    PyObject *out = NULL;
    Py_ssize_t total = 0;
    int32_t status = NEXPO_OK;
    while (total < max_n) {
        size_t want = (size_t)(max_n - total) < FP_BATCH ? (size_t)(max_n - total) : FP_BATCH;
        size_t count = 0;
        status = fp_take_ready(ch, want, got, &count);
        if (status == FP_FAILED) {
            Py_XDECREF(out);
            return NULL;
        }
        if (status != NEXPO_OK)
            break;
        if (out == NULL) {
            if ((out = PyList_New((Py_ssize_t)count)) == NULL) {
                for (size_t i = 0; i < count; i++)
                    Py_DECREF(got[i]);
                return NULL;
            }
            for (size_t i = 0; i < count; i++)
                PyList_SET_ITEM(out, (Py_ssize_t)i, got[i]);
        } else {
            for (size_t i = 0; i < count; i++) {
                int failed = PyList_Append(out, got[i]);
                Py_DECREF(got[i]);
                if (failed) {
                    for (size_t j = i + 1; j < count; j++)
                        Py_DECREF(got[j]);
                    Py_DECREF(out);
                    return NULL;
                }
            }
        }
        total += (Py_ssize_t)count;
        if (count < want)
            break;  /* took everything that was ready */
    }
    if (out != NULL)
        return out;  /* a NEXPO_ECLOSED after messages comes with the next call */
    return PyLong_FromLong(status);
}

/* --- module functions: the attempts the Python methods make --------------------------- */

/* send(ch, msg) -> status: one non-blocking attempt (NEXPO_EAGAIN when full). */
static PyObject *fp_send(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    PyObject *self = fp_call_core("send", args, nargs, 2);
    if (self == NULL)
        return NULL;
    int32_t status = fp_send_one(self, args[1]);
    if (status == FP_FAILED)
        return NULL;
    return PyLong_FromLong(status);
}

/* recv(ch) -> bytes | status: one non-blocking attempt (NEXPO_EAGAIN when empty). */
static PyObject *fp_recv(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    PyObject *self = fp_call_core("recv", args, nargs, 1);
    if (self == NULL)
        return NULL;
    return fp_recv_attempt(FP_CHANNEL(self));
}

/* send_many(ch, msgs: list | tuple, start=0) -> (index reached, status); see fp_send_many_impl. */
static PyObject *fp_send_many(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    PyObject *self = fp_call_core("send_many", args, nargs, nargs == 3 ? 3 : 2);
    if (self == NULL)
        return NULL;
    if (!PyList_CheckExact(args[1]) && !PyTuple_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "send_many: msgs must be a list or a tuple");
        return NULL;
    }
    Py_ssize_t start = 0;
    if (nargs == 3) {
        start = PyLong_AsSsize_t(args[2]);
        if (start == -1 && PyErr_Occurred())
            return NULL;
        if (start < 0 || start > PySequence_Fast_GET_SIZE(args[1])) {
            PyErr_SetString(PyExc_ValueError, "send_many: start out of range");
            return NULL;
        }
    }
    Py_ssize_t sent = 0;
    int32_t status = fp_send_many_impl(self, args[1], start, &sent);
    if (status == FP_FAILED)
        return NULL;
    return Py_BuildValue("(ni)", sent, (int)status);
}

/* recv_many(ch, max_n) -> list[bytes] | status; see fp_recv_many_impl. */
static PyObject *fp_recv_many(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    PyObject *self = fp_call_core("recv_many", args, nargs, 2);
    if (self == NULL)
        return NULL;
    Py_ssize_t max_n = PyLong_AsSsize_t(args[1]);
    if (max_n == -1 && PyErr_Occurred())
        return NULL;
    if (max_n < 1 || max_n > FP_MAX_RECV_MANY) {
        PyErr_SetString(PyExc_ValueError, "recv_many: max_n out of range");
        return NULL;
    }
    return fp_recv_many_impl(FP_CHANNEL(self), max_n);
}

/* release_pending() -> None: drop the lent objects copying receivers gave back. */
static PyObject *fp_release_pending_py(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    fp_release_pending();
    Py_RETURN_NONE;
}

/* pending_releases() -> int: how many lent objects wait for fp_settle (tests). */
static PyObject *fp_pending_releases(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyLong_FromSize_t(__atomic_load_n(&fp_pending_len, __ATOMIC_RELAXED));
}

/* --- ChannelCore: the front door of nexpo.Channel ---------------------------------------
 *
 * nexpo.Channel subclasses this type, so `ch.send(msg)` is one C call: the non-blocking attempt
 * runs here, and only when it would block (or the call passes a timeout, or something is
 * wrong) is the Python method of the same name with a leading underscore called with the same
 * arguments (`_send`, `_recv`, ...), which owns argument checking, blocking and errors. */

#define FP_MAX_FORWARD 8

/* self.<slow>(*args, **kw) with the arguments this call received. */
static PyObject *fp_forward(PyObject *self, PyObject *slow, PyObject *const *args,
                            Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    PyObject *stack[FP_MAX_FORWARD + 1];
    if (nargs + nkw > FP_MAX_FORWARD) {
        PyErr_SetString(PyExc_TypeError, "too many arguments");
        return NULL;
    }
    stack[0] = self;
    for (Py_ssize_t i = 0; i < nargs + nkw; i++)
        stack[i + 1] = args[i];
    return PyObject_VectorcallMethod(slow, stack, (size_t)(nargs + 1), kwnames);
}

/* True when the call is f(pos..., [timeout=None]) with exactly `npos` positionals and no
 * timeout other than None: the only shape the fast paths take. */
static int fp_plain_call(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, Py_ssize_t npos)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nkw == 0)
        return nargs == npos || (nargs == npos + 1 && args[npos] == Py_None);
    return nkw == 1 && nargs == npos && args[npos] == Py_None;  /* timeout=None by keyword */
}

static PyObject *s_send, *s_recv, *s_try_send, *s_try_recv, *s_send_many, *s_send_many_from,
    *s_recv_many;

static PyObject *core_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (FP_CHANNEL(self) != NULL && fp_plain_call(args, nargs, kwnames, 1)) {
        fp_settle();
        int32_t status = fp_send_one(self, args[0]);
        if (status == NEXPO_OK)
            Py_RETURN_NONE;
        if (status == FP_FAILED)
            PyErr_Clear();  /* _send raises the precise error */
    }
    return fp_forward(self, s_send, args, nargs, kwnames);
}

static PyObject *core_recv(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    nexpo_channel *ch = FP_CHANNEL(self);
    if (ch != NULL && fp_plain_call(args, nargs, kwnames, 0)) {
        fp_settle();
        PyObject *got = fp_recv_attempt(ch);
        if (got == NULL || PyBytes_CheckExact(got))
            return got;
        Py_DECREF(got);
    }
    return fp_forward(self, s_recv, args, nargs, kwnames);
}

static PyObject *core_try_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (FP_CHANNEL(self) != NULL && nargs == 1 && kwnames == NULL) {
        fp_settle();
        int32_t status = fp_send_one(self, args[0]);
        if (status == NEXPO_OK)
            Py_RETURN_TRUE;
        if (status == NEXPO_EAGAIN)
            Py_RETURN_FALSE;
        if (status == FP_FAILED)
            PyErr_Clear();
    }
    return fp_forward(self, s_try_send, args, nargs, kwnames);
}

static PyObject *core_try_recv(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    nexpo_channel *ch = FP_CHANNEL(self);
    if (ch != NULL && nargs == 0 && kwnames == NULL) {
        fp_settle();
        PyObject *got = fp_recv_attempt(ch);
        if (got == NULL || PyBytes_CheckExact(got))
            return got;
        long status = PyLong_AsLong(got);
        Py_DECREF(got);
        if (status == NEXPO_EAGAIN)
            Py_RETURN_NONE;
    }
    return fp_forward(self, s_try_recv, args, nargs, kwnames);
}

static PyObject *core_send_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (FP_CHANNEL(self) == NULL || !fp_plain_call(args, nargs, kwnames, 1)
            || !(PyList_CheckExact(args[0]) || PyTuple_CheckExact(args[0])))
        return fp_forward(self, s_send_many, args, nargs, kwnames);
    fp_settle();
    Py_ssize_t sent = 0;
    int32_t status = fp_send_many_impl(self, args[0], 0, &sent);
    if (status == FP_FAILED)
        return NULL;
    if (status == NEXPO_OK)
        return PyLong_FromSsize_t(sent);
    /* The rest, or the precise error: self._send_many_from(msgs, sent, None). */
    PyObject *start = PyLong_FromSsize_t(sent < 0 ? 0 : sent);
    if (start == NULL)
        return NULL;
    PyObject *out = PyObject_CallMethodObjArgs(self, s_send_many_from, args[0], start, Py_None, NULL);
    Py_DECREF(start);
    return out;
}

static PyObject *core_recv_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    nexpo_channel *ch = FP_CHANNEL(self);
    if (ch != NULL && fp_plain_call(args, nargs, kwnames, 1) && PyLong_CheckExact(args[0])) {
        Py_ssize_t max_n = PyLong_AsSsize_t(args[0]);
        if (max_n >= 1 && max_n <= FP_MAX_RECV_MANY) {
            fp_settle();
            PyObject *got = fp_recv_many_impl(ch, max_n);
            if (got == NULL || PyList_Check(got))
                return got;
            Py_DECREF(got);
        }
        PyErr_Clear();
    }
    return fp_forward(self, s_recv_many, args, nargs, kwnames);
}

/* _bind(addr, lend) -> None: take ownership of the native handle at `addr`, once. The runtime
 * checks that it is a live handle no other object owns, so no value Python passes can make the
 * methods above dereference a bogus pointer; the handle is released with this object. */
static PyObject *core_bind(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_bind(addr, lend) takes 2 arguments");
        return NULL;
    }
    unsigned long long addr = PyLong_AsUnsignedLongLong(args[0]);
    if (addr == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    int lend = PyObject_IsTrue(args[1]);
    if (lend < 0)
        return NULL;
    CoreObject *core = (CoreObject *)self;
    if (core->addr != 0) {
        PyErr_SetString(PyExc_ValueError, "_bind: this channel already has a native handle");
        return NULL;
    }
    if (addr == 0 || nexpo_channel_adopt((uintptr_t)addr) != NEXPO_OK) {
        PyErr_SetString(PyExc_ValueError, "_bind: not a live channel handle, or already owned");
        return NULL;
    }
    core->addr = addr;
    core->lend = (char)lend;
    Py_RETURN_NONE;
}

static void core_dealloc(PyObject *self)
{
    CoreObject *core = (CoreObject *)self;
    if (core->addr != 0) {
        nexpo_channel_release(FP_CHANNEL(self));
        core->addr = 0;
    }
    Py_TYPE(self)->tp_free(self);
}

static PyMemberDef core_members[] = {
    {"_addr", T_ULONGLONG, offsetof(CoreObject, addr), READONLY,
     "address of the native channel handle this object owns (0: none yet)"},
    {"_lend", T_BOOL, offsetof(CoreObject, lend), READONLY,
     "lend bytes messages instead of copying them (in-process channels)"},
    {NULL, 0, 0, 0, NULL},
};

#define FASTKW (METH_FASTCALL | METH_KEYWORDS)
static PyMethodDef core_methods[] = {
    {"_bind", (PyCFunction)(void (*)(void))core_bind, METH_FASTCALL,
     "_bind($self, addr, lend, /)\n--\n\n"
     "Own the native channel handle at ``addr`` (once; checked by the runtime)."},
    {"send", (PyCFunction)(void (*)(void))core_send, FASTKW,
     "send($self, msg, /, timeout=None)\n--\n\n"
     "Send one message, waiting up to ``timeout`` seconds for room (None: forever)."},
    {"recv", (PyCFunction)(void (*)(void))core_recv, FASTKW,
     "recv($self, /, timeout=None)\n--\n\n"
     "Receive one message, waiting up to ``timeout`` seconds (None: forever)."},
    {"try_send", (PyCFunction)(void (*)(void))core_try_send, FASTKW,
     "try_send($self, msg, /)\n--\n\n"
     "Send if there is room now; False when full. ChannelClosed when closed."},
    {"try_recv", (PyCFunction)(void (*)(void))core_try_recv, FASTKW,
     "try_recv($self, /)\n--\n\n"
     "A message if one is ready now, else None. ChannelClosed when closed and drained."},
    {"send_many", (PyCFunction)(void (*)(void))core_send_many, FASTKW,
     "send_many($self, msgs, /, timeout=None)\n--\n\n"
     "Send the messages in order, waiting for room as needed; returns how many were sent.\n\n"
     "Stops early (returning the count so far) when the channel closes or the timeout passes\n"
     "after at least one message went; raises ChannelClosed / TimeoutError when none did."},
    {"recv_many", (PyCFunction)(void (*)(void))core_recv_many, FASTKW,
     "recv_many($self, max_n, /, timeout=None)\n--\n\n"
     "Wait for at least one message, then take up to ``max_n`` that are ready."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nexpo._fastpath.ChannelCore",
    .tp_doc = "The C half of nexpo.Channel: its per-message methods (see nexpo/_fastpath.c).",
    .tp_basicsize = sizeof(CoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = core_dealloc,
    .tp_methods = core_methods,
    .tp_members = core_members,
};

static PyMethodDef fp_methods[] = {
    {"send", (PyCFunction)(void (*)(void))fp_send, METH_FASTCALL,
     "send(ch, msg) -> status: one non-blocking attempt, holding the GIL."},
    {"recv", (PyCFunction)(void (*)(void))fp_recv, METH_FASTCALL,
     "recv(ch) -> bytes | status: one non-blocking attempt, holding the GIL."},
    {"send_many", (PyCFunction)(void (*)(void))fp_send_many, METH_FASTCALL,
     "send_many(ch, msgs, start=0, /) -> (index, status): send msgs[start:] until one would block."},
    {"recv_many", (PyCFunction)(void (*)(void))fp_recv_many, METH_FASTCALL,
     "recv_many(ch, max_n) -> list[bytes] | status: what is ready now."},
    {"release_pending", fp_release_pending_py, METH_NOARGS,
     "release_pending() -> None: drop lent messages that copying receivers gave back."},
    {"pending_releases", fp_pending_releases, METH_NOARGS,
     "pending_releases() -> int: lent messages given back and not yet dropped."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fp_module = {
    PyModuleDef_HEAD_INIT,
    "nexpo._fastpath",
    "Non-blocking channel calls that keep the GIL (see nexpo/_fastpath.c).",
    0,
    fp_methods,
    NULL, NULL, NULL, NULL,
};

#ifdef __GNUC__
#pragma GCC visibility push(default)
#endif
PyMODINIT_FUNC PyInit__fastpath(void)
{
    if ((s_send = PyUnicode_InternFromString("_send")) == NULL
            || (s_recv = PyUnicode_InternFromString("_recv")) == NULL
            || (s_try_send = PyUnicode_InternFromString("_try_send")) == NULL
            || (s_try_recv = PyUnicode_InternFromString("_try_recv")) == NULL
            || (s_send_many = PyUnicode_InternFromString("_send_many")) == NULL
            || (s_send_many_from = PyUnicode_InternFromString("_send_many_from")) == NULL
            || (s_recv_many = PyUnicode_InternFromString("_recv_many")) == NULL)
        return NULL;
    if (PyType_Ready(&CoreType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&fp_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(m, "ChannelCore", (PyObject *)&CoreType) < 0) {
        Py_DECREF(&CoreType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "SCRATCH", FP_SCRATCH) < 0
            || PyModule_AddIntConstant(m, "GIL_FREE_COPY", FP_GIL_FREE_COPY) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    /* Before any channel can hold a lent object: copying receivers give them back here. */
    if (pthread_atfork(NULL, NULL, fp_pending_after_fork) != 0) {
        Py_DECREF(m);
        PyErr_SetString(PyExc_OSError, "nexpo._fastpath: pthread_atfork failed");
        return NULL;
    }
    nexpo_channel_set_ref_release(fp_defer_release);
    return m;
}
#ifdef __GNUC__
#pragma GCC visibility pop
#endif
