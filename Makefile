# Two commands a new user needs: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/streamstage demo

test: $(STAMP)
	$(BIN)/ruff check streamstage benchmarks tests tools examples
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check streamstage benchmarks tests tools examples
	$(BIN)/ruff format --check streamstage benchmarks tests tools examples

clean:
	rm -rf $(VENV) build *.egg-info
