/* send_many / recv_many: many messages per native call (nexpo/_channel).
 *
 * Lending channels lend runs of up to CH_BATCH messages with one claim (lend.c); others copy
 * runs into a stack buffer (CH_SCRATCH bytes) sent with one nexpo_channel_send_many. Nothing
 * here trusts Python-side state across a GIL release: a list is sent from a tuple snapshot
 * whenever its sending may release the GIL (a long copy), since another thread could then
 * shrink it and free its items; a list of bytes lent never releases it and is used in place.
 */
#include <stdio.h>
#include <string.h>

#include "channel.h"

static int32_t send_run(ChannelObject *self, PyObject *seq, Py_ssize_t start, Py_ssize_t *sent_out);

/* Copy the run from items[*done] on (up to CH_BATCH, CH_SCRATCH bytes) with one native call,
 * for channels that take no references; advances *done. */
static int32_t copy_run(ChannelObject *self, PyObject **items, Py_ssize_t n, Py_ssize_t *done)
{
    char buf[CH_SCRATCH];
    size_t lens[CH_BATCH];
    size_t used = 0, k = 0;
    Py_ssize_t first = *done;
    char what[40] = "msg";
    while (first + (Py_ssize_t)k < n && k < CH_BATCH) {
        PyObject *item = items[first + k];
        Py_buffer view;
        if (!PyBytes_CheckExact(item))  /* the name only matters for an error */
            snprintf(what, sizeof what, "msgs[%zd]", first + (Py_ssize_t)k);
        if (ch_message(item, &view, what) < 0)
            return CH_FAILED;
        size_t len = (size_t)view.len;
        if (len > sizeof buf - used) {
            ch_release(&view);
            if (k == 0) { /* longer than the gather buffer: on its own */
                int32_t status = ch_send_attempt(self, item, what);
                if (status == NEXPO_OK)
                    (*done)++;
                return status;
            }
            break;
        }
        memcpy(buf + used, view.buf, len);
        ch_release(&view);
        lens[k++] = len;
        used += len;
    }
    size_t sent = 0;
    int32_t status = nexpo_channel_send_many(self->ch, buf, lens, k, 0, &sent);
    *done += (Py_ssize_t)sent;
    return status == NEXPO_ETIMEOUT ? NEXPO_EAGAIN : status;
}

/* Sends seq[start:] (a list or tuple) in order until one would block (NEXPO_EAGAIN), fails,
 * or all went (NEXPO_OK); *sent_out is the index reached. */
static int32_t send_from(ChannelObject *self, PyObject *seq, Py_ssize_t start, Py_ssize_t *sent_out)
{
    if (PyList_CheckExact(seq)) {
        int stable = self->lend;
        Py_ssize_t n = PyList_GET_SIZE(seq);
        for (Py_ssize_t i = start; stable && i < n; i++)
            stable = PyBytes_CheckExact(PyList_GET_ITEM(seq, i));
        if (!stable) {
            PyObject *snapshot = PyList_AsTuple(seq);
            if (snapshot == NULL)
                return CH_FAILED;
            int32_t status = send_run(self, snapshot, start, sent_out);
            Py_DECREF(snapshot);
            return status;
        }
    }
    return send_run(self, seq, start, sent_out);
}

/* A tuple, or a list of bytes lent (no GIL release): it cannot change under us. */
static int32_t send_run(ChannelObject *self, PyObject *seq, Py_ssize_t start, Py_ssize_t *sent_out)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    *sent_out = start;
    for (Py_ssize_t i = start; i < n; i++) { /* a bad item: nothing is sent */
        if (!PyBytes_CheckExact(items[i]) && !PyObject_CheckBuffer(items[i])) {
            char what[40];
            snprintf(what, sizeof what, "msgs[%zd]", i);
            ch_not_bytes_like(items[i], what);
            return CH_FAILED;
        }
    }
    Py_ssize_t done = start;
    int32_t status = NEXPO_OK;
    while (done < n && status == NEXPO_OK) {
        if (!self->lend) {
            status = copy_run(self, items, n, &done);
            continue;
        }
        PyObject *run[CH_BATCH];
        size_t k = 0, sent = 0;
        char what[40];
        while (done + (Py_ssize_t)k < n && k < CH_BATCH) {
            PyObject *item = items[done + k];
            if (CH_LIKELY(PyBytes_CheckExact(item))) {
                run[k++] = Py_NewRef(item);
                continue;
            }
            snprintf(what, sizeof what, "msgs[%zd]", done + (Py_ssize_t)k);
            if ((run[k] = ch_lendable(item, what)) == NULL)
                break;
            k++;
        }
        if (k == 0) {
            status = CH_FAILED; /* the copy of the first failed: its error is set */
            break;
        }
        PyErr_Clear(); /* a later copy failed: what came before goes, the next call reports it */
        status = ch_lend(self->ch, run, k, &sent);
        for (size_t i = 0; i < k; i++)
            Py_DECREF(run[i]);
        done += (Py_ssize_t)sent;
        if (status == NEXPO_EUNSUPPORTED) {
            /* No references in this ring: copies may release the GIL, a list goes on from a
             * snapshot. */
            self->lend = 0;
            status = NEXPO_OK;
            if (PyList_CheckExact(seq) && done < n) {
                Py_ssize_t rest = 0;
                status = send_from(self, seq, done, &rest);
                done = rest;
                break;
            }
        }
    }
    *sent_out = done;
    return status;
}

PyObject *ch_send_many(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ChannelObject *self = (ChannelObject *)op;
    static const char *const names[] = {"msgs", "timeout"};
    PyObject *argv[2];
    if (ch_args("send_many", args, nargs, kwnames, names, 2, 1, 1, argv) < 0)
        return NULL;
    int64_t deadline = ch_deadline(argv[1]); /* a bad timeout fails before anything is sent */
    if (deadline == -2)
        return NULL;
    if (self->ch == NULL)
        return ch_unbound();
    PyObject *seq = argv[0];
    if (PyList_CheckExact(seq) || PyTuple_CheckExact(seq))
        Py_INCREF(seq);
    else if ((seq = PySequence_Tuple(seq)) == NULL)
        return NULL;
    ch_settle();
    Py_ssize_t sent = 0;
    int32_t status = send_from(self, seq, 0, &sent);
    if (status == NEXPO_EAGAIN && PyList_CheckExact(seq)) {
        /* Waiting releases the GIL: go on from a snapshot another thread cannot change. */
        Py_SETREF(seq, PyList_AsTuple(seq));
        if (seq == NULL)
            return NULL;
    }
    while (status == NEXPO_EAGAIN) {
        int ready = ch_wait(self, CH_SEND, deadline);
        if (ready < 0) {
            status = CH_FAILED;
            break;
        }
        if (ready == 0) {
            status = NEXPO_ETIMEOUT;
            break;
        }
        ch_settle();
        status = send_from(self, seq, sent, &sent);
    }
    Py_DECREF(seq);
    if (status == NEXPO_OK || (sent > 0 && (status == NEXPO_ECLOSED || status == NEXPO_ETIMEOUT)))
        return PyLong_FromSsize_t(sent);
    return ch_fail(status, "send_many");
}

/* Up to max_n messages ready now, as a list; NULL with *status when there are none
 * (NEXPO_EAGAIN: empty, NEXPO_ECLOSED: closed and drained, CH_FAILED: an exception). */
static PyObject *recv_ready(nexpo_channel *ch, Py_ssize_t max_n, int32_t *status)
{
    PyObject *got[CH_BATCH];
    PyObject *out = NULL;
    Py_ssize_t total = 0;
    *status = NEXPO_OK;
    while (total < max_n) {
        size_t want = (size_t)(max_n - total) < CH_BATCH ? (size_t)(max_n - total) : CH_BATCH;
        size_t count = 0;
        int32_t st = ch_take_ready(ch, want, got, &count);
        if (st == CH_FAILED) {
            Py_XDECREF(out);
            *status = CH_FAILED;
            return NULL;
        }
        if (st != NEXPO_OK) {
            *status = st;
            break;
        }
        if (out == NULL) {
            if ((out = PyList_New((Py_ssize_t)count)) == NULL) {
                for (size_t i = 0; i < count; i++)
                    Py_DECREF(got[i]);
                *status = CH_FAILED;
                return NULL;
            }
            for (size_t i = 0; i < count; i++)
                PyList_SET_ITEM(out, (Py_ssize_t)i, got[i]);
        } else {
            for (size_t i = 0; i < count; i++) {
                int failed = PyList_Append(out, got[i]);
                Py_DECREF(got[i]);
                if (failed) {
                    for (size_t j = i + 1; j < count; j++)
                        Py_DECREF(got[j]);
                    Py_DECREF(out);
                    *status = CH_FAILED;
                    return NULL;
                }
            }
        }
        total += (Py_ssize_t)count;
        if (count < want)
            break; /* took everything that was ready */
    }
    return out; /* a NEXPO_ECLOSED after messages comes with the next call */
}

static CH_COLD PyObject *recv_many_waiting(ChannelObject *self, Py_ssize_t max_n, int64_t deadline,
                                           int32_t status)
{
    while (status == NEXPO_EAGAIN) {
        int ready = ch_wait(self, CH_RECV, deadline);
        if (ready < 0)
            return NULL;
        if (ready == 0)
            return ch_fail(NEXPO_ETIMEOUT, "recv_many");
        ch_settle();
        PyObject *got = recv_ready(self->ch, max_n, &status);
        if (got != NULL)
            return got;
    }
    return ch_fail(status, "recv_many");
}

PyObject *ch_recv_many(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ChannelObject *self = (ChannelObject *)op;
    static const char *const names[] = {"max_n", "timeout"};
    PyObject *argv[2];
    if (ch_args("recv_many", args, nargs, kwnames, names, 2, 0, 1, argv) < 0)
        return NULL;
    long long max_n;
    if (ch_int_arg(argv[0], "max_n", 1, CH_MAX_RECV_MANY, &max_n) < 0)
        return NULL;
    int64_t deadline = ch_deadline(argv[1]);
    if (deadline == -2)
        return NULL;
    if (self->ch == NULL)
        return ch_unbound();
    ch_settle();
    int32_t status;
    PyObject *got = recv_ready(self->ch, (Py_ssize_t)max_n, &status);
    return got != NULL ? got : recv_many_waiting(self, (Py_ssize_t)max_n, deadline, status);
}
