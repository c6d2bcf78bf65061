#!/usr/bin/env bash
# test.sh: install everything the tests need on a fresh Debian machine, then run them.
# Debian packages come from scripts/deps/*.apt, Python packages from pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
pkgs=$(cat scripts/deps/*.apt | sed 's/#.*//' | tr -s ' ' '\n' | sort -u)
missing=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "test.sh: installing Debian packages:$missing"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# Debian's own python3 refuses system-wide pip installs (PEP 668); a user-level
# Python (pyenv, a venv) does not. Use the first that works.
python3 -m pip install -q --disable-pip-version-check -e '.[test]' 2>/dev/null \
  || python3 -m pip install -q --disable-pip-version-check --break-system-packages -e '.[test]'
exec python3 -m pytest "$@"
