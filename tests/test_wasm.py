"""WebAssembly (arch wasm): every module passes wasm-validate and runs under
wasmtime with WASI; wasm-objdump's reading is the golden dump; bad inputs are
refused with the previous output left as it was."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import EXAMPLES, golden, minild, tool
from wasi import run_wasi

HELLO = EXAMPLES / "wasm" / "hello.obj"


def validate(path) -> None:
    p = subprocess.run([tool("wasm-validate"), str(path)], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p.stdout + p.stderr


def objdump(path) -> str:
    p = subprocess.run([tool("wasm-objdump"), "-x", str(path)], capture_output=True, text=True)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    return "\n".join(line for line in p.stdout.split("\n") if not line.endswith("format wasm 0x1"))


def test_hello(tmp_path):
    out = tmp_path / "hello.wasm"
    minild("link", HELLO, "-o", out)       # wasm objects make a wasm module without -H
    validate(out)
    dump = objdump(out)
    assert '<- wasi_snapshot_preview1.fd_write' in dump and '-> "_start"' in dump
    assert '-> "memory"' in dump
    assert run_wasi(out) == (b"hello, world\n", b"", 0)
    golden("wasm-hello.objdump", dump)


def test_strip_drops_the_name_section(tmp_path):
    out = tmp_path / "s.wasm"
    minild("link", "-s", HELLO, "-o", out)
    validate(out)
    assert 'Custom:' not in objdump(out)
    assert run_wasi(out)[0] == b"hello, world\n"


@pytest.mark.parametrize("flags", [["-j1"], ["-j2"], ["--no-mmap"], ["-H", "wasm"]])
def test_same_bytes_every_way(flags, tmp_path):
    base, out = tmp_path / "a.wasm", tmp_path / "b.wasm"
    minild("link", HELLO, "-o", base)
    minild("link", *flags, HELLO, "-o", out)
    assert out.read_bytes() == base.read_bytes()


def test_stack_and_memory_flags(tmp_path):
    out = tmp_path / "m.wasm"
    minild("link", "--stack-size", "0x20000", "--initial-memory", "0x40000", HELLO, "-o", out)
    validate(out)
    dump = objdump(out)
    assert "pages: initial=4" in dump
    assert "init i32=132128" in dump          # __stack_pointer: data end (1040 + 8, to 16) + 128 KiB
    assert run_wasi(out)[0] == b"hello, world\n"


def refused(tmp_path, *args, status=1) -> str:
    out = tmp_path / "o.wasm"
    out.write_bytes(b"previous")
    p = minild("link", *args, "-o", out, check=False)
    assert p.returncode == status and "Traceback" not in p.stderr, p.stderr
    assert out.read_bytes() == b"previous"
    return p.stderr


def variant(tmp_path, name, edit) -> str:
    obj = json.loads(HELLO.read_text())
    edit(obj)
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return p


def test_bad_inputs(tmp_path):
    # A call that disagrees with its target's signature (another object's fd_write).
    def other(o):
        o["sections"] = []
        o["symbols"] = [{"name": "fd_write", "type": "func", "signature": 1,
                         "import": {"module": "wasi_snapshot_preview1"}}]
    two = variant(tmp_path, "two.obj", other)

    def as_ref(o):   # hello refers to fd_write with its 4-argument signature, undefined
        for s in o["symbols"]:
            if s["name"] == "fd_write":
                del s["import"]
    ref = variant(tmp_path, "ref.obj", as_ref)
    err = refused(tmp_path, ref, two)
    assert "signature mismatch" in err and "fd_write" in err
    assert "(i32, i32, i32, i32) -> (i32)" in err and "(i32) -> ()" in err
    # An LEB relocation whose place is not 5 bytes.

    def short(o):
        o["sections"][0]["data"] = o["sections"][0]["data"].replace(
            "10 80 80 80 80 00  1a", "10 00 01 01 01 01  1a", 1)
    err = refused(tmp_path, variant(tmp_path, "short.obj", short))
    assert "not a 5-byte padded LEB128" in err and "(.text._start+0x12)" in err
    # An import with no module name.

    def nomodule(o):
        o["symbols"][1]["import"]["module"] = ""
    assert "import.module" in refused(tmp_path, variant(tmp_path, "nomod.obj", nomodule))
    # Too little memory for data and stack.
    assert "need" in refused(tmp_path, "--initial-memory", "0x10000", HELLO)
    # wasm flags on another format, and another format for wasm objects.
    assert "only for wasm" in refused(tmp_path, "--stack-size", "4096",
                                      EXAMPLES / "hello" / "amd64.obj", status=2)
    assert "not available for arch wasm" in refused(tmp_path, "-H", "elf", HELLO, status=2)


def test_compact_links_the_same_and_passes_the_schema(tmp_path):
    import jsonschema

    from conftest import ROOT
    from minild import arch
    from minild.encode import encode_compact
    from minild.loader import read_object

    schema = json.loads((ROOT / "docs" / "object-format.schema.json").read_text())
    jsonschema.validate(json.loads(HELLO.read_text()), schema)
    obj = read_object(str(HELLO))
    compact = tmp_path / "hello.compact"
    compact.write_bytes(encode_compact(obj, arch.lookup("wasm")))
    jsonschema.validate(json.loads(compact.read_bytes()), schema)
    a, b = tmp_path / "a.wasm", tmp_path / "b.wasm"
    minild("link", HELLO, "-o", a)
    minild("link", compact, "-o", b)
    assert a.read_bytes() == b.read_bytes()


def test_multi_object_example(tmp_path):
    """examples/wasm/multi: a call across objects, a call through a function
    pointer (the table), a global counter, data with the address of other
    data, and a bss buffer."""
    out = tmp_path / "multi.wasm"
    multi = EXAMPLES / "wasm" / "multi"
    minild("link", multi / "main.obj", multi / "lib.obj", "-o", out)
    validate(out)
    dump = objdump(out)
    assert "Table[1]:" in dump and "Elem[1]:" in dump
    assert run_wasi(out) == (b"hello, world 6\n", b"", 42)
    golden("wasm-multi.objdump", dump)


def test_stack_first(tmp_path):
    out = tmp_path / "sf.wasm"
    minild("link", "--stack-first", HELLO, "-o", out)
    validate(out)
    dump = objdump(out)
    assert "init i32=65536" in dump                 # __stack_pointer: the top of [0, 64 KiB)
    assert "segment[0] memory=0 size=13 - init i32=65536" in dump   # data after the stack
    assert run_wasi(out)[0] == b"hello, world\n"
    # Data placed inside the stack's range: refused.
    err = refused(tmp_path, "--stack-first", "-T", "1024", HELLO)
    assert "overlaps the stack" in err and ".rodata" in err
