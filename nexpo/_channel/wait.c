/* Timeouts and the blocking wait of the channel's methods (nexpo/_channel).
 *
 * A call that would block waits in the runtime's bounded wait (nexpo_channel_wait: spin, yield,
 * then park on a futex; runtime/wake.nim) with the GIL released, as CPython's _queue waits on
 * its lock, then tries again holding the GIL. Waits are cut into CH_WAIT_SLICE_NS slices so
 * signal handlers (Ctrl-C: KeyboardInterrupt) run between them in the main thread.
 */
#include <math.h>
#include <time.h>

#include "channel.h"

#define CH_WAIT_SLICE_NS 100000000LL /* 100 ms: Ctrl-C answered within a tenth of a second */
#define CH_MAX_TIMEOUT_NS (1LL << 62)

static int64_t ch_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* time.monotonic_ns()'s clock */
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t ch_deadline(PyObject *timeout)
{
    if (timeout == NULL || timeout == Py_None)
        return -1;
    if (PyBool_Check(timeout) || !(PyLong_Check(timeout) || PyFloat_Check(timeout))) {
        PyErr_Format(PyExc_TypeError, "timeout must be a number of seconds or None, not %.100s",
                     Py_TYPE(timeout)->tp_name);
        return -2;
    }
    double seconds = PyFloat_AsDouble(timeout);
    if (seconds == -1.0 && PyErr_Occurred())
        return -2;
    if (isnan(seconds) || seconds < 0) {
        PyErr_Format(PyExc_ValueError, "timeout must be >= 0 seconds or None, got %R", timeout);
        return -2;
    }
    if (isinf(seconds))
        return -1;
    double ns = seconds * 1e9;
    return ch_now_ns() + (ns >= (double)CH_MAX_TIMEOUT_NS ? CH_MAX_TIMEOUT_NS : (int64_t)ns);
}

int ch_wait(ChannelObject *self, int32_t interest, int64_t deadline)
{
    int64_t step = CH_WAIT_SLICE_NS;
    if (deadline >= 0) {
        int64_t left = deadline - ch_now_ns();
        if (left <= 0)
            return 0;
        if (left < step)
            step = left;
    }
    nexpo_channel *ch = self->ch;
    int32_t status;
    Py_BEGIN_ALLOW_THREADS
    status = nexpo_channel_wait(ch, interest, step);
    Py_END_ALLOW_THREADS
    if (status != NEXPO_OK && status != NEXPO_ETIMEOUT) {
        ch_fail(status, "wait");
        return -1;
    }
    return PyErr_CheckSignals() < 0 ? -1 : 1;
}
