/* nexpo._channel.Channel: the type, its method table, creation, properties and close.
 *
 * Compiled into the shared object of the cffi module nexpo._core (nimble.toml, [python]
 * sources) so it calls the one Nim runtime, and loaded from that file as nexpo._channel by
 * nexpo/_native.py (PEP 489: one library, several PyInit_ functions). nexpo.Channel
 * (nexpo/channels.py) subclasses it only to add asyncio (nexpo/_channels/aio.py).
 * The handle cannot come from Python unchecked: the runtime says whether an address is a live
 * handle nobody owns yet (nexpo_channel_adopt), once, and the object releases it when it dies.
 */
#include "channel.h"

#include <structmember.h>

#define CH_DEFAULT_MAX_MESSAGE (16 * 1024 * 1024)

/* A lending in-process channel moves its messages only in send_refs / recv_visit calls made
 * holding the GIL (lend.c): the runtime may skip its SPSC side guards on them (binding.h).
 * Not where no GIL serialises the calls (a free-threaded build). */
static void ch_serialise(ChannelObject *self)
{
#ifndef Py_GIL_DISABLED
    if (self->lend)
        (void)nexpo_channel_serialise(self->ch); /* EUNSUPPORTED: the guarded path, as before */
#else
    (void)self;
#endif
}

int ch_own(ChannelObject *self, nexpo_channel *ch, PyObject *name, int creator)
{
    if (nexpo_channel_adopt((uintptr_t)ch) != NEXPO_OK) {
        nexpo_channel_release(ch);
        ch_fail(NEXPO_EINVAL, "adopt");
        return -1;
    }
    self->ch = ch;
    self->lend = name == NULL; /* shared rings copy (lend.c) */
    ch_serialise(self);
    self->creator = (char)creator;
    Py_XINCREF(name);
    Py_XSETREF(self->name, name);
    return 0;
}

static int ch_init(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"capacity", "mode", "max_message_size", NULL};
    ChannelObject *self = (ChannelObject *)op;
    PyObject *capacity_o, *mode_o = NULL, *max_o = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OO:Channel", kwlist, &capacity_o, &mode_o, &max_o))
        return -1;
    long long capacity, max_message = CH_DEFAULT_MAX_MESSAGE;
    int mode;
    if (ch_int_arg(capacity_o, "capacity", 1, CH_MAX_CAPACITY, &capacity) < 0
            || (mode = ch_mode_code(mode_o)) < 0
            || (max_o != NULL && ch_int_arg(max_o, "max_message_size", 0, 0x7fffffffLL, &max_message) < 0))
        return -1;
    if (self->ch != NULL) {
        PyErr_SetString(PyExc_ValueError, "this channel already has a native handle");
        return -1;
    }
    nexpo_channel *ch = NULL;
    int32_t status = nexpo_channel_new(mode, (size_t)capacity, (size_t)max_message, &ch);
    if (status != NEXPO_OK) {
        ch_fail(status, "new");
        return -1;
    }
    return ch_own(self, ch, NULL, 0);
}

static void ch_dealloc(PyObject *op)
{
    ChannelObject *self = (ChannelObject *)op;
    if (self->weakrefs != NULL)
        PyObject_ClearWeakRefs(op);
    if (self->ch != NULL) {
        nexpo_channel_release(self->ch); /* the creator's also unlinks a shared name */
        self->ch = NULL;
    }
    Py_CLEAR(self->name);
    Py_TYPE(op)->tp_free(op);
}

/* _bind(addr, lend): take ownership of the native handle at `addr`, once (checked). */
static PyObject *ch_bind(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    ChannelObject *self = (ChannelObject *)op;
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
    if (self->ch != NULL) {
        PyErr_SetString(PyExc_ValueError, "_bind: this channel already has a native handle");
        return NULL;
    }
    if (addr == 0 || nexpo_channel_adopt((uintptr_t)addr) != NEXPO_OK) {
        PyErr_SetString(PyExc_ValueError, "_bind: not a live channel handle, or already owned");
        return NULL;
    }
    self->ch = (nexpo_channel *)(uintptr_t)addr;
    self->lend = (char)lend;
    ch_serialise(self);
    Py_RETURN_NONE;
}

/* --- properties --------------------------------------------------------------------------- */

enum { INFO_MODE, INFO_CAPACITY, INFO_MAX_MESSAGE, INFO_LEN, INFO_CLOSED, INFO_SHARED, INFO_N };

static int ch_info(ChannelObject *self, uint64_t *out)
{
    if (self->ch == NULL) {
        ch_unbound();
        return -1;
    }
    int32_t status = nexpo_channel_info(self->ch, out, INFO_N);
    if (status != NEXPO_OK) {
        ch_fail(status, "info");
        return -1;
    }
    return 0;
}

static PyObject *ch_get_info(PyObject *op, void *which)
{
    uint64_t info[INFO_N];
    if (ch_info((ChannelObject *)op, info) < 0)
        return NULL;
    intptr_t i = (intptr_t)which;
    if (i == INFO_CLOSED || i == INFO_SHARED)
        return PyBool_FromLong(info[i] != 0);
    return PyLong_FromUnsignedLongLong(info[i]);
}

static const char *const mode_names[] = {"spsc", "mpsc", "spmc", "mpmc"};

static PyObject *ch_get_mode(PyObject *op, void *unused)
{
    (void)unused;
    uint64_t info[INFO_N];
    if (ch_info((ChannelObject *)op, info) < 0)
        return NULL;
    return PyUnicode_FromString(mode_names[info[INFO_MODE] & 3]);
}

static PyObject *ch_get_name(PyObject *op, void *unused)
{
    (void)unused;
    PyObject *name = ((ChannelObject *)op)->name;
    return Py_NewRef(name != NULL ? name : Py_None);
}

static PyObject *ch_get_addr(PyObject *op, void *unused)
{
    (void)unused;
    return PyLong_FromUnsignedLongLong((uintptr_t)((ChannelObject *)op)->ch);
}

static Py_ssize_t ch_len(PyObject *op)
{
    ChannelObject *self = (ChannelObject *)op;
    if (self->ch == NULL) {
        ch_unbound();
        return -1;
    }
    return (Py_ssize_t)nexpo_channel_len(self->ch);
}

static PyObject *ch_repr(PyObject *op)
{
    uint64_t info[INFO_N];
    if (ch_info((ChannelObject *)op, info) < 0)
        return NULL;
    PyObject *name = ((ChannelObject *)op)->name;
    PyObject *where = info[INFO_SHARED] && name != NULL ? PyUnicode_FromFormat(" shared=%R", name)
                                                          : PyUnicode_FromString("");
    if (where == NULL)
        return NULL;
    PyObject *out = PyUnicode_FromFormat("<nexpo.Channel %s %llu/%llu%U%s>", mode_names[info[INFO_MODE] & 3],
                                         (unsigned long long)info[INFO_LEN],
                                         (unsigned long long)info[INFO_CAPACITY], where,
                                         info[INFO_CLOSED] ? " closed" : "");
    Py_DECREF(where);
    return out;
}

/* close(): for every user (every process, for a shared ring); idempotent. */
static PyObject *ch_close(PyObject *op, PyObject *unused)
{
    (void)unused;
    ChannelObject *self = (ChannelObject *)op;
    if (self->ch == NULL)
        return ch_unbound();
    int32_t status = nexpo_channel_close(self->ch);
    if (status != NEXPO_OK)
        return ch_fail(status, "close");
    ch_settle_slow();
    Py_RETURN_NONE;
}

static PyObject *ch_enter(PyObject *op, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(op);
}

static PyObject *ch_exit(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    /* A subclass's close (nexpo.Channel wakes its asyncio waiters) runs too. */
    return PyObject_CallMethod(op, "close", NULL);
}

static PyMemberDef ch_members[] = {
    {"_lend", T_BOOL, offsetof(ChannelObject, lend), READONLY,
     "lend bytes messages instead of copying them (in-process channels)"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef ch_getset[] = {
    {"capacity", ch_get_info, NULL, "Slots in the ring (a power of two, at least 2).", (void *)INFO_CAPACITY},
    {"mode", ch_get_mode, NULL, "'spsc', 'mpsc', 'spmc' or 'mpmc'.", NULL},
    {"max_message_size", ch_get_info, NULL, "The longest message, in bytes.", (void *)INFO_MAX_MESSAGE},
    {"closed", ch_get_info, NULL, "True once close() was called (by any user).", (void *)INFO_CLOSED},
    {"shared", ch_get_info, NULL, "True for a channel in shared memory.", (void *)INFO_SHARED},
    {"name", ch_get_name, NULL, "The shared-memory name, or None for an in-process channel.", NULL},
    {"_addr", ch_get_addr, NULL, "Address of the native handle this object owns (0: none).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

#define FASTKW (METH_FASTCALL | METH_KEYWORDS)
#define FN(f) (PyCFunction)(void (*)(void))(f)
static PyMethodDef ch_methods[] = {
    {"send", FN(ch_send), FASTKW,
     "send($self, msg, /, timeout=None)\n--\n\n"
     "Send one message, waiting up to ``timeout`` seconds for room (None: forever)."},
    {"recv", FN(ch_recv), FASTKW,
     "recv($self, /, timeout=None)\n--\n\n"
     "Receive one message, waiting up to ``timeout`` seconds (None: forever)."},
    {"try_send", FN(ch_try_send), FASTKW,
     "try_send($self, msg, /)\n--\n\n"
     "Send if there is room now; False when full. ChannelClosed when closed."},
    {"try_recv", ch_try_recv, METH_NOARGS,
     "try_recv($self, /)\n--\n\n"
     "A message if one is ready now, else None. ChannelClosed when closed and drained."},
    {"send_many", FN(ch_send_many), FASTKW,
     "send_many($self, msgs, /, timeout=None)\n--\n\n"
     "Send the messages in order, waiting for room as needed; returns how many were sent.\n\n"
     "Stops early (returning the count so far) when the channel closes or the timeout passes\n"
     "after at least one message went; raises ChannelClosed / TimeoutError when none did."},
    {"recv_many", FN(ch_recv_many), FASTKW,
     "recv_many($self, /, max_n, timeout=None)\n--\n\n"
     "Wait for at least one message, then take up to ``max_n`` that are ready."},
    {"close", ch_close, METH_NOARGS,
     "close($self, /)\n--\n\n"
     "Close the channel for every user (every process, for a shared one). Idempotent."},
    {"create_shared", FN(ch_create_shared), FASTKW | METH_CLASS,
     "create_shared($cls, /, name, capacity, *, mode='mpmc', max_message_size=65536)\n--\n\n"
     "Create a channel in POSIX shared memory (``/dev/shm/<name>``, mode 0600).\n\n"
     "Other processes attach with :meth:`open_shared`. Every message is stored inline, so the\n"
     "segment is ``capacity * max_message_size`` bytes of address space (pages are only backed\n"
     "once written). ``close()`` on the creator (or the creator object being garbage-collected)\n"
     "unlinks the name; processes that opened it keep their mapping."},
    {"open_shared", FN(ch_open_shared), FASTKW | METH_CLASS,
     "open_shared($cls, /, name)\n--\n\n"
     "Attach to a channel another process created with :meth:`create_shared`."},
    {"_bind", FN(ch_bind), METH_FASTCALL,
     "_bind($self, addr, lend, /)\n--\n\n"
     "Own the native channel handle at ``addr`` (once; checked by the runtime)."},
    {"__enter__", ch_enter, METH_NOARGS, "__enter__($self, /)\n--\n\n"},
    {"__exit__", FN(ch_exit), METH_FASTCALL, "__exit__($self, /, *exc)\n--\n\nClose the channel."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods ch_as_sequence = {.sq_length = ch_len};

PyTypeObject ChannelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nexpo._channel.Channel",
    .tp_doc = "Channel(capacity, *, mode='mpmc', max_message_size=16777216)\n--\n\n"
              "A bounded channel of byte messages (see nexpo.channels).",
    .tp_basicsize = sizeof(ChannelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = PyType_GenericNew,
    .tp_init = ch_init,
    .tp_dealloc = ch_dealloc,
    .tp_repr = ch_repr,
    .tp_as_sequence = &ch_as_sequence,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = ch_iternext,
    .tp_weaklistoffset = offsetof(ChannelObject, weakrefs),
    .tp_methods = ch_methods,
    .tp_members = ch_members,
    .tp_getset = ch_getset,
};

static PyMethodDef module_functions[] = {
    {"release_pending", ch_release_pending, METH_NOARGS,
     "release_pending() -> None: drop lent messages that copying receivers gave back."},
    {"pending_releases", ch_pending_count, METH_NOARGS,
     "pending_releases() -> int: lent messages given back and not yet dropped."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef channel_module = {
    PyModuleDef_HEAD_INIT, "nexpo._channel",
    "The C type behind nexpo.Channel (see nexpo/_channel/type.c).", 0, module_functions,
    NULL, NULL, NULL, NULL,
};

#ifdef __GNUC__
#pragma GCC visibility push(default)
#endif
PyMODINIT_FUNC PyInit__channel(void)
{
    if (ch_errors_init() < 0 || PyType_Ready(&ChannelType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&channel_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Channel", (PyObject *)&ChannelType) < 0
            || PyModule_AddIntConstant(m, "SCRATCH", CH_SCRATCH) < 0
            || PyModule_AddIntConstant(m, "GIL_FREE_COPY", CH_GIL_FREE_COPY) < 0
            || ch_lend_init() < 0) { /* before any channel can hold a lent object */
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
#ifdef __GNUC__
#pragma GCC visibility pop
#endif
