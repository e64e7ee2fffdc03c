/* nexpo._hashpath: hash entry points that decide, per call, whether to release the GIL: SHA-512,
 * HMAC-SHA-512, and the SHA-256 / HMAC-SHA-256 batches over a list of bytes.
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

#include "_bytes_view.h"
#include "core.h"
#include "sha512.h"
#include "crypto.h"
#include "_hashpath_list.h"

/* Inputs at least this long are hashed with the GIL released (hashlib's threshold). */
#define HP_GIL_MINSIZE HP_LIST_GIL_MINSIZE

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
    if (nx_bytes_view(args[0], &view, "data") < 0)
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
    if (nx_bytes_view(args[1], &view, "data") < 0)
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

/* HMAC-SHA-512: the key and the data as read-only views; the GIL decision is on the data's
 * length (the key costs at most two more blocks). */
static int hp_hmac_views(PyObject *const *args, Py_buffer *key, Py_buffer *data)
{
    if (nx_bytes_view(args[0], key, "key") < 0)
        return -1;
    if (nx_bytes_view(args[1], data, "data") < 0) {
        PyBuffer_Release(key);
        return -1;
    }
    return 0;
}

static PyObject *hp_hmac_sha512(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "hmac_sha512(key, data, /) takes two arguments");
        return NULL;
    }
    Py_buffer key, data;
    if (hp_hmac_views(args, &key, &data) < 0)
        return NULL;
    uint8_t out[64];
    int32_t status;
    if (data.len < HP_GIL_MINSIZE) {
        status = nexpo_hmac_sha512(key.buf, (size_t)key.len, data.buf, (size_t)data.len, out, sizeof out);
    } else {
        Py_BEGIN_ALLOW_THREADS
        status = nexpo_hmac_sha512(key.buf, (size_t)key.len, data.buf, (size_t)data.len, out, sizeof out);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    if (status != NEXPO_OK)
        return PyLong_FromLong(status);
    return PyBytes_FromStringAndSize((const char *)out, sizeof out);
}

static PyObject *hp_hmac_sha512_verify(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "hmac_sha512_verify(key, data, tag, /) takes three arguments");
        return NULL;
    }
    Py_buffer key, data, tag;
    if (hp_hmac_views(args, &key, &data) < 0)
        return NULL;
    if (nx_bytes_view(args[2], &tag, "tag") < 0) {
        PyBuffer_Release(&key);
        PyBuffer_Release(&data);
        return NULL;
    }
    int32_t ok = 0, status;
    if (data.len < HP_GIL_MINSIZE) {
        status = nexpo_hmac_sha512_verify(key.buf, (size_t)key.len, data.buf, (size_t)data.len,
                                          tag.buf, (size_t)tag.len, &ok);
    } else {
        Py_BEGIN_ALLOW_THREADS
        status = nexpo_hmac_sha512_verify(key.buf, (size_t)key.len, data.buf, (size_t)data.len,
                                          tag.buf, (size_t)tag.len, &ok);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    PyBuffer_Release(&tag);
    if (status != NEXPO_OK)
        return PyLong_FromLong(status);
    return PyBool_FromLong(ok);
}

/* HMAC-SHA-256 over a list or tuple of exact bytes, hashed in place (SHA-256's list batch is
 * _hashpath_list.c): the items' own buffers go to the
 * native call as (pointer, length) pairs, with no joined copy. A reference to every item is
 * held (bytes are immutable), so another thread changing the list meanwhile changes nothing here.
 * Anything else (other containers, bytearray, memoryview items) returns NotImplemented: the
 * Python layer's general path takes it. */
typedef struct {
    PyObject **held;            /* the snapshot: a new reference to every item */
    Py_ssize_t n;               /* items held */
    const char **ptrs;
    uint64_t *lens;
    uint8_t *out;
    uint64_t total;
} hp_batch;

static void hp_batch_free(hp_batch *b)
{
    for (Py_ssize_t i = 0; i < b->n; i++)
        Py_DECREF(b->held[i]);
    PyMem_Free(b->held);
    PyMem_Free(b->ptrs);
    PyMem_Free(b->lens);
    PyMem_Free(b->out);
}

/* 1: ready; 0: not a list/tuple of exact bytes (NotImplemented); -1: an exception is set.
 * One pass over the items (they are far apart in memory: each pass costs a trip to DRAM per
 * item for large batches): check the type, take a reference, note buffer and size. No Python
 * code runs during the pass (no decref of anything, no allocation), so the list cannot change
 * under it. */
static int hp_batch_init(hp_batch *b, PyObject *messages)
{
    memset(b, 0, sizeof *b);
    Py_ssize_t count;
    PyObject **items;
    if (PyList_CheckExact(messages)) {
        count = PyList_GET_SIZE(messages);
        items = ((PyListObject *)messages)->ob_item;
    } else if (PyTuple_CheckExact(messages)) {
        count = PyTuple_GET_SIZE(messages);
        items = ((PyTupleObject *)messages)->ob_item;
    } else
        return 0;
    size_t slots = count > 0 ? (size_t)count : 1;
    if (slots > PY_SSIZE_T_MAX / 32) {
        PyErr_NoMemory();
        return -1;
    }
    b->held = PyMem_Malloc(slots * sizeof *b->held);
    b->ptrs = PyMem_Malloc(slots * sizeof *b->ptrs);
    b->lens = PyMem_Malloc(slots * sizeof *b->lens);
    b->out = PyMem_Malloc(slots * 32);
    if (b->held == NULL || b->ptrs == NULL || b->lens == NULL || b->out == NULL) {
        hp_batch_free(b);
        PyErr_NoMemory();
        return -1;
    }
    /* The allocations above ran no Python code either: `count` and `items` still hold. */
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = items[i];
        if (!PyBytes_CheckExact(item)) {
            hp_batch_free(b);
            return 0;
        }
        Py_INCREF(item);
        b->held[b->n++] = item;
        b->ptrs[i] = PyBytes_AS_STRING(item);
        b->lens[i] = (uint64_t)PyBytes_GET_SIZE(item);
        b->total += b->lens[i];
    }
    return 1;
}

/* The digests as a list of 32-byte bytes objects; frees the batch. */
static PyObject *hp_batch_digests(hp_batch *b, int32_t status)
{
    PyObject *result = NULL;
    if (status != NEXPO_OK) {
        result = PyLong_FromLong(status);
    } else if ((result = PyList_New(b->n)) != NULL) {
        for (Py_ssize_t i = 0; i < b->n; i++) {
            PyObject *digest = PyBytes_FromStringAndSize((const char *)b->out + 32 * i, 32);
            if (digest == NULL) {
                Py_CLEAR(result);
                break;
            }
            PyList_SET_ITEM(result, i, digest);
        }
    }
    hp_batch_free(b);
    return result;
}

static PyObject *hp_hmac_sha256_many_list(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "hmac_sha256_many_list(key, messages, /) takes two arguments");
        return NULL;
    }
    hp_batch b;
    int ready = hp_batch_init(&b, args[1]);
    if (ready <= 0)
        return ready < 0 ? NULL : Py_NewRef(Py_NotImplemented);
    Py_buffer key;
    if (nx_bytes_view(args[0], &key, "key") < 0) {
        hp_batch_free(&b);
        return NULL;
    }
    int32_t status;
    if (b.total + 32 * (uint64_t)b.n < HP_GIL_MINSIZE) {
        status = nexpo_hmac_sha256_many_ptrs(key.buf, (size_t)key.len, b.ptrs, b.lens, (size_t)b.n,
                                             b.out, 32 * (size_t)b.n);
    } else {
        Py_BEGIN_ALLOW_THREADS
        status = nexpo_hmac_sha256_many_ptrs(key.buf, (size_t)key.len, b.ptrs, b.lens, (size_t)b.n,
                                             b.out, 32 * (size_t)b.n);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&key);
    return hp_batch_digests(&b, status);
}

static PyMethodDef hp_methods[] = {
    {"sha256_many_list", (PyCFunction)(void (*)(void))hp_sha256_many_list, METH_FASTCALL,
     "sha256_many_list(messages, /) -> list[bytes] | status | NotImplemented (not all bytes)."},
    {"hmac_sha256_many_list", (PyCFunction)(void (*)(void))hp_hmac_sha256_many_list, METH_FASTCALL,
     "hmac_sha256_many_list(key, messages, /) -> list[bytes] | status | NotImplemented."},
    {"sha512", (PyCFunction)(void (*)(void))hp_sha512, METH_FASTCALL,
     "sha512(data, /) -> bytes | status: the digest; the GIL is released for long inputs."},
    {"sha512_update", (PyCFunction)(void (*)(void))hp_sha512_update, METH_FASTCALL,
     "sha512_update(state, data, /) -> status: absorb data into a bytearray state."},
    {"sha512_final", (PyCFunction)(void (*)(void))hp_sha512_final, METH_FASTCALL,
     "sha512_final(state, /) -> bytes | status: the digest; the state is unchanged."},
    {"hmac_sha512", (PyCFunction)(void (*)(void))hp_hmac_sha512, METH_FASTCALL,
     "hmac_sha512(key, data, /) -> bytes | status: HMAC-SHA-512; the GIL is released for long data."},
    {"hmac_sha512_verify", (PyCFunction)(void (*)(void))hp_hmac_sha512_verify, METH_FASTCALL,
     "hmac_sha512_verify(key, data, tag, /) -> bool | status: constant-time tag check."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef hp_module = {
    PyModuleDef_HEAD_INIT,
    "nexpo._hashpath",
    "SHA-512 and HMAC-SHA-512 calls that keep the GIL for short inputs (see nexpo/_hashpath.c).",
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
