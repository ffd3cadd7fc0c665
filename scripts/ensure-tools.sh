#!/usr/bin/env bash
# Makes sure the programs the tests run that are not Python packages are on PATH: promtool (the alert rule
# checks) and prometheus (the scrape test), both from Debian's `prometheus` package. Installs the package
# when either is missing and packages can be installed (root, or sudo without a prompt), saying so;
# otherwise stops with the command to run. Those tests fail, never skip, without them.
# The package may start its own prometheus service on :9090: nothing uses it (the scrape test runs its own
# process with its own config, data folder and a free port).
set -euo pipefail
if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then sudo=(sudo -n); else
    echo "ERROR: promtool and prometheus are needed by the tests and are not installed." >&2
    echo "       Run: sudo apt-get install -y prometheus   (Debian and Ubuntu)" >&2
    exit 1
  fi
fi
echo "==> promtool or prometheus is not on PATH: installing Debian's prometheus package" \
  "(${sudo[*]:+${sudo[*]} }apt-get install -y prometheus)"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
command -v promtool >/dev/null && command -v prometheus >/dev/null || {
  echo "ERROR: the prometheus package did not bring promtool and prometheus onto PATH" >&2
  exit 1
}
echo "==> installed $(promtool --version 2>&1 | head -n 1)"
