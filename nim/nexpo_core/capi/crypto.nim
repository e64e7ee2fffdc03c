# Included by capi.nim: the crypto exports (declared in crypto.h).
