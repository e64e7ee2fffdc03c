/* recv / try_recv / iteration: one message out (nexpo/_channel).
 *
 * A receive takes messages with nexpo_channel_recv_one (recv_visit for many), which hands
 * each one in place to take_one: a lent object comes back as it is (lend.c), anything else is copied into a new
 * bytes object.
 */
#include <string.h>

#include "channel.h"

/* What a visit collects: new references, or the failure that stopped it. */
typedef struct {
    PyObject **out;
    size_t n;
    int failed;
} Taken;

/* nexpo_visit_fn: the lent object itself, or a new bytes object copied from the ring. */
static void take_one(void *ctx, const char *data, size_t len, void *obj)
{
    Taken *t = (Taken *)ctx;
    PyObject *msg = (PyObject *)obj;
    if (t->failed) { /* after a MemoryError the rest of this claim is dropped */
        Py_XDECREF(msg);
        return;
    }
    if (msg == NULL) {
        /* Copied only when a cffi call sent it, and that call took the ring off the serialised
         * path first (type.c): releasing the GIL here never lets a second receiver in. */
        if (len < CH_GIL_FREE_COPY) {
            msg = PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
        } else if ((msg = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len)) != NULL) {
            char *dst = PyBytes_AS_STRING(msg);
            Py_BEGIN_ALLOW_THREADS
            memcpy(dst, data, len);
            Py_END_ALLOW_THREADS
        }
        if (msg == NULL) {
            t->failed = 1;
            return;
        }
    }
    t->out[t->n++] = msg;
}

/* What a visit that took t->n messages into t->out and returned `status` comes to. */
static inline int32_t taken_status(Taken *t, int32_t status)
{
    if (CH_LIKELY(!t->failed && (status == NEXPO_OK || t->n == 0)))
        return status;
    /* A MemoryError, or a shared ring found corrupted after some messages of the claim: the
     * messages of this claim are lost with the error. */
    for (size_t i = 0; i < t->n; i++)
        Py_DECREF(t->out[i]);
    t->n = 0;
    if (status == NEXPO_OK)
        return CH_FAILED;
    PyErr_Clear();
    return status;
}

int32_t ch_take_ready(nexpo_channel *ch, size_t want, PyObject **out, size_t *count)
{
    Taken t = {out, 0, 0};
    size_t got = 0;
    int32_t status = taken_status(&t, nexpo_channel_recv_visit(ch, want, take_one, &t, &got));
    *count = t.n;
    return status;
}

/* At most one message ready now into *out: the status, or CH_FAILED. Static: an exported
 * function is called through the PLT even from this file. */
static inline int32_t take_one_ready(nexpo_channel *ch, PyObject **out)
{
    Taken t = {out, 0, 0};
    return taken_status(&t, nexpo_channel_recv_one(ch, take_one, &t));
}

/* One non-blocking receive: the message, or NULL with *status (CH_FAILED: an exception). */
static inline PyObject *recv_attempt(nexpo_channel *ch, int32_t *status)
{
    PyObject *msg = NULL;
    *status = take_one_ready(ch, &msg);
    return *status == NEXPO_OK ? msg : NULL;
}

static CH_COLD PyObject *recv_waiting(ChannelObject *self, int64_t deadline, int32_t status)
{
    while (status == NEXPO_EAGAIN) {
        int ready = ch_wait(self, CH_RECV, deadline);
        if (ready < 0)
            return NULL;
        if (ready == 0)
            return ch_fail(NEXPO_ETIMEOUT, "recv");
        ch_settle();
        PyObject *msg = recv_attempt(self->ch, &status);
        if (msg != NULL)
            return msg;
    }
    return ch_fail(status, "recv");
}

static CH_COLD PyObject *recv_parsed(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    static const char *const names[] = {"timeout"};
    PyObject *timeout;
    if (ch_args("recv", args, nargs, kwnames, names, 1, 0, 0, &timeout) < 0)
        return NULL;
    int64_t deadline = ch_deadline(timeout); /* a bad timeout fails even when a message is ready */
    if (deadline == -2)
        return NULL;
    if (self->ch == NULL)
        return ch_unbound();
    ch_settle();
    int32_t status;
    PyObject *msg = recv_attempt(self->ch, &status);
    return msg != NULL ? msg : recv_waiting(self, deadline, status);
}

PyObject *ch_recv(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ChannelObject *self = (ChannelObject *)op;
    if (CH_LIKELY(nargs == 0 && kwnames == NULL && self->ch != NULL)) {
        ch_settle();
        int32_t status;
        PyObject *msg = recv_attempt(self->ch, &status);
        if (CH_LIKELY(msg != NULL))
            return msg;
        return recv_waiting(self, -1, status);
    }
    return recv_parsed(self, args, nargs, kwnames);
}

PyObject *ch_try_recv(PyObject *op, PyObject *unused)
{
    (void)unused;
    ChannelObject *self = (ChannelObject *)op;
    if (self->ch == NULL)
        return ch_unbound();
    ch_settle();
    int32_t status;
    PyObject *msg = recv_attempt(self->ch, &status);
    if (msg != NULL)
        return msg;
    if (status == NEXPO_EAGAIN)
        Py_RETURN_NONE;
    return ch_fail(status, "recv");
}

/* for msg in channel: receive until the channel is closed and drained. */
PyObject *ch_iternext(PyObject *op)
{
    PyObject *msg = ch_recv(op, NULL, 0, NULL);
    if (msg == NULL && ch_closed_pending())
        PyErr_Clear(); /* StopIteration */
    return msg;
}
