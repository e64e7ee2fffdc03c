# syntax=docker/dockerfile:1
#
# nexpo gateway image:
#   docker build -t nexpo:0.1.0 .
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp -e NEXPO_API_KEYS=<key> nexpo:0.1.0
#
# Two stages on the same Debian release and Python minor version, so the extension built in the
# first stage matches the interpreter of the second:
#   build    Debian's nim + a C compiler; compiles the Nim core and builds the nexpo wheel, and
#            collects every dependency as a wheel.
#   runtime  slim Python, a venv with only those wheels installed (offline, from the build stage),
#            no compiler, no pip, runs as UID 10001.
#
# Base images are pinned by tag. For reproducible builds pin them by digest as well: look the digest
# up once (`docker buildx imagetools inspect python:3.11-slim-bookworm`) and build with
#   --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest>
# A digest never moves; a tag does (Debian security updates are published under the same tag).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# Debian bookworm's Nim 1.6.10 is the version the project targets; build-essential brings gcc
# and the libc headers. Versions pinned to the bookworm packages.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nim=1.6.10-2 build-essential=12.9 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The release profile targets the x86-64-v2 baseline and picks AVX2/AVX-512/SHA-NI at run time, so
# the image runs on any x86-64 node, not only on the machine that built it.
ENV NEXPO_BUILD_PROFILE=release \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels ".[api]"

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="nexpo" \
      org.opencontainers.image.description="nexpo gateway: model inference and processing over a Nim core" \
      org.opencontainers.image.licenses="Apache-2.0"
# The venv is created without pip and filled by the base image's pip, offline, from the build
# stage's wheels (a bind mount: the wheels never become a layer of this image); then pip itself
# goes, so the running container has no package installer.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv --without-pip /opt/nexpo \
 && python -m pip --python /opt/nexpo/bin/python install --no-cache-dir --no-index \
      --find-links /wheels "nexpo[api]==0.1.0" \
 && python -m pip uninstall -y -q pip setuptools wheel
ENV PATH=/opt/nexpo/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NEXPO_HOST=0.0.0.0 \
    NEXPO_PORT=8000 \
    NEXPO_STATE_DIR=/tmp/nexpo
# A numeric UID so Kubernetes can verify runAsNonRoot; it owns no file in the image. The only
# writable place it needs is /tmp (NEXPO_STATE_DIR: where a generated API key goes when none is
# configured), so the container runs with a read-only root filesystem.
USER 10001:10001
# 8000: HTTP; 8001: gRPC, the Open Inference Protocol (NEXPO_GRPC_PORT; 0: off).
EXPOSE 8000 8001
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s \
  CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('NEXPO_PORT', '8000'), timeout=2)"]
CMD ["nexpo", "serve"]
