/* nexpo runtime exports: declared here, implemented in runtime.nim beside this file. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Worker threads of the native scheduler. */
int32_t nexpo_get_num_threads(void);
int32_t nexpo_set_num_threads(int32_t n);
/* Scheduler counters: out[4*w + 0..3] = spawned, executed, stolen, parks of worker w, for every
 * worker; cap is the number of uint64 in out. *workers gets the worker count. NEXPO_EINVAL when
 * cap < 4 * workers. */
int32_t nexpo_scheduler_stats(uint64_t *out, size_t cap, int32_t *workers);

/* Channels of byte messages (nim/nexpo_core/runtime/channel.nim). Modes: 0 spsc, 1 mpsc,
 * 2 spmc, 3 mpmc. Timeouts in nanoseconds: < 0 waits forever, 0 tries once (NEXPO_EAGAIN when
 * it would block). Receives copy into buf when the message fits in cap bytes; otherwise *heap
 * gets a malloc'd copy (free it with nexpo_free) and buf is untouched. */
typedef struct nexpo_channel nexpo_channel;
int32_t nexpo_channel_new(int32_t mode, size_t capacity, size_t max_message, nexpo_channel **out);
/* POSIX shared memory (shm_open name): create fails when the name exists; the creator's close
 * unlinks the name. */
int32_t nexpo_channel_create_shared(const char *name, int32_t mode, size_t capacity,
                                    size_t max_message, nexpo_channel **out);
int32_t nexpo_channel_open_shared(const char *name, nexpo_channel **out);
/* Frees the handle; the channel must not be in use by any thread. */
void nexpo_channel_release(nexpo_channel *ch);
int32_t nexpo_channel_close(nexpo_channel *ch);
/* out[0..5] = mode, capacity, max_message, len, closed, shared. */
int32_t nexpo_channel_info(nexpo_channel *ch, uint64_t *out, size_t cap);
int64_t nexpo_channel_len(nexpo_channel *ch);
int32_t nexpo_channel_send(nexpo_channel *ch, const char *msg, size_t len, int64_t timeout_ns);
/* Messages laid end to end in data, lens[i] bytes each; *sent = how many went (in order). */
int32_t nexpo_channel_send_many(nexpo_channel *ch, const char *data, const size_t *lens, size_t n,
                                int64_t timeout_ns, size_t *sent);
/* Receive from whichever of chs[0..n) is ready first; *index says which. */
int32_t nexpo_channel_select(nexpo_channel **chs, size_t n, int64_t timeout_ns, size_t *index,
                             char *buf, size_t cap, size_t *len, char **heap);
/* asyncio: register an event fd (or pipe write end) signalled when the channel may have become
 * readable (interest 1) or writable (interest 2); try_*_arm arm it when they would block. */
int32_t nexpo_channel_watch(nexpo_channel *ch, int32_t fd, int32_t interest, int32_t *id);
int32_t nexpo_channel_unwatch(nexpo_channel *ch, int32_t id);
int32_t nexpo_channel_try_recv_arm(nexpo_channel *ch, int32_t id, char *buf, size_t cap,
                                   size_t *len, char **heap);
int32_t nexpo_channel_try_send_arm(nexpo_channel *ch, int32_t id, const char *msg, size_t len);
/* Block until the channel is readable (interest 1) / writable (2) or closed, taking nothing:
 * NEXPO_OK, or NEXPO_ETIMEOUT. An SPSC wait holds its side (a second thread using that side
 * meanwhile gets NEXPO_EINVAL); add 4 to the interest for a helper thread waiting on another's
 * behalf, which does not. */
int32_t nexpo_channel_wait(nexpo_channel *ch, int32_t interest, int64_t timeout_ns);
void nexpo_free(void *p);
