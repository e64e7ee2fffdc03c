/* nexpo._matmulpath: `nexpo.kernels.matmul` itself, with its common call in C.
 *
 * Why it exists: at n = 64 the product takes a few microseconds, and the Python wrapper's cffi
 * buffer exports, attribute checks and np.empty cost about 1.3 us more; cffi also releases the
 * GIL around every call, which costs more than a small product (and hands the GIL over when
 * other Python threads wait). This entry takes the call only when it is simple: two exact
 * numpy.ndarray, 2-D, C-contiguous, aligned, the same native float32/float64 dtype. Anything
 * else returns NotImplemented and nexpo/kernels.py's checked path takes it (with its errors).
 *
 * What the kernel reads is described only by the buffers the arrays export (shape, strides,
 * len), never by their attributes: numpy fills the export from its C struct in one call with
 * the GIL held, and the export keeps the memory alive and unresizable until released, so another
 * thread reassigning `a.shape` meanwhile cannot make the two disagree. The element type is the
 * one exception: it is `a.dtype` read (by C, GIL held, on an exact ndarray) right before the
 * export and required to be numpy's own float32/float64 dtype object, with the export's itemsize
 * checked against it. Asking the export for its format instead makes numpy build and compare a
 * format string on every call (~400 instructions per operand).
 *
 * The GIL is released only for products of at least MP_GIL_MINSIZE multiply-adds (one decision
 * per call, like hashlib's HASHLIB_GIL_MINSIZE). Built into the same shared object as nexpo._core
 * (a further PyInit_, PEP 489) so it calls the same Nim export, nexpo_matmul (kernels.h).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core.h"
#include "kernels.h"

/* m*n*k at or above which the product runs with the GIL released: 2^17 multiply-adds, about
 * 1.5 us of float32 work on one core here. Measured with 2-4 Python threads calling matmul:
 * releasing around a 1 x 64 x 256 product (~1 us) halved their combined throughput (each
 * release hands the GIL over), releasing around 64^3 raised it by a third, and one thread alone
 * saw no difference either way. */
#define MP_GIL_MINSIZE (1L << 17)

/* numpy objects, taken once when the module loads (kernels.py imports numpy first). */
static PyTypeObject *mp_ndarray;
static PyObject *mp_empty;      /* numpy.empty */
static PyObject *mp_float32;    /* numpy.dtype("float32") */
static PyObject *mp_float64;    /* numpy.dtype("float64") */
static PyObject *mp_str_dtype;  /* "dtype", interned */

/* 1 when `view` (an ndarray's export, with strides) is a 2-D aligned C-contiguous matrix of
 * `itemsize`-byte elements. */
static int mp_plain_matrix(const Py_buffer *view, Py_ssize_t itemsize)
{
    if (view->ndim != 2 || view->itemsize != itemsize || view->shape == NULL
            || view->strides == NULL)
        return 0;
    Py_ssize_t rows = view->shape[0], cols = view->shape[1];
    if (rows < 0 || cols < 0)
        return 0;
    /* the bytes described must be exactly the bytes exported (rows*cols cannot overflow: it is
     * at most len / itemsize when it matches) */
    if (cols != 0 && rows > view->len / itemsize / cols)
        return 0;
    if (rows * cols * itemsize != view->len)
        return 0;
    /* C order, as PyBuffer_IsContiguous judges it (the strides of an empty matrix, or of an
     * extent of 1, do not matter), without its generic loop */
    if (rows != 0 && cols != 0) {
        if (cols > 1 && view->strides[1] != itemsize)
            return 0;
        if (rows > 1 && view->strides[0] != cols * itemsize)
            return 0;
    }
    return ((uintptr_t)view->buf % (uintptr_t)itemsize) == 0;
}

/* The result's shape tuple (m, n), a new reference. The last one is kept (GIL held): a loop
 * of same-shaped products (the usual case) reuses it instead of building a tuple per call. */
static PyObject *mp_last_shape;
static Py_ssize_t mp_last_m = -1, mp_last_n = -1;

static PyObject *mp_shape_of(Py_ssize_t m, Py_ssize_t n)
{
    if (mp_last_shape != NULL && m == mp_last_m && n == mp_last_n)
        return Py_NewRef(mp_last_shape);
    PyObject *shape = Py_BuildValue("(nn)", m, n);
    if (shape == NULL)
        return NULL;
    Py_XSETREF(mp_last_shape, Py_NewRef(shape));
    mp_last_m = m;
    mp_last_n = n;
    return shape;
}

static PyObject *mp_matmul(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "plain(a, b, /) takes two arguments");
        return NULL;
    }
    PyObject *a = args[0], *b = args[1];
    if (Py_TYPE(a) != mp_ndarray || Py_TYPE(b) != mp_ndarray)
        Py_RETURN_NOTIMPLEMENTED;
    /* the element type: numpy's own native float32/float64 dtype object, the same for both
     * (a byte-swapped or otherwise custom dtype is another object: the checked path takes it) */
    PyObject *dtype = PyObject_GetAttr(a, mp_str_dtype);
    if (dtype == NULL) {
        PyErr_Clear();
        Py_RETURN_NOTIMPLEMENTED;
    }
    Py_DECREF(dtype);  /* only compared by identity; a.dtype keeps the singleton alive */
    PyObject *dtype_b = PyObject_GetAttr(b, mp_str_dtype);
    if (dtype_b == NULL) {
        PyErr_Clear();
        Py_RETURN_NOTIMPLEMENTED;
    }
    Py_DECREF(dtype_b);
    if (dtype != dtype_b || (dtype != mp_float32 && dtype != mp_float64))
        Py_RETURN_NOTIMPLEMENTED;
    int single = dtype == mp_float32;
    Py_ssize_t itemsize = single ? 4 : 8;
    Py_buffer va, vb, vc;
    if (PyObject_GetBuffer(a, &va, PyBUF_STRIDES) < 0) {
        PyErr_Clear();  /* the checked path reports what is wrong */
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (PyObject_GetBuffer(b, &vb, PyBUF_STRIDES) < 0) {
        PyErr_Clear();
        PyBuffer_Release(&va);
        Py_RETURN_NOTIMPLEMENTED;
    }
    PyObject *result = NULL;
    if (!mp_plain_matrix(&va, itemsize) || !mp_plain_matrix(&vb, itemsize)
            || va.shape[1] != vb.shape[0]) {
        result = Py_NewRef(Py_NotImplemented);
        goto done;
    }
    Py_ssize_t m = va.shape[0], k = va.shape[1], n = vb.shape[1];
    PyObject *shape = mp_shape_of(m, n);
    if (shape == NULL)
        goto done;
    PyObject *call_args[2] = {shape, single ? mp_float32 : mp_float64};
    PyObject *c = PyObject_Vectorcall(mp_empty, call_args, 2, NULL);
    Py_DECREF(shape);
    if (c == NULL)
        goto done;
    /* our own fresh array, still described only by its export; its dtype is the one asked
     * for, so no format (numpy builds the format string only when asked: ~40 ns per call) */
    if (PyObject_GetBuffer(c, &vc, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        Py_DECREF(c);
        goto done;
    }
    if (vc.len != m * n * itemsize || !PyBuffer_IsContiguous(&vc, 'C')
            || ((uintptr_t)vc.buf % (uintptr_t)itemsize) != 0) {
        PyBuffer_Release(&vc);
        Py_DECREF(c);
        PyErr_SetString(PyExc_SystemError, "matmul: numpy.empty returned an unexpected buffer");
        goto done;
    }
    int32_t code = single ? NEXPO_F32 : NEXPO_F64;
    int32_t status;
    /* m*n*k in double: no overflow, and exact enough for a threshold */
    if ((double)m * (double)n * (double)k < (double)MP_GIL_MINSIZE) {
        status = nexpo_matmul(code, (size_t)m, (size_t)n, (size_t)k, va.buf, k, 1, vb.buf, n, 1,
                              vc.buf, n);
    } else {
        Py_BEGIN_ALLOW_THREADS
        status = nexpo_matmul(code, (size_t)m, (size_t)n, (size_t)k, va.buf, k, 1, vb.buf, n, 1,
                              vc.buf, n);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&vc);
    if (status != NEXPO_OK) {
        /* The checked path repeats the call and raises the native error with its message. */
        Py_DECREF(c);
        result = Py_NewRef(Py_NotImplemented);
        goto done;
    }
    result = c;
done:
    PyBuffer_Release(&va);
    PyBuffer_Release(&vb);
    return result;
}

/* kernels._matmul_checked: what `matmul` hands every call it does not take (set at import). */
static PyObject *mp_fallback;

/* nexpo.kernels.matmul itself: a Python wrapper's frame around mp_matmul cost ~120 ns per call
 * (2% of a 64^3 float64 product). Takes `matmul(a, b)` and `matmul(a, b, out=None)`; any other
 * call, and every NotImplemented, goes to the checked path with its arguments as given. */
static PyObject *mp_entry(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nargs == 2 && (nkw == 0 || (nkw == 1 && args[2] == Py_None
            && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "out") == 0))) {
        PyObject *result = mp_matmul(self, args, 2);
        if (result != Py_NotImplemented)
            return result;  /* the product, or NULL with an exception (no memory) */
        Py_DECREF(result);
    }
    if (mp_fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "nexpo._matmulpath: no checked path registered");
        return NULL;
    }
    return PyObject_Vectorcall(mp_fallback, args, (size_t)nargs, kwnames);
}

static PyObject *mp_set_fallback(PyObject *self, PyObject *fn)
{
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "set_fallback(fn): fn must be callable");
        return NULL;
    }
    Py_XSETREF(mp_fallback, Py_NewRef(fn));
    Py_RETURN_NONE;
}

static PyMethodDef mp_methods[] = {
    {"plain", (PyCFunction)(void (*)(void))mp_matmul, METH_FASTCALL,
     "plain(a, b, /) -> ndarray | NotImplemented: a @ b for two plain 2-D aligned C-contiguous\n"
     "float32/float64 ndarrays of one dtype; NotImplemented for anything else."},
    {"matmul", (PyCFunction)(void (*)(void))mp_entry, METH_FASTCALL | METH_KEYWORDS,
     "matmul(a, b, *, out=None)\n--\n\n"
     "``a @ b`` for 2-D float32 or float64 arrays of the same dtype; the result is C-contiguous.\n\n"
     "``out``, when given, receives the result in place and is returned; it must be C-contiguous\n"
     "with shape ``(a.shape[0], b.shape[1])`` and the inputs' dtype (``ValueError`` otherwise).\n"
     "Raises ``TypeError`` for non-float or mixed dtypes and ``ValueError`` for arrays that are not\n"
     "2-D or whose inner dimensions differ."},
    {"set_fallback", mp_set_fallback, METH_O,
     "set_fallback(fn, /): the callable that `matmul` hands the calls it does not take."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef mp_module = {
    PyModuleDef_HEAD_INIT,
    "nexpo._matmulpath",
    "nexpo.kernels.matmul's common call in C (see nexpo/_matmulpath.c).",
    0,
    mp_methods,
    NULL, NULL, NULL, NULL,
};

/* Takes numpy's ndarray type, numpy.empty and the two dtypes (new references into the globals). */
static int mp_bind_numpy(void)
{
    PyObject *numpy = PyImport_ImportModule("numpy");
    if (numpy == NULL)
        return -1;
    PyObject *ndarray = PyObject_GetAttrString(numpy, "ndarray");
    PyObject *empty = PyObject_GetAttrString(numpy, "empty");
    PyObject *dtype = PyObject_GetAttrString(numpy, "dtype");
    Py_DECREF(numpy);
    PyObject *f32 = dtype ? PyObject_CallFunction(dtype, "s", "float32") : NULL;
    PyObject *f64 = dtype ? PyObject_CallFunction(dtype, "s", "float64") : NULL;
    Py_XDECREF(dtype);
    if (ndarray == NULL || empty == NULL || f32 == NULL || f64 == NULL || !PyType_Check(ndarray)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ImportError, "nexpo._matmulpath: numpy.ndarray is not a type");
        Py_XDECREF(ndarray);
        Py_XDECREF(empty);
        Py_XDECREF(f32);
        Py_XDECREF(f64);
        return -1;
    }
    mp_str_dtype = PyUnicode_InternFromString("dtype");
    if (mp_str_dtype == NULL) {
        Py_DECREF(ndarray);
        Py_DECREF(empty);
        Py_DECREF(f32);
        Py_DECREF(f64);
        return -1;
    }
    mp_ndarray = (PyTypeObject *)ndarray;
    mp_empty = empty;
    mp_float32 = f32;
    mp_float64 = f64;
    return 0;
}

#ifdef __GNUC__
#pragma GCC visibility push(default)
#endif
PyMODINIT_FUNC PyInit__matmulpath(void)
{
    if (mp_ndarray == NULL && mp_bind_numpy() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&mp_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "GIL_MINSIZE", MP_GIL_MINSIZE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
#ifdef __GNUC__
#pragma GCC visibility pop
#endif
