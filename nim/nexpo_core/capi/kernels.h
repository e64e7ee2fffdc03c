/* nexpo kernels exports: declared here, implemented in kernels.nim beside this file. */
#pragma once
#include <stddef.h>
#include <stdint.h>
