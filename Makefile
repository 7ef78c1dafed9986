# make demo: set up a virtual environment and run the main job on the built-in default.
# make test: run the test suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test clean

$(BIN)/genrekit: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,ray]'
	touch $(BIN)/genrekit

setup: $(BIN)/genrekit
	bash scripts/system_deps.sh

demo: setup
	$(BIN)/genrekit demo

test: setup
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) out
