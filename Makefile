# The two commands every user needs: `make demo` and `make test`.
# Everything the project needs is installed by these targets; nothing is written outside
# the repository except system packages (the pip cache lives under var/ too).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export PIP_CACHE_DIR ?= $(CURDIR)/var/cache/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)
export UV_CACHE_DIR ?= $(CURDIR)/var/cache/uv
# uv reads the system's CA store like pip; a package mirror is set with UV_DEFAULT_INDEX.
UV_PIP = $(BIN)/uv pip install --quiet --native-tls --python $(BIN)/python

.PHONY: demo test test-fast soak lint compile bench bench-quick calibrate report-screenshots lock clean distclean db-stop airflow i18n

demo: $(INSTALLED) compile
	$(BIN)/touchpoint demo

# Lint first (so CI enforces it), then the suite on TEST_WORKERS workers (pytest-xdist), one
# file per worker at a time, longest first (tests/conftest.py): each worker has its own cluster
# and var dir. Three on two cores measured no slower than two for `make test` (12 min 45 s
# against 12 min 53 s, idle machine) and keep `make test-fast` under two minutes (1 min 46 s).
TEST_WORKERS ?= 3
test: lint compile
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# Unit and integration tests without the slow end-to-end runs.
test-fast: $(INSTALLED) compile
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow"

# A simulated week of daily ingest runs against sources that misbehave (late files, hostile
# records, index lag, deletions, rate limits), then the weekly report, on its own: about 9
# minutes (tests/e2e/test_soak_week.py; `make test` runs it too).
soak: $(INSTALLED) compile
	$(BIN)/pytest -m soak

# The habits: ruff (lint and format) over the code, mypy on the package, and the import
# contracts in pyproject.toml (layers by stage, the simulator and Airflow kept in their rooms).
LINTED := src tests dags bench
lint: $(INSTALLED)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/lint-imports
	$(BIN)/mypy --cache-dir var/cache/mypy

# The report's catalogs (reports/locales) in step with its templates and code: new messages
# arrive untranslated (the catalog test fails until they are translated), dropped ones go.
i18n: $(INSTALLED)
	$(BIN)/python -m touchpoint.report.catalogs $(CURDIR)

# Benchmarks (never part of `make test`): scales S, M, L of simulated data, every stage against
# the limit and a peer, results in bench/results.json and bench/results.md. `bench-quick`: S only, no peers, results in bench/results-quick.*.
BENCH_ARGS ?=
bench: $(INSTALLED)
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: $(INSTALLED)
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

# Calibration of the weekly signals (never part of `make test`): 10 seeds per planted effect and
# 10 quiet worlds, detection and false-alarm rates in bench/calibration.md (about 30-50 min).
CALIBRATE_ARGS ?=
calibrate: $(INSTALLED)
	$(BIN)/python -m bench.calibrate $(CALIBRATE_ARGS)

$(INSTALLED): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  echo "python3 venv support missing: installing Debian's python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==25.3" "setuptools==80.9.0" "uv==0.13.8"
	# uv installs the same lock as pip would (pip freeze identical) in 14 s instead of 65 s
	# with an empty cache. Bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE set
	# (as on CI) every process would compile what it imports again (make test: 10 min -> 12.7
	# when pip ran with --no-compile).
	$(UV_PIP) --compile-bytecode -r requirements.lock
	$(UV_PIP) --no-deps --no-build-isolation -e .
	$(MAKE) --no-print-directory compile
	touch $@

# The project's own modules compiled ahead: pip compiles what it installs, not an editable
# package, and with PYTHONDONTWRITEBYTECODE set (as on CI) every process that imports them
# (each CLI run, Airflow task and DAG parse) would compile them again. Python ignores a stale
# .pyc, so an edit since costs only the old way.
compile:
	$(BIN)/python -m compileall -q src dags

# Screenshots of the weekly report in headless Chromium (Debian's chromium, installed if
# missing) at phone and desktop widths, for review: var/report-preview/<recipient>/.
# Renders WEEK (default: the demo's last week) from the warehouse `make demo` built.
REPORT_WEEK ?= 2026-W48
report-screenshots: $(INSTALLED)
	$(BIN)/touchpoint db start
	$(BIN)/touchpoint report render --week $(REPORT_WEEK) --out var/report-preview --check-quality --screenshots

# Airflow's UI on the project's DAGs: `airflow standalone` with the embedded cluster's database
# `airflow` as metadata DB and its home in var/airflow-ui, on http://127.0.0.1:$(AIRFLOW_PORT).
AIRFLOW_PORT ?= 8080
airflow: $(INSTALLED)
	$(BIN)/touchpoint airflow --port $(AIRFLOW_PORT)

# Re-resolve the pinned set after changing pyproject.toml dependencies.
lock:
	rm -rf var/lock-venv && $(PYTHON) -m venv var/lock-venv
	var/lock-venv/bin/pip install --quiet ".[dev]"
	{ echo "# Exact versions tested together (pip freeze of a resolved install). Regenerate with \`make lock\`."; \
	  var/lock-venv/bin/pip freeze --exclude touchpoint; } > requirements.lock
	rm -rf var/lock-venv

db-stop:
	-$(BIN)/touchpoint db stop
	-$(BIN)/touchpoint mail stop

clean: db-stop
	rm -rf var/airflow var/mail var/landing var/sim var/dbt var/log var/run

distclean: db-stop
	rm -rf $(VENV) var
