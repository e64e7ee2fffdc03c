/* nexpo inference exports: declared here, implemented in inference.nim beside this file. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Run a compiled inference plan (nexpo/inference/_plan.py writes it; the instruction format is
 * described in nim/nexpo_core/inference/program.nim) start to finish. bases[i]/sizes[i] are the
 * buffer spaces its operands point into: 0 the arena, 1 the constants, 2.. the inputs. Every
 * operand is checked against them; NEXPO_EINVAL names the first bad instruction or index. */
int32_t nexpo_infer_run(const int64_t *code, size_t code_len,
                        void *const *bases, const size_t *sizes, size_t nspaces);
