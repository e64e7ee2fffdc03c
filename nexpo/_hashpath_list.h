/* The list-of-bytes SHA-256 batch of nexpo._hashpath (nexpo/_hashpath_list.c). */
#ifndef NEXPO_HASHPATH_LIST_H
#define NEXPO_HASHPATH_LIST_H

#include <Python.h>

/* Batches with fewer digest and input bytes than this keep the GIL (hashlib's threshold). */
#define HP_LIST_GIL_MINSIZE 2048

PyObject *hp_sha256_many_list(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

#endif
