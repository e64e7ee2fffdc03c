/* nexpo._fastpath: the channel calls that must not release the GIL.
 *
 * Compiled into the same shared object as the cffi module nexpo._core (nimble.toml,
 * [python] fastpath), and loaded from that file under its own name by nexpo/_native.py
 * (PEP 489: one library may export several PyInit_ functions). It calls the same C ABI as the
 * cffi module (capi/runtime.h), so it shares the one Nim runtime.
 *
 * Why it exists: cffi releases the GIL around every call. For a call that never blocks (a
 * channel send or receive that finds room or a message) that release is pure cost, and between
 * two Python threads it is ruinous: each release hands the GIL to the other thread, a futex
 * round trip per message. These functions only ever make non-blocking attempts (timeout 0)
 * while holding the GIL, like queue.SimpleQueue's put/get; when an attempt would block they
 * report NEXPO_EAGAIN and the Python layer falls back to the blocking cffi call, which releases
 * the GIL while it waits.
 *
 * The Python layer (nexpo/channels.py) owns argument checking; these functions trust the
 * channel address they are given and only check what the C API needs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <structmember.h>

#include "core.h"
#include "runtime.h"

/* Messages up to this size are received with one copy into a stack buffer; longer ones come
 * back in a malloc'd block. Batches are gathered into a stack buffer of the same size. */
#define FP_SCRATCH 16384
#define FP_BATCH 256
/* Copies at least this long are made with the GIL released, as hashlib does for long inputs:
 * they take long enough for other threads to matter, and the hand-off is cheap next to them. */
#define FP_GIL_FREE_COPY (64 * 1024)

static nexpo_channel *fp_channel(PyObject *addr)
{
    void *p = PyLong_AsVoidPtr(addr);
    if (p == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "nexpo._fastpath: NULL channel");
    return (nexpo_channel *)p;
}

/* The channel of a module function's call (its first argument), once the count is right. */
static nexpo_channel *fp_call_channel(const char *name, PyObject *const *args, Py_ssize_t nargs,
                                      Py_ssize_t want)
{
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, want, nargs);
        return NULL;
    }
    return fp_channel(args[0]);
}

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

/* Bytes received into a malloc'd block (longer than the scratch buffer), freed here. */
static PyObject *fp_take_heap(char *heap, size_t len)
{
    PyObject *out = PyBytes_FromStringAndSize(heap, (Py_ssize_t)len);
    nexpo_free(heap);
    return out;
}

/* One non-blocking send of a message held by `view`. */
static int32_t fp_send_one(nexpo_channel *ch, const Py_buffer *view)
{
    if (view->len < FP_GIL_FREE_COPY)
        return nexpo_channel_send(ch, view->buf, (size_t)view->len, 0);
    int32_t status;
    Py_BEGIN_ALLOW_THREADS
    status = nexpo_channel_send(ch, view->buf, (size_t)view->len, 0);
    Py_END_ALLOW_THREADS
    return status;
}

/* One non-blocking receive of a message longer than the scratch buffer, as a bytes object, or
 * the status as an int. */
static PyObject *fp_recv_long(nexpo_channel *ch)
{
    size_t len = 0;
    char none = 0, *heap = NULL;  /* cap 0: any non-empty message comes back in heap */
    int32_t status;
    Py_BEGIN_ALLOW_THREADS
    status = nexpo_channel_recv(ch, &none, 0, &len, &heap, 0);
    Py_END_ALLOW_THREADS
    if (status != NEXPO_OK)
        return PyLong_FromLong(status);
    return fp_take_heap(heap, len);
}

/* One non-blocking receive: bytes, or the status as an int (NEXPO_EAGAIN when empty). */
static PyObject *fp_recv_attempt(nexpo_channel *ch)
{
    char buf[FP_SCRATCH];
    int64_t n = nexpo_channel_recv_into(ch, buf, sizeof buf, 0);
    if (n >= 0)
        return PyBytes_FromStringAndSize(buf, (Py_ssize_t)n);
    if (-n != NEXPO_EUNSUPPORTED)
        return PyLong_FromLongLong(-n);
    return fp_recv_long(ch);  /* longer than the scratch buffer */
}


/* send(addr, msg) -> status: one non-blocking attempt (NEXPO_EAGAIN when full). */
static PyObject *fp_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    nexpo_channel *ch = fp_call_channel("send", args, nargs, 2);
    if (ch == NULL)
        return NULL;
    Py_buffer view;
    if (fp_message(args[1], &view) < 0)
        return NULL;
    int32_t status = fp_send_one(ch, &view);
    fp_release(&view);
    return PyLong_FromLong(status);
}

/* recv(addr) -> bytes | status: one non-blocking attempt (NEXPO_EAGAIN when empty). */
static PyObject *fp_recv(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    nexpo_channel *ch = fp_call_channel("recv", args, nargs, 1);
    if (ch == NULL)
        return NULL;
    return fp_recv_attempt(ch);
}

#define FP_FAILED (-1000)           /* a Python exception is set */
#define FP_MAX_RECV_MANY (1 << 24)

/* Sends msgs (a list or tuple) in order until one would block (NEXPO_EAGAIN), fails, or all
 * went (NEXPO_OK); *sent counts what went. Small messages are gathered into one native batch
 * call per FP_BATCH. When msgs[i] is not bytes-like: NEXPO_ETYPE with *sent = -1 - i, before
 * anything is sent. */
static int32_t fp_send_many_impl(nexpo_channel *ch, PyObject *seq, Py_ssize_t *sent_out)
{
    /* The sequence cannot change under us: we hold the GIL and run no Python code. */
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    *sent_out = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_CheckExact(items[i]) && !PyObject_CheckBuffer(items[i])) {
            *sent_out = -1 - i;
            return NEXPO_ETYPE;
        }
    }
    char buf[FP_SCRATCH];
    size_t lens[FP_BATCH];
    Py_ssize_t done = 0;
    int32_t status = NEXPO_OK;
    while (done < n && status == NEXPO_OK) {
        size_t used = 0, k = 0;
        Py_buffer view;
        while (done + (Py_ssize_t)k < n && k < FP_BATCH) {
            if (fp_message(items[done + k], &view) < 0) {
                status = FP_FAILED;
                break;
            }
            size_t len = (size_t)view.len;
            if (len > sizeof buf - used) {
                if (k == 0) {  /* longer than the gather buffer: on its own */
                    status = fp_send_one(ch, &view);
                    if (status == NEXPO_OK)
                        done++;
                }
                fp_release(&view);
                break;
            }
            memcpy(buf + used, view.buf, len);
            fp_release(&view);
            lens[k++] = len;
            used += len;
        }
        if (k > 0) {
            size_t sent = 0;
            int32_t st = nexpo_channel_send_many(ch, buf, lens, k, 0, &sent);
            done += (Py_ssize_t)sent;
            if (status == NEXPO_OK)
                status = st == NEXPO_ETIMEOUT ? NEXPO_EAGAIN : st;
        }
    }
    *sent_out = done;
    return status;
}

/* Up to max_n messages ready now, as a list; when there are none, the status as an int
 * (NEXPO_EAGAIN: empty, NEXPO_ECLOSED: closed and drained). Messages taken before a
 * NEXPO_ECLOSED are returned now, the status on the next call. */
static PyObject *fp_recv_many_impl(nexpo_channel *ch, Py_ssize_t max_n)
{
    char buf[FP_SCRATCH];
    size_t lens[FP_BATCH];
    PyObject *out = NULL;
    Py_ssize_t got = 0;
    int32_t status = NEXPO_OK;
    while (got < max_n) {
        size_t want = (size_t)(max_n - got) < FP_BATCH ? (size_t)(max_n - got) : FP_BATCH;
        size_t count = 0;
        char *heap = NULL;
        status = nexpo_channel_recv_many(ch, buf, sizeof buf, lens, want, 0, &count, &heap);
        if (status != NEXPO_OK)
            break;
        if (out == NULL && (out = PyList_New(0)) == NULL) {
            if (heap != NULL)
                nexpo_free(heap);
            return NULL;  /* the taken messages are lost with the MemoryError */
        }
        size_t offset = 0;
        for (size_t j = 0; j < count; j++) {
            PyObject *msg = heap != NULL
                ? fp_take_heap(heap, lens[0])
                : PyBytes_FromStringAndSize(buf + offset, (Py_ssize_t)lens[j]);
            if (msg == NULL || PyList_Append(out, msg) < 0) {
                Py_XDECREF(msg);
                Py_DECREF(out);
                return NULL;  /* likewise */
            }
            Py_DECREF(msg);
            offset += lens[j];
        }
        got += (Py_ssize_t)count;
    }
    if (out != NULL)
        return out;
    return PyLong_FromLong(status);
}

/* send_many(addr, msgs: list | tuple) -> (sent, status); see fp_send_many_impl. */
static PyObject *fp_send_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    nexpo_channel *ch = fp_call_channel("send_many", args, nargs, 2);
    if (ch == NULL)
        return NULL;
    if (!PyList_CheckExact(args[1]) && !PyTuple_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "send_many: msgs must be a list or a tuple");
        return NULL;
    }
    Py_ssize_t sent = 0;
    int32_t status = fp_send_many_impl(ch, args[1], &sent);
    if (status == FP_FAILED)
        return NULL;
    return Py_BuildValue("(ni)", sent, (int)status);
}

/* recv_many(addr, max_n) -> list[bytes] | status; see fp_recv_many_impl. */
static PyObject *fp_recv_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    nexpo_channel *ch = fp_call_channel("recv_many", args, nargs, 2);
    if (ch == NULL)
        return NULL;
    Py_ssize_t max_n = PyLong_AsSsize_t(args[1]);
    if (max_n == -1 && PyErr_Occurred())
        return NULL;
    if (max_n < 1 || max_n > FP_MAX_RECV_MANY) {
        PyErr_SetString(PyExc_ValueError, "recv_many: max_n out of range");
        return NULL;
    }
    return fp_recv_many_impl(ch, max_n);
}

/* --- ChannelCore: the front door of nexpo.Channel ---------------------------------------
 *
 * nexpo.Channel subclasses this type, so `ch.send(msg)` is one C call: the non-blocking attempt
 * runs here, and only when it would block (or the call passes a timeout, or something is
 * wrong) is the Python method of the same name with a leading underscore called with the same
 * arguments (`_send`, `_recv`, ...), which owns argument checking, blocking and errors. */

typedef struct {
    PyObject_HEAD
    unsigned long long addr;  /* the nexpo_channel *, set by Channel._adopt (0: unbound) */
} CoreObject;

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
    nexpo_channel *ch = (nexpo_channel *)(uintptr_t)((CoreObject *)self)->addr;
    if (ch != NULL && fp_plain_call(args, nargs, kwnames, 1)) {
        Py_buffer view;
        if (fp_message(args[0], &view) == 0) {
            int32_t status = fp_send_one(ch, &view);
            fp_release(&view);
            if (status == NEXPO_OK)
                Py_RETURN_NONE;
        } else {
            PyErr_Clear();  /* _send raises the precise error */
        }
    }
    return fp_forward(self, s_send, args, nargs, kwnames);
}

static PyObject *core_recv(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    nexpo_channel *ch = (nexpo_channel *)(uintptr_t)((CoreObject *)self)->addr;
    if (ch != NULL && fp_plain_call(args, nargs, kwnames, 0)) {
        PyObject *got = fp_recv_attempt(ch);
        if (got == NULL || PyBytes_CheckExact(got))
            return got;
        Py_DECREF(got);
    }
    return fp_forward(self, s_recv, args, nargs, kwnames);
}

static PyObject *core_try_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    nexpo_channel *ch = (nexpo_channel *)(uintptr_t)((CoreObject *)self)->addr;
    if (ch != NULL && nargs == 1 && kwnames == NULL) {
        Py_buffer view;
        if (fp_message(args[0], &view) == 0) {
            int32_t status = fp_send_one(ch, &view);
            fp_release(&view);
            if (status == NEXPO_OK)
                Py_RETURN_TRUE;
            if (status == NEXPO_EAGAIN)
                Py_RETURN_FALSE;
        } else {
            PyErr_Clear();
        }
    }
    return fp_forward(self, s_try_send, args, nargs, kwnames);
}

static PyObject *core_try_recv(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    nexpo_channel *ch = (nexpo_channel *)(uintptr_t)((CoreObject *)self)->addr;
    if (ch != NULL && nargs == 0 && kwnames == NULL) {
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
    nexpo_channel *ch = (nexpo_channel *)(uintptr_t)((CoreObject *)self)->addr;
    if (ch == NULL || !fp_plain_call(args, nargs, kwnames, 1)
            || !(PyList_CheckExact(args[0]) || PyTuple_CheckExact(args[0])))
        return fp_forward(self, s_send_many, args, nargs, kwnames);
    Py_ssize_t sent = 0;
    int32_t status = fp_send_many_impl(ch, args[0], &sent);
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
    nexpo_channel *ch = (nexpo_channel *)(uintptr_t)((CoreObject *)self)->addr;
    if (ch != NULL && fp_plain_call(args, nargs, kwnames, 1) && PyLong_CheckExact(args[0])) {
        Py_ssize_t max_n = PyLong_AsSsize_t(args[0]);
        if (max_n >= 1 && max_n <= FP_MAX_RECV_MANY) {
            PyObject *got = fp_recv_many_impl(ch, max_n);
            if (got == NULL || PyList_Check(got))
                return got;
            Py_DECREF(got);
        }
        PyErr_Clear();
    }
    return fp_forward(self, s_recv_many, args, nargs, kwnames);
}

static PyMemberDef core_members[] = {
    {"_addr", T_ULONGLONG, offsetof(CoreObject, addr), 0,
     "address of the native channel handle (owned by the subclass)"},
    {NULL, 0, 0, 0, NULL},
};

#define FASTKW (METH_FASTCALL | METH_KEYWORDS)
static PyMethodDef core_methods[] = {
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
    .tp_methods = core_methods,
    .tp_members = core_members,
};

static PyMethodDef fp_methods[] = {
    {"send", (PyCFunction)(void (*)(void))fp_send, METH_FASTCALL,
     "send(addr, msg) -> status: one non-blocking attempt, holding the GIL."},
    {"recv", (PyCFunction)(void (*)(void))fp_recv, METH_FASTCALL,
     "recv(addr) -> bytes | status: one non-blocking attempt, holding the GIL."},
    {"send_many", (PyCFunction)(void (*)(void))fp_send_many, METH_FASTCALL,
     "send_many(addr, msgs) -> (sent, status): send until one would block."},
    {"recv_many", (PyCFunction)(void (*)(void))fp_recv_many, METH_FASTCALL,
     "recv_many(addr, max_n) -> list[bytes] | status: what is ready now."},
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
    if (PyModule_AddIntConstant(m, "SCRATCH", FP_SCRATCH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
#ifdef __GNUC__
#pragma GCC visibility pop
#endif
