"""The C program of tests/data/wasm_c (calls across objects, function pointers
through the table, a switch, rodata strings, data with pointers to other data,
bss, WASI fd_write/proc_exit), compiled by clang-14 --target=wasm32 at -O0, -O2
and -Os, linked by wasm-ld-14 and, after `minild import`, by minild: both
modules pass wasm-validate and run under wasmtime with the same stdout and exit
status."""

from __future__ import annotations

import subprocess

import pytest

from conftest import ROOT, import_all, minild, tool
from wasi import run_wasi

WASM_C = ROOT / "tests" / "data" / "wasm_c"
SOURCES = ("main.c", "ops.c", "out.c", "tables.c")
CFLAGS = ("--target=wasm32", "-c", "-nostdlib", "-ffreestanding")


def validate(path) -> None:
    p = subprocess.run([tool("wasm-validate"), str(path)], capture_output=True, text=True)
    assert p.returncode == 0 and p.stderr == "", p.stderr


@pytest.mark.parametrize("opt", ["-O0", "-O2", "-Os"])
def test_c_program_as_wasm_ld_links_it(opt, tmp_path):
    objs = []
    for s in SOURCES:
        o = tmp_path / s.replace(".c", ".o")
        subprocess.run([tool("clang-14"), *CFLAGS, opt, "-I", str(WASM_C), "-o", str(o),
                        str(WASM_C / s)], check=True)
        objs.append(o)
    lld = tmp_path / "lld.wasm"
    p = subprocess.run([tool("wasm-ld-14"), "-o", str(lld), *map(str, objs)],
                       capture_output=True, text=True)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    mine = tmp_path / "minild.wasm"
    minild("link", *import_all(objs), "-o", mine)
    validate(lld)
    validate(mine)
    want, got = run_wasi(lld), run_wasi(mine)
    assert want[0].count(b"\n") >= 3                      # the program says something
    assert got == want


GLOBAL_ASM = """
	.globaltype	counter, i32
	.globl	counter
counter:
	.functype	bump () -> (i32)
	.globl	bump
	.type bump,@function
bump:
	.functype	bump () -> (i32)
	global.get	counter
	i32.const	1
	i32.add
	global.set	counter
	global.get	counter
	end_function
"""
GLOBAL_MAIN = """
__attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_exit")))
_Noreturn void proc_exit(int);
int bump(void);
void _start(void) { bump(); bump(); proc_exit(40 + bump()); }
"""


def test_a_wasm_global_across_objects(tmp_path):
    """A mutable wasm global defined in one object (assembly) and used from C:
    minild's module and wasm-ld's exit with the same status."""
    (tmp_path / "g.s").write_text(GLOBAL_ASM)
    (tmp_path / "main.c").write_text(GLOBAL_MAIN)
    objs = [tmp_path / "main.o", tmp_path / "g.o"]
    subprocess.run([tool("clang-14"), *CFLAGS, "-O2", "-o", str(objs[0]),
                    str(tmp_path / "main.c")], check=True)
    subprocess.run([tool("clang-14"), "--target=wasm32", "-c", "-o", str(objs[1]),
                    str(tmp_path / "g.s")], check=True)
    lld, mine = tmp_path / "lld.wasm", tmp_path / "minild.wasm"
    subprocess.run([tool("wasm-ld-14"), "-o", str(lld), *map(str, objs)], check=True)
    minild("link", *import_all(objs), "-o", mine)
    validate(mine)
    assert run_wasi(mine) == run_wasi(lld) == (b"", b"", 43)
