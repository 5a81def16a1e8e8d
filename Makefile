# trakr — make targets. `make demo` runs the whole pipeline; `make test` runs the tests.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DURATION ?=

.PHONY: all install test lint format proto bench demo deploy-check chaos clean

all: lint test

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

test: install
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check services tests bench
	$(VENV)/bin/ruff format --check services tests bench

format: install
	$(VENV)/bin/ruff format services tests bench
	$(VENV)/bin/ruff check --fix services tests bench

# The generator is pinned (grpcio-tools in the dev extra), so the output is reproducible.
proto: install
	$(PY) -m grpc_tools.protoc -Iproto --python_out=services/trakr/pb --pyi_out=services/trakr/pb proto/trakr.proto

bench: install
	@for b in bench/ingest.py bench/julia.py bench/hermes.py bench/api.py bench/e2e.py; do \
		if [ -f $$b ]; then echo "== $$b"; $(PY) $$b || exit 1; fi; \
	done

# The whole pipeline on this host: fresh trakr_demo database, FCM emulator, simulated registrar
# and real Rutgers data; pushes are shown until Ctrl-C, or for DURATION seconds then a summary.
demo: install
	$(VENV)/bin/trakr demo $(if $(DURATION),--duration $(DURATION))

# Deploy files without a container engine: Prometheus config, alert rules and their unit tests,
# compose file, dashboards (promtool: apt-get install prometheus).
deploy-check: install
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml
	$(VENV)/bin/pytest -q tests/deploy

# The long variant (10 min of faults); CI runs the ~2-minute one as part of `pytest -q`.
chaos: install
	TRAKR_TEST_CHAOS_LONG=1 $(VENV)/bin/pytest -q -s -m chaos tests/chaos

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
