#!/usr/bin/env bash
# Creates .venv with every workspace package and the dev tools, installing uv first if it is missing.
# Idempotent and quick when nothing changed, so every Makefile entry point can call it.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
if command -v uv >/dev/null 2>&1; then
  UV=uv
else
  if [ ! -x .bootstrap/bin/uv ]; then
    echo "==> installing uv ${UV_VERSION} into .bootstrap/ (one time)"
    python3 -m venv .bootstrap
    .bootstrap/bin/pip install --quiet "uv==${UV_VERSION}"
  fi
  UV=.bootstrap/bin/uv
fi
export UV_PYTHON_DOWNLOADS=never
stamp=.venv/.synced
if [ ! -f "$stamp" ] || [ -n "$(find . -name pyproject.toml -newer "$stamp" -not -path './.venv/*' -not -path './.bootstrap/*' | head -1)" ]; then
  echo "==> installing the workspace into .venv"
  "$UV" sync --all-packages --python 3.11 --quiet
  touch "$stamp"
fi
