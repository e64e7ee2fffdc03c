/* nexpo._hashpath.sha256_many_list: SHA-256 of every item of a list or tuple of exact bytes,
 * returned as a list of 32-byte bytes objects.
 *
 * The cost of a batch of 1M short messages is as much in the Python objects as in the hashing:
 * reading each item, and creating each digest object. Both need the GIL, so they run on this
 * thread; nexpo_sha256_many_stream lets them overlap with the hashing. It calls hp_fill chunk by
 * chunk, and while hp_fill reads the items of chunk k+1 and creates their digest objects, the
 * pool hashes chunk k straight into the objects created for it (not shared with anyone yet, so
 * writing them without the GIL is safe). No buffer of digests, no copy.
 *
 * The GIL is released for the whole call (hp_fill takes it back for its own work) unless the
 * batch is small (hashlib's threshold, as in _hashpath.c). Before it is first released, a
 * reference to every item is taken (the snapshot: another thread may change the list
 * meanwhile); each is given back once its chunk is hashed. Bytes are immutable, so the buffers
 * stay as they were. An item that is not exact bytes returns NotImplemented before any work: the
 * Python layer's general path takes it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core.h"
#include "crypto.h"
#include "binding.h"
#include "_hashpath_list.h"

typedef struct {
    PyObject *messages;         /* the list or tuple (the caller's argument: alive for the call) */
    Py_ssize_t n;               /* its size when the call began */
    PyObject *result;           /* the list of digests; slot i is set when item i is read */
    PyObject **held;            /* held[i]: a reference to item i, for [released, nheld) */
    uint64_t *lens;             /* lens[i]: item i's size, read once by the snapshot */
    Py_ssize_t nheld, released;
    PyThreadState *ts;          /* while the GIL is released: this thread's saved state */
} hp_stream;

/* Items are apart in memory and each is read once: ask for item i + HP_AHEAD's header while
 * item i is handled. */
#define HP_AHEAD 16

/* Items per range of a shared snapshot: below two ranges' worth this thread does it alone. */
#define HP_SNAPSHOT_GRAIN 32768

static void hp_release_held(hp_stream *s, Py_ssize_t upto)
{
    for (Py_ssize_t i = s->released; i < upto; i++) {
        if (i + HP_AHEAD < upto)
            __builtin_prefetch(s->held[i + HP_AHEAD], 1);
        Py_DECREF(s->held[i]);
    }
    s->released = upto;
}

/* hp_fill's work, with the GIL held: give back the references of the hashed messages, create
 * the chunk's digest objects and describe the chunk. Runs no Python code. */
static int32_t hp_fill_locked(hp_stream *s, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t done,
                              const char **ptrs, uint64_t *lens, uint8_t **outs)
{
    hp_release_held(s, done);
    for (Py_ssize_t i = lo; i < hi; i++) {
        PyObject *digest = PyBytes_FromStringAndSize(NULL, 32);
        if (digest == NULL)
            return NEXPO_ENOMEM;
        PyList_SET_ITEM(s->result, i, digest);
        /* an address and a size from the snapshot: the item itself (far away) is not read */
        ptrs[i - lo] = PyBytes_AS_STRING(s->held[i]);
        lens[i - lo] = s->lens[i];
        outs[i - lo] = (uint8_t *)PyBytes_AS_STRING(digest);
    }
    return NEXPO_OK;
}

static int32_t hp_fill(size_t lo, size_t hi, size_t done, const char **ptrs, uint64_t *lens,
                       uint8_t **outs, void *ctx)
{
    hp_stream *s = ctx;
    if (s->ts != NULL)
        PyEval_RestoreThread(s->ts);
    int32_t status = hp_fill_locked(s, (Py_ssize_t)lo, (Py_ssize_t)hi, (Py_ssize_t)done, ptrs, lens, outs);
    if (s->ts != NULL)
        s->ts = PyEval_SaveThread();
    return status;
}

/* The snapshot: a reference to every item, taken before the GIL is first released (another
 * thread may then change the list: the batch is what the list held when the call began), and
 * its size. For a long list, the scheduler's threads share this pass (it reads every item, far
 * apart in memory, while they have nothing else to do yet): this thread holds the GIL and waits
 * in nexpo_parallel_for meanwhile, so no Python code runs and no other thread touches the
 * counts. A debug build counts references in the interpreter's state, so it stays on this
 * thread. A slot of an item that is not exact bytes stays NULL. */
typedef struct {
    PyObject **items;
    hp_stream *s;
    int bad;                    /* an item is not exact bytes (set by any thread, read after) */
} hp_snap;

static void hp_snapshot_range(size_t lo, size_t hi, void *ctx)
{
    hp_snap *snap = ctx;
    PyObject **held = snap->s->held;
    uint64_t *lens = snap->s->lens;
    for (size_t i = lo; i < hi; i++) {
        if (i + HP_AHEAD < hi)
            __builtin_prefetch(snap->items[i + HP_AHEAD], 1);
        PyObject *item = snap->items[i];
        if (!PyBytes_CheckExact(item)) {
            held[i] = NULL;
            __atomic_store_n(&snap->bad, 1, __ATOMIC_RELAXED);
            continue;
        }
        held[i] = Py_NewRef(item);
        lens[i] = (uint64_t)PyBytes_GET_SIZE(item);
    }
}

/* 1: ready, *total = the input bytes; 0: an item is not exact bytes (nothing held). */
static int hp_snapshot(hp_stream *s, uint64_t *total)
{
    hp_snap snap = {.items = PyList_CheckExact(s->messages) ? ((PyListObject *)s->messages)->ob_item
                                                            : ((PyTupleObject *)s->messages)->ob_item,
                    .s = s};
#ifdef Py_REF_DEBUG
    hp_snapshot_range(0, (size_t)s->n, &snap);
#else
    if (s->n < 2 * HP_SNAPSHOT_GRAIN
        || nexpo_parallel_for((size_t)s->n, HP_SNAPSHOT_GRAIN, hp_snapshot_range, &snap) != NEXPO_OK)
        hp_snapshot_range(0, (size_t)s->n, &snap);
#endif
    s->nheld = s->n;
    if (snap.bad) {
        for (Py_ssize_t i = 0; i < s->n; i++)
            Py_XDECREF(s->held[i]);
        s->released = s->nheld;
        return 0;
    }
    *total = 0;
    for (Py_ssize_t i = 0; i < s->n; i++)
        *total += s->lens[i];
    return 1;
}

PyObject *hp_sha256_many_list(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "sha256_many_list(messages, /) takes one argument");
        return NULL;
    }
    hp_stream s = {.messages = args[0]};
    if (PyList_CheckExact(s.messages))
        s.n = PyList_GET_SIZE(s.messages);
    else if (PyTuple_CheckExact(s.messages))
        s.n = PyTuple_GET_SIZE(s.messages);
    else
        return Py_NewRef(Py_NotImplemented);
    if ((size_t)s.n > PY_SSIZE_T_MAX / (sizeof(PyObject *) + sizeof(uint64_t)))
        return PyErr_NoMemory();
    s.result = PyList_New(s.n);
    if (s.result == NULL)
        return NULL;
    /* one block: the references, then the sizes */
    s.held = PyMem_Malloc((s.n > 0 ? (size_t)s.n : 1) * (sizeof(PyObject *) + sizeof(uint64_t)));
    if (s.held == NULL) {
        Py_DECREF(s.result);
        return PyErr_NoMemory();
    }
    s.lens = (uint64_t *)(s.held + (s.n > 0 ? s.n : 1));
    uint64_t total;
    if (!hp_snapshot(&s, &total)) {
        PyMem_Free(s.held);
        Py_DECREF(s.result);
        return Py_NewRef(Py_NotImplemented);
    }
    int32_t status;
    if (total + 32 * (uint64_t)s.n < HP_LIST_GIL_MINSIZE) {
        status = nexpo_sha256_many_stream((size_t)s.n, 0, hp_fill, &s);
    } else {
        s.ts = PyEval_SaveThread();
        status = nexpo_sha256_many_stream((size_t)s.n, 0, hp_fill, &s);
        PyEval_RestoreThread(s.ts);
        s.ts = NULL;
    }
    hp_release_held(&s, s.nheld);
    PyMem_Free(s.held);
    if (status == NEXPO_OK && !PyErr_Occurred())
        return s.result;
    Py_DECREF(s.result);
    return PyErr_Occurred() ? NULL : PyLong_FromLong(status);
}
