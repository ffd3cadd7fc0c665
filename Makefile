# Spawnpoint entry points. Every target installs what it needs on a fresh clone (scripts/bootstrap.sh)
# and checks that PostgreSQL and RabbitMQ answer, starting them when they are installed but stopped.
SHELL := /bin/bash
PY := .venv/bin/python
PACKAGES := shared/contracts shared/kit services/order-service services/payment-service \
            services/provisioner services/status-service sandbox/stripe-fake sandbox/panel-fake tools/spawnctl

.PHONY: tools run up down test lint typecheck unit integration demo bench chaos install infra schemas asyncapi definitions clean help

help:
	@echo "make run    - the whole system in the foreground (Ctrl-C stops it)"
	@echo "make up     - the same in the background; returns when everything is ready"
	@echo "make down   - stop what 'make up' started"
	@echo "make demo   - with the system up: walk one order to CREATED"
	@echo "make test   - lint, type checks and every test (starts what the tests need)"
	@echo "make bench  - measured throughput and latency (writes bench/results/)"
	@echo "make chaos  - a fault campaign: every figure must be zero (writes bench/results/chaos.json)"

install:
	@scripts/bootstrap.sh

infra:
	@scripts/ensure-infra.sh

run: install infra
	@$(PY) scripts/devstack.py run

up: install infra
	@$(PY) scripts/devstack.py up

down:
	@if [ -x $(PY) ]; then $(PY) scripts/devstack.py down; else echo "nothing to stop"; fi

demo: install
	@$(PY) scripts/demo.py

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck: install
	@set -e; for p in $(PACKAGES); do \
	  targets="$$p/src"; [ -d $$p/tests ] && targets="$$targets $$p/tests"; \
	  echo ".venv/bin/mypy $$targets"; .venv/bin/mypy $$targets; \
	done
	.venv/bin/mypy scripts tests bench chaos

test: lint typecheck infra tools
	.venv/bin/pytest

tools:
	@scripts/ensure-tools.sh

unit: install
	.venv/bin/pytest -m "unit or contract"

integration: install infra
	.venv/bin/pytest -m integration

bench: install infra
	@$(PY) -m bench $(ARGS)

chaos: install infra
	@PYTHONPATH=scripts $(PY) -m chaos $(ARGS)

definitions: install
	$(PY) scripts/system_topology.py definitions deploy/rabbitmq/definitions.json

asyncapi: install
	$(PY) scripts/system_topology.py asyncapi docs/asyncapi.json

schemas: install
	$(PY) -m spawnpoint_contracts.schemas shared/contracts/schemas

clean:
	rm -rf .venv .bootstrap .run .pytest_cache .mypy_cache .ruff_cache
