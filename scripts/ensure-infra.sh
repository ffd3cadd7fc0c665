#!/usr/bin/env bash
# Sets up PostgreSQL and RabbitMQ for `make run` / `make test` and writes their URLs to .run/env: starts them,
# installs them from the distribution's packages when they are missing and we may (root, or sudo without a
# prompt), creates the dedicated PostgreSQL role and RabbitMQ user + vhost. Each step is printed; when it
# cannot finish by itself it prints the exact commands and exits 1. Details: scripts/setup_infra.py.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || scripts/bootstrap.sh
exec .venv/bin/python scripts/setup_infra.py "$@"
