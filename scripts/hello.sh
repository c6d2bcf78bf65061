#!/usr/bin/env bash
# hello.sh: on a fresh Debian machine, install minild into a virtual environment in
# this clone (.venv) and link and run the hello example for this machine's CPU.
#
# It never installs into the system Python and never uses --break-system-packages:
# Debian's python3 and python3-venv come from apt (with sudo when not root) only
# when missing, and pip runs inside .venv. Afterwards: .venv/bin/minild, or
# `source .venv/bin/activate` and then `minild`.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
need=""
command -v python3 >/dev/null 2>&1 || need="python3"
# Debian keeps venv's ensurepip (pip for a new venv) in python3-venv.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need="$need python3-venv"
if [ -n "$need" ]; then
  echo "hello.sh: installing Debian packages:$need"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  rm -rf .venv
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
case "$(uname -m)" in
  x86_64) arch=amd64 ;;   aarch64|arm64) arch=arm64 ;;   i?86) arch=x86 ;;
  armv7l|armv6l) arch=arm ;;   riscv64) arch=riscv64 ;;   s390x) arch=s390x ;;
  ppc64le) arch=ppc64le ;;   ppc64) arch=ppc64 ;;   *) arch=amd64 ;;
esac
.venv/bin/minild link "examples/hello/$arch.obj" -o hello
./hello
echo "hello.sh: minild is installed in .venv: run .venv/bin/minild, or 'source .venv/bin/activate'"
