#!/usr/bin/env bash
# Makes sure the programs the tests run that are not Python packages are there:
# - promtool (the alert rule checks) and prometheus (the scrape test), from Debian's `prometheus` package;
# - /usr/bin/chromium (the storefront's browser tests drive it with Playwright; Playwright's own browser
#   downloads are never used), from Debian's `chromium` package.
# Installs the missing packages with apt-get when packages can be installed (root, or sudo without a
# prompt), saying what it installs and why; otherwise stops with the command to run. The tests that need
# them fail, never skip, without them.
# The prometheus package may start its own prometheus service on :9090: nothing uses it (the scrape test
# runs its own process with its own config, data folder and a free port).
set -euo pipefail
missing=()
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  echo "==> promtool or prometheus is not on PATH: the prometheus package is needed"
  missing+=(prometheus)
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "==> /usr/bin/chromium is missing: the chromium package is needed (browser tests)"
  missing+=(chromium)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then sudo=(sudo -n); else
    echo "ERROR: ${missing[*]} needed by the tests and not installed." >&2
    echo "       Run: sudo apt-get install -y ${missing[*]}   (Debian and Ubuntu)" >&2
    exit 1
  fi
fi
echo "==> installing Debian's ${missing[*]} (${sudo[*]:+${sudo[*]} }apt-get install -y ${missing[*]})"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
for package in "${missing[@]}"; do
  case "$package" in
    prometheus)
      command -v promtool >/dev/null && command -v prometheus >/dev/null || {
        echo "ERROR: the prometheus package did not bring promtool and prometheus onto PATH" >&2
        exit 1
      }
      echo "==> installed $(promtool --version 2>&1 | head -n 1)"
      ;;
    chromium)
      [ -x /usr/bin/chromium ] || { echo "ERROR: the chromium package did not install /usr/bin/chromium" >&2; exit 1; }
      echo "==> installed $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
      ;;
  esac
done
