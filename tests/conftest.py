"""Shared helpers for minild's tests: run the CLI, run outputs, compare golden dumps.

Outputs are checked by tools minild did not write: the kernel (amd64, x86),
qemu-user (every other ELF arch), readelf (whose stderr must stay empty).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("MINILD_REGEN_GOLDEN") == "1"

# arch -> (command prefix to run an output, GNU binutils prefix)
ARCHES = {
    "amd64": ([], "x86_64-linux-gnu-"),
    "x86": ([], "i686-linux-gnu-"),
    "arm": (["qemu-arm"], "arm-linux-gnueabihf-"),
    "arm64": (["qemu-aarch64"], "aarch64-linux-gnu-"),
    "mips": (["qemu-mips"], "mips-linux-gnu-"),
    "mipsle": (["qemu-mipsel"], "mipsel-linux-gnu-"),
    "mips64": (["qemu-mips64"], "mips64-linux-gnuabi64-"),
    "mips64le": (["qemu-mips64el"], "mips64el-linux-gnuabi64-"),
    "ppc64": (["qemu-ppc64"], "powerpc64-linux-gnu-"),
    "ppc64le": (["qemu-ppc64le"], "powerpc64le-linux-gnu-"),
    "riscv64": (["qemu-riscv64"], "riscv64-linux-gnu-"),
    "s390x": (["qemu-s390x"], "s390x-linux-gnu-"),
}


def minild(*args, check=True, cwd=None) -> subprocess.CompletedProcess:
    """minild runs the CLI in a subprocess, as a user would."""
    p = subprocess.run([sys.executable, "-m", "minild.cli", *map(str, args)],
                       capture_output=True, text=True, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError(f"minild {' '.join(map(str, args))} failed ({p.returncode}):\n"
                             f"{p.stdout}{p.stderr}")
    return p


def tool(name: str) -> str:
    """tool returns the path of a required external tool; fails loudly if absent
    (CI installs every tool: a missing one is a broken set-up, not a skip)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"required tool {name!r} is not installed (run .ci/run or "
                    "scripts/install-test-deps.sh)")
    return path


def run_output(arch: str, path, timeout=30) -> subprocess.CompletedProcess:
    """run_output runs a linked executable natively or under qemu-user."""
    runner, _ = ARCHES[arch]
    cmd = [tool(runner[0]), *runner[1:]] if runner else []
    return subprocess.run(cmd + [str(path)], capture_output=True, timeout=timeout)


def binutil(arch: str, name: str) -> str:
    """binutil returns the (cross) GNU binutils tool for arch, e.g. as or ld."""
    return tool(ARCHES[arch][1] + name)


def readelf(path, *flags: str) -> str:
    """readelf dumps a file; readelf exits 0 even after 'Error:', so stderr must be empty."""
    p = subprocess.run([tool("readelf"), *(flags or ("-W", "-a")), str(path)],
                       capture_output=True, text=True)
    assert p.returncode == 0 and p.stderr == "", f"readelf complained:\n{p.stderr}"
    return p.stdout


def golden(name: str, text: str) -> None:
    """golden compares text with tests/golden/NAME; MINILD_REGEN_GOLDEN=1 rewrites it."""
    f = GOLDEN / name
    if REGEN or not f.exists():
        if not REGEN and os.environ.get("CI"):
            pytest.fail(f"golden file {f} is missing (regenerate with MINILD_REGEN_GOLDEN=1)")
        f.write_text(text)
    assert text == f.read_text(), f"output differs from golden {f}; if intended, regenerate " \
                                  "with MINILD_REGEN_GOLDEN=1 and review the diff"


def assemble(arch: str, src: str, out: Path, *flags: str) -> Path:
    """assemble runs the arch's GNU as on source text, writing an ELF .o."""
    s = out.with_suffix(".s")
    s.write_text(src)
    subprocess.run([binutil(arch, "as"), *flags, "-o", str(out), str(s)], check=True)
    return out
