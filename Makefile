# Two commands for a fresh clone: `make report` and `make test`.
# Each creates .venv (Python 3.11+) and installs the package on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
AS_OF ?= 2026-11-23

.PHONY: report test explore lint conformance bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# The sample holds two weeks: the first evaluation gives the report its "change since last week".
report: $(STAMP)
	$(BIN)/cs-metrics weekly --data sample_data --out out --as-of 2026-11-16 > /dev/null
	$(BIN)/cs-metrics weekly --data sample_data --out out --as-of $(AS_OF)

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src
	$(BIN)/pytest

# The property tests with new random examples (`make test` draws the same ones every run).
explore: $(STAMP)
	HYPOTHESIS_PROFILE=explore $(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

conformance: $(STAMP)
	$(BIN)/python ../shared/conformance/run.py --cmd "$(BIN)/cs-metrics"

# Generates 1M and 10M-message datasets under benchmarks/data/ (once) and measures them.
bench: $(STAMP)
	$(BIN)/python -m pip install -q duckdb
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) out build *.egg-info src/*.egg-info
