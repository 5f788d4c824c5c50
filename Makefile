# The README's commands. Each target sets up the virtual environment first if needed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fastsovits-setup
PYTEST_ARGS ?=

.PHONY: setup demo test bench lint typecheck check parity clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh scripts/torch_index.sh scripts/constraints.txt
	VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

demo: setup
	$(PY) -m fastsovits demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

parity: setup
	$(PY) scripts/parity_report.py --quiet

bench: setup
	$(PY) benchmarks/frontend.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

check: lint typecheck test

clean-venv:
	rm -rf $(VENV)
