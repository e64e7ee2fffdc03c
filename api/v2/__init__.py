"""The Open Inference Protocol (KServe v2 / Triton HTTP): tensor codec, errors and metrics."""
