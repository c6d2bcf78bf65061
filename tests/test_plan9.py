"""plan 9 a.out (-H plan9) for amd64, x86 and arm: every output is read back by
Go's debug/plan9obj (tests/go/plan9dump) and run under the unicorn emulator by
a loader that reads the header itself (tests/emu/plan9.py); the two readings
of the header must agree with each other and with what minild meant (its -M
map), and the program must print what it should."""

from __future__ import annotations

import json

import pytest

from conftest import EXAMPLES, assemble, golden, import_all, minild
from emu import plan9 as emu
from plan9dump import plan9dump

ARCHES = ("amd64", "x86", "arm")
# Go's cmd/link/internal/{amd64,x86,arm}/obj.go (Hplan9) and plan 9's a.out.h.
MAGIC = {"amd64": 0x8A97, "x86": 0x1EB, "arm": 0x647}
LOAD = {"amd64": 0x200000, "x86": 0x1000, "arm": 0x1000}      # UTZERO
ROUND = {"amd64": 0x200000, "x86": 0x1000, "arm": 0x1000}     # UTROUND
HDR = {"amd64": 40, "x86": 32, "arm": 32}


def link_map(out, *args) -> dict:
    """link_map links with -H plan9 and returns minild's own -M map (JSON):
    what it meant to write."""
    m = out.with_suffix(".map.json")
    minild("link", "-H", "plan9", *args, "-o", out, "-M", m, "--map-format", "json")
    return json.loads(m.read_text())


def check_against_map(arch: str, out, meant: dict, strip=False) -> dict:
    """check_against_map reads out with debug/plan9obj and with the emulator's
    own header reader; both must agree, and with the map."""
    d = plan9dump(out)
    hdr = emu.parse_header(out.read_bytes())
    assert {k: hdr[k] for k in d["header"]} == d["header"]
    assert (d["magic"], hdr["hdrsize"], d["loadaddress"]) == (MAGIC[arch], HDR[arch], LOAD[arch])
    secs = {o["name"]: o for o in meant["sections"]}
    text_end = max(o["fileoff"] + o["size"] for n, o in secs.items() if n in (".text", ".rodata"))
    sizes = {s["name"]: s for s in d["sections"]}
    assert sizes["text"]["offset"] == HDR[arch]
    assert sizes["text"]["size"] == text_end - HDR[arch]
    assert secs[".text"]["address"] - secs[".text"]["fileoff"] == LOAD[arch]
    data = secs.get(".data")
    assert sizes["data"]["size"] == (data["size"] if data else 0)
    if data:   # packed in the file, rounded in memory
        assert sizes["data"]["offset"] == data["fileoff"] == text_end
        assert data["address"] % ROUND[arch] == 0
    bss = secs.get(".bss")
    data_end = (data["address"] + data["size"]) if data else 0
    assert d["bss"] == ((bss["address"] + bss["size"] - data_end) if bss else 0)
    assert d["entry"] == meant["entry"]
    want = {} if strip else {s["name"]: s["address"] for o in meant["sections"]
                             for i in o["inputs"] for s in i["symbols"]}
    assert {s["name"]: s["value"] for s in d["symbols"]} == want
    return d


@pytest.mark.parametrize("arch", ARCHES)
def test_hello_runs_and_parses(arch, tmp_path):
    out = tmp_path / "hello"
    meant = link_map(out, EXAMPLES / "plan9" / "hello" / f"{arch}.obj")
    d = check_against_map(arch, out, meant)
    types = {s["name"]: s["type"] for s in d["symbols"]}
    assert types == {"_start": "T", "msg": "d"}      # msg: a local in read-only data
    r = emu.run(out)
    assert (r.stdout, r.stderr, r.status, r.exit_message) == (b"hello, world\n", b"", 0, None)
    golden(f"plan9-hello-{arch}.plan9dump", json.dumps(d, indent=1, sort_keys=True) + "\n")


@pytest.mark.parametrize("arch", ARCHES)
def test_strip_drops_the_symbol_table(arch, tmp_path):
    out = tmp_path / "hello"
    meant = link_map(out, "-s", EXAMPLES / "plan9" / "hello" / f"{arch}.obj")
    d = check_against_map(arch, out, meant, strip=True)
    assert d["header"]["syms"] == 0 and d["symbols"] == []
    assert emu.run(out).stdout == b"hello, world\n"


# amd64, Plan 9's calling convention for system calls (number in BP, arguments
# from 8(SP)): copies a greeting from .data into a .bss buffer found through a
# pointer in .data, then writes the buffer: data, bss and an absolute address
# of bss in data, across two objects.
MAIN = """
    .text
    .globl _start
_start:
    andq $-16, %rsp
    subq $48, %rsp
    leaq greeting(%rip), %rsi
    movq bufp(%rip), %rdi
    movq len(%rip), %rcx
    rep movsb
    call say
    movq $0, 8(%rsp)
    movl $8, %ebp
    syscall
    ud2
    .data
    .balign 8
bufp: .quad buf
    .globl len
len: .quad 13
"""
SAY = """
    .text
    .globl say
say:
    subq $40, %rsp
    movq $1, 8(%rsp)
    leaq buf(%rip), %rax
    movq %rax, 16(%rsp)
    movq len(%rip), %rax
    movq %rax, 24(%rsp)
    movq $-1, 32(%rsp)
    movl $51, %ebp
    syscall
    addq $40, %rsp
    ret
    .data
    .globl greeting
greeting: .ascii "hello, world\\n"
    .bss
    .globl buf
    .balign 16
buf: .zero 64
counter: .zero 8
"""


def test_data_and_bss_across_objects(tmp_path):
    objs = import_all([assemble("amd64", MAIN, tmp_path / "main.o"),
                       assemble("amd64", SAY, tmp_path / "say.o")])
    out = tmp_path / "prog"
    meant = link_map(out, *objs)
    d = check_against_map("amd64", out, meant)
    types = {s["name"]: s["type"] for s in d["symbols"]}
    assert types == {"_start": "T", "say": "T", "bufp": "d", "len": "D", "greeting": "D",
                     "buf": "B", "counter": "b"}
    assert d["header"]["data"] > 0 and d["header"]["bss"] >= 72
    r = emu.run(out)
    assert (r.stdout, r.status) == (b"hello, world\n", 0)


def test_dwarf_is_left_out_and_said_once(tmp_path):
    obj = json.loads((EXAMPLES / "plan9" / "hello" / "x86.obj").read_text())
    obj["sections"].append({"name": ".debug_info", "kind": "dwarf", "data": "01 02 03 04"})
    obj["sections"].append({"name": ".debug_line", "kind": "dwarf", "data": "05 06"})
    src = tmp_path / "g.obj"
    src.write_text(json.dumps(obj))
    out = tmp_path / "hello"
    p = minild("link", "-H", "plan9", "-v", src, "-o", out)
    assert p.stderr.count("DWARF") == 1 and ".debug_info, .debug_line" in p.stderr
    meant = link_map(out, src)
    assert not any(o["name"].startswith(".debug") for o in meant["sections"])
    check_against_map("x86", out, meant)
    assert emu.run(out).stdout == b"hello, world\n"


@pytest.mark.parametrize("arch", ["arm64", "mips", "riscv64", "s390x"])
def test_an_arch_without_plan9_is_a_usage_error(arch, tmp_path):
    out = tmp_path / "o"
    p = minild("link", "-H", "plan9", EXAMPLES / "hello" / f"{arch}.obj", "-o", out,
               check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert f"not available for arch {arch}" in p.stderr
    assert "it is for: amd64, x86, arm" in p.stderr
    assert not out.exists()


def test_help_lists_formats_and_their_arches():
    p = minild("link", "--help")
    assert "plan9  amd64, x86, arm" in p.stdout
    assert "elf    amd64, x86, arm, arm64," in p.stdout


@pytest.mark.parametrize("flags", [["-j1"], ["-j2"], ["--no-mmap"]])
def test_same_bytes_every_way(flags, tmp_path):
    base = tmp_path / "base"
    minild("link", "-H", "plan9", EXAMPLES / "plan9" / "hello" / "arm.obj", "-o", base)
    out = tmp_path / "o"
    minild("link", "-H", "plan9", *flags, EXAMPLES / "plan9" / "hello" / "arm.obj", "-o", out)
    assert out.read_bytes() == base.read_bytes()


def test_text_address_flag_moves_the_image(tmp_path):
    """-T moves text (and the header before it); the emulator maps what the
    header and -T say only when they are the kernel's UTZERO, so this is a
    parse check: the entry and symbols move with -T."""
    out = tmp_path / "o"
    meant = link_map(out, "-T", "0x400020", EXAMPLES / "plan9" / "hello" / "x86.obj")
    d = plan9dump(out)
    assert d["entry"] == meant["entry"] == 0x400020
    assert {s["name"]: s["value"] for s in d["symbols"]}["_start"] == 0x400020


def test_externallink_is_elf_only(tmp_path):
    out = tmp_path / "o"
    p = minild("link", "--externallink", "-H", "plan9", EXAMPLES / "plan9" / "hello" / "x86.obj",
               "-o", out, check=False)
    assert p.returncode == 2 and "cannot be used with -H plan9" in p.stderr
    assert not out.exists()
