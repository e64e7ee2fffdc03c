/* Statuses to exceptions, and the argument errors of the channel's methods (nexpo/_channel). */
#include <string.h>

#include "channel.h"

/* nexpo.errors' classes, looked up once at module init (nexpo/_native.py imports it first). */
static PyObject *e_closed, *e_corrupted, *e_nexpo, *e_auth;

int ch_errors_init(void)
{
    PyObject *errors = PyImport_ImportModule("nexpo.errors");
    if (errors == NULL)
        return -1;
    e_closed = PyObject_GetAttrString(errors, "ChannelClosed");
    e_corrupted = PyObject_GetAttrString(errors, "ChannelCorrupted");
    e_nexpo = PyObject_GetAttrString(errors, "NexpoError");
    e_auth = PyObject_GetAttrString(errors, "AuthenticationError");
    Py_DECREF(errors);
    return e_closed && e_corrupted && e_nexpo && e_auth ? 0 : -1;
}

/* The native side's message for this thread's last failure (nexpo._native.error_for). */
static PyObject *ch_native_error(int32_t status)
{
    PyObject *type;
    switch (status) {
    case NEXPO_EINVAL: type = PyExc_ValueError; break;
    case NEXPO_ETYPE: type = PyExc_TypeError; break;
    case NEXPO_ENOMEM: type = PyExc_MemoryError; break;
    case NEXPO_EAUTH: type = e_auth; break;
    case NEXPO_ETIMEOUT: type = PyExc_TimeoutError; break;
    case NEXPO_ECLOSED: type = e_closed; break;
    case NEXPO_EAGAIN: type = PyExc_BlockingIOError; break;
    case NEXPO_ECORRUPT: type = e_corrupted; break;
    default: type = e_nexpo; break;
    }
    const char *message = nexpo_last_error();
    if (message != NULL && message[0] != '\0')
        PyErr_SetString(type, message);
    else
        PyErr_Format(type, "native call failed with status %d", (int)status);
    return NULL;
}

PyObject *ch_fail(int32_t status, const char *op)
{
    if (status == CH_FAILED)
        return NULL;
    if (status == NEXPO_ETIMEOUT)
        PyErr_Format(PyExc_TimeoutError, "channel %s timed out", op);
    else if (status == NEXPO_EAGAIN)
        PyErr_Format(PyExc_TimeoutError, "channel %s would block", op);
    else if (status == NEXPO_ECLOSED)
        PyErr_SetString(e_closed, strncmp(op, "send", 4) == 0 ? "send on a closed channel"
                                                              : "the channel is closed and drained");
    else
        return ch_native_error(status);
    return NULL;
}

int ch_closed_pending(void)
{
    return PyErr_ExceptionMatches(e_closed);
}

PyObject *ch_unbound(void)
{
    PyErr_SetString(PyExc_ValueError, "this Channel was not initialised (no native channel)");
    return NULL;
}

void ch_not_bytes_like(PyObject *msg, const char *what)
{
    if (PyUnicode_Check(msg))
        PyErr_Format(PyExc_TypeError, "%s must be a bytes-like object, not str (encode it first)", what);
    else
        PyErr_Format(PyExc_TypeError, "%s must be a bytes-like object, not %.100s", what,
                     Py_TYPE(msg)->tp_name);
}

int ch_message(PyObject *msg, Py_buffer *view, const char *what)
{
    if (CH_LIKELY(PyBytes_CheckExact(msg))) {
        view->obj = NULL;
        view->buf = PyBytes_AS_STRING(msg);
        view->len = PyBytes_GET_SIZE(msg);
        return 0;
    }
    if (!PyObject_CheckBuffer(msg)) {
        ch_not_bytes_like(msg, what);
        return -1;
    }
    if (PyObject_GetBuffer(msg, view, PyBUF_SIMPLE) == 0)
        return 0;
    if (PyErr_ExceptionMatches(PyExc_BufferError) || PyErr_ExceptionMatches(PyExc_ValueError)) {
        /* A strided view: the ring takes one contiguous run. */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_Format(PyExc_ValueError, "%s must be C-contiguous (%S); pass bytes(%s) instead", what,
                     value ? value : Py_None, what);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    }
    return -1;
}

int ch_int_arg(PyObject *value, const char *name, long long lo, long long hi, long long *out)
{
    if (PyBool_Check(value) || !PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", name, Py_TYPE(value)->tp_name);
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < lo || v > hi) {
        PyErr_Format(PyExc_ValueError, "%s must be between %lld and %lld, got %S", name, lo, hi, value);
        return -1;
    }
    *out = v;
    return 0;
}

int ch_args(const char *fn, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
            const char *const *names, int n, int npos_only, int required, PyObject **out)
{
    if (nargs > n) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fn, n, nargs);
        return -1;
    }
    for (int i = 0; i < n; i++)
        out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int i = npos_only;
        while (i < n && PyUnicode_CompareWithASCIIString(key, names[i]) != 0)
            i++;
        if (i == n) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%S'", fn, key);
            return -1;
        }
        if (out[i] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fn, names[i]);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (int i = 0; i < required; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fn, names[i]);
            return -1;
        }
    }
    return 0;
}
