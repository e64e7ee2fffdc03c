# nexpo: the two commands a fresh machine needs are `make serve` and `make test`.
# Each installs what is missing (Debian's nim when root, a .venv with the package and extras).

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: serve test build nim-toolchain lint typecheck stubtest test-python test-isa test-nim \
        test-sanitize test-tsan bench sdist clean

serve: build
	$(BIN)/nexpo info

test: build lint typecheck test-nim test-sanitize test-tsan test-python test-isa

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
	$(BIN)/ruff check nexpo api tests benchmarks
	$(BIN)/python nim/nimbuild.py stub --check

typecheck: build
	$(BIN)/mypy nexpo api
	$(BIN)/python -m mypy.stubtest nexpo._core --allowlist tests/stubtest-allowlist.txt

test-nim: $(INSTALLED)
	$(BIN)/python nim/nimbuild.py test --profile release

# The Nim core under AddressSanitizer + UndefinedBehaviorSanitizer.
test-sanitize: $(INSTALLED)
	$(BIN)/python nim/nimbuild.py test --profile sanitize

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

bench: build
	$(BIN)/pytest benchmarks --benchmark-enable --benchmark-only -q

sdist: $(INSTALLED)
	$(BIN)/python -m build --sdist --no-isolation --outdir dist

clean:
	rm -rf build dist nim/_generated nexpo/_core*.so *.egg-info .pytest_cache .mypy_cache .ruff_cache
