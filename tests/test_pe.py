"""PE/COFF (-H pe) for amd64, x86 and arm64: every output is read by
llvm-readobj and MinGW's objdump (any warning fails) and by pefile, which must
agree with minild's -M map; it runs under the unicorn emulator (tests/emu/pe.py,
a loader that maps the sections, binds the imports to kernel32 stubs and
applies .reloc when it loads the image elsewhere) at its image base and at
another one, and amd64's under wine."""

from __future__ import annotations

import json

import pytest

from conftest import EXAMPLES, assemble, golden, import_all, minild
from emu import pe as emu
from pecheck import llvm_readobj, mingw_objdump, pefile_summary
from wine import run_wine

ARCHES = ("amd64", "x86", "arm64")
MACHINE = {"amd64": 0x8664, "x86": 0x14C, "arm64": 0xAA64}
BASE = {"amd64": 0x140000000, "x86": 0x400000, "arm64": 0x140000000}
ELSEWHERE = {"amd64": 0x7FF600000000, "x86": 0x10000000, "arm64": 0x7FF600000000}
HELLO = EXAMPLES / "pe" / "hello"


def link_map(out, *args) -> dict:
    """link_map links with -H pe and returns minild's own -M map (JSON)."""
    m = out.with_suffix(".map.json")
    minild("link", "-H", "pe", *args, "-o", out, "-M", m, "--map-format", "json")
    return json.loads(m.read_text())


def check(arch: str, out, meant: dict) -> dict:
    """check reads out with the three parsers; they must accept it without a
    word and agree with the map on entry, image base, sections and imports."""
    llvm_readobj(out)
    mingw_objdump(out)
    s = pefile_summary(out)
    assert s["warnings"] == []
    assert s["machine"] == MACHINE[arch] and s["image_base"] == BASE[arch]
    assert s["image_base"] + s["entry_rva"] == meant["entry"]
    want = {o["name"]: o["address"] - BASE[arch] for o in meant["sections"]}
    got = {name: rva for name, rva, *_ in s["sections"]}
    assert {k: got[k] for k in want} == want
    assert s["imports"] == {m["module"]: sorted(f["name"] for f in m["functions"])
                            for m in meant.get("imports", [])}
    return s


@pytest.mark.parametrize("arch", ARCHES)
def test_hello(arch, tmp_path):
    out = tmp_path / "hello.exe"
    meant = link_map(out, HELLO / f"{arch}.obj")
    s = check(arch, out, meant)
    assert s["imports"] == {"kernel32.dll": ["ExitProcess", "GetStdHandle", "WriteFile"]}
    assert s["dll_characteristics"] & 0x140 == 0x140          # DYNAMIC_BASE | NX_COMPAT
    assert bool(s["dll_characteristics"] & 0x20) == (arch != "x86")   # HIGH_ENTROPY_VA
    assert s["base_relocs"] > 0
    for base in (None, ELSEWHERE[arch]):
        r = emu.run(out, base=base)
        assert (r.stdout, r.status) == (b"hello, world\n", 3), base
    dump = "\n".join(x for x in llvm_readobj(out).split("\n") if not x.startswith("File: "))
    golden(f"pe-hello-{arch}.readobj", dump)


def test_hello_runs_under_wine(tmp_path):
    out = tmp_path / "hello.exe"
    minild("link", "-H", "pe", HELLO / "amd64.obj", "-o", out)
    p = run_wine(out)
    assert (p.stdout, p.returncode) == (b"hello, world\n", 3), p.stderr


def test_map_lists_the_import_table(tmp_path):
    out = tmp_path / "hello.exe"
    meant = link_map(out, HELLO / "amd64.obj")
    (k32,) = meant["imports"]
    fns = {f["name"]: f for f in k32["functions"]}
    assert k32["module"] == "kernel32.dll" and set(fns) == {"GetStdHandle", "WriteFile",
                                                             "ExitProcess"}
    assert fns["WriteFile"]["thunk"] is None          # called only through __imp_WriteFile
    assert fns["GetStdHandle"]["thunk"] is not None
    text = tmp_path / "map.txt"
    minild("link", "-H", "pe", HELLO / "amd64.obj", "-o", out, "-M", text)
    assert "kernel32.dll" in text.read_text() and "GetStdHandle" in text.read_text()


@pytest.mark.parametrize("arch", ARCHES)
def test_no_dynamicbase(arch, tmp_path):
    out = tmp_path / "hello.exe"
    meant = link_map(out, "--no-dynamicbase", HELLO / f"{arch}.obj")
    s = check(arch, out, meant)
    assert s["dll_characteristics"] & 0x40 == 0 and s["base_relocs"] == 0
    assert emu.run(out).stdout == b"hello, world\n"
    with pytest.raises(emu.LoadError):
        emu.run(out, base=ELSEWHERE[arch])


@pytest.mark.parametrize("flags", [["-j1"], ["-j2"], ["--no-mmap"]])
def test_same_bytes_every_way(flags, tmp_path):
    base = tmp_path / "base.exe"
    minild("link", "-H", "pe", HELLO / "x86.obj", "-o", base)
    out = tmp_path / "o.exe"
    minild("link", "-H", "pe", *flags, HELLO / "x86.obj", "-o", out)
    assert out.read_bytes() == base.read_bytes()


def test_alignments_and_image_base(tmp_path):
    out = tmp_path / "o.exe"
    meant = link_map(out, "--image-base", "0x180000000", "--file-alignment", "0x1000",
                     "--section-alignment", "0x2000", HELLO / "amd64.obj")
    s = pefile_summary(out)
    assert (s["image_base"], s["file_alignment"], s["section_alignment"]) == \
        (0x180000000, 0x1000, 0x2000)
    llvm_readobj(out)
    assert meant["entry"] == 0x180000000 + s["entry_rva"]
    assert emu.run(out).stdout == b"hello, world\n"


def refused(tmp_path, *args, status=1) -> str:
    """refused links expecting a clean refusal that leaves the old output as it was."""
    out = tmp_path / "o.exe"
    out.write_bytes(b"previous")
    p = minild("link", *args, "-o", out, check=False)
    assert p.returncode == status and "Traceback" not in p.stderr, p.stderr
    assert out.read_bytes() == b"previous"
    return p.stderr


def with_symbols(tmp_path, name, extra, arch="amd64") -> str:
    obj = json.loads((HELLO / f"{arch}.obj").read_text())
    for s in extra:
        obj["symbols"] = [x for x in obj["symbols"] if x["name"] != s["name"]] + [s]
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return p


def test_bad_inputs(tmp_path):
    # A DLL given as a path.
    p = with_symbols(tmp_path, "path.obj", [{"name": "ExitProcess",
                                             "import": {"module": "C:\\lib\\kernel32.dll"}}])
    assert "not a DLL's file name" in refused(tmp_path, "-H", "pe", p)
    # One name from two DLLs.
    other = tmp_path / "other.obj"
    other.write_text(json.dumps({"version": 1, "encoding": "readable", "arch": "amd64",
                                 "sections": [], "symbols": [
                                     {"name": "ExitProcess", "import": {"module": "user32.dll"}}]}))
    err = refused(tmp_path, "-H", "pe", HELLO / "amd64.obj", other)
    assert "imported twice" in err and "user32.dll" in err and "kernel32.dll" in err
    # An import used by an ELF link.
    err = refused(tmp_path, HELLO / "amd64.obj")
    assert "imported from kernel32.dll" in err and "links no imports" in err
    assert "referenced by" in err
    # __imp_ of a name nobody imports.
    p = with_symbols(tmp_path, "undef.obj", [{"name": "WriteFile", "section": ".text"}])
    assert "undefined symbol: __imp_WriteFile" in refused(tmp_path, "-H", "pe", p)
    # An image base PE cannot have, and alignments it cannot have (usage errors).
    assert "64 KiB" in refused(tmp_path, "-H", "pe", "-T", "0x401000", HELLO / "x86.obj",
                               status=2)
    assert "power of two" in refused(tmp_path, "-H", "pe", "--file-alignment", "0x300",
                                     HELLO / "x86.obj", status=2)
    assert "only for -H pe" in refused(tmp_path, "--no-dynamicbase", HELLO / "x86.obj",
                                       status=2)
    assert "at least the file alignment" in refused(
        tmp_path, "-H", "pe", "--section-alignment", "0x200", "--file-alignment", "0x400",
        HELLO / "x86.obj", status=2)


def test_an_absolute_32_bit_place_needs_a_fixed_base(tmp_path):
    objs = import_all([assemble("amd64", """
    .text
    .globl _start
_start:
    movl $msg, %eax
    call ExitProcess
    .data
msg: .quad 0
""", tmp_path / "a.o")])
    imp = tmp_path / "k32.obj"
    imp.write_text(json.dumps({"version": 1, "encoding": "readable", "arch": "amd64",
                               "sections": [], "symbols": [
                                   {"name": "ExitProcess", "import": {"module": "kernel32.dll"}}]}))
    err = refused(tmp_path, "-H", "pe", *objs, imp)
    assert "relocation R_X86_64_32 against" in err and "cannot be rebased" in err
    assert "--no-dynamicbase" in err
    out = tmp_path / "fixed.exe"
    # (and below 4 GiB, where a 32-bit absolute address can reach it)
    minild("link", "-H", "pe", "--no-dynamicbase", "--image-base", "0x400000", *objs, imp,
           "-o", out)
    llvm_readobj(out)


@pytest.mark.parametrize("arch", ["mips", "riscv64", "s390x"])
def test_an_arch_without_pe_is_a_usage_error(arch, tmp_path):
    p = minild("link", "-H", "pe", EXAMPLES / "hello" / f"{arch}.obj", "-o", tmp_path / "o",
               check=False)
    assert p.returncode == 2 and "it is for: amd64, x86, arm64" in p.stderr
