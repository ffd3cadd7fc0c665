# Spawnpoint entry points. Every target installs what it needs on a fresh clone (scripts/bootstrap.sh)
# and sets up PostgreSQL and RabbitMQ (scripts/ensure-infra.sh: starts or installs them, creates the dedicated
# role, user and vhost, writes their URLs to .run/env, which every program below runs with).
SHELL := /bin/bash
PY := .venv/bin/python
# Runs a program with the URLs the set-up wrote to .run/env (the environment wins): scripts/setup_env.sh
WITH_ENV := scripts/setup_env.sh
PACKAGES := shared/contracts shared/kit services/order-service services/payment-service \
            services/provisioner services/status-service services/notification-service storefront \
            sandbox/stripe-fake sandbox/panel-fake sandbox/mail-fake tools/spawnctl

.PHONY: tools run up down test lint typecheck unit integration demo bench chaos cluster install infra schemas asyncapi definitions clean help

help:
	@echo "make run    - the whole system in the foreground (Ctrl-C stops it)"
	@echo "make up     - the same in the background; returns when everything is ready"
	@echo "make down   - stop what 'make up' started"
	@echo "make demo   - with the system up: walk one order to CREATED"
	@echo "make test   - lint, type checks and every test (starts what the tests need)"
	@echo "make bench  - measured throughput and latency (writes bench/results/)"
	@echo "make chaos  - a fault campaign: every figure must be zero (writes bench/results/chaos.json)"
	@echo "make cluster - a 3-node RabbitMQ cluster failed over node by node (writes bench/results/cluster.json)"

install:
	@scripts/bootstrap.sh

infra: install
	@scripts/ensure-infra.sh

run: install infra
	@$(WITH_ENV) $(PY) scripts/devstack.py run

up: install infra
	@$(WITH_ENV) $(PY) scripts/devstack.py up

down:
	@if [ -x $(PY) ]; then $(PY) scripts/devstack.py down; else echo "nothing to stop"; fi

demo: install
	@$(WITH_ENV) $(PY) scripts/demo.py

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
	$(WITH_ENV) .venv/bin/pytest

tools:
	@scripts/ensure-tools.sh

unit: install
	$(WITH_ENV) .venv/bin/pytest -m "unit or contract"

integration: install infra
	$(WITH_ENV) .venv/bin/pytest -m integration

bench: install infra
	@$(WITH_ENV) $(PY) -m bench $(ARGS)

chaos: install infra
	@PYTHONPATH=scripts $(WITH_ENV) $(PY) -m chaos $(ARGS)

cluster: install infra
	@PYTHONPATH=scripts $(WITH_ENV) $(PY) -m chaos.cluster $(ARGS)

definitions: install
	$(PY) scripts/system_topology.py definitions deploy/rabbitmq/definitions.json

asyncapi: install
	$(PY) scripts/system_topology.py asyncapi docs/asyncapi.json

schemas: install
	$(PY) -m spawnpoint_contracts.schemas shared/contracts/schemas

clean:
	rm -rf .venv .bootstrap .run .pytest_cache .mypy_cache .ruff_cache
