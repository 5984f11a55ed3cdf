# Two entry points do all set-up themselves: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint bench docs clean

# The virtual environment, rebuilt when the project's dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mspflow demo $(ARGS)

test: $(STAMP)
	scripts/system-deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory lint

# Benchmarks (benchmarks/, BENCHMARKS.md): `make bench`, or `make bench ARGS=--quick`.
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

# docs/framework.md is generated from the bundled definition (a test keeps it current).
docs: $(STAMP)
	$(BIN)/mspflow workflow show msp-12-step --format markdown > docs/framework.md

lint: $(STAMP)
	$(BIN)/ruff check mspflow tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dist build
