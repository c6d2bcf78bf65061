"""extld: run the external linker on the object --externallink wrote.

The last step of an external link, after munmap: the object sits in a temporary
directory (or --tmpdir, which is kept); the external linker writes a temporary
file beside the output, renamed over it only when the linker succeeds. A
failing linker's command line and output are reported, exit status 1.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess

from .errors import fail

# `uname -m` -> minild arch: the arch whose programs the host's plain `cc` builds.
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "riscv64": "riscv64", "s390x": "s390x",
             "ppc64le": "ppc64le", "i686": "x86", "i386": "x86"}


def command(ctx, obj: str, out: str) -> list[str]:
    """command returns the external linker's command line."""
    o = ctx.opts
    a = ctx.arch
    native = HOST_ARCH.get(platform.machine()) == a.name
    if o.extld:
        ld = shlex.split(o.extld)
    elif o.libc:
        ld = ["cc" if native else f"{a.elf.triple}-gcc"]
    else:
        ld = [f"{a.elf.triple}-ld"]
    flags = shlex.split(o.extldflags or "")
    if o.libc:
        # minild objects are not position-independent: ask for a classic executable;
        # the C runtime's _start calls the object's main.
        return ld + ["-no-pie", "-o", out, obj] + flags
    return ld + ["-static", "-e", ctx.entry_name, "-o", out, obj] + flags


def run(ctx, obj: str, out: str, log=None) -> None:
    """run links obj into out with the external linker (raises LinkError)."""
    cmd = command(ctx, obj, out)
    if log is not None:
        log(" ".join(shlex.quote(c) for c in cmd))
    if shutil.which(cmd[0]) is None:
        raise fail(f"external linker {cmd[0]!r} not found (choose one with --extld)",
                   "command: " + " ".join(shlex.quote(c) for c in cmd))
    p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        lines = (p.stdout + p.stderr).rstrip("\n").splitlines()
        raise fail(f"external linker failed with exit status {p.returncode}",
                   "command: " + " ".join(shlex.quote(c) for c in cmd), *lines)
    if not os.path.exists(out):
        raise fail("external linker succeeded but wrote no output",
                   "command: " + " ".join(shlex.quote(c) for c in cmd))
