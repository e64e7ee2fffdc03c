# nexpo: the two commands a fresh machine needs are `make serve` and `make test`.
# Each installs what is missing (Debian's nim when root, a .venv with the package and extras).

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: serve test build nim-toolchain lint typecheck stubtest test-python test-isa test-nim \
        test-sanitize test-tsan check-aarch64 bench sdist clean deploy-check

# The main job: the gateway with its default model (NEXPO_HOST/NEXPO_PORT/NEXPO_* configure it).
serve: build
	$(BIN)/nexpo serve

test: build lint typecheck test-nim test-sanitize test-tsan test-python test-isa check-aarch64

# --- setup ----------------------------------------------------------------------------------

nim-toolchain:
	@command -v nim >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "nexpo: installing Debian's nim"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nim >/dev/null); \
	  else \
	    echo "nexpo: Nim is missing: install it with 'sudo apt-get install -y nim', then re-run"; exit 1; \
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
	$(BIN)/ruff check nexpo $(wildcard api) tests benchmarks nim setup.py
	$(BIN)/python nim/nimbuild.py stub --check

typecheck: build
	$(BIN)/mypy nexpo $(if $(wildcard api/__init__.py),api)
	$(BIN)/python -m mypy.stubtest nexpo._core --allowlist tests/stubtest-allowlist.txt

test-nim: $(INSTALLED)
	$(BIN)/python nim/nimbuild.py test --profile release

# The Nim core under AddressSanitizer + UndefinedBehaviorSanitizer: the Nim-level tests, then the
# Python unit tests against a sanitizer build of the extension (loaded via NEXPO_CORE_OVERRIDE).
SANITIZER_PRELOAD = $(shell gcc -print-file-name=libasan.so) $(shell gcc -print-file-name=libubsan.so)
test-sanitize: $(INSTALLED)
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

test-python: build
	$(BIN)/pytest -q

# Each forced instruction-set path runs the unit tests once more.
test-isa: build
	@for isa in $$($(BIN)/python -c "from nexpo import _native; print(' '.join(_native.isa_available()))"); do \
	  echo "== NEXPO_ISA=$$isa"; NEXPO_ISA=$$isa $(BIN)/pytest -q -p no:randomly tests/unit || exit 1; done

# aarch64 has no AVX/SHA-NI paths: generate C for arm64 and compile + link it with a cross compiler.
check-aarch64: $(INSTALLED)
	@command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu >/dev/null); \
	  else echo "nexpo: install gcc-aarch64-linux-gnu to check the aarch64 build"; exit 1; fi; }
	$(BIN)/python nim/nimbuild.py cross --cpu arm64 --cc aarch64-linux-gnu-gcc

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

clean:
	rm -rf build dist nim/_generated nexpo/_core*.so *.egg-info .pytest_cache .mypy_cache .ruff_cache

# --- fuzzing: corrupted shared rings, each case in its own process with a kill timeout -----
# `make test` runs a short campaign (tests/integration/test_ring_fuzz.py); this runs a long one:
# FUZZ_RUNS=1000 make fuzz-ring (FUZZ_SEED picks the campaign, FUZZ_JOBS the parallel cases).
.PHONY: fuzz-ring
FUZZ_RUNS ?= 200
fuzz-ring: build
	FUZZ_RUNS=$(FUZZ_RUNS) $(BIN)/python tests/fuzz_ring.py
