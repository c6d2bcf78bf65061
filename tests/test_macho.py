"""Mach-O (-H macho) for amd64 and arm64: every output is read by llvm-objdump
and llvm-readobj (any warning fails) and by Go's debug/macho, which must agree
with minild's -M map; arm64's code signature is checked by tests/codesign.py,
which recomputes every hash without minild's code; and every output runs
under the unicorn emulator (tests/emu/macho.py), which maps the segments,
slides the image, applies the rebases, binds _write and _exit to stubs and
emulates the BSD system calls. A side-by-side with ld64.lld-14 compares the
load commands and segment permissions."""

from __future__ import annotations

import json
import subprocess

import pytest

from codesign import verify
from conftest import EXAMPLES, assemble, golden, import_all, minild, tool
from emu import macho as emu
from machocheck import binds, llvm_objdump_macho, llvm_readobj_macho, rebases
from machodump import machodump

ARCHES = ("amd64", "arm64")
CPU = {"amd64": 0x01000007, "arm64": 0x0100000C}
PAGE = {"amd64": 0x1000, "arm64": 0x4000}
LIBSYSTEM = "/usr/lib/libSystem.B.dylib"
FLAGS = 0x1 | 0x4 | 0x80 | 0x200000          # NOUNDEFS | DYLDLINK | TWOLEVEL | PIE


def link_map(out, *args) -> dict:
    m = out.with_suffix(".map.json")
    minild("link", "-H", "macho", *args, "-o", out, "-M", m, "--map-format", "json")
    return json.loads(m.read_text())


def check(arch: str, out, meant: dict, imported: list[str]) -> dict:
    """check reads out with llvm-objdump, llvm-readobj and Go's debug/macho:
    no word from any, and agreement with the map on segments, sections,
    symbols, entry and imports."""
    llvm_objdump_macho(out)
    llvm_readobj_macho(out)
    d = machodump(out)
    assert (d["cpu"], d["type"], d["flags"]) == (CPU[arch], 2, FLAGS)
    segs = {s["name"]: s for s in d["segments"]}
    assert segs["__PAGEZERO"]["memsz"] == 1 << 32 and segs["__PAGEZERO"]["prot"] == 0
    assert (segs["__TEXT"]["addr"], segs["__TEXT"]["offset"]) == (1 << 32, 0)
    assert segs["__TEXT"]["prot"] == 5 and segs["__DATA"]["prot"] == 3
    for s in d["segments"][1:]:
        assert s["addr"] % PAGE[arch] == 0 and s["offset"] % PAGE[arch] == 0
        assert s["memsz"] >= s["filesz"]
    names = [c["name"] for c in d["loads"]]
    for c in ("LC_DYLD_INFO_ONLY", "LC_SYMTAB", "LC_DYSYMTAB", "LC_LOAD_DYLINKER", "LC_UUID",
              "LC_BUILD_VERSION", "LC_MAIN", "LC_LOAD_DYLIB", "LC_FUNCTION_STARTS"):
        assert c in names, c
    assert ("LC_CODE_SIGNATURE" in names) == (arch == "arm64")
    assert d["dylibs"][0] == LIBSYSTEM
    assert sorted(d["imported"]) == sorted(imported)
    sections = {s["name"]: s for s in d["sections"]}
    for o in meant["sections"]:
        if o["name"].startswith(".debug_"):      # DWARF: at 0 in the program, Mach-O's name
            assert sections[o["name"].replace(".debug_", "__debug_")]["seg"] == "__DWARF"
            continue
        assert sections[o["name"]]["addr"] == o["address"], o["name"]
    # The symbols: every one the map lists, at its address, but the imports:
    # the map shows them at their stubs, the symbol table as undefined.
    syms = {s["name"]: s for s in d["symbols"]}
    for o in meant["sections"]:
        for i in o["inputs"]:
            for s in i["symbols"]:
                if s["name"] in imported or s["name"].startswith("__imp_") or \
                        o["name"].startswith(".debug_"):
                    continue
                assert syms[s["name"]]["value"] == s["address"], s["name"]
    for name in imported:
        assert syms[name]["type"] == 0x1 and syms[name]["desc"] >> 8 == 1   # N_EXT, libSystem
    return d


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("kind", ["hello", "syscall"])
def test_examples(kind, arch, tmp_path):
    out = tmp_path / "hello"
    meant = link_map(out, EXAMPLES / "macho" / kind / f"{arch}.obj")
    check(arch, out, meant, ["_exit", "_write"] if kind == "hello" else [])
    # msgp, the pointer to the message, is rebased; the __got slots are bound.
    msgp = next(s["address"] for o in meant["sections"] for i in o["inputs"]
                for s in i["symbols"] if s["name"] == "msgp")
    assert [r[2] for r in rebases(out)] == [msgp]
    assert sorted(b[-1] for b in binds(out)) == (["_exit", "_write"] if kind == "hello" else [])
    for slide in (None, 0):
        r = emu.run(out, slide=slide)
        assert (r.stdout, r.status) == (b"hello, world\n", 0), slide
    if arch == "arm64":
        sig = verify(out)
        assert sig["identifier"] == "hello"
    dump = "\n".join(x for x in llvm_objdump_macho(out).split("\n") if not x.startswith("/"))
    golden(f"macho-{kind}-{arch}.objdump", dump)


def test_codesign_on_amd64_when_asked(tmp_path):
    out = tmp_path / "signed"
    minild("link", "-H", "macho", "--codesign", EXAMPLES / "macho" / "hello" / "amd64.obj",
           "-o", out)
    assert verify(out)["identifier"] == "signed"
    assert emu.run(out).stdout == b"hello, world\n"
    out2 = tmp_path / "plain"
    minild("link", "-H", "macho", "--no-codesign", EXAMPLES / "macho" / "hello" / "arm64.obj",
           "-o", out2)
    assert "LC_CODE_SIGNATURE" not in [c["name"] for c in machodump(out2)["loads"]]


@pytest.mark.parametrize("flags", [["-j1"], ["-j2"], ["--no-mmap"]])
def test_same_bytes_every_way(flags, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    base, out = tmp_path / "a" / "hello", tmp_path / "b" / "hello"   # one name: the signature's
    minild("link", "-H", "macho", EXAMPLES / "macho" / "hello" / "arm64.obj", "-o", base)
    minild("link", "-H", "macho", *flags, EXAMPLES / "macho" / "hello" / "arm64.obj", "-o", out)
    assert out.read_bytes() == base.read_bytes()


def test_build_version_flag(tmp_path):
    out = tmp_path / "h"
    minild("link", "-H", "macho", "--macos-version", "13.1", EXAMPLES / "macho" / "hello" /
           "amd64.obj", "-o", out)
    assert "minos 13.1" in llvm_objdump_macho(out)


def test_dwarf_goes_to_a_dwarf_segment(tmp_path):
    """as -g writes DWARF for the assembly source; in Mach-O it lands in
    __DWARF, where llvm-dwarfdump reads the line table of the executable
    itself; -s leaves it out."""
    src = (EXAMPLES / "macho" / "syscall" / "arm64.s").read_text()
    objs = import_all([assemble("arm64", src, tmp_path / "s.o", "-g")])
    out = tmp_path / "g"
    meant = link_map(out, *objs)
    d = check("arm64", out, meant, [])
    dwarf = next(s for s in d["segments"] if s["name"] == "__DWARF")
    assert dwarf["prot"] == 0 and dwarf["filesz"] > 0
    assert {s["name"] for s in d["sections"] if s["seg"] == "__DWARF"} >= {"__debug_info",
                                                                         "__debug_line"}
    p = subprocess.run([tool("llvm-dwarfdump"), "--debug-line", str(out)], capture_output=True,
                       text=True)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert "s.s" in p.stdout and "is_stmt" in p.stdout      # the source's line table
    assert emu.run(out).stdout == b"hello, world\n"
    stripped = tmp_path / "s"
    minild("link", "-H", "macho", "-s", *objs, "-o", stripped)
    assert "__DWARF" not in [s["name"] for s in machodump(stripped)["segments"]]
    assert emu.run(stripped).stdout == b"hello, world\n"


LLD_SRC = {
    "amd64": """
	.section __TEXT,__text
	.globl	_main
_main:
	pushq	%rbp
	movl	$1, %edi
	movq	msgp(%rip), %rsi
	movl	$13, %edx
	callq	_write
	xorl	%edi, %edi
	callq	_exit
""",
    "arm64": """
	.section __TEXT,__text
	.globl	_main
	.p2align 2
_main:
	stp	x29, x30, [sp, #-16]!
	mov	x0, #1
	adrp	x1, msgp@PAGE
	ldr	x1, [x1, msgp@PAGEOFF]
	mov	x2, #13
	bl	_write
	mov	x0, #0
	bl	_exit
"""}
LLD_DATA = """
	.section __TEXT,__const
msg:	.ascii	"hello, world\\n"
	.section __DATA,__data
	.p2align 3
msgp:	.quad	msg
"""
TBD = """--- !tapi-tbd
tbd-version:     4
targets:         [ x86_64-macos, arm64-macos ]
install-name:    '/usr/lib/libSystem.B.dylib'
current-version: 1311
exports:
  - targets:     [ x86_64-macos, arm64-macos ]
    symbols:     [ _write, _exit, dyld_stub_binder ]
...
"""
# What ld64.lld-14 writes and minild does not, and why:
#   LC_DATA_IN_CODE   empty here (no data in the code); minild writes none
# and the sections that differ:
#   __stub_helper, __la_symbol_ptr   lld binds lazily (through dyld_stub_binder);
#                     minild binds every import at load, through __got
LLD_ONLY_COMMANDS = {"LC_DATA_IN_CODE"}
LLD_ONLY_SECTIONS = {"__stub_helper", "__la_symbol_ptr"}


@pytest.mark.parametrize("arch", ARCHES)
def test_side_by_side_with_ld64_lld(arch, tmp_path):
    triple = {"amd64": "x86_64-apple-macos11", "arm64": "arm64-apple-macos11"}[arch]
    s = tmp_path / "h.s"
    s.write_text(LLD_SRC[arch] + LLD_DATA)
    (tmp_path / "libSystem.tbd").write_text(TBD)
    subprocess.run([tool("llvm-mc"), "-triple", triple, "-filetype=obj", "-o",
                    str(tmp_path / "h.o"), str(s)], check=True)
    lld = tmp_path / "lld"
    subprocess.run([tool("ld64.lld-14"), "-arch", {"amd64": "x86_64", "arm64": "arm64"}[arch],
                    "-platform_version", "macos", "11.0", "11.0", "-o", str(lld),
                    str(tmp_path / "h.o"), "-L", str(tmp_path), "-lSystem"], check=True)
    mine = tmp_path / "minild"
    minild("link", "-H", "macho", EXAMPLES / "macho" / "hello" / f"{arch}.obj", "-o", mine)
    a, b = machodump(lld), machodump(mine)
    assert {c["name"] for c in a["loads"]} - {c["name"] for c in b["loads"]} == \
        LLD_ONLY_COMMANDS
    assert {c["name"] for c in b["loads"]} - {c["name"] for c in a["loads"]} == set()
    perms = lambda d: {s["name"]: (s["maxprot"], s["prot"]) for s in d["segments"]}  # noqa: E731
    assert perms(a) == perms(b)
    secs = lambda d: {s["name"] for s in d["sections"] if s["size"]}  # noqa: E731
    assert secs(a) - secs(b) == LLD_ONLY_SECTIONS
    assert secs(b) - secs(a) == {"__const"} - secs(a)   # lld names read-only data as its source did
    assert emu.run(lld).stdout == emu.run(mine).stdout == b"hello, world\n"


def refused(tmp_path, *args, status=1) -> str:
    out = tmp_path / "o"
    out.write_bytes(b"previous")
    p = minild("link", "-H", "macho", *args, "-o", out, check=False)
    assert p.returncode == status and "Traceback" not in p.stderr, p.stderr
    assert out.read_bytes() == b"previous"
    return p.stderr


def test_bad_inputs(tmp_path):
    obj = json.loads((EXAMPLES / "macho" / "hello" / "amd64.obj").read_text())
    for s in obj["symbols"]:
        if s["name"] == "_write":
            s["import"] = {"module": "libSystem.B.dylib"}
    rel = tmp_path / "rel.obj"
    rel.write_text(json.dumps(obj))
    assert "not an absolute install path" in refused(tmp_path, rel)
    obj["symbols"] = [s for s in obj["symbols"] if s["name"] != "_write"]
    und = tmp_path / "und.obj"
    und.write_text(json.dumps(obj))
    assert "undefined symbol: _write" in refused(tmp_path, und)
    assert "it is for: amd64, arm64" in refused(tmp_path, EXAMPLES / "hello" / "x86.obj",
                                                status=2)
    assert "only for -H macho" in minild("link", "--codesign", EXAMPLES / "hello" / "amd64.obj",
                                         "-o", tmp_path / "x", check=False).stderr
    objs = import_all([assemble("amd64", """
    .text
    .globl _main
_main:
    movl $msg, %eax
    ret
    .data
msg: .quad 0
""", tmp_path / "a.o")])
    err = refused(tmp_path, *objs)
    assert "relocation R_X86_64_32 against" in err and "position-independent" in err
    objs = import_all([assemble("amd64", """
    .text
    .globl _main
_main:
    ret
    .section .rodata
table: .quad _main
""", tmp_path / "b.o")])
    assert "__TEXT is read-only" in refused(tmp_path, *objs)
