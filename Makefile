# The two set-up commands: `make demo` and `make test`. Both build the virtual environment
# from the pinned requirements.lock and compile the translations first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PO := $(wildcard locales/*/LC_MESSAGES/regulars.po)
MO := $(PO:.po=.mo)

.PHONY: install demo test test-postgres lint typecheck pytest locales extract-messages bench bench-digest bench-postgres clean

install: $(VENV)/.installed $(MO)

$(VENV)/.installed: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

locales: $(MO)

%.mo: %.po $(VENV)/.installed
	$(BIN)/pybabel compile --domain regulars -i $< -o $@

# Refresh the catalogs after changing texts: extracts every _()/ngettext() string.
extract-messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _ -k n_:1,2 -k N_ -o locales/regulars.pot --no-location --omit-header --ignore-dirs=".venv tests testing bench migrations" .
	$(BIN)/pybabel update -i locales/regulars.pot -d locales -D regulars --no-fuzzy-matching --ignore-obsolete

demo: install
	$(BIN)/regulars demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# Two workers (the machine has 2 cores); a module's tests stay on one worker, so its
# shared fixtures (the twelve simulated days of tests/test_planner.py) are built once.
pytest: install
	$(BIN)/pytest -q -n 2 --dist loadscope

test: lint typecheck pytest

# The whole suite again on a real PostgreSQL server: .ci/postgres starts a throwaway one on
# loopback (installing Debian's postgresql when missing) and prints its URL.
test-postgres: install
	@url=$$(.ci/postgres) || { echo "PostgreSQL is not available here: the PostgreSQL run is skipped"; exit 0; }; \
	REGULARS_TEST_POSTGRES=$$url $(BIN)/pytest -q -n 2 --dist loadscope

bench: install
	$(BIN)/python -m bench.updates

# The owner's digest with its chart at 100,000 and 1,000,000 visits (about 3 min, most of it
# writing the 1,000,000 visits).
bench-digest: install
	$(BIN)/python -m bench.digest

# The three benchmarks on both back-ends side by side (bench/postgres.py): a throwaway
# PostgreSQL server of their own (.ci/postgres on another port and folder than the test
# suite's, so neither stops the other's), updates at 5,000, the planner at 10,000 and 100,000
# clients, the digest at 100,000 and 1,000,000 visits; then that server is stopped. About
# 15 minutes. Not part of `make test`.
BENCH_PG := REGULARS_PG_PORT=55434 REGULARS_PG_DATA=/tmp/regulars-pg-bench .ci/postgres
bench-postgres: install
	@url=$$($(BENCH_PG)) || { echo "PostgreSQL could not be started"; exit 1; }; \
	trap '$(BENCH_PG) stop' EXIT; \
	$(BIN)/python -m bench.updates --postgres "$$url" && \
	$(BIN)/python -m bench.planner --sizes 10000,100000 --baseline none --postgres "$$url" && \
	$(BIN)/python -m bench.digest --sizes 10000,100000 --postgres "$$url"

clean:
	rm -rf $(VENV) $(MO) .mypy_cache .pytest_cache .ruff_cache
