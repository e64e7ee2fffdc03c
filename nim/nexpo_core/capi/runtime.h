/* nexpo runtime exports: declared here, implemented in runtime.nim beside this file. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Worker threads of the native scheduler. */
int32_t nexpo_get_num_threads(void);
int32_t nexpo_set_num_threads(int32_t n);
