/* nexpo._aeadpath: the AEAD key objects (AesGcm, ChaCha20Poly1305) and the one-shot AES-256-GCM
 * calls, in C against the CPython API.
 *
 * Why it exists: at 64 bytes an AEAD call is a few hundred nanoseconds of work; cffi's argument
 * conversion, its GIL release and a Python wrapper frame each cost as much. Here one C method
 * checks its arguments once, reads bytes objects in place, writes straight into the result bytes
 * object, and decides once per call whether to release the GIL (inputs of GIL_MINSIZE bytes or
 * more, as hashlib does).
 *
 * Built into the same shared object as the cffi module nexpo._core, as a further PyInit_ (PEP
 * 489), so it calls the Nim exports (aes.h, crypto.h) directly. The one-shot functions of both
 * AEADs (nexpo.crypto.aes256gcm_*, chacha20poly1305_*) are here too. Errors carry the native message:
 * NEXPO_EAUTH → nexpo.AuthenticationError, NEXPO_EINVAL → ValueError.
 *
 * Key objects hold native key state (AES: round keys and GHASH powers; ChaCha20: the key) in
 * memory they own; it is wiped when the object is freed. They cannot be pickled or subclassed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_bytes_view.h"
#include "core.h"
#include "crypto.h"
#include "aes.h"

/* Messages at least this long are processed with the GIL released. */
#define AP_GIL_MINSIZE 4096
#define AP_KEY_LEN 32
#define AP_NONCE_LEN 12
#define AP_TAG_LEN 16
/* Message limits, checked before the output is allocated (the natives check them again):
 * GCM's 32-bit block counter, ChaCha20's 2^32 - 1 blocks after the one-time key. */
#define AP_AES_MAX ((1LL << 36) - 32)
#define AP_CHACHA_MAX (((1LL << 32) - 1) * 64)

static PyObject *ap_auth_error;  /* nexpo.errors.AuthenticationError */

typedef int32_t (*ap_native_fn)(const void *state, size_t state_len, const char *nonce,
                                size_t nonce_len, const char *data, size_t len, const char *aad,
                                size_t aad_len, uint8_t *out, size_t out_len);

/* A bytes-like argument read in place: bytes objects without the buffer protocol's cost. */
typedef struct {
    const char *buf;
    Py_ssize_t len;
    Py_buffer view;
    int has_view;
} ap_arg;

static int ap_read(PyObject *obj, ap_arg *arg, const char *name)
{
    arg->has_view = 0;
    if (PyBytes_CheckExact(obj)) {
        arg->buf = PyBytes_AS_STRING(obj);
        arg->len = PyBytes_GET_SIZE(obj);
        return 0;
    }
    if (nx_bytes_view(obj, &arg->view, name) < 0)
        return -1;
    arg->has_view = 1;
    arg->buf = arg->view.buf;
    arg->len = arg->view.len;
    return 0;
}

static void ap_release(ap_arg *arg)
{
    if (arg->has_view) {
        PyBuffer_Release(&arg->view);
        arg->has_view = 0;
    }
}

static PyObject *ap_raise(int32_t status)
{
    const char *msg = nexpo_last_error();
    PyObject *type = status == NEXPO_EAUTH ? ap_auth_error
                   : status == NEXPO_ENOMEM ? PyExc_MemoryError
                   : status == NEXPO_ETYPE ? PyExc_TypeError
                   : status == NEXPO_EINVAL ? PyExc_ValueError : PyExc_RuntimeError;
    PyErr_SetString(type, msg != NULL && msg[0] ? msg : "AEAD call failed");
    return NULL;
}

/* Parse (nonce, data, aad=b"") from a vectorcall; aad may be passed by keyword. */
static int ap_parse(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                    PyObject **nonce, PyObject **data, PyObject **aad)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    PyObject *found = NULL;
    if (nkw > 1 || (nkw == 1 && nargs != 2) || (nkw == 0 && (nargs < 2 || nargs > 3))) {
        PyErr_Format(PyExc_TypeError, "%s(nonce, data, aad=b\"\") takes 2 or 3 arguments", fname);
        return -1;
    }
    if (nkw == 1) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, 0);
        if (PyUnicode_CompareWithASCIIString(name, "aad") != 0
                && PyUnicode_CompareWithASCIIString(name, "associated_data") != 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", fname, name);
            return -1;
        }
        found = args[2];
    } else if (nargs == 3) {
        found = args[2];
    }
    *nonce = args[0];
    *data = args[1];
    *aad = found;
    return 0;
}

/* The shared body of every AEAD call: read the arguments, size the output, run `fn` on
 * `state` with the GIL kept for short messages. `opening` = data ends with the tag;
 * `aad_none_ok`: aad=None means no AAD (the key objects, as cryptography's do). */
static PyObject *ap_run(const char *fname, ap_native_fn fn, const void *state, size_t state_len,
                        PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int opening,
                        long long max_len, int aad_none_ok)
{
    PyObject *nonce_obj, *data_obj, *aad_obj, *out = NULL;
    ap_arg nonce, data, aad;
    if (ap_parse(fname, args, nargs, kwnames, &nonce_obj, &data_obj, &aad_obj) < 0)
        return NULL;
    if (ap_read(nonce_obj, &nonce, "nonce") < 0)
        return NULL;
    if (ap_read(data_obj, &data, "data") < 0)
        goto release_nonce;
    if (aad_obj == NULL || (aad_obj == Py_None && aad_none_ok)) {
        aad.has_view = 0;
        aad.buf = NULL;
        aad.len = 0;
    } else if (ap_read(aad_obj, &aad, "aad") < 0) {
        goto release_data;
    }
    if (nonce.len != AP_NONCE_LEN) {
        PyErr_Format(PyExc_ValueError, "nonce must be %d bytes, got %zd", AP_NONCE_LEN, nonce.len);
        goto release_all;
    }
    if (opening && data.len < AP_TAG_LEN) {
        PyErr_Format(PyExc_ValueError, "data: %zd bytes is shorter than the %d-byte tag", data.len,
                     AP_TAG_LEN);
        goto release_all;
    }
    if ((long long)data.len - (opening ? AP_TAG_LEN : 0) > max_len) {
        PyErr_Format(PyExc_ValueError, "data: %zd bytes is over the %lld-byte message limit",
                     data.len, max_len);
        goto release_all;
    }
    Py_ssize_t out_len = opening ? data.len - AP_TAG_LEN : data.len + AP_TAG_LEN;
    out = PyBytes_FromStringAndSize(NULL, out_len);
    if (out == NULL)
        goto release_all;
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
    int32_t status;
    if (data.len < AP_GIL_MINSIZE) {
        status = fn(state, state_len, nonce.buf, (size_t)nonce.len, data.buf, (size_t)data.len,
                    aad.buf, (size_t)aad.len, dst, (size_t)out_len);
    } else {
        Py_BEGIN_ALLOW_THREADS
        status = fn(state, state_len, nonce.buf, (size_t)nonce.len, data.buf, (size_t)data.len,
                    aad.buf, (size_t)aad.len, dst, (size_t)out_len);
        Py_END_ALLOW_THREADS
    }
    if (status != NEXPO_OK) {
        Py_CLEAR(out);
        ap_raise(status);
    }
release_all:
    ap_release(&aad);
release_data:
    ap_release(&data);
release_nonce:
    ap_release(&nonce);
    return out;
}

/* ChaCha20-Poly1305's exports take the raw key: adapt them to the (state, state_len) shape. */
static int32_t ap_chacha_seal(const void *key, size_t key_len, const char *nonce, size_t nonce_len,
                              const char *data, size_t len, const char *aad, size_t aad_len,
                              uint8_t *out, size_t out_len)
{
    return nexpo_chacha20poly1305_encrypt(key, key_len, nonce, nonce_len, data, len, aad, aad_len,
                                          out, out_len);
}

static int32_t ap_chacha_open(const void *key, size_t key_len, const char *nonce, size_t nonce_len,
                              const char *data, size_t len, const char *aad, size_t aad_len,
                              uint8_t *out, size_t out_len)
{
    return nexpo_chacha20poly1305_decrypt(key, key_len, nonce, nonce_len, data, len, aad, aad_len,
                                          out, out_len);
}

/* The one-shot exports take (key, key_len) where the key objects pass (state, state_len). */
static int32_t ap_aes_oneshot_seal(const void *key, size_t key_len, const char *nonce,
                                   size_t nonce_len, const char *data, size_t len, const char *aad,
                                   size_t aad_len, uint8_t *out, size_t out_len)
{
    return nexpo_aes256gcm_encrypt(key, key_len, nonce, nonce_len, data, len, aad, aad_len, out,
                                   out_len);
}

static int32_t ap_aes_oneshot_open(const void *key, size_t key_len, const char *nonce,
                                   size_t nonce_len, const char *data, size_t len, const char *aad,
                                   size_t aad_len, uint8_t *out, size_t out_len)
{
    return nexpo_aes256gcm_decrypt(key, key_len, nonce, nonce_len, data, len, aad, aad_len, out,
                                   out_len);
}

/* --- key objects ------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    void *state;       /* AES: nexpo_aes256gcm_key_size() bytes; ChaCha20: the 32-byte key */
    size_t state_len;
    int is_aes;
} ap_key;

static PyTypeObject ap_aesgcm_type;
static PyTypeObject ap_chacha_type;

static PyObject *ap_key_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"key", NULL};
    PyObject *key_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O", kwlist, &key_obj))
        return NULL;
    ap_arg key;
    if (ap_read(key_obj, &key, "key") < 0)
        return NULL;
    if (key.len != AP_KEY_LEN) {
        PyErr_Format(PyExc_ValueError, "key must be %d bytes, got %zd", AP_KEY_LEN, key.len);
        ap_release(&key);
        return NULL;
    }
    int is_aes = type == &ap_aesgcm_type;
    size_t state_len = is_aes ? nexpo_aes256gcm_key_size() : AP_KEY_LEN;
    void *state = PyMem_Calloc(1, state_len);
    if (state == NULL) {
        ap_release(&key);
        return PyErr_NoMemory();
    }
    int32_t status = NEXPO_OK;
    if (is_aes)
        status = nexpo_aes256gcm_key_init(state, state_len, key.buf, (size_t)key.len);
    else
        memcpy(state, key.buf, AP_KEY_LEN);
    ap_release(&key);
    ap_key *self = status == NEXPO_OK ? (ap_key *)type->tp_alloc(type, 0) : NULL;
    if (self == NULL) {
        nexpo_aes256gcm_key_wipe(state, state_len);
        PyMem_Free(state);
        return status == NEXPO_OK ? NULL : ap_raise(status);
    }
    self->state = state;
    self->state_len = state_len;
    self->is_aes = is_aes;
    return (PyObject *)self;
}

static void ap_key_dealloc(ap_key *self)
{
    if (self->state != NULL) {
        nexpo_aes256gcm_key_wipe(self->state, self->state_len);
        PyMem_Free(self->state);
        self->state = NULL;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *ap_key_encrypt(ap_key *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    return ap_run("encrypt", self->is_aes ? nexpo_aes256gcm_seal : ap_chacha_seal, self->state,
                  self->state_len, args, nargs, kw, 0,
                  self->is_aes ? AP_AES_MAX : AP_CHACHA_MAX, 1);
}

static PyObject *ap_key_decrypt(ap_key *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    return ap_run("decrypt", self->is_aes ? nexpo_aes256gcm_open : ap_chacha_open, self->state,
                  self->state_len, args, nargs, kw, 1,
                  self->is_aes ? AP_AES_MAX : AP_CHACHA_MAX, 1);
}

static PyObject *ap_key_reduce(PyObject *self, PyObject *unused)
{
    PyErr_Format(PyExc_TypeError, "cannot pickle a %.100s object (it holds a secret key)",
                 Py_TYPE(self)->tp_name);
    return NULL;
}

static PyObject *ap_key_repr(PyObject *self)
{
    return PyUnicode_FromFormat("<%s object @ %p>", Py_TYPE(self)->tp_name, self);
}

static PyMethodDef ap_key_methods[] = {
    {"encrypt", (PyCFunction)(void (*)(void))ap_key_encrypt, METH_FASTCALL | METH_KEYWORDS,
     "encrypt(nonce, data, aad=b\"\") -> ciphertext || 16-byte tag (aad may be None)."},
    {"decrypt", (PyCFunction)(void (*)(void))ap_key_decrypt, METH_FASTCALL | METH_KEYWORDS,
     "decrypt(nonce, data, aad=b\"\") -> plaintext; AuthenticationError if anything was altered."},
    {"__reduce__", ap_key_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ap_aesgcm_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nexpo.crypto.AesGcm",
    .tp_basicsize = sizeof(ap_key),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "AesGcm(key): AES-256-GCM under a 32-byte key, expanded once (12-byte nonces, "
              "16-byte tags).",
    .tp_new = ap_key_new,
    .tp_dealloc = (destructor)ap_key_dealloc,
    .tp_methods = ap_key_methods,
    .tp_repr = ap_key_repr,
};

static PyTypeObject ap_chacha_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nexpo.crypto.ChaCha20Poly1305",
    .tp_basicsize = sizeof(ap_key),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ChaCha20Poly1305(key): RFC 8439 AEAD under a 32-byte key (12-byte nonces, "
              "16-byte tags).",
    .tp_new = ap_key_new,
    .tp_dealloc = (destructor)ap_key_dealloc,
    .tp_methods = ap_key_methods,
    .tp_repr = ap_key_repr,
};

/* --- one-shot calls (the key travels with each call) ------------------------------------------------------------------ */

/* (key, nonce, data, aad=b"") → the key expanded on the native side, used, wiped. */
static PyObject *ap_oneshot(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames, int opening, int is_aes)
{
    if (nargs < 1) {
        PyErr_Format(PyExc_TypeError, "%s(key, nonce, data, aad=b\"\") takes 3 or 4 arguments", fname);
        return NULL;
    }
    ap_arg key;
    if (ap_read(args[0], &key, "key") < 0)
        return NULL;
    PyObject *result = NULL;
    if (key.len != AP_KEY_LEN) {
        PyErr_Format(PyExc_ValueError, "key must be %d bytes, got %zd", AP_KEY_LEN, key.len);
    } else {
        ap_native_fn fn = is_aes ? (opening ? ap_aes_oneshot_open : ap_aes_oneshot_seal)
                                 : (opening ? ap_chacha_open : ap_chacha_seal);
        result = ap_run(fname, fn, key.buf, (size_t)key.len, args + 1, nargs - 1, kwnames, opening,
                        is_aes ? AP_AES_MAX : AP_CHACHA_MAX, 0);
    }
    ap_release(&key);
    return result;
}

static PyObject *ap_aes_encrypt(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    return ap_oneshot("aes256gcm_encrypt", args, nargs, kw, 0, 1);
}

static PyObject *ap_aes_decrypt(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    return ap_oneshot("aes256gcm_decrypt", args, nargs, kw, 1, 1);
}

static PyObject *ap_chacha_encrypt(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    return ap_oneshot("chacha20poly1305_encrypt", args, nargs, kw, 0, 0);
}

static PyObject *ap_chacha_decrypt(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    return ap_oneshot("chacha20poly1305_decrypt", args, nargs, kw, 1, 0);
}

static PyObject *ap_aes_impl(PyObject *m, PyObject *unused)
{
    static const char *names[] = {"portable", "aes-ni", "vaes"};
    int32_t impl = nexpo_aes256gcm_impl();
    return PyUnicode_FromString(impl >= 0 && impl <= 2 ? names[impl] : "unknown");
}

static PyObject *ap_aes_variants(PyObject *m, PyObject *unused)
{
    int32_t cpu = nexpo_aes256gcm_cpu();
    if (cpu & 2)
        return Py_BuildValue("[sss]", "portable", "aes-ni", "vaes");
    if (cpu & 1)
        return Py_BuildValue("[ss]", "portable", "aes-ni");
    return Py_BuildValue("[s]", "portable");
}

static PyMethodDef ap_methods[] = {
    {"aes256gcm_variants", ap_aes_variants, METH_NOARGS,
     "aes256gcm_variants() -> list[str]: the variants this CPU can run."},
    {"aes256gcm_impl", ap_aes_impl, METH_NOARGS,
     "aes256gcm_impl() -> 'portable' | 'aes-ni' | 'vaes': the variant the next call uses."},
    {"aes256gcm_encrypt", (PyCFunction)(void (*)(void))ap_aes_encrypt, METH_FASTCALL | METH_KEYWORDS,
     "aes256gcm_encrypt(key, nonce, data, aad=b\"\") -> ciphertext || tag."},
    {"aes256gcm_decrypt", (PyCFunction)(void (*)(void))ap_aes_decrypt, METH_FASTCALL | METH_KEYWORDS,
     "aes256gcm_decrypt(key, nonce, data, aad=b\"\") -> plaintext."},
    {"chacha20poly1305_encrypt", (PyCFunction)(void (*)(void))ap_chacha_encrypt,
     METH_FASTCALL | METH_KEYWORDS,
     "chacha20poly1305_encrypt(key, nonce, plaintext, aad=b\"\") -> ciphertext || tag."},
    {"chacha20poly1305_decrypt", (PyCFunction)(void (*)(void))ap_chacha_decrypt,
     METH_FASTCALL | METH_KEYWORDS,
     "chacha20poly1305_decrypt(key, nonce, data, aad=b\"\") -> plaintext."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef ap_module = {
    PyModuleDef_HEAD_INIT,
    "nexpo._aeadpath",
    "AEAD key objects and calls that keep the GIL for short inputs (see nexpo/_aeadpath.c).",
    0,
    ap_methods,
    NULL, NULL, NULL, NULL,
};

#ifdef __GNUC__
#pragma GCC visibility push(default)
#endif
PyMODINIT_FUNC PyInit__aeadpath(void)
{
    if (ap_auth_error == NULL) {
        PyObject *errors = PyImport_ImportModule("nexpo.errors");
        if (errors == NULL)
            return NULL;
        ap_auth_error = PyObject_GetAttrString(errors, "AuthenticationError");
        Py_DECREF(errors);
        if (ap_auth_error == NULL)
            return NULL;
    }
    if (PyType_Ready(&ap_aesgcm_type) < 0 || PyType_Ready(&ap_chacha_type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&ap_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "GIL_MINSIZE", AP_GIL_MINSIZE) < 0
            || PyModule_AddIntConstant(m, "AES256GCM_MAX", (long)AP_AES_MAX) < 0
            || PyModule_AddObjectRef(m, "AesGcm", (PyObject *)&ap_aesgcm_type) < 0
            || PyModule_AddObjectRef(m, "ChaCha20Poly1305", (PyObject *)&ap_chacha_type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
#ifdef __GNUC__
#pragma GCC visibility pop
#endif
