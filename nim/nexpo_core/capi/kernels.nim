# Included by capi.nim: the kernels exports (declared in kernels.h).
