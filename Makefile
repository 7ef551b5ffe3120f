# Two commands: `make demo` and `make test`. Both create .venv and install the
# project on first use (and again whenever pyproject.toml changes).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shipyard demo

# Two pytest-xdist workers per core: many tests spend their time waiting on servers, subprocesses and rollout
# intervals. Each worker's OpenMP and BLAS pools get one thread, so they do not spin on each other's cores.
WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))

test: lint typecheck $(STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/python -m mypy src

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache
