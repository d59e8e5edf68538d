# Two commands on a fresh machine (Python 3.10+ and make):
#   make demo   set up .venv-newest and run the example DAG in real Airflow against the local test server
#   make test   set up a venv per supported Airflow (oldest and newest 3.x), run lint + the test suite in
#               each (browser tests included; the deployment test once, in newest), and build the docs
#               site with warnings as errors; installs Debian's graphviz, chromium, postgresql and
#               redis-server if missing (as root)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
# The oldest Airflow we support (pyproject's floor) and the newest 3.x release the registry serves.
AIRFLOW_SPEC_oldest := apache-airflow==3.2.0
AIRFLOW_SPEC_newest := apache-airflow>=3.2.0,<4
# Airflow 3.2 needs a few of its dependencies held back (see the file); the newest resolves freely.
PIP_CONSTRAINTS_oldest := -c constraints/airflow-3.2.txt
PIP_CONSTRAINTS_newest :=
AIRFLOWS ?= oldest newest
# The deployment tests (marker `deployment`: built artifacts, then the wheel in a fresh venv with
# PostgreSQL and Airflow's separate components) run once, in the newest flavour only.
PYTEST_MARKS_oldest := -m "not deployment"
PYTEST_MARKS_newest :=
# The model-based membership test (tests/reliability/test_membership.py) tests our code, not Airflow's:
# its 500 sequences (about 2 minutes) run in newest; oldest runs 100 of them.
MODEL_SEQUENCES_oldest := 100
MODEL_SEQUENCES_newest := 500
PYTEST_ARGS ?=
# This machine's pip configuration names local wheel folders that may be absent; hide that noise only.
QUIET_PIP := 2>&1 | { grep -v '^WARNING: Location' || true; }

.PHONY: demo test test-one test-server clean docs system-deps benchmark
.PRECIOUS: .venv-%/.installed

.venv-%/.installed: pyproject.toml constraints/airflow-3.2.txt
	rm -rf .venv-$*
	$(PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install -q "$(AIRFLOW_SPEC_$*)" -e ".[test]" $(PIP_CONSTRAINTS_$*) $(QUIET_PIP)
	.venv-$*/bin/python -c "import airflow; print('Airflow', airflow.__version__, 'in .venv-$*')"
	touch $@

demo: .venv-newest/.installed
	.venv-newest/bin/python tools/demo.py

# Sync time, requests, memory and import cost next to a plain-requests script (about 2 minutes;
# BENCHMARK_ARGS=--quick for 100,000 ids only). Rendering cost of id lists: benchmarks/render_ids.py.
BENCHMARK_ARGS ?=
benchmark: .venv-newest/.installed
	.venv-newest/bin/python benchmarks/sync_benchmark.py $(BENCHMARK_ARGS)
	.venv-newest/bin/python benchmarks/render_ids.py

test-server: .venv-newest/.installed
	.venv-newest/bin/python -m airflow_provider_segments.testing --port 8080

test: system-deps
	for flavour in $(AIRFLOWS); do $(MAKE) --no-print-directory test-one AIRFLOW=$$flavour; done
	$(MAKE) --no-print-directory docs

# Debian packages the docs and tests need: Graphviz's dot renders the docs' diagram; the browser
# tests drive Chromium (Playwright's own browser download cannot work on a closed network); the
# deployment tests run a private PostgreSQL cluster (Debian keeps initdb in /usr/lib/postgresql/N/bin)
# and, for the CeleryExecutor, a private redis-server as Celery's broker.
system-deps:
	@missing=""; \
	command -v dot >/dev/null || missing="$$missing graphviz"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	{ command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } \
	  || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "Please install:$$missing (apt-get install$$missing)" >&2; exit 1; fi; \
	  echo "Installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The docs import the package (autodoc), so they build in .venv-newest.
.venv-newest/.docs-installed: .venv-newest/.installed pyproject.toml
	.venv-newest/bin/python -m pip install -q -e ".[docs]" $(QUIET_PIP)
	touch $@

docs: .venv-newest/.docs-installed
	@command -v dot >/dev/null || { echo "make docs needs Graphviz's dot: make system-deps" >&2; exit 1; }
	rm -rf docs/_build
	.venv-newest/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "Docs built without warnings: docs/_build/html/index.html"

test-one: .venv-$(AIRFLOW)/.installed
	@echo "== lint and tests with $$(.venv-$(AIRFLOW)/bin/python -c 'import airflow; print("Airflow", airflow.__version__)')"
	.venv-$(AIRFLOW)/bin/ruff check .
	.venv-$(AIRFLOW)/bin/ruff format --check .
	.venv-$(AIRFLOW)/bin/mypy
	MODEL_SEQUENCES=$(MODEL_SEQUENCES_$(AIRFLOW)) \
	  .venv-$(AIRFLOW)/bin/python -m pytest $(PYTEST_MARKS_$(AIRFLOW)) $(PYTEST_ARGS) \
	  || { .venv-$(AIRFLOW)/bin/python tools/last_failed.py; exit 1; }

clean:
	rm -rf .venv-* .airflow-home .pytest_cache .ruff_cache .mypy_cache *.egg-info docs/_build
