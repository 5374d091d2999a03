# The two commands a user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LOCK   := requirements.lock
STAMP  := $(VENV)/.installed-$(shell cat setup.cfg pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)

.PHONY: install demo test drill spark lint bench clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# the exact versions CI tested (requirements.lock) as constraints; setup.cfg keeps ranges
$(STAMP): $(BIN)/python setup.cfg pyproject.toml $(LOCK)
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[test,lint,spark]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# `make demo DEMO_ARGS=--trace`: the first promotion's trace trees and JSON log lines too
demo: $(STAMP)
	$(BIN)/podium demo $(DEMO_ARGS)

# The PostgreSQL store tests run against a local server when one answers (as in .ci/run),
# so a newcomer and CI run the same tests; they skip, saying why, otherwise.
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
# Tests run in parallel (pytest-xdist, --dist loadscope): a module's tests on one worker, so
# its module-scoped fixtures (an integration module's MLflow server, trained models) are made
# once. Many tests wait on processes, servers and sandboxes, so more workers than cores pays;
# TEST_WORKERS=0 runs them in this process. (--dist loadgroup does not group with pytest 9.)
# --no-loadscope-reorder keeps the collection's order, the longest modules first
# (tests/conftest.py); xdist's default order (most tests first) left the one-test modules
# that take minutes, the demo among them, to run alone at the end.
TEST_WORKERS ?= 4
# Python may cache bytecode in tests: a machine that sets PYTHONDONTWRITEBYTECODE=1 makes
# every process the suite starts (each `podium` call, `podium serve` and its worker, every
# pytest worker's assertion rewriting of 1,800 tests) compile Podium's modules and the
# tests again from source. Set empty, the variable is off.
export PYTHONDONTWRITEBYTECODE :=
# The tests `make test` runs (pytest markers); `.ci/run` adds the drills to the same run, so
# they share its workers, its session fixtures and its collection instead of starting their own.
TEST_MARKS ?= not drill and not spark
test: $(STAMP)
	@if [ -z "$$PODIUM_TEST_DATABASE_URL" ] && pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then \
	  export PODIUM_TEST_DATABASE_URL="$(PG_URL)"; fi; \
	$(BIN)/python -m pytest -q -rs -m "$(TEST_MARKS)" -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

drill: $(STAMP)
	$(BIN)/python -m pytest -q -m drill -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

# The Spark engine's tests (one local JVM per worker: two workers); the short one, Spark
# scoring of a registered model against the local engine, runs in `make test`. They skip,
# saying why, without pyspark (the spark extra) or Java.
spark: $(STAMP)
	@if [ -z "$$PODIUM_TEST_DATABASE_URL" ] && pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then \
	  export PODIUM_TEST_DATABASE_URL="$(PG_URL)"; fi; \
	$(BIN)/python -m pytest -q -rs -m spark -n 2 --dist loadscope

lint: $(STAMP)
	PYTHON=$(BIN)/python bash ci/lint.sh

bench: $(STAMP)
	$(BIN)/python bench/decision_quality.py
	$(BIN)/python bench/intake.py --nodes 2
	$(BIN)/python bench/scoring.py
	$(BIN)/python bench/scoring_shadow.py
	$(BIN)/python bench/decision.py
	$(BIN)/python bench/evidence.py
	$(BIN)/python bench/report.py
	$(BIN)/python bench/spark.py

# requirements.lock again: the newest versions setup.cfg's ranges allow, in a fresh venv
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet -e '.[test,lint,postgres,spark]'
	.venv-lock/bin/python ci/lock.py $(LOCK)
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
