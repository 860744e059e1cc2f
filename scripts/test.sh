#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine, then runs it.
#   bash scripts/test.sh            # the whole suite
#   bash scripts/test.sh -k sqlite  # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

# Servers the tests start themselves (real ones, no mocks), and Node.js + npm for
# Cloudflare's runtime below when npm is missing (CI images have them; fresh machines may not).
apt_packages=(redis-server)
if ! command -v npm >/dev/null 2>&1; then
  apt_packages+=(nodejs npm)
fi
missing=()
for package in "${apt_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

# Cloudflare's local runtime (workerd via miniflare), pinned by package-lock.json.
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]"
python3 -m pytest "$@"
