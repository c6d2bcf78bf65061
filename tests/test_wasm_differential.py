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
