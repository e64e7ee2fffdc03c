/* Lending: an in-process ring holds a `bytes` message by reference (nexpo/_channel).
 *
 * A bytes object is immutable, so the ring slot keeps the object (a new reference) and its
 * data pointer; a receive made here hands the same object back, with the reference: no copy
 * and no allocation on either side, as with queue.SimpleQueue. Other bytes-like messages are
 * copied once into a new bytes object that is lent (the receiver would have built it anyway).
 * Shared rings (and slots under 16 bytes) take no references: they copy.
 *
 * Receivers that copy instead (cffi receives: select, asyncio; any thread, no GIL) give the
 * reference back through ch_defer_release: it is parked in a list that the next call made
 * here with the GIL drains (ch_settle). pthread_atfork re-initialises the list's lock.
 *
 * Measured by lending or not on the same build ("nexpo" vs "nexpo-copied", a channel bound with
 * lend=False, in benchmarks/test_channels.py; 64-byte messages, thread -> thread, 200k messages,
 * medians of 5 interleaved rounds, a shared 2-core machine; msgs/s, and the ratio to
 * queue.SimpleQueue of the same rounds):
 *                       lent              copied
 *   per item            5.3M (0.65x)      2.4M (0.29x)      (before this type: 0.40x / 0.20x)
 *   batches of 256      23.4M (2.9x)      3.1M (0.38x)
 * Lending wins both (no allocation on the receiving side; a batch claim writes 24 bytes per slot
 * instead of the message), so in-process rings keep it; shared rings cannot have it.
 */
#include <pthread.h>
#include <string.h>

#include "channel.h"

static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;
static PyObject **pending;
size_t ch_pending_len; /* written under the lock; read without it as a hint */
static size_t pending_cap;

/* nexpo_ref_release_fn: any thread, no GIL. On allocation failure the reference leaks (the
 * object stays alive), the only safe thing to do without the GIL. */
static void ch_defer_release(void *obj)
{
    pthread_mutex_lock(&pending_lock);
    if (ch_pending_len == pending_cap) {
        size_t cap = pending_cap ? 2 * pending_cap : 256;
        PyObject **grown = realloc(pending, cap * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&pending_lock);
            return;
        }
        pending = grown;
        pending_cap = cap;
    }
    pending[ch_pending_len] = (PyObject *)obj;
    __atomic_store_n(&ch_pending_len, ch_pending_len + 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&pending_lock);
}

/* Drop the parked references (GIL held). Chunked so no lock is held while objects die. */
void ch_settle_slow(void)
{
    PyObject *chunk[CH_BATCH];
    for (int rounds = 0; rounds < 1 << 16; rounds++) {
        pthread_mutex_lock(&pending_lock);
        size_t n = ch_pending_len < CH_BATCH ? ch_pending_len : CH_BATCH;
        size_t rest = ch_pending_len - n;
        if (n > 0) {
            memcpy(chunk, pending + rest, n * sizeof *chunk);
            __atomic_store_n(&ch_pending_len, rest, __ATOMIC_RELAXED);
        }
        pthread_mutex_unlock(&pending_lock);
        for (size_t i = 0; i < n; i++)
            Py_DECREF(chunk[i]);
        if (rest == 0)
            return;
    }
}

/* A fork while another thread held the lock must not leave the child's lock taken for good. */
static void ch_pending_after_fork(void)
{
    pthread_mutex_init(&pending_lock, NULL);
}

int ch_lend_init(void)
{
    if (pthread_atfork(NULL, NULL, ch_pending_after_fork) != 0) {
        PyErr_SetString(PyExc_OSError, "nexpo._channel: pthread_atfork failed");
        return -1;
    }
    nexpo_channel_set_ref_release(ch_defer_release);
    return 0;
}

int32_t ch_lend(nexpo_channel *ch, PyObject *const *objs, size_t n, size_t *sent)
{
    const char *datas[CH_BATCH];
    size_t lens[CH_BATCH];
    for (size_t i = 0; i < n; i++) {
        datas[i] = PyBytes_AS_STRING(objs[i]);
        lens[i] = (size_t)PyBytes_GET_SIZE(objs[i]);
        Py_INCREF(objs[i]); /* the ring's reference */
    }
    *sent = 0;
    int32_t status = nexpo_channel_send_refs(ch, (void *const *)objs, datas, lens, n, sent);
    for (size_t i = *sent; i < n; i++)
        Py_DECREF(objs[i]); /* not taken: the caller still holds it */
    return status;
}

/* A bytes copy of a bytes-like `msg` made at send time (the sender may reuse its buffer);
 * long copies release the GIL. */
static PyObject *ch_bytes_copy(PyObject *msg, const char *what)
{
    Py_buffer view;
    if (ch_message(msg, &view, what) < 0)
        return NULL;
    PyObject *out;
    if (view.len < CH_GIL_FREE_COPY) {
        out = PyBytes_FromStringAndSize(view.buf, view.len);
    } else if ((out = PyBytes_FromStringAndSize(NULL, view.len)) != NULL) {
        char *dst = PyBytes_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS
        memcpy(dst, view.buf, (size_t)view.len);
        Py_END_ALLOW_THREADS
    }
    ch_release(&view);
    return out;
}

PyObject *ch_lendable(PyObject *msg, const char *what)
{
    return PyBytes_CheckExact(msg) ? Py_NewRef(msg) : ch_bytes_copy(msg, what);
}

PyObject *ch_release_pending(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    ch_settle_slow();
    Py_RETURN_NONE;
}

PyObject *ch_pending_count(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyLong_FromSize_t(__atomic_load_n(&ch_pending_len, __ATOMIC_RELAXED));
}
