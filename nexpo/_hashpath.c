/* nexpo._hashpath: SHA-512 entry points that decide, per call, whether to release the GIL.
 *
 * Why it exists: cffi releases the GIL around every call. For a 64-byte message the release and
 * re-acquire cost more than the hash, and with several Python threads each release hands the
 * GIL over (a futex round trip). hashlib keeps the GIL below HASHLIB_GIL_MINSIZE (2 KiB); these
 * calls do the same: one decision per entry point, on the length of the input.
 *
 * Built into the same shared object as the cffi module nexpo._core, as a second PyInit_ (PEP
 * 489), so it calls the same Nim exports (sha512.h). Statuses other than NEXPO_OK come back as
 * ints; the Python layer (nexpo/_sha512.py) turns them into exceptions with the native message.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core.h"
#include "sha512.h"

/* Inputs at least this long are hashed with the GIL released (hashlib's threshold). */
#define HP_GIL_MINSIZE 2048

/* A contiguous read-only view of a bytes-like `obj`, with the errors read_buffer raises. */
static int hp_view(PyObject *obj, Py_buffer *view, const char *name)
{
    if (PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a bytes-like object, not str (encode it first)", name);
        return -1;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) == 0)
        return 0;
    if (PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a bytes-like object, not %.100s", name,
                     Py_TYPE(obj)->tp_name);
    } else if (PyErr_ExceptionMatches(PyExc_BufferError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be C-contiguous; pass bytes(%s) instead", name, name);
    }
    return -1;
}

/* The caller's state: a bytearray of nexpo_sha512_state_size() bytes (checked again natively). */
static int hp_state(PyObject *obj, Py_buffer *view)
{
    if (!PyByteArray_CheckExact(obj)) {
        PyErr_SetString(PyExc_TypeError, "state must be a bytearray");
        return -1;
    }
    return PyObject_GetBuffer(obj, view, PyBUF_WRITABLE);
}

static PyObject *hp_sha512(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "sha512(data, /) takes one argument");
        return NULL;
    }
    Py_buffer view;
    if (hp_view(args[0], &view, "data") < 0)
        return NULL;
    uint8_t out[64];
    int32_t status;
    if (view.len < HP_GIL_MINSIZE) {
        status = nexpo_sha512(view.buf, (size_t)view.len, out, sizeof out);
    } else {
        Py_BEGIN_ALLOW_THREADS
        status = nexpo_sha512(view.buf, (size_t)view.len, out, sizeof out);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
    if (status != NEXPO_OK)
        return PyLong_FromLong(status);
    return PyBytes_FromStringAndSize((const char *)out, sizeof out);
}

static PyObject *hp_sha512_update(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "sha512_update(state, data, /) takes two arguments");
        return NULL;
    }
    Py_buffer state, view;
    if (hp_view(args[1], &view, "data") < 0)
        return NULL;
    if (hp_state(args[0], &state) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    int32_t status;
    if (view.len < HP_GIL_MINSIZE) {
        status = nexpo_sha512_update(state.buf, (size_t)state.len, view.buf, (size_t)view.len);
    } else {
        Py_BEGIN_ALLOW_THREADS
        status = nexpo_sha512_update(state.buf, (size_t)state.len, view.buf, (size_t)view.len);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&state);
    PyBuffer_Release(&view);
    return PyLong_FromLong(status);
}

static PyObject *hp_sha512_final(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "sha512_final(state, /) takes one argument");
        return NULL;
    }
    Py_buffer state;
    if (hp_state(args[0], &state) < 0)
        return NULL;
    uint8_t out[64];
    int32_t status = nexpo_sha512_final(state.buf, (size_t)state.len, out, sizeof out);
    PyBuffer_Release(&state);
    if (status != NEXPO_OK)
        return PyLong_FromLong(status);
    return PyBytes_FromStringAndSize((const char *)out, sizeof out);
}

static PyMethodDef hp_methods[] = {
    {"sha512", (PyCFunction)(void (*)(void))hp_sha512, METH_FASTCALL,
     "sha512(data, /) -> bytes | status: the digest; the GIL is released for long inputs."},
    {"sha512_update", (PyCFunction)(void (*)(void))hp_sha512_update, METH_FASTCALL,
     "sha512_update(state, data, /) -> status: absorb data into a bytearray state."},
    {"sha512_final", (PyCFunction)(void (*)(void))hp_sha512_final, METH_FASTCALL,
     "sha512_final(state, /) -> bytes | status: the digest; the state is unchanged."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef hp_module = {
    PyModuleDef_HEAD_INIT,
    "nexpo._hashpath",
    "SHA-512 calls that keep the GIL for short inputs (see nexpo/_hashpath.c).",
    0,
    hp_methods,
    NULL, NULL, NULL, NULL,
};

#ifdef __GNUC__
#pragma GCC visibility push(default)
#endif
PyMODINIT_FUNC PyInit__hashpath(void)
{
    PyObject *m = PyModule_Create(&hp_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "GIL_MINSIZE", HP_GIL_MINSIZE) < 0
            || PyModule_AddIntConstant(m, "SHA512_STATE_SIZE", (long)nexpo_sha512_state_size()) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
#ifdef __GNUC__
#pragma GCC visibility pop
#endif
