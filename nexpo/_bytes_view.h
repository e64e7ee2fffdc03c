/* The read-only, contiguous view of a bytes-like argument that the hand-written entry modules
 * (_hashpath.c, _aeadpath.c) take, with the errors nexpo's cffi wrappers raise for the same
 * mistakes: TypeError for str and for non-buffers, ValueError for a non-contiguous buffer. */
#ifndef NEXPO_BYTES_VIEW_H
#define NEXPO_BYTES_VIEW_H

#include <Python.h>

static inline int nx_bytes_view(PyObject *obj, Py_buffer *view, const char *name)
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

#endif
