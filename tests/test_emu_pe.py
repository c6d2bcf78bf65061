"""The PE runner (tests/emu/pe.py) and the PE oracles (tests/pecheck.py, tests/wine.py)
on their own, without minild: hello programs built by other toolchains must print
hello, world and exit 3 in the emulator, at their preferred base and at another one
(so the base relocations are applied), and be read the same way by llvm-readobj,
GNU/LLVM objdump and pefile; broken files must be refused with a clear LoadError.

The reference files are built as follows (DIR: a temporary directory; k32.def is
KERNEL32 below, k32-386.def KERNEL32_386):

  amd64  x86_64-w64-mingw32-dlltool -m i386:x86-64 -d k32.def -l libk32.a
         x86_64-w64-mingw32-as -o amd64.o amd64.s
         x86_64-w64-mingw32-ld --no-insert-timestamp --dynamicbase -e start
             --subsystem console -o amd64.exe amd64.o libk32.a
  x86    i686-w64-mingw32-dlltool -m i386 -k -d k32-386.def -l libk32-386.a
         i686-w64-mingw32-as -o x86.o x86.s
         i686-w64-mingw32-ld --no-insert-timestamp --dynamicbase -e _start
             --subsystem console -o x86.exe x86.o libk32-386.a
  arm64  llvm-dlltool -m arm64 -d k32.def -l k32-arm64.lib
         llvm-mc -triple aarch64-windows -filetype=obj -o arm64.obj arm64.s
         lld-link /Brepro /machine:arm64 /entry:start /subsystem:console /nodefaultlib
             /dynamicbase /out:arm64.exe arm64.obj k32-arm64.lib

Each program checks what its calls returned (WriteFile's TRUE and *written == 13;
on x86 that the stdcall callee popped its arguments; on amd64 the 5th argument is
read from [rsp+0x28], with -1 in the neighbouring stack slots) and exits 99 if
anything is off. The message is reached through an absolute pointer in .data, so
each file has a DIR64 (HIGHLOW on x86) base relocation that matters.

Tools missing is a failure naming the Debian package, never a skip.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from emu import EmuError, LoadError
from emu import pe
from pecheck import coff_machine, llvm_readobj, mingw_objdump, pefile_summary
from wine import run_wine

MSG = b"hello, world\n"
ARCHS = ["amd64", "x86", "arm64"]
OTHER_BASE = {"amd64": 0x150000000, "x86": 0x10000000, "arm64": 0x150000000}
PREFERRED = {"amd64": 0x140000000, "x86": 0x400000, "arm64": 0x140000000}

KERNEL32 = "LIBRARY kernel32.dll\nEXPORTS\nGetStdHandle\nWriteFile\nExitProcess\n"
KERNEL32_386 = "LIBRARY kernel32.dll\nEXPORTS\nGetStdHandle@4\nWriteFile@20\nExitProcess@4\n"

# msgp: an absolute pointer, so a base relocation (no comment in the source: '#'
# starts none for llvm-mc on aarch64)
DATA = """
	.data
msg:	.ascii	"hello, world\\n"
	.balign	8
msgp:	.{word}	msg
written: .long	0
"""

# rsp is 8 mod 16 at the entry (a return address on top): 56 = 32 shadow + 5th arg
# + 6th slot + 8 puts it back at 0 mod 16 for the calls.
AMD64 = """
	.text
	.globl	start
start:
	subq	${frame}, %rsp
	movl	$-11, %ecx			# STD_OUTPUT_HANDLE
	call	*__imp_GetStdHandle(%rip)
	movq	%rax, %rcx
	movq	msgp(%rip), %rdx
	movl	$13, %r8d
	leaq	written(%rip), %r9
	movq	$-1, 24(%rsp)			# shadow slot 4 (r9's home): not the 5th argument
	movq	$0, 32(%rsp)			# the 5th argument, lpOverlapped
	movq	$-1, 40(%rsp)
	call	*__imp_WriteFile(%rip)
	cmpl	$1, %eax
	jne	fail
	cmpl	$13, written(%rip)
	jne	fail
{tail}
fail:
	movl	$99, %ecx
	call	*__imp_ExitProcess(%rip)
""" + DATA.format(word="quad")

AMD64_EXIT = """
	movl	$3, %ecx
	call	*__imp_ExitProcess(%rip)
"""
AMD64_RETURN = """
	movl	$5, %eax			# return from the entry point: exit status 5
	addq	$56, %rsp
	ret
"""

X86 = """
	.text
	.globl	_start
_start:
	movl	%esp, %esi			# callee-saved: the stdcall callee must pop its args
	pushl	$-11
	call	*__imp__GetStdHandle@4
	cmpl	%esp, %esi
	jne	fail
	pushl	$0
	pushl	$written
	pushl	$13
	pushl	msgp
	pushl	%eax
	call	*__imp__WriteFile@20
	cmpl	%esp, %esi
	jne	fail
	cmpl	$1, %eax
	jne	fail
	cmpl	$13, written
	jne	fail
	pushl	$3
	call	*__imp__ExitProcess@4
fail:
	pushl	$99
	call	*__imp__ExitProcess@4
""" + DATA.format(word="long")

ARM64 = """
	.text
	.globl	start
start:
	stp	x29, x30, [sp, #-16]!
	mov	x29, sp
	mov	w0, #-11
	adrp	x16, __imp_GetStdHandle
	ldr	x16, [x16, :lo12:__imp_GetStdHandle]
	blr	x16
	adrp	x1, msgp
	ldr	x1, [x1, :lo12:msgp]
	mov	w2, #13
	adrp	x3, written
	add	x3, x3, :lo12:written
	mov	x4, #0
	adrp	x16, __imp_WriteFile
	ldr	x16, [x16, :lo12:__imp_WriteFile]
	blr	x16
	cmp	w0, #1
	b.ne	fail
	adrp	x9, written
	ldr	w9, [x9, :lo12:written]
	cmp	w9, #13
	b.ne	fail
	mov	w0, #3
	adrp	x16, __imp_ExitProcess
	ldr	x16, [x16, :lo12:__imp_ExitProcess]
	blr	x16
fail:
	mov	w0, #99
	adrp	x16, __imp_ExitProcess
	ldr	x16, [x16, :lo12:__imp_ExitProcess]
	blr	x16
""" + DATA.format(word="quad")

# Debian packages of the tools
PACKAGES = {
    "x86_64-w64-mingw32-": "binutils-mingw-w64-x86-64",
    "i686-w64-mingw32-": "binutils-mingw-w64-i686",
    "llvm-mc": "llvm",
    "llvm-dlltool": "llvm",
    "lld-link": "lld",
}


def need(name: str) -> str:
    """The tool's path (or of its LLVM 14 versioned name); pytest.fail naming the
    Debian package when it is missing."""
    for n in (name, f"{name}-14"):
        p = shutil.which(n)
        if p:
            return p
    pkg = next(v for k, v in PACKAGES.items() if name.startswith(k))
    pytest.fail(f"required tool {name!r} is not installed: apt-get install {pkg} "
                "(scripts/deps/pe.apt)")


def sh(*cmd, cwd):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd)
    assert p.returncode == 0 and p.stderr == "", f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stderr}"


def build(arch: str, d: Path, src: str, name: str = None, defs: dict[str, str] | None = None,
          dynamicbase=True) -> Path:
    """Assemble src and link it with import libraries made from defs (file stem ->
    .def text; default kernel32 only) into d/NAME.exe."""
    name = name or arch
    d.mkdir(parents=True, exist_ok=True)
    if defs is None:
        defs = {"k32": KERNEL32_386 if arch == "x86" else KERNEL32}
    s = d / f"{name}.s"
    s.write_text(src)
    exe = d / f"{name}.exe"
    libs = []
    for stem, text in defs.items():
        (d / f"{stem}.def").write_text(text)
        if arch == "amd64":
            lib = d / f"lib{stem}.a"
            sh(need("x86_64-w64-mingw32-dlltool"), "-m", "i386:x86-64", "-d", f"{stem}.def", "-l", lib, cwd=d)
        elif arch == "x86":
            lib = d / f"lib{stem}-386.a"
            sh(need("i686-w64-mingw32-dlltool"), "-m", "i386", "-k", "-d", f"{stem}.def", "-l", lib, cwd=d)
        else:
            lib = d / f"{stem}-arm64.lib"
            sh(need("llvm-dlltool"), "-m", "arm64", "-d", f"{stem}.def", "-l", lib, cwd=d)
        libs.append(lib)
    if arch in ("amd64", "x86"):
        prefix = "x86_64-w64-mingw32-" if arch == "amd64" else "i686-w64-mingw32-"
        o = d / f"{name}.o"
        sh(need(prefix + "as"), "-o", o, s, cwd=d)
        sh(need(prefix + "ld"), "--no-insert-timestamp",
           "--dynamicbase" if dynamicbase else "--disable-dynamicbase",
           "-e", "start" if arch == "amd64" else "_start", "--subsystem", "console",
           "-o", exe, o, *libs, cwd=d)
    else:
        o = d / f"{name}.obj"
        sh(need("llvm-mc"), "-triple", "aarch64-windows", "-filetype=obj", "-o", o, s, cwd=d)
        sh(need("lld-link"), "/Brepro", "/machine:arm64", "/entry:start", "/subsystem:console",
           "/nodefaultlib", "/dynamicbase" if dynamicbase else "/dynamicbase:no",
           f"/out:{exe}", o, *libs, cwd=d)
    return exe


SOURCES = {"amd64": AMD64.format(frame=56, tail=AMD64_EXIT), "x86": X86, "arm64": ARM64}


@pytest.fixture(scope="module")
def hello(tmp_path_factory):
    """arch -> the hello executable (built once per module)."""
    d = tmp_path_factory.mktemp("pe")
    return {arch: build(arch, d / arch, SOURCES[arch]) for arch in ARCHS}


def patched(tmp_path, src: Path, edits) -> Path:
    """A copy of src with edits: [(file offset, struct format, value)]."""
    data = bytearray(src.read_bytes())
    for off, fmt, value in edits:
        struct.pack_into(fmt, data, off, value)
    out = tmp_path / ("patched-" + src.name)
    out.write_bytes(bytes(data))
    return out


def offsets(data: bytes) -> dict:
    """File offsets of header fields (read directly, not through pe.py)."""
    (lfanew,) = struct.unpack_from("<I", data, 0x3C)
    opt = lfanew + 24
    (opt_size,) = struct.unpack_from("<H", data, lfanew + 20)
    pe32 = struct.unpack_from("<H", data, opt)[0] == 0x10B
    return dict(machine=lfanew + 4, characteristics=lfanew + 22, magic=opt, entry=opt + 16,
                size_of_image=opt + 56, dll_characteristics=opt + 70,
                dirs=opt + (96 if pe32 else 112), sections=opt + opt_size)


# ---- running the reference programs ------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_hello(hello, arch):
    r = pe.run(hello[arch])
    assert (r.stdout, r.stderr, r.status, r.exit_message) == (MSG, b"", 3, None)
    h = r.header
    assert h["machine"] == arch and h["base"] == h["image_base"] == PREFERRED[arch]
    assert h["magic"] == (0x10B if arch == "x86" else 0x20B)
    assert h["entry_rva"] == 0x1000 and h["section_alignment"] == 0x1000 and h["file_alignment"] == 0x200
    assert h["subsystem"] == 3  # IMAGE_SUBSYSTEM_WINDOWS_CUI
    assert h["dll_characteristics"] & 0x40
    assert h["imports"] == {"kernel32.dll": ["ExitProcess", "GetStdHandle", "WriteFile"]}
    assert h["has_reloc"] and h["reloc_count"] >= 1
    assert h["size_of_image"] == h["sections"][-1]["rva"] + 0x1000
    assert any(s["name"] == ".reloc" for s in h["sections"])


@pytest.mark.parametrize("arch", ARCHS)
def test_hello_rebased(hello, arch):
    r = pe.run(hello[arch], base=OTHER_BASE[arch])
    assert (r.stdout, r.stderr, r.status) == (MSG, b"", 3)
    assert r.header["base"] == OTHER_BASE[arch] and r.header["image_base"] == PREFERRED[arch]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("where", ["preferred", "other"])
def test_relocation_applied(hello, arch, where):
    """msgp (.data+16) holds msg's address (.data+0) at whatever base the image is."""
    base = PREFERRED[arch] if where == "preferred" else OTHER_BASE[arch]
    m, entry, sp, h = pe.load(hello[arch].read_bytes(), base)
    data = next(s for s in h["sections"] if s["name"] == ".data")
    assert m.read_word(base + data["rva"] + 16) == base + data["rva"]
    assert entry == base + h["entry_rva"]
    # each IAT slot points at a stub outside the image, and the stubs differ
    slots = set()
    iat_rva, iat_size = h["data_directories"]["iat"]
    for i in range(3):
        v = m.read_word(base + iat_rva + m.word * i)
        assert not base <= v < base + h["size_of_image"]
        slots.add(v)
    assert len(slots) == 3 and m.read_word(base + iat_rva + 3 * m.word) == 0


@pytest.mark.parametrize("arch", ARCHS)
def test_permissions(hello, arch):
    """.text is r-x, .data rw-, the headers r--: a write to .text faults."""
    from unicorn import UC_PROT_EXEC, UC_PROT_READ, UC_PROT_WRITE
    m, entry, sp, h = pe.load(hello[arch].read_bytes())
    base = h["base"]
    prot = {name: p for s, e, p, name in m.regions}
    assert prot["headers"] == UC_PROT_READ
    assert prot["section .text"] == UC_PROT_READ | UC_PROT_EXEC
    assert prot["section .data"] == UC_PROT_READ | UC_PROT_WRITE
    text = next(r for r in m.regions if r[3] == "section .text")
    assert text[0] == base + 0x1000 and text[1] == base + 0x2000


def test_initial_stack_amd64(hello):
    """rsp is 8 mod 16 at the entry, as after a call: a return address on top."""
    m, entry, sp, h = pe.load(hello["amd64"].read_bytes())
    assert sp % 16 == 8
    assert m.read_word(sp) == pe.STUB_ADDR["amd64"]


@pytest.mark.parametrize("frame,ok", [(56, True), (48, False)])
def test_amd64_stack_alignment_checked(tmp_path, frame, ok):
    """A call with rsp not 16-byte aligned is an error (real kernel32 code may use
    aligned SSE stores in its frame; wine happens not to care)."""
    exe = build("amd64", tmp_path, AMD64.format(frame=frame, tail=AMD64_EXIT))
    if ok:
        assert pe.run(exe).status == 3
    else:
        with pytest.raises(EmuError, match=r"GetStdHandle called with rsp 0x[0-9a-f]+ not 8 mod 16"):
            pe.run(exe)


def test_return_from_entry(tmp_path):
    """Returning from the entry point exits with the returned value, in the emulator
    and in wine (Windows: the thread start routine calls ExitThread with it)."""
    exe = build("amd64", tmp_path, AMD64.format(frame=56, tail=AMD64_RETURN))
    r = pe.run(exe)
    assert (r.stdout, r.status, r.exit_message) == (MSG, 5, "returned from the entry point")
    p = run_wine(exe)
    assert (p.stdout, p.returncode) == (MSG, 5), p.stderr


def test_dll_name_case_insensitive(tmp_path):
    exe = build("amd64", tmp_path, SOURCES["amd64"], defs={"k32": KERNEL32.replace("kernel32.dll",
                                                                                   "KERNEL32.DLL")})
    r = pe.run(exe)
    assert r.status == 3 and r.header["imports"] == {"KERNEL32.DLL": ["ExitProcess", "GetStdHandle",
                                                                      "WriteFile"]}


# ---- the oracles agree -------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_oracles_agree(hello, arch):
    path = hello[arch]
    h = pe.parse(path.read_bytes())
    assert coff_machine(path) == arch
    s = pefile_summary(path)
    assert s["warnings"] == []
    assert (s["entry_rva"], s["image_base"], s["subsystem"], s["dll_characteristics"], s["magic"]) == \
        (h["entry_rva"], h["image_base"], h["subsystem"], h["dll_characteristics"], h["magic"])
    assert s["machine"] == h["machine_id"]
    assert s["sections"] == [(x["name"], x["rva"], x["vsize"], x["raw_size"], x["characteristics"])
                             for x in h["sections"]]
    assert s["imports"] == h["imports"]
    assert s["base_relocs"] == h["reloc_count"]

    ro = llvm_readobj(path)
    assert f"ImageBase: {h['image_base']:#x}".lower() in ro.lower()
    assert f"AddressOfEntryPoint: {h['entry_rva']:#x}".lower() in ro.lower()
    mach = {"amd64": "AMD64 (0x8664)", "x86": "I386 (0x14C)", "arm64": "ARM64 (0xAA64)"}[arch]
    assert f"IMAGE_FILE_MACHINE_{mach}" in ro
    for name in h["imports"]["kernel32.dll"]:
        assert f"Symbol: {name} " in ro
    assert ("Type: DIR64" if arch != "x86" else "Type: HIGHLOW") in ro

    od = mingw_objdump(path)
    assert "DLL Name: kernel32.dll" in od
    assert ("(PE32+)" if arch != "x86" else "(PE32)") in od


@pytest.mark.parametrize("arch", ARCHS)
def test_oracles_refuse_truncated(hello, tmp_path, arch):
    data = hello[arch].read_bytes()
    bad = tmp_path / "trunc.exe"
    bad.write_bytes(data[:0x500])  # headers and part of .text
    with pytest.raises(AssertionError):
        llvm_readobj(bad)
    with pytest.raises(AssertionError):
        mingw_objdump(bad)  # GNU objdump exits 0 here: its stderr counts
    assert pefile_summary(bad)["warnings"]


def test_wine_runs_hello(hello):
    p = run_wine(hello["amd64"])
    assert (p.stdout, p.stderr, p.returncode) == (MSG, b"", 3)


def test_wine_refuses_truncated(hello, tmp_path):
    bad = tmp_path / "trunc.exe"
    bad.write_bytes(hello["amd64"].read_bytes()[:0x500])
    p = run_wine(bad)
    assert p.returncode == 1 and b"Bad EXE format" in p.stdout, p


# ---- files the loader refuses ------------------------------------------------------

@pytest.mark.parametrize("dll,func", [("kernel32.dll", "Sleep"), ("user32.dll", "MessageBoxA")])
def test_unknown_import(tmp_path, dll, func):
    src = SOURCES["amd64"].replace("fail:", f"fail:\n\tcall\t*__imp_{func}(%rip)")
    defs = {"k32": KERNEL32}
    if dll == "kernel32.dll":
        defs["k32"] += func + "\n"
    else:
        defs["u32"] = f"LIBRARY {dll}\nEXPORTS\n{func}\n"
    exe = build("amd64", tmp_path, src, defs=defs)
    assert func in pe.parse(exe.read_bytes())["imports"][dll]
    with pytest.raises(LoadError, match=rf"unsupported import {dll}!{func}"):
        pe.run(exe)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("cut,what", [
    (0x30, r"truncated DOS header: 48 bytes"),
    (0x7A, r"truncated: e_lfanew 0x(78|80) \+ PE signature"),
    (0x100, r"truncated: the (optional header|section table)"),
    (0x500, r"truncated: section 1 '.text': raw data \[0x400, 0x600\)"),
    (-1, r"truncated: section \d '.reloc'"),
])
def test_truncated(hello, tmp_path, arch, cut, what):
    data = hello[arch].read_bytes()
    if cut == -1:  # up to the last section's raw data, less one byte
        reloc = next(s for s in pe.parse(data)["sections"] if s["name"] == ".reloc")
        cut = reloc["raw_ptr"] + reloc["raw_size"] - 1
    bad = tmp_path / "t.exe"
    bad.write_bytes(data[:cut])
    with pytest.raises(LoadError, match=what):
        pe.run(bad)


@pytest.mark.parametrize("arch", ARCHS)
def test_bad_machine(hello, tmp_path, arch):
    o = offsets(hello[arch].read_bytes())
    bad = patched(tmp_path, hello[arch], [(o["machine"], "<H", 0x1C4)])  # ARMNT
    with pytest.raises(LoadError, match=r"unknown machine 0x1c4"):
        pe.run(bad)


def test_machine_magic_mismatch(hello, tmp_path):
    o = offsets(hello["amd64"].read_bytes())
    bad = patched(tmp_path, hello["amd64"], [(o["machine"], "<H", 0x14C)])
    with pytest.raises(LoadError, match=r"magic 0x20b does not fit machine 0x14c"):
        pe.run(bad)


def test_bad_dos_and_pe_magic(hello, tmp_path):
    bad = patched(tmp_path, hello["x86"], [(0, "<H", 0x457F)])
    with pytest.raises(LoadError, match="bad DOS magic"):
        pe.run(bad)
    o = offsets(hello["x86"].read_bytes())
    bad = patched(tmp_path, hello["x86"], [(o["machine"] - 4, "<I", 0x454C)])
    with pytest.raises(LoadError, match="bad PE signature"):
        pe.run(bad)


@pytest.mark.parametrize("arch", ARCHS)
def test_rebase_without_dynamic_base(hello, tmp_path, arch):
    """Cleared DYNAMIC_BASE: loads at ImageBase, refused elsewhere."""
    data = hello[arch].read_bytes()
    o = offsets(data)
    (dc,) = struct.unpack_from("<H", data, o["dll_characteristics"])
    bad = patched(tmp_path, hello[arch], [(o["dll_characteristics"], "<H", dc & ~0x40)])
    assert pe.run(bad).status == 3
    with pytest.raises(LoadError, match=r"lacks DYNAMIC_BASE \(0x40\)"):
        pe.run(bad, base=OTHER_BASE[arch])


@pytest.mark.parametrize("arch", ["amd64", "x86"])
def test_rebase_linked_without_dynamic_base(tmp_path, arch):
    exe = build(arch, tmp_path, SOURCES[arch], dynamicbase=False)
    assert not pe.parse(exe.read_bytes())["dll_characteristics"] & 0x40
    assert pe.run(exe).status == 3
    with pytest.raises(LoadError, match="lacks DYNAMIC_BASE"):
        pe.run(exe, base=OTHER_BASE[arch])


def test_rebase_relocs_stripped(hello, tmp_path):
    data = hello["amd64"].read_bytes()
    o = offsets(data)
    (c,) = struct.unpack_from("<H", data, o["characteristics"])
    bad = patched(tmp_path, hello["amd64"], [(o["characteristics"], "<H", c | 1)])
    assert pe.run(bad).status == 3
    with pytest.raises(LoadError, match="IMAGE_FILE_RELOCS_STRIPPED"):
        pe.run(bad, base=OTHER_BASE["amd64"])


def test_base_not_64k_aligned(hello):
    with pytest.raises(LoadError, match="not a multiple of 64 KiB"):
        pe.run(hello["amd64"], base=0x150001000)


@pytest.mark.parametrize("arch", ARCHS)
def test_unknown_reloc_type(hello, tmp_path, arch):
    data = hello[arch].read_bytes()
    h = pe.parse(data)
    reloc = next(s for s in h["sections"] if s["name"] == ".reloc")
    off = reloc["raw_ptr"] + 8  # the first entry of the first block
    (e,) = struct.unpack_from("<H", data, off)
    bad = patched(tmp_path, hello[arch], [(off, "<H", (1 << 12) | (e & 0xFFF))])  # HIGH
    with pytest.raises(LoadError, match=r"type 1 \(HIGH\) is not supported"):
        pe.run(bad)


def test_import_by_ordinal(hello, tmp_path):
    data = hello["amd64"].read_bytes()
    h = pe.parse(data)
    idata = next(s for s in h["sections"] if s["name"] == ".idata")
    imp_rva = h["data_directories"]["import"][0]
    (ilt,) = struct.unpack_from("<I", data, idata["raw_ptr"] + imp_rva - idata["rva"])
    bad = patched(tmp_path, hello["amd64"], [(idata["raw_ptr"] + ilt - idata["rva"], "<Q", (1 << 63) | 7)])
    with pytest.raises(LoadError, match="kernel32.dll: import by ordinal 7 is not supported"):
        pe.run(bad)


def test_size_of_image_wrong(hello, tmp_path):
    data = hello["x86"].read_bytes()
    o = offsets(data)
    (size,) = struct.unpack_from("<I", data, o["size_of_image"])
    bad = patched(tmp_path, hello["x86"], [(o["size_of_image"], "<I", size + 0x1000)])
    with pytest.raises(LoadError, match=rf"SizeOfImage {size + 0x1000:#x} is not .* {size:#x}"):
        pe.run(bad)


@pytest.mark.parametrize("rva,what", [(0x2000, r"in section '.data', which is not executable"),
                                      (0x9000, r"is not inside any section")])
def test_entry_outside_text(hello, tmp_path, rva, what):
    o = offsets(hello["amd64"].read_bytes())
    bad = patched(tmp_path, hello["amd64"], [(o["entry"], "<I", rva)])
    with pytest.raises(LoadError, match=what):
        pe.run(bad)


def test_section_misaligned(hello, tmp_path):
    o = offsets(hello["amd64"].read_bytes())
    bad = patched(tmp_path, hello["amd64"], [(o["sections"] + 40 + 12, "<I", 0x2200)])  # .data's RVA
    with pytest.raises(LoadError, match=r"section 2 '.data': RVA 0x2200 is not aligned"):
        pe.run(bad)


def test_size_of_headers_too_small(hello, tmp_path):
    o = offsets(hello["amd64"].read_bytes())
    bad = patched(tmp_path, hello["amd64"], [(o["magic"] + 60, "<I", 0x200)])
    with pytest.raises(LoadError, match=r"SizeOfHeaders 0x200 does not cover"):
        pe.run(bad)


def test_syscall_refused(tmp_path):
    """A Windows program makes no system calls: SYSCALL is an error, not a stub call."""
    src = SOURCES["amd64"].replace("\tsubq\t$56, %rsp", "\tsyscall\n\tsubq\t$56, %rsp")
    exe = build("amd64", tmp_path, src)
    with pytest.raises(EmuError, match="SYSCALL outside the kernel32 stubs"):
        pe.run(exe)


# ---- core.Machine's arm64 (unicorn's ARM64 mode) -----------------------------------

def _arm64(words):
    from emu import Machine
    from emu.core import PROT_RX
    m = Machine("arm64")
    m.map(0x10000, struct.pack(f"<{len(words)}I", *words), PROT_RX, name="text")
    return m, m.setup_stack(0x80000, 0x10000)


def test_arm64_svc_trap():
    """SVC reaches on_trap as interrupt 2 with the pc after it, like arm's SWI."""
    # mov x0, #5; svc #0; mov x0, #7; svc #0
    m, sp = _arm64([0xD28000A0, 0xD4000001, 0xD28000E0, 0xD4000001])
    seen = []

    def trap(mm, t):
        seen.append((t.kind, t.number, mm.pc, mm.reg("x0")))
        if len(seen) == 2:
            mm.exit(mm.reg("x0"))
    m.on_trap = trap
    r = m.run(0x10000, sp)
    assert r.status == 7 and seen == [("interrupt", 2, 0x10008, 5), ("interrupt", 2, 0x10010, 7)]


@pytest.mark.parametrize("words,what", [
    ([0x00000000], r"invalid instruction"),  # udf #0
    ([0xD4200000], r"breakpoint"),  # brk #0
    ([0xD2A00060, 0xF9400000], r"read of unmapped memory at address 0x30000, size 8"),  # ldr x0, [0x30000]
    ([0xD2A00040, 0xD61F0000], r"jump to unmapped memory \(instruction fetch\) at address 0x20000"),
    ([0xD4000001], r"system call \(interrupt 2\) with no OS layer"),
])
def test_arm64_faults(words, what):
    m, sp = _arm64(words)
    with pytest.raises(EmuError, match=what):
        m.run(0x10000, sp, max_insns=1000)
