# nexpo: the two commands a fresh machine needs are `make serve` and `make test`.
# Each installs what is missing (Debian's nim when root, a .venv with the package and extras).

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: serve test build nim-toolchain lint typecheck stubtest test-python test-isa test-nim \
        test-sanitize test-tsan check-aarch64 bench sdist clean deploy-check \
        wheels test-installed check-dist test-aarch64-wheel fuzz-native redis-server \
        libnexpo test-libnexpo node-build test-node test-node-sanitize bench-node test-node-examples bench-node-channel

# The main job: the gateway with its default model (NEXPO_HOST/NEXPO_PORT/NEXPO_* configure it).
serve: build
	$(BIN)/nexpo serve

test: build lint typecheck test-nim test-sanitize test-tsan test-python test-isa check-aarch64 \
      test-installed check-dist test-aarch64-wheel test-libnexpo test-node test-node-sanitize test-node-examples

# --- setup ----------------------------------------------------------------------------------

nim-toolchain:
	@command -v nim >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "nexpo: installing Debian's nim"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nim >/dev/null); \
	  else \
	    echo "nexpo: Nim is missing: install it with 'sudo apt-get install -y nim', then re-run"; exit 1; \
	  fi; }

# Debian's redis-server, for the tests of rate limits shared through Redis (each test starts its
# own on 127.0.0.1 and a free port, with nothing persisted).
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "nexpo: installing Debian's redis-server"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null); \
	  else \
	    echo "nexpo: redis-server is missing: install it with 'sudo apt-get install -y redis-server', then re-run"; \
	    exit 1; \
	  fi; }

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel cffi

$(INSTALLED): pyproject.toml setup.py | $(BIN)/python nim-toolchain
	$(BIN)/pip install -q -e '.[dev,api]'
	touch $@

# Regenerates the C (when Nim sources changed) and rebuilds nexpo/_core*.so in place.
build: nim-toolchain $(INSTALLED)
	@mkdir -p build
	@$(BIN)/python setup.py -q build_ext --inplace > build/ext.log 2>&1 || { cat build/ext.log; exit 1; }
	@$(BIN)/python -c "import nexpo; print('nexpo', nexpo.__version__, 'built:', nexpo.info()['isa_active'])"

# --- checks ---------------------------------------------------------------------------------

lint: $(INSTALLED)
	$(BIN)/ruff check nexpo $(wildcard api) tests benchmarks nim tools setup.py
	$(BIN)/python nim/nimbuild.py stub --check
	$(BIN)/python -m nexpo.api.grpc_v2.protogen --check

typecheck: build
	$(BIN)/mypy nexpo $(if $(wildcard api/__init__.py),api)
	$(BIN)/python -m mypy.stubtest nexpo._core nexpo._channel --allowlist tests/stubtest-allowlist.txt

test-nim: $(INSTALLED)
	$(BIN)/python nim/nimbuild.py test --profile release

# The Nim core under AddressSanitizer + UndefinedBehaviorSanitizer: the Nim-level tests, then the
# Python unit tests against a sanitizer build of the extension (loaded via NEXPO_CORE_OVERRIDE).
SANITIZER_PRELOAD = $(shell gcc -print-file-name=libasan.so) $(shell gcc -print-file-name=libubsan.so)
test-sanitize: $(INSTALLED) redis-server
	$(BIN)/python nim/nimbuild.py test --profile sanitize
	@mkdir -p build
	NEXPO_BUILD_PROFILE=sanitize $(BIN)/python setup.py -q build_ext --build-lib build/asan \
	  --build-temp build/asan-tmp > build/asan.log 2>&1 || { cat build/asan.log; exit 1; }
	LD_PRELOAD="$(SANITIZER_PRELOAD)" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  NEXPO_CORE_OVERRIDE="$$(ls build/asan/nexpo/_core*.so)" \
	  $(BIN)/pytest -q -p no:cacheprovider -m "not slow and not rss" tests/unit

# ThreadSanitizer over the runtime's native stress tests (Nim 1.6 + gcc 12 support it: Nim's atomics are
# C11 __atomic builtins, which TSan instruments; the Chase–Lev fences are backed by release/acquire
# slot accesses so TSan sees every hand-off).
test-tsan: $(INSTALLED)
	$(BIN)/python nim/nimbuild.py test --profile tsan runtime

test-python: build redis-server
	$(BIN)/pytest -q

# Each forced instruction-set path runs the unit tests once more.
test-isa: build redis-server
	@for isa in $$($(BIN)/python -c "from nexpo import _native; print(' '.join(_native.isa_available()))"); do \
	  echo "== NEXPO_ISA=$$isa"; NEXPO_ISA=$$isa $(BIN)/pytest -q -p no:randomly tests/unit || exit 1; done
	@if $(BIN)/python -c "from nexpo import _native as n; exit(not ('avx512' in n.isa_available() and (n.has_sha_ni() or n.has_ifma())))"; then \
	  echo "== NEXPO_ISA=avx512 NEXPO_SHA_NI=0 NEXPO_IFMA=0 (AVX-512 without SHA-NI or IFMA: Skylake-SP)"; \
	  NEXPO_ISA=avx512 NEXPO_SHA_NI=0 NEXPO_IFMA=0 $(BIN)/pytest -q -p no:randomly tests/unit || exit 1; fi

# aarch64 has no AVX/SHA-NI paths: generate C for arm64 and compile + link it with a cross compiler.
check-aarch64: $(INSTALLED)
	@command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu >/dev/null); \
	  else echo "nexpo: install gcc-aarch64-linux-gnu to check the aarch64 build"; exit 1; fi; }
	$(BIN)/python nim/nimbuild.py cross --cpu arm64 --cc aarch64-linux-gnu-gcc

# Hostile arguments for every native-backed function (tests/fuzz/native_args.py), in worker
# processes with a kill timeout; test-python runs 8000 cases of it. FUZZ_SEED replays a run.
# Under the sanitizer build: the NEXPO_CORE_OVERRIDE and LD_PRELOAD of test-sanitize.
FUZZ_RUNS ?= 20000
fuzz-native: build
	$(BIN)/python tests/fuzz/native_args.py --runs $(FUZZ_RUNS) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

# --- other languages: libnexpo (C) and the Node.js package (node/) ------------------------

# The core as a plain C shared library with one header: build/libnexpo/{libnexpo.so,include/nexpo.h}.
libnexpo: $(INSTALLED) nim-toolchain
	$(BIN)/python nim/libnexpo.py build

# A C program linked against libnexpo (tests/c/test_libnexpo.c); the header also parses as C++.
test-libnexpo: libnexpo
	@mkdir -p build/libnexpo/test
	$(CC) -std=c11 -Wall -Wextra -Werror -Ibuild/libnexpo/include tests/c/test_libnexpo.c \
	  -Lbuild/libnexpo -lnexpo -Wl,-rpath,$(CURDIR)/build/libnexpo -o build/libnexpo/test/test_libnexpo
	build/libnexpo/test/test_libnexpo
	$(CXX) -std=c++17 -Wall -Wextra -Werror -fsyntax-only -x c++ build/libnexpo/include/nexpo.h

# The Node-API addon (node/scripts/build.js compiles the generated C and node/src/*.c with cc;
# no node-gyp, no download), its dev dependencies from npm, then `node --test` (NODE_TESTS=...).
NPM ?= npm
NODE_TESTS ?= test/*.test.js
node-build: $(INSTALLED) nim-toolchain
	cd node && $(NPM) install --no-audit --no-fund --ignore-scripts --loglevel=error
	cd node && NEXPO_PYTHON=$(CURDIR)/$(BIN)/python node scripts/build.js

test-node: node-build
	cd node && NEXPO_PYTHON=$(CURDIR)/$(BIN)/python node --test $(NODE_TESTS)
	cd node && npx --no-install tsc -p test/types

# The addon's own C under ASan + UBSan (node/build/Sanitize, loaded through NEXPO_NODE_ADDON) over the
# suites that exercise it in-process (the packed-install test builds a release addon of its own).
NODE_SANITIZE_TESTS ?= test/vectors.test.js test/differential.test.js test/matmul.test.js \
  test/args.test.js test/async.test.js test/channel.test.js
test-node-sanitize: node-build
	cd node && NEXPO_PYTHON=$(CURDIR)/$(BIN)/python node scripts/build.js --sanitize
	cd node && LD_PRELOAD="$(SANITIZER_PRELOAD)" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 NEXPO_NODE_ADDON=$(CURDIR)/node/build/Sanitize/nexpo.node \
	  node --expose-gc --test $(NODE_SANITIZE_TESTS)

bench-node: node-build
	cd node && node bench/bench.js

# node/examples: an Express server whose /hash and /infer routes call the addon (express from
# npm), tested end to end on 127.0.0.1 (its /infer against Python's registry too).
test-node-examples: node-build
	cd node/examples && $(NPM) install --no-audit --no-fund --loglevel=error
	cd node/examples && NEXPO_PYTHON=$(CURDIR)/$(BIN)/python node --test test/

# Node -> Python through a shared channel, 64-byte messages (node/bench/channel.js).
bench-node-channel: node-build
	cd node && NEXPO_PYTHON=$(CURDIR)/$(BIN)/python node bench/channel.js

# --- deployment: Dockerfile and k8s/ -------------------------------------------------------
# Also part of test-python. kubectl, kubernetes-validate and hadolint come from the dev extra
# (wheels that carry the binaries), so a fresh machine needs nothing else; no Docker engine runs.
deploy-check: build
	$(BIN)/pytest -q tests/integration/test_k8s_manifests.py tests/integration/test_dockerfile.py

# The speedup report (benchmarks/results/): `make bench` is quick; BENCH=--full runs every size.
BENCH ?= --quick
bench: build
	$(BIN)/nexpo bench $(BENCH)

sdist: $(INSTALLED)
	$(BIN)/python -m build --sdist --no-isolation --outdir dist

# --- packaging: binary wheels, and tests of what users install ------------------------------
# (tools/wheels.py: zig cc against glibc 2.28 for each CPython and CPU, then auditwheel; no Docker)
PYTHON_VERSIONS := 3.11 3.12 3.13

# Six wheels into dist/: CPython 3.11-3.13 x (x86_64, aarch64), manylinux_2_28 or older, stripped.
wheels: $(INSTALLED) nim-toolchain
	$(BIN)/python tools/wheels.py --out dist

# Each Python: this machine's wheel in a fresh venv (binary-only install, no compiler reachable),
# README's quickstart against it (nexpo serve + curl on the digits model), then the unit tests.
test-installed: $(INSTALLED) nim-toolchain redis-server
	@for v in $(PYTHON_VERSIONS); do \
	  $(BIN)/python tools/test_installed.py --python $$v --quickstart --unit || exit 1; done

# What an index would get: twine's metadata check, check-wheel-contents (one top-level package).
check-dist: $(INSTALLED) nim-toolchain
	@rm -rf build/dist-check
	$(BIN)/python -m build --sdist --no-isolation --outdir build/dist-check > build/dist-check.log 2>&1 \
	  || { cat build/dist-check.log; exit 1; }
	$(BIN)/python tools/wheels.py --python 3.11 --cpu $$($(BIN)/python nim/nimbuild.py cpu) --out build/dist-check
	$(BIN)/twine check --strict build/dist-check/*
	$(BIN)/check-wheel-contents build/dist-check/*.whl

# The aarch64 cp311 wheel, imported and served under qemu-user with Debian's arm64 CPython.
test-aarch64-wheel: $(INSTALLED) nim-toolchain
	$(BIN)/python tools/wheels.py --python 3.11 --cpu arm64 --out build/dist-aarch64
	$(BIN)/python tools/smoke_aarch64.py --quickstart \
	  --wheel "$$(ls build/dist-aarch64/nexpo-*-cp311-*aarch64.whl)"

clean:
	rm -rf build dist nim/_generated nexpo/_core*.so *.egg-info .pytest_cache .mypy_cache .ruff_cache

# --- fuzzing: corrupted shared rings, each case in its own process with a kill timeout -----
# `make test` runs a short campaign (tests/integration/test_ring_fuzz.py); this runs a long one:
# FUZZ_RUNS=1000 make fuzz-ring (FUZZ_SEED picks the campaign, FUZZ_JOBS the parallel cases).
.PHONY: fuzz-ring
FUZZ_RUNS ?= 200
fuzz-ring: build
	FUZZ_RUNS=$(FUZZ_RUNS) $(BIN)/python tests/fuzz_ring.py
