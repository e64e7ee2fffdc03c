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
