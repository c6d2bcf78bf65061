"""The C program of tests/data/pe_c, compiled by MinGW's gcc for amd64 and x86
at -O0, -O2 and -Os (with and without unwind tables), linked by MinGW's GNU ld
and, after `minild import`, by minild -H pe with the kernel32 imports declared
in an object of their own (tests/data/pe_c/kernel32.*.obj, minild's import
library). Both programs run: amd64's under wine, both arches' under the
emulator (wine here cannot run 32-bit PE), at the image base and elsewhere;
stdout and the exit status must be the same, and minild's output must pass
llvm-readobj and MinGW's objdump without a word."""

from __future__ import annotations

import subprocess

import pytest

from conftest import ROOT, import_all, minild, tool
from emu import pe as emu
from pecheck import llvm_readobj, mingw_objdump
from wine import run_wine

PE_C = ROOT / "tests" / "data" / "pe_c"
SOURCES = ("main.c", "ops.c", "out.c", "direct.c")
PREFIX = {"amd64": "x86_64-w64-mingw32-", "x86": "i686-w64-mingw32-"}
ENTRY = {"amd64": "start", "x86": "_start"}
ELSEWHERE = {"amd64": 0x7FF600000000, "x86": 0x10000000}
BUILDS = [(a, o, u) for a in ("amd64", "x86") for o in ("-O0", "-O2", "-Os") for u in (True, False)]


@pytest.mark.parametrize("arch,opt,unwind", BUILDS,
                         ids=[f"{a}{o}{'' if u else '-nounwind'}" for a, o, u in BUILDS])
def test_c_program_as_mingw_links_it(arch, opt, unwind, tmp_path):
    gcc = tool(PREFIX[arch] + "gcc")
    objs = []
    for s in SOURCES:
        o = tmp_path / s.replace(".c", ".o")
        cmd = [gcc, "-c", opt, "-ffreestanding", "-fno-stack-protector", "-I", str(PE_C),
               *([] if unwind else ["-fno-asynchronous-unwind-tables"]), "-o", str(o),
               str(PE_C / s)]
        subprocess.run(cmd, check=True)
        objs.append(o)
    gnu = tmp_path / "gnu.exe"
    p = subprocess.run([gcc, "-nostdlib", "-e", ENTRY[arch], "-o", str(gnu), *map(str, objs),
                        "-lkernel32"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    mine = tmp_path / "minild.exe"
    minild("link", "-H", "pe", "-e", ENTRY[arch], *import_all(objs),
           PE_C / f"kernel32.{arch}.obj", "-o", mine)
    llvm_readobj(mine)
    mingw_objdump(mine)
    want = emu.run(gnu)
    assert want.stdout.startswith(b"pe_c: freestanding mingw program\n") and want.status
    for base in (None, ELSEWHERE[arch]):
        got = emu.run(mine, base=base)
        assert (got.stdout, got.status) == (want.stdout, want.status), base
    if arch == "amd64":
        w_gnu, w_mine = run_wine(gnu), run_wine(mine)
        assert (w_mine.stdout, w_mine.returncode) == (w_gnu.stdout, w_gnu.returncode)
        assert w_mine.stdout == want.stdout
