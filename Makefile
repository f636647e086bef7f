# Every target creates .venv and installs the project on first use:
# on a fresh clone `make test` (or `make demo`) is the whole set-up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test check run demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# two processes: the suite mostly waits (subprocesses, sockets, fsync), and one process
# took 13.5 of CI's 15 minutes on this 2-core machine; -n 0 runs it in one
test: $(STAMP)
	$(BIN)/pytest -n 2

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

run: $(STAMP)
	$(BIN)/nightshift run

demo: $(STAMP)
	$(BIN)/nightshift demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
