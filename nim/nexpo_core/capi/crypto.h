/* nexpo crypto exports: declared here, implemented in crypto.nim beside this file. */
#pragma once
#include <stddef.h>
#include <stdint.h>
