# archlab: `make demo` sets everything up and trains the default model; `make test` runs the test suite.
# Both are idempotent: the venv is (re)installed only when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.archlab-installed
# The CPU build of PyTorch; GPU users: see README ("GPU").
TORCH ?= torch==2.13.0
# glibc: keep freed activation buffers instead of unmapping them every step (much less kernel time).
export MALLOC_MMAP_THRESHOLD_ ?= 33554432
export MALLOC_TRIM_THRESHOLD_ ?= 1073741824
PYTEST_ARGS ?=

.PHONY: install demo test test-fast bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/archlab data fetch mnist
	$(BIN)/archlab train cnn --recipe mnist-fast

test: $(STAMP)
	$(BIN)/archlab data fetch mnist
	$(BIN)/python -m pytest -q -n 2 --durations=15 $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/mnist_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache
