#!/usr/bin/env bash
# hello.sh: install minild on a fresh Debian machine, link the amd64 hello example and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's own python3 refuses system-wide pip installs (PEP 668); a user-level
# Python (pyenv, a venv) does not. Use the first that works.
python3 -m pip install -q --disable-pip-version-check -e . 2>/dev/null \
  || python3 -m pip install -q --disable-pip-version-check --break-system-packages -e .
python3 -m minild.cli link examples/hello/amd64.obj -o hello
./hello
