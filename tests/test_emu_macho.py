"""The Mach-O runner (tests/emu/macho.py) and the Mach-O oracles (tests/machodump.py,
tests/machocheck.py, tests/codesign.py) on their own, without minild: programs built
by LLVM must print hello, world and exit with their status in the emulator, at the
linked addresses (slide 0) and at the default non-zero slide (so the rebases are
applied), and be read by Go's debug/macho and LLVM's llvm-objdump/llvm-readobj; the
arm64 ad-hoc signature ld64.lld writes must verify; broken files must be refused.

The reference files are built as follows (DIR: a temporary directory holding
libSystem.tbd, LIBSYSTEM_TBD below: a text stub for /usr/lib/libSystem.B.dylib
exporting _write, _exit, _puts and dyld_stub_binder, which ld64.lld needs for lazy
binding):

  llvm-mc -triple x86_64-apple-macos11 -filetype=obj -o P.o P.s     (arm64-apple-macos11)
  ld64.lld-14 -arch x86_64 -platform_version macos 11.0 11.0 -o P P.o -L DIR -lSystem
                                                                      (-arch arm64)

ld64.lld-14 writes LC_DYLD_INFO_ONLY (it has no -fixup_chains), calls _write through
__stubs and __la_symbol_ptr (lazy binds, with __stub_helper and a non-lazy bind of
dyld_stub_binder in __DATA_CONST,__got), takes `_exit@GOTPCREL` / `@GOTPAGE` through
__got (a non-lazy bind), signs arm64 ad hoc (and amd64 with -adhoc_codesign).

Programs (each for amd64 and arm64):
  calls    _write(1, msg, 13) through a stub, checks it returned 13, then _exit(3)
           through a __got pointer; msg is reached through `msgp: .quad msg` in __data
           (a rebase that matters); exits 99 if anything is off
  ret      _write(2, msg, 13), then returns 4 from main (dyld's start: exit(main()))
  raw      the BSD system calls write (4) and exit(5) directly (SYSCALL rax=0x2000000|n,
           SVC #0x80 x16=n), with the carry set before each so that a kernel that
           fails to clear it is noticed; exits 99 on a failed check

Tools missing is a failure naming the Debian package, never a skip.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

import codesign
from emu import EmuError, LoadError
from emu import macho
from machocheck import binds, lazy_binds, llvm_objdump_macho, llvm_readobj_macho, rebases
from machodump import machodump

MSG = b"hello, world\n"
ARCHS = ["amd64", "arm64"]
TRIPLE = {"amd64": "x86_64-apple-macos11", "arm64": "arm64-apple-macos11"}
LDARCH = {"amd64": "x86_64", "arm64": "arm64"}
PAGE = {"amd64": 0x1000, "arm64": 0x4000}

LIBSYSTEM_TBD = """--- !tapi-tbd
tbd-version:     4
targets:         [ x86_64-macos, arm64-macos ]
install-name:    '/usr/lib/libSystem.B.dylib'
current-version: 1311
exports:
  - targets:     [ x86_64-macos, arm64-macos ]
    symbols:     [ _write, _exit, _puts, dyld_stub_binder ]
...
"""
LIBFOO_TBD = LIBSYSTEM_TBD.replace("/usr/lib/libSystem.B.dylib", "/usr/lib/libfoo.dylib").replace(
    "_write, _exit, _puts, dyld_stub_binder", "_foo")

DATA = """
	.section __DATA,__data
msg:	.ascii	"hello, world\\n"
	.p2align 3
msgp:	.quad	msg
"""

SRC = {
    ("amd64", "calls"): """
	.section __TEXT,__text
	.globl	_main
	.p2align 4
_main:
	pushq	%rbp
	movq	%rsp, %rbp
	movl	$1, %edi
	movq	msgp(%rip), %rsi
	movl	$13, %edx
	callq	_write
	cmpq	$13, %rax
	jne	1f
	movl	$3, %edi
	movq	_exit@GOTPCREL(%rip), %rax
	callq	*%rax
1:	movl	$99, %edi
	callq	_exit
""",
    ("arm64", "calls"): """
	.section __TEXT,__text
	.globl	_main
	.p2align 2
_main:
	stp	x29, x30, [sp, #-16]!
	mov	x29, sp
	mov	x0, #1
	adrp	x8, msgp@PAGE
	ldr	x1, [x8, msgp@PAGEOFF]
	mov	x2, #13
	bl	_write
	cmp	x0, #13
	b.ne	1f
	mov	x0, #3
	adrp	x8, _exit@GOTPAGE
	ldr	x8, [x8, _exit@GOTPAGEOFF]
	blr	x8
1:	mov	x0, #99
	bl	_exit
""",
    ("amd64", "ret"): """
	.section __TEXT,__text
	.globl	_main
	.p2align 4
_main:
	pushq	%rbp
	movq	%rsp, %rbp
	movl	$2, %edi
	movq	msgp(%rip), %rsi
	movl	$13, %edx
	callq	_{func}
	movl	$4, %eax
	popq	%rbp
	retq
""",
    ("arm64", "ret"): """
	.section __TEXT,__text
	.globl	_main
	.p2align 2
_main:
	stp	x29, x30, [sp, #-16]!
	mov	x29, sp
	mov	x0, #2
	adrp	x8, msgp@PAGE
	ldr	x1, [x8, msgp@PAGEOFF]
	mov	x2, #13
	bl	_{func}
	mov	x0, #4
	ldp	x29, x30, [sp], #16
	ret
""",
    ("amd64", "raw"): """
	.section __TEXT,__text
	.globl	_main
	.p2align 4
_main:
	movl	$0x2000000 + {nr}, %eax
	movl	$1, %edi
	movq	msgp(%rip), %rsi
	movl	$13, %edx
	stc
	syscall
	jc	1f
	cmpq	$13, %rax
	jne	1f
	movl	$0x2000001, %eax
	movl	$5, %edi
	syscall
1:	movl	$0x2000001, %eax
	movl	$99, %edi
	syscall
""",
    ("arm64", "raw"): """
	.section __TEXT,__text
	.globl	_main
	.p2align 2
_main:
	mov	x16, #{nr}
	mov	x0, #1
	adrp	x8, msgp@PAGE
	ldr	x1, [x8, msgp@PAGEOFF]
	mov	x2, #13
	cmp	x16, x16
	svc	#{imm}
	b.cs	1f
	cmp	x0, #13
	b.ne	1f
	mov	x16, #1
	mov	x0, #5
	svc	#0x80
1:	mov	x16, #1
	mov	x0, #99
	svc	#0x80
""",
}
DEFAULTS = dict(func="write", nr=4, imm="0x80")


def _tool(names, package):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    pytest.fail(f"none of {', '.join(names)} is installed (Debian package {package})", pytrace=False)


def _sh(cmd):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return p


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """build(arch, prog, name=None, libs=("System",), extra=(), **subst) -> Path of the linked
    executable (cached per arguments)."""
    d = tmp_path_factory.mktemp("macho")
    (d / "libSystem.tbd").write_text(LIBSYSTEM_TBD)
    (d / "libfoo.tbd").write_text(LIBFOO_TBD)
    mc = _tool(["llvm-mc", "llvm-mc-14"], "llvm")
    ld = _tool(["ld64.lld-14", "ld64.lld"], "lld")
    cache, names = {}, {}

    def _build(arch, prog, name=None, libs=("System",), extra=(), source=None, **subst):
        key = (arch, prog, name, libs, extra, source, tuple(sorted(subst.items())))
        if key in cache:
            return cache[key]
        name = name or "-".join([prog, arch, *(f"{k}{v}" for k, v in sorted(subst.items()))])
        assert names.setdefault(name, key) == key, f"output name {name} reused for another build"
        src = source if source is not None else SRC[(arch, prog)].format(**{**DEFAULTS, **subst}) + DATA
        (d / f"{name}.s").write_text(src)
        _sh([mc, "-triple", TRIPLE[arch], "-filetype=obj", "-o", d / f"{name}.o", d / f"{name}.s"])
        _sh([ld, "-arch", LDARCH[arch], "-platform_version", "macos", "11.0", "11.0", *extra,
             "-o", d / name, d / f"{name}.o", "-L", d, *[f"-l{lib}" for lib in libs]])
        cache[key] = d / name
        return d / name

    return _build


def _patched(path, tmp_path, fn, name="patched"):
    data = bytearray(Path(path).read_bytes())
    fn(data)
    out = tmp_path / name
    out.write_bytes(bytes(data))
    return out


def _cmd_offset(data, name):
    """File offset of the first load command called `name`."""
    ncmds = struct.unpack_from("<I", data, 16)[0]
    off = 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, off)
        if macho.LC_NAMES.get(cmd) == name:
            return off
        off += size
    raise AssertionError(f"no {name}")


# ---- running ------------------------------------------------------------------------------


@pytest.mark.parametrize("slide", [0, None], ids=["slide0", "default-slide"])
@pytest.mark.parametrize("arch", ARCHS)
def test_calls(build, arch, slide):
    r = macho.run(build(arch, "calls"), slide=slide)
    assert (r.stdout, r.stderr, r.status, r.exit_message) == (MSG, b"", 3, None)
    h = r.header
    assert h["slide"] == (macho.DEFAULT_SLIDE[arch] if slide is None else 0)
    assert h["slide"] % PAGE[arch] == 0
    kinds = sorted((b["kind"], b["symbol"], b["section"]) for b in h["binds"])
    assert kinds == [("bind", "_exit", "__got"), ("bind", "dyld_stub_binder", "__got"),
                     ("lazy", "_exit", "__la_symbol_ptr"), ("lazy", "_write", "__la_symbol_ptr")]
    assert all(b["dylib"] == macho.LIBSYSTEM and b["ordinal"] == 1 for b in h["binds"])
    assert h["rebases"] == 3  # two lazy pointers (to the stub helpers) and msgp


def test_default_slide_is_nonzero():
    assert all(macho.DEFAULT_SLIDE[a] and macho.DEFAULT_SLIDE[a] % 0x4000 == 0 for a in ARCHS)


@pytest.mark.parametrize("slide", [0, None], ids=["slide0", "default-slide"])
@pytest.mark.parametrize("arch", ARCHS)
def test_return_from_main(build, arch, slide):
    r = macho.run(build(arch, "ret"), slide=slide)
    assert (r.stdout, r.stderr, r.status, r.exit_message) == (b"", MSG, 4, "returned from main")


@pytest.mark.parametrize("slide", [0, None], ids=["slide0", "default-slide"])
@pytest.mark.parametrize("arch", ARCHS)
def test_raw_syscalls(build, arch, slide):
    r = macho.run(build(arch, "raw"), slide=slide)
    assert (r.stdout, r.stderr, r.status, r.exit_message) == (MSG, b"", 5, None)
    assert r.header["binds"] == [] and r.header["rebases"] == 1


@pytest.mark.parametrize("arch", ARCHS)
def test_another_slide(build, arch):
    r = macho.run(build(arch, "calls"), slide=0x7F0000000)
    assert (r.stdout, r.status) == (MSG, 3)


@pytest.mark.parametrize("arch", ARCHS)
def test_header(build, arch):
    """What ld64.lld-14 writes, as the loader parses it (the facts the README records)."""
    h = macho.parse(build(arch, "calls").read_bytes())
    assert h["cputype"] == {"amd64": 0x01000007, "arm64": 0x0100000C}[arch]
    assert h["flag_names"] == ["MH_NOUNDEFS", "MH_DYLDLINK", "MH_TWOLEVEL", "MH_PIE"]
    assert h["flags"] == 0x200085
    want = ["LC_SEGMENT_64"] * 5 + ["LC_DYLD_INFO_ONLY", "LC_SYMTAB", "LC_DYSYMTAB", "LC_LOAD_DYLINKER",
                                     "LC_UUID", "LC_BUILD_VERSION", "LC_MAIN", "LC_LOAD_DYLIB",
                                     "LC_FUNCTION_STARTS", "LC_DATA_IN_CODE"]
    if arch == "arm64":
        want.append("LC_CODE_SIGNATURE")
    assert h["load_commands"] == want
    segs = [(s["name"], s["prot"], [x["name"] for x in s["sections"]]) for s in h["segments"]]
    assert segs == [("__PAGEZERO", "---", []), ("__TEXT", "r-x", ["__text", "__stubs", "__stub_helper"]),
                    ("__DATA_CONST", "rw-", ["__got"]), ("__DATA", "rw-", ["__la_symbol_ptr", "__data"]),
                    ("__LINKEDIT", "r--", [])]
    assert h["segments"][0]["vmsize"] == 1 << 32
    assert h["segments"][1]["vmaddr"] == 0x100000000
    assert h["segments"][2]["vmaddr"] == 0x100000000 + PAGE[arch]
    assert h["dylibs"] == [macho.LIBSYSTEM] and h["dylinker"] == "/usr/lib/dyld"
    assert h["has_code_signature"] == (arch == "arm64")
    assert set(h["exports"]) == {"_main", "__mh_execute_header"}
    assert h["exports"]["_main"][1] == h["entryoff"]
    assert h["function_starts"] == [0x100000000 + h["entryoff"]]


# ---- oracles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prog", ["calls", "ret", "raw"])
@pytest.mark.parametrize("arch", ARCHS)
def test_oracles_agree(build, arch, prog):
    path = build(arch, prog)
    h = macho.parse(path.read_bytes())
    d = machodump(path)
    assert d["cpu"] == h["cputype"] and d["type"] == 2 and d["flags"] == h["flags"]
    assert [x["name"] for x in d["loads"]] == h["load_commands"]
    assert [(s["name"], s["addr"], s["memsz"], s["offset"], s["filesz"], s["maxprot"], s["prot"])
            for s in d["segments"]] == [
        (s["name"], s["vmaddr"], s["vmsize"], s["fileoff"], s["filesize"], s["maxprot"], s["initprot"])
        for s in h["segments"]]
    assert [(s["seg"], s["name"], s["addr"], s["size"]) for s in d["sections"]] == [
        (x["segname"], x["name"], x["addr"], x["size"]) for s in h["segments"] for x in s["sections"]]
    assert d["dylibs"] == h["dylibs"]
    ds = h["dysymtab"]
    undef = [s["name"] for s in h["symbols"][ds["iundefsym"]:ds["iundefsym"] + ds["nundefsym"]]]
    assert d["imported"] == undef  # ld64.lld lists dyld_stub_binder even when nothing binds it
    assert {b["symbol"] for b in h["binds"]} <= set(undef)
    assert [s["name"] for s in d["symbols"]] == [s["name"] for s in h["symbols"]]

    llvm_readobj_macho(path)
    out = llvm_objdump_macho(path)
    assert "LC_DYLD_INFO_ONLY" in out and "LC_MAIN" in out
    assert [(r[0], r[1], r[2]) for r in rebases(path)] == [
        (next(s["name"] for s in h["segments"] if s["vmaddr"] <= a < s["vmaddr"] + s["vmsize"]),
         next(x["name"] for s in h["segments"] for x in s["sections"] if x["addr"] <= a < x["addr"] + x["size"]),
         a) for a in h["rebase_addresses"]]
    assert [(b[0], b[1], b[2], b[6]) for b in binds(path)] == [
        (b["segment"], b["section"], b["address"], b["symbol"]) for b in h["binds"] if b["kind"] == "bind"]
    assert [(b[0], b[1], b[2], b[4]) for b in lazy_binds(path)] == [
        (b["segment"], b["section"], b["address"], b["symbol"]) for b in h["binds"] if b["kind"] == "lazy"]


@pytest.mark.parametrize("arch", ARCHS)
def test_codesign(build, arch, tmp_path):
    extra = ("-adhoc_codesign",) if arch == "amd64" else ()
    path = build(arch, "calls", name=f"signed-{arch}", extra=extra)
    v = codesign.verify(path)
    assert v["flags"] & 0x20002 == 0x20002 and v["hash_type"] == 2 and v["page_size"] == 12
    assert v["identifier"] == path.name  # ld64.lld signs with the output's file name
    assert v["code_limit"] == macho.parse(path.read_bytes())["code_signature"]["dataoff"]
    assert v["exec_seg_flags"] == 1 and v["exec_seg_base"] == 0
    r = macho.run(path)
    assert (r.stdout, r.status) == (MSG, 3)
    # one byte of code changed: the page hash must no longer match
    text = macho.parse(path.read_bytes())["segments"][1]["sections"][0]
    bad = _patched(path, tmp_path, lambda d: d.__setitem__(text["offset"], d[text["offset"]] ^ 1))
    with pytest.raises(AssertionError, match="code page hashes differ for pages \\[0\\]"):
        codesign.verify(bad)
    # a file that is not signed at all
    if arch == "amd64":
        with pytest.raises(AssertionError, match="0 LC_CODE_SIGNATURE"):
            codesign.verify(build(arch, "calls"))


# ---- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_truncated(build, arch, tmp_path):
    path = build(arch, "calls")
    data = path.read_bytes()
    for n, match in [(20, "truncated header"), (200, "sizeofcmds"), (len(data) - 64, "truncated")]:
        short = tmp_path / f"short{n}"
        short.write_bytes(data[:n])
        with pytest.raises(LoadError, match=match):
            macho.run(short)
        with pytest.raises(AssertionError):
            machodump(short)
        with pytest.raises(AssertionError):
            llvm_objdump_macho(short)
        with pytest.raises(AssertionError):
            llvm_readobj_macho(short)


@pytest.mark.parametrize("arch", ARCHS)
def test_bad_load_command_size(build, arch, tmp_path):
    path = build(arch, "calls")

    def not_multiple_of_8(d):
        o = _cmd_offset(d, "LC_DYLD_INFO_ONLY")
        struct.pack_into("<I", d, o + 4, 44)

    def past_sizeofcmds(d):
        o = _cmd_offset(d, "LC_DATA_IN_CODE" if arch == "amd64" else "LC_CODE_SIGNATURE")
        struct.pack_into("<I", d, o + 4, 0x1000)

    def sizeofcmds_too_large(d):
        struct.pack_into("<I", d, 20, len(d))

    def wrong_segment_size(d):
        o = _cmd_offset(d, "LC_SEGMENT_64")
        struct.pack_into("<I", d, o + 64, 1)  # __PAGEZERO: nsects 1, but cmdsize 72

    for fn, match in [(not_multiple_of_8, "cmdsize 44 is not a multiple of 8"),
                      (past_sizeofcmds, "runs past sizeofcmds"),
                      (sizeofcmds_too_large, "sizeofcmds"),
                      (wrong_segment_size, "does not fit nsects 1")]:
        bad = _patched(path, tmp_path, fn, fn.__name__)
        with pytest.raises(LoadError, match=match):
            macho.run(bad)
        with pytest.raises(AssertionError):
            llvm_objdump_macho(bad)


@pytest.mark.parametrize("arch", ARCHS)
def test_segment_past_eof(build, arch, tmp_path):
    path = build(arch, "calls")

    def fn(d):
        o = _cmd_offset(d, "LC_SEGMENT_64") + 72  # __TEXT
        struct.pack_into("<Q", d, o + 40, len(d) + 0x100000)  # fileoff
    bad = _patched(path, tmp_path, fn)
    with pytest.raises(LoadError, match="runs past the end of the file"):
        macho.run(bad)
    with pytest.raises(AssertionError):
        machodump(bad)  # Go's debug/macho alone would accept it; machodump reads the data


@pytest.mark.parametrize("arch", ARCHS)
def test_unknown_symbol(build, arch):
    with pytest.raises(LoadError, match="unknown symbol '_puts'"):
        macho.run(build(arch, "ret", func="puts"))


@pytest.mark.parametrize("arch", ARCHS)
def test_unknown_syscall(build, arch):
    with pytest.raises(EmuError, match="unknown BSD system call 20") as e:
        macho.run(build(arch, "raw", nr=20))
    assert not isinstance(e.value, LoadError)


def test_arm64_svc_needs_0x80(build):
    with pytest.raises(EmuError, match=r"SVC #0: macOS arm64 system calls use SVC #0x80"):
        macho.run(build("arm64", "raw", imm="0"))


@pytest.mark.parametrize("arch", ARCHS)
def test_unknown_dylib(build, arch):
    src = SRC[(arch, "ret")].format(func="foo") + DATA
    with pytest.raises(LoadError, match="'/usr/lib/libfoo.dylib': only /usr/lib/libSystem.B.dylib"):
        macho.run(build(arch, "ret", name=f"foo-{arch}", libs=("System", "foo"), source=src))


@pytest.mark.parametrize("arch", ARCHS)
def test_no_libsystem(build, arch):
    """The oracle README's hello (raw system calls) links without -lSystem: no
    LC_LOAD_DYLIB at all, which dyld refuses for a main executable."""
    path = build(arch, "raw", name=f"nolib-{arch}", libs=())
    with pytest.raises(LoadError, match="no LC_LOAD_DYLIB"):
        macho.run(path)


@pytest.mark.parametrize("arch", ARCHS)
def test_chained_fixups_refused(build, arch, tmp_path):
    path = build(arch, "calls")

    def fn(d):  # LC_DATA_IN_CODE (a 16-byte linkedit_data_command) -> LC_DYLD_CHAINED_FIXUPS
        struct.pack_into("<I", d, _cmd_offset(d, "LC_DATA_IN_CODE"), 0x80000034)
    with pytest.raises(LoadError, match="LC_DYLD_CHAINED_FIXUPS is not supported"):
        macho.run(_patched(path, tmp_path, fn))


@pytest.mark.parametrize("arch", ARCHS)
def test_non_pie(build, arch, tmp_path):
    path = build(arch, "calls")
    bad = _patched(path, tmp_path, lambda d: struct.pack_into("<I", d, 24, struct.unpack_from("<I", d, 24)[0]
                                                                & ~macho.MH_PIE))
    with pytest.raises(LoadError, match="not MH_PIE"):
        macho.run(bad, slide=macho.DEFAULT_SLIDE[arch])
    r = macho.run(bad)  # no slide asked for: runs at its linked addresses
    assert (r.stdout, r.status, r.header["slide"]) == (MSG, 3, 0)


@pytest.mark.parametrize("arch", ARCHS)
def test_bad_slide(build, arch):
    with pytest.raises(LoadError, match="not a multiple of the"):
        macho.run(build(arch, "calls"), slide=0x1800 if arch == "amd64" else 0x2000)


@pytest.mark.parametrize("arch", ARCHS)
def test_bad_bind_opcode(build, arch, tmp_path):
    path = build(arch, "calls")
    data = path.read_bytes()
    bind_off = macho.parse(data)["dyld_info"]["bind"][0]
    bad = _patched(path, tmp_path, lambda d: d.__setitem__(bind_off, 0xE0))
    with pytest.raises(LoadError, match="unknown opcode 0xe0"):
        macho.run(bad)


@pytest.mark.parametrize("arch", ARCHS)
def test_null_dereference_faults(build, arch):
    """__PAGEZERO stays unmapped: a load from address 8 faults."""
    src = {"amd64": "\t.text\n\t.globl _main\n_main:\n\tmovq 8, %rax\n\tretq\n",
           "arm64": "\t.text\n\t.globl _main\n\t.p2align 2\n_main:\n\tmov x1, #8\n\tldr x0, [x1]\n\tret\n"}[arch]
    with pytest.raises(EmuError, match="read of unmapped memory at address 0x8"):
        macho.run(build(arch, "null", name=f"null-{arch}", source=src))
