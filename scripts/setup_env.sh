#!/usr/bin/env bash
# Runs a command with the URLs the set-up wrote to .run/env (scripts/setup_infra.py) in its environment; a
# variable already set in the environment wins, so `BROKER_URL=... make test` still points elsewhere.
# The Makefile runs every program through it; by hand: scripts/setup_env.sh .venv/bin/python -m bench
set -euo pipefail
file="$(dirname "$0")/../.run/env"
if [ -f "$file" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in '' | '#'*) continue ;; esac
    key=${line%%=*}
    value=${line#*=}
    value=${value#\'}
    value=${value%\'}
    [ -n "${!key+x}" ] || export "$key=$value"
  done <"$file"
fi
exec "$@"
