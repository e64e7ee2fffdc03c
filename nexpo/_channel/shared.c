/* create_shared / open_shared: channels in POSIX shared memory (nexpo/_channel).
 *
 * The ring's geometry is checked at open and kept in process-local memory by the runtime
 * (runtime/ring_guard.nim); shared rings carry inline bytes only, never lent references.
 */
#include <string.h>

#include "channel.h"

#define CH_DEFAULT_SHARED_MAX_MESSAGE (64 * 1024)

/* The name as shm_open wants it (no leading '/'), UTF-8; NULL with TypeError/ValueError. */
static PyObject *shm_name(PyObject *name)
{
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "name must be a str, not %.100s", Py_TYPE(name)->tp_name);
        return NULL;
    }
    Py_ssize_t len = PyUnicode_GET_LENGTH(name);
    Py_ssize_t start = len > 0 && PyUnicode_READ_CHAR(name, 0) == '/' ? 1 : 0;
    int ok = len - start >= 1 && len - start <= 200;
    for (Py_ssize_t i = start; ok && i < len; i++) {
        Py_UCS4 c = PyUnicode_READ_CHAR(name, i);
        ok = c != '/' && c != 0;
    }
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "name must be 1..200 characters without '/' or NUL, got %R", name);
        return NULL;
    }
    PyObject *bare = PyUnicode_Substring(name, start, len);
    if (bare == NULL)
        return NULL;
    PyObject *encoded = PyUnicode_AsUTF8String(bare);
    Py_DECREF(bare);
    return encoded;
}

int ch_mode_code(PyObject *mode)
{
    static const char *const modes[] = {"spsc", "mpsc", "spmc", "mpmc"};
    if (mode == NULL)
        return 3;
    if (PyUnicode_Check(mode)) {
        for (int i = 0; i < 4; i++)
            if (PyUnicode_CompareWithASCIIString(mode, modes[i]) == 0)
                return i;
    }
    PyErr_Format(PyExc_ValueError, "mode must be one of spsc, mpsc, spmc, mpmc, got %R", mode);
    return -1;
}

/* A new, unbound object of `cls` (Channel or a subclass) to own the handle. */
static PyObject *ch_blank(PyObject *cls)
{
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &ChannelType)) {
        PyErr_SetString(PyExc_TypeError, "not a Channel class");
        return NULL;
    }
    return ((PyTypeObject *)cls)->tp_alloc((PyTypeObject *)cls, 0);
}

static PyObject *adopt_new(PyObject *cls, int32_t status, nexpo_channel *ch, PyObject *name, int creator)
{
    if (status != NEXPO_OK)
        return ch_fail(status, "open");
    PyObject *self = ch_blank(cls);
    if (self == NULL) {
        nexpo_channel_release(ch);
        return NULL;
    }
    if (ch_own((ChannelObject *)self, ch, name, creator) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return self;
}

PyObject *ch_create_shared(PyObject *cls, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"name", "capacity", "mode", "max_message_size"};
    PyObject *argv[4];
    if (ch_args("create_shared", args, nargs, kwnames, names, 4, 0, 2, argv) < 0)
        return NULL;
    if (nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "create_shared() takes mode and max_message_size by keyword");
        return NULL;
    }
    PyObject *name_b = shm_name(argv[0]);
    if (name_b == NULL)
        return NULL;
    long long capacity, max_message = CH_DEFAULT_SHARED_MAX_MESSAGE;
    int mode;
    if (ch_int_arg(argv[1], "capacity", 1, CH_MAX_CAPACITY, &capacity) < 0
            || (mode = ch_mode_code(argv[2])) < 0
            || (argv[3] != NULL && ch_int_arg(argv[3], "max_message_size", 0, 1 << 24, &max_message) < 0)) {
        Py_DECREF(name_b);
        return NULL;
    }
    nexpo_channel *ch = NULL;
    int32_t status = nexpo_channel_create_shared(PyBytes_AS_STRING(name_b), mode, (size_t)capacity,
                                                 (size_t)max_message, &ch);
    Py_DECREF(name_b);
    return adopt_new(cls, status, ch, argv[0], 1);
}

PyObject *ch_open_shared(PyObject *cls, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"name"};
    PyObject *name;
    if (ch_args("open_shared", args, nargs, kwnames, names, 1, 0, 1, &name) < 0)
        return NULL;
    PyObject *name_b = shm_name(name);
    if (name_b == NULL)
        return NULL;
    nexpo_channel *ch = NULL;
    int32_t status = nexpo_channel_open_shared(PyBytes_AS_STRING(name_b), &ch);
    Py_DECREF(name_b);
    return adopt_new(cls, status, ch, name, 0);
}
