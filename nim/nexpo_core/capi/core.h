/* nexpo core: initialisation, errors, build and CPU information.
 * Read by cffi (preprocessor lines are dropped) and by the .pyi stub generator. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Status codes returned by every fallible export (nim/nexpo_core/errors.nim). */
enum {
    NEXPO_OK = 0,
    NEXPO_EINVAL = 1,
    NEXPO_ETYPE = 2,
    NEXPO_ENOMEM = 3,
    NEXPO_EAUTH = 4,
    NEXPO_ETIMEOUT = 5,
    NEXPO_ECLOSED = 6,
    NEXPO_EAGAIN = 7,
    NEXPO_EINTERNAL = 8,
    NEXPO_EUNSUPPORTED = 9,
    NEXPO_ECORRUPT = 10
};

/* Instruction-set paths (nim/nexpo_core/cpu.nim). */
enum {
    NEXPO_ISA_PORTABLE = 0,
    NEXPO_ISA_AVX2 = 1,
    NEXPO_ISA_AVX512 = 2
};

/* Runs the Nim module initialisers once; safe to call from several threads. */
int32_t nexpo_init(void);
/* The message of this thread's last failing call ("" if none). Valid until the next failure. */
const char *nexpo_last_error(void);
/* Does nothing: measures the cost of a call. */
void nexpo_noop(void);
/* Copy a NUL-terminated string into out[0..cap); fails with NEXPO_EINVAL when it does not fit. */
int32_t nexpo_nim_version(char *out, size_t cap);
int32_t nexpo_build_profile(char *out, size_t cap);
/* Bit i set when ISA path i is available on this CPU. */
int32_t nexpo_isa_available(void);
int32_t nexpo_isa_best(void);
int32_t nexpo_isa_active(void);
/* Force a path no wider than the CPU's best; NEXPO_EUNSUPPORTED otherwise. */
int32_t nexpo_isa_set(int32_t isa);
int32_t nexpo_has_sha_ni(void);
int32_t nexpo_sha_ni_active(void);
/* SHA-NI allowed (1, the default) or switched off (0); independent of the ISA path. */
int32_t nexpo_sha_ni_enabled(void);
int32_t nexpo_sha_ni_set(int32_t enabled);
/* AVX512-IFMA (Poly1305's 52-bit multiply-adds): present; in use (only on the AVX-512 path);
 * allowed (1, the default) or switched off (0), which gives the AVX-512 CPU without IFMA. */
int32_t nexpo_has_ifma(void);
int32_t nexpo_ifma_active(void);
int32_t nexpo_ifma_enabled(void);
int32_t nexpo_ifma_set(int32_t enabled);
/* Kernel counters: for i < min(n, nexpo_kernel_count()), calls[i] and bytes[i] get kernel i's
 * totals; nexpo_kernel_name(i) is its name (NULL when out of range). */
int32_t nexpo_kernel_count(void);
const char *nexpo_kernel_name(int32_t i);
int32_t nexpo_kernel_stats(uint64_t *calls, uint64_t *bytes, size_t n);
