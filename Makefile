# The front door: `make run` and `make test` work on a fresh machine with Python 3.11 and make.
# The interpreter the venv is made with: Debian's own python3.11 when it is there and can make a
# venv, else python3. Debian builds it with profile-guided and link-time optimisation; a pyenv
# build (this machine's python3) has neither, and the suite's processes took 10-20 % more
# processor time under it.
PYTHON ?= $(shell /usr/bin/python3.11 -c 'import ensurepip, venv' >/dev/null 2>&1 \
	&& echo /usr/bin/python3.11 || echo python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# Python keeps each module's compiled bytecode (__pycache__/), whatever the machine's environment
# says: with PYTHONDONTWRITEBYTECODE=1 every process the tests start (serve, its workers, the CLI,
# each pytest-xdist process) compiled the service and the tests again from source.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test lint bench fuzz faults install install-dev axe-core language-model clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# axe-core (package.json) for the browser tests' accessibility checks. Without npm, or when npm
# cannot install it, those checks skip and say why (they fail instead under REQUIRE_BROWSER=1).
node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --no-audit --no-fund --loglevel=error || echo "npm ci failed: the axe-core checks will skip"; \
	else echo "npm is not installed: the browser tests' axe-core checks will skip"; fi

axe-core: node_modules/.package-lock.json

run: install
	$(BIN)/phoneline serve --host $(HOST) --port $(PORT)

# The engine must stay fully covered by its own tests: they run first, alone, under the coverage
# gate (service/flowengine only; tracing every other test cost a third of the suite's time).
# Then TEST_WORKERS processes run the rest (pytest-xdist; 0 runs them in this one): the browser
# modules first (one Chromium each, its tests one after another), then the modules that start
# real processes, then the rest wherever a process is free. Then the short fault scenarios on
# a machine left to them (they time their webhooks and outages), FAULT_WORKERS at once, the
# longest ones first, each with a short one (tests/conftest.py, SCENARIOS_FIRST). The 20 slowest
# of each part are printed.
ENGINE_WORKERS ?= 3
TEST_WORKERS ?= 4
FAULT_WORKERS ?= 5
test: install-dev axe-core
	$(BIN)/python -m pytest -n $(ENGINE_WORKERS) -q -m "not slow and not faults" tests/engine \
	  --cov=service.flowengine --cov-report=term --cov-fail-under=100 $(PYTEST_ARGS)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=20 -m "not slow and not faults" \
	  --ignore=tests/engine $(PYTEST_ARGS)
	$(BIN)/python -m pytest -n $(FAULT_WORKERS) --dist load --durations=20 \
	  -m "faults and not slow" tests/faults $(PYTEST_ARGS)

# The language-identification model the line ships (service/flowengine/language.py), made
# again from py3langid's own; tests/engine/test_language_model.py says when it is needed.
language-model: install-dev
	$(BIN)/python -c "from service.flowengine.language import save_restricted_model as s; s()"

lint: install-dev
	$(BIN)/ruff check service tests bench
	$(BIN)/mypy --strict service
	$(BIN)/lint-imports

# Starts phoneline serve (SQLite, PostgreSQL) and a minimal FastAPI app; writes bench/results/.
bench: install-dev
	$(BIN)/python -m bench.run $(BENCH_ARGS)

fuzz: install-dev
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# The long fault suite: every scenario on SQLite and PostgreSQL, hundreds of calls, a 60 s database
# outage (needs root for the disk scenarios). `make test` runs a short version of each.
faults: install-dev
	FAULT_LOAD=long $(BIN)/python -m pytest -m faults tests/faults $(PYTEST_ARGS)
	FAULT_LOAD=long $(BIN)/python -m pytest tests/lines/test_serve.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var node_modules .pytest_cache .mypy_cache .ruff_cache
