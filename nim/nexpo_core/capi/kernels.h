/* nexpo kernels exports: declared here, implemented in kernels.nim beside this file. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Element types of the GEMM exports. */
enum {
    NEXPO_F32 = 0,
    NEXPO_F64 = 1
};

/* Activations fused into nexpo_linear (nim/nexpo_core/kernels/activations.nim). GELU is the
 * exact erf form; softmax is over each row of the result. */
enum {
    NEXPO_ACT_NONE = 0,
    NEXPO_ACT_RELU = 1,
    NEXPO_ACT_GELU = 2,
    NEXPO_ACT_TANH = 3,
    NEXPO_ACT_SIGMOID = 4,
    NEXPO_ACT_SOFTMAX = 5
};

/* C = A @ B. C is m x n, row-major with row stride ldc (elements, ldc >= n). A is m x k with
 * element (i, p) at a + i*rsa + p*csa, B is k x n with element (p, j) at b + p*rsb + j*csb:
 * strides are signed element counts, so a and b are the address of element (0, 0) of any view
 * (transposed, reversed, sliced, Fortran order); they must be aligned to the element size. */
int32_t nexpo_matmul(int32_t dtype, size_t m, size_t n, size_t k,
                     const void *a, ptrdiff_t rsa, ptrdiff_t csa,
                     const void *b, ptrdiff_t rsb, ptrdiff_t csb,
                     void *c, ptrdiff_t ldc);
/* out = activation(x @ w + bias): as nexpo_matmul, plus bias (NULL, or n contiguous elements of
 * the same type) and an NEXPO_ACT_* activation, fused into the GEMM's epilogue. */
int32_t nexpo_linear(int32_t dtype, size_t m, size_t n, size_t k,
                     const void *x, ptrdiff_t rsx, ptrdiff_t csx,
                     const void *w, ptrdiff_t rsw, ptrdiff_t csw,
                     const void *bias, int32_t activation,
                     void *out, ptrdiff_t ldo);

/* Columns of a float32 B panel of the GEMM micro-kernel on an ISA path (the numbering of
 * nexpo_isa_active); 0 for an unknown path. A constant B packed in this layout is read in place. */
int32_t nexpo_gemm_b_panel_width(int32_t isa);

/* Pack a row-major k x n float32 B into the ISA path's B panels (nexpo_gemm_b_panel_width wide,
 * zero-padded past n): dst holds k * (n rounded up to the panel width) floats. The planner packs
 * constant weights this way once, at load. */
int32_t nexpo_gemm_pack_weights(int32_t isa, size_t k, size_t n, const float *b, float *dst);
