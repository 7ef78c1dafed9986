# make demo: set up a virtual environment and run the main job on the built-in default.
# make test: run the test suite (with the exact versions of constraints.txt).
# make test-lowest: run it with the lowest versions pyproject.toml allows (constraints-lowest.txt), in .venv-lowest.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-lowest clean

$(BIN)/genrekit: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	bash scripts/install_torch.sh $(BIN)/pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test,ray]'
	touch $(BIN)/genrekit

setup: $(BIN)/genrekit
	bash scripts/system_deps.sh

demo: setup
	$(BIN)/genrekit demo

test: setup
	$(BIN)/pytest -q

test-lowest:
	test -x .venv-lowest/bin/python || $(PYTHON) -m venv .venv-lowest
	bash scripts/install_torch.sh .venv-lowest/bin/pip
	.venv-lowest/bin/pip install -q -c constraints-lowest.txt -e '.[test]'
	bash scripts/system_deps.sh
	.venv-lowest/bin/pytest -q

clean:
	rm -rf $(VENV) .venv-lowest out
