# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test lint typecheck unit supply-chain install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $@

$(STAMP_DEV): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,otel]'
	touch $@ $(STAMP_RUN)

install: $(STAMP_RUN)

install-dev: $(STAMP_DEV)

## Run the whole faucet against local imitations of Yunite, the stats API and a Banano node.
run: $(STAMP_RUN)
	$(BIN)/pay2slay sandbox $(ARGS)

lint: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP_DEV)
	$(BIN)/mypy --strict bot cogs core tools

unit: $(STAMP_DEV)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Write a CycloneDX SBOM of the environment to build/sbom.cdx.json, fail on a runtime
## dependency whose license is incompatible with MIT, and regenerate NOTICE. Offline.
supply-chain: $(STAMP_DEV)
	@mkdir -p build
	$(BIN)/cyclonedx-py environment --pyproject pyproject.toml --output-reproducible \
		--of JSON -o build/sbom.cdx.json $(VENV)
	$(BIN)/python tools/licenses.py check
	$(BIN)/python tools/licenses.py notice -o NOTICE

## Lint, type-check, check licenses and run the test suite (SQLite always, PostgreSQL at
## 127.0.0.1:5432 when reachable).
test: lint typecheck supply-chain unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
