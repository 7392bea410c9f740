# The two commands of the README: `make run` and `make test`.
# Both set everything up first (system packages, then one pip install into
# .venv); a stamp keyed on the dependency files makes a repeated run skip it.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
CONFIG ?= configs/default.yaml
APT_PACKAGES := ghdl nlohmann-json3-dev yosys chromium postgresql
STAMP := $(VENV)/.l1flow-installed-$(shell cat requirements.txt pyproject.toml Makefile | sha256sum | cut -c1-16)
PYTEST_ARGS ?=

export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: run test setup system-packages bench

run: setup
	$(VENV)/bin/l1flow run $(CONFIG)

# Lint and type-check first (configured in pyproject.toml), then the tests.
# pytest exits 5 when it collected no test (e.g. a -k filter that matches
# nothing): say so plainly rather than fail as if a test had failed.
test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	@$(VENV)/bin/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests (exit 5)"; exit 0; fi; exit $$status

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml Makefile
	@$(MAKE) --no-print-directory system-packages
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: l1flow needs Python 3.11 (TensorFlow 2.14)"; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	# One resolve of every package together (see requirements.txt).
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

# hardware.py runs bench_nn_rtl.py and bench_bdt_rtl.py itself
BENCHMARKS = $(filter-out benchmarks/bench_nn_rtl.py benchmarks/bench_bdt_rtl.py,$(wildcard benchmarks/bench_*.py)) benchmarks/hardware.py

bench: setup
	for b in $(BENCHMARKS); do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done
