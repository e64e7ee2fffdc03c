/* send / try_send: one message in (nexpo/_channel).
 *
 * The hot path (ch_send with one positional argument, ch_try_send) is one non-blocking attempt
 * holding the GIL; the cold path parses a timeout and waits (wait.c) between attempts.
 */
#include <string.h>

#include "channel.h"

/* The copying send: out of line, so the lending hot path keeps no Py_buffer frame. */
static CH_NOINLINE int32_t send_copied(nexpo_channel *ch, PyObject *msg, const char *what)
{
    Py_buffer view;
    if (ch_message(msg, &view, what) < 0)
        return CH_FAILED;
    int32_t status;
    if (view.len < CH_GIL_FREE_COPY) {
        status = nexpo_channel_send(ch, view.buf, (size_t)view.len, 0);
    } else {
        Py_BEGIN_ALLOW_THREADS
        status = nexpo_channel_send(ch, view.buf, (size_t)view.len, 0);
        Py_END_ALLOW_THREADS
    }
    ch_release(&view);
    return status;
}

/* One non-blocking send: a NEXPO_* status, or CH_FAILED with an exception. */
static inline int32_t send_attempt(ChannelObject *self, PyObject *msg, const char *what)
{
    nexpo_channel *ch = self->ch;
    if (CH_LIKELY(self->lend)) {
        int32_t status;
        if (CH_LIKELY(PyBytes_CheckExact(msg))) { /* the caller's reference covers the call */
            status = ch_lend_one(ch, msg);
        } else {
            PyObject *lent = ch_lendable(msg, what);
            if (lent == NULL)
                return CH_FAILED;
            status = ch_lend_one(ch, lent);
            Py_DECREF(lent);
        }
        if (status != NEXPO_EUNSUPPORTED)
            return status;
        self->lend = 0; /* a shared ring, or slots too small for a reference: copy from now on */
    }
    return send_copied(ch, msg, what);
}

int32_t ch_send_attempt(ChannelObject *self, PyObject *msg, const char *what)
{
    return send_attempt(self, msg, what);
}

/* Wait for room and try again until the message goes, the deadline passes or it fails. */
static CH_COLD PyObject *send_waiting(ChannelObject *self, PyObject *msg, int64_t deadline,
                                      int32_t status)
{
    while (status == NEXPO_EAGAIN) {
        int ready = ch_wait(self, CH_SEND, deadline);
        if (ready < 0)
            return NULL;
        if (ready == 0)
            return ch_fail(NEXPO_ETIMEOUT, "send");
        ch_settle();
        status = send_attempt(self, msg, "msg");
    }
    if (status != NEXPO_OK)
        return ch_fail(status, "send");
    Py_RETURN_NONE;
}

/* send(msg, timeout=None) in any other shape than send(msg). */
static CH_COLD PyObject *send_parsed(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    static const char *const names[] = {"msg", "timeout"};
    PyObject *argv[2];
    if (ch_args("send", args, nargs, kwnames, names, 2, 1, 1, argv) < 0)
        return NULL;
    int64_t deadline = ch_deadline(argv[1]); /* a bad timeout fails even when there is room */
    if (deadline == -2)
        return NULL;
    if (self->ch == NULL)
        return ch_unbound();
    ch_settle();
    return send_waiting(self, argv[0], deadline, send_attempt(self, argv[0], "msg"));
}

PyObject *ch_send(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ChannelObject *self = (ChannelObject *)op;
    if (CH_LIKELY(nargs == 1 && kwnames == NULL && self->ch != NULL)) {
        ch_settle();
        int32_t status = send_attempt(self, args[0], "msg");
        if (CH_LIKELY(status == NEXPO_OK))
            Py_RETURN_NONE;
        if (status == CH_FAILED)
            return NULL;
        return send_waiting(self, args[0], -1, status);
    }
    return send_parsed(self, args, nargs, kwnames);
}

PyObject *ch_try_send(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ChannelObject *self = (ChannelObject *)op;
    static const char *const names[] = {"msg"};
    PyObject *msg;
    if (ch_args("try_send", args, nargs, kwnames, names, 1, 1, 1, &msg) < 0)
        return NULL;
    if (self->ch == NULL)
        return ch_unbound();
    ch_settle();
    int32_t status = send_attempt(self, msg, "msg");
    if (status == NEXPO_OK)
        Py_RETURN_TRUE;
    if (status == NEXPO_EAGAIN)
        Py_RETURN_FALSE;
    return ch_fail(status, "send");
}
