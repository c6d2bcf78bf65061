"""Unit tests of `minild import` (ELF .o -> minild object), table-driven.

The objects come from GNU as and gcc, run here; what the importer makes of them
is checked against the tables below (written from the sources) and against
readelf and objcopy's view of the same .o files; programs that use the imported
objects are linked and run, and GNU ld links the same .o files for comparison.
Refusals (COMDAT, TLS, GOT/PLT relocations, unknown types, common symbols, not
ELF, not ET_REL, ...) must be one located message per problem and exit 1.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import binutil, link_both, minild, readelf, run_output, tool
from minild import arch as archreg
from minild.importer import import_elf
from minild.loader import BINDINGS, KINDS, TYPES, read_object

GCC = {"amd64": ["gcc", "-m64"], "x86": ["gcc", "-m32"]}
CFLAGS = ["-O2", "-fno-pic", "-nostdlib", "-ffreestanding", "-fno-asynchronous-unwind-tables",
          "-fno-stack-protector"]
LDFLAGS = {"amd64": [], "x86": ["-m", "elf_i386"]}


def build(arch: str, path: Path, src: str, *flags: str) -> Path:
    """build assembles (.s) or compiles (.c) src into path's .o."""
    path.write_text(src)
    obj = path.with_suffix(".o")
    if path.suffix == ".s":
        cmd = [binutil(arch, "as"), *flags, "-o", str(obj), str(path)]
    else:
        cc = GCC[arch]
        cmd = [tool(cc[0]), *cc[1:], *CFLAGS, *flags, "-c", "-o", str(obj), str(path)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, f"{' '.join(cmd)} failed:\n{p.stderr}"
    return obj


def import_json(obj: Path) -> dict:
    out = obj.with_suffix(".obj")
    minild("import", obj, "-o", out)
    return json.loads(out.read_text())


def readelf_sections(obj: Path) -> dict[str, dict]:
    """readelf_sections: name -> {type, size, align, flags} from readelf -S -W."""
    out = {}
    for line in readelf(obj, "-W", "-S").splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+\w+\s+(\w+)\s+(\w+)\s+\w+\s+([A-Z]*)\s+"
                     r"\d+\s+\d+\s+(\d+)$", line)
        if m:
            out[m.group(1)] = {"type": m.group(2), "offset": int(m.group(3), 16),
                               "size": int(m.group(4), 16), "flags": m.group(5),
                               "align": int(m.group(6))}
    return out


def dump_section(arch: str, obj: Path, name: str, d: Path) -> bytes:
    """dump_section: a section's bytes as objcopy --dump-section writes them."""
    raw = d / "section.bin"
    subprocess.run([binutil(arch, "objcopy"), "--dump-section", f"{name}={raw}", str(obj),
                    str(d / "scratch.o")], check=True)
    return raw.read_bytes()


def readelf_symbols(obj: Path) -> dict[str, dict]:
    """readelf_symbols: name -> {value, size, type, bind, ndx} from readelf -s -W."""
    out = {}
    for line in readelf(obj, "-W", "-s").splitlines():
        f = line.split()
        if len(f) == 8 and f[0].endswith(":") and f[0][:-1].isdigit():
            out[f[7]] = {"value": int(f[1], 16), "size": int(f[2], 0), "type": f[3],
                         "bind": f[4], "ndx": f[6]}
    return out


# --- sections: kind, alignment, bytes ----------------------------------------

SECTIONS_S = r"""
        .text
        .balign 16
        .globl _start
_start: ret
        .data
        .balign 8
        .quad 1, 2
        .section .rodata
        .balign 32
        .ascii "read only"
        .bss
        .balign 64
        .zero 100
        .section .text.hot, "ax", @progbits
        .balign 32
        nop
        .section .rodata.str1.1, "aMS", @progbits, 1
        .asciz "merge me"
        .section .mydata, "aw", @progbits
        .balign 4
        .long 7
        .section .mybss, "aw", @nobits
        .balign 16
        .zero 24
        .section .debug_str, "MS", @progbits, 1
        .asciz "a debug string"
        .section .comment, "MS", @progbits, 1
        .asciz "GCC: left out"
        .section .myinfo, "", @progbits
        .asciz "not allocated, not DWARF: left out"
        .section .note.foo, "a", @note
        .long 0, 0, 0
        .section .note.GNU-stack, "", @progbits
"""

# name -> (kind, align); None: left out
SECTION_CASES = {
    ".text": ("text", 16), ".data": ("data", 8), ".rodata": ("rodata", 32), ".bss": ("bss", 64),
    ".text.hot": ("text", 32), ".rodata.str1.1": ("rodata", 1), ".mydata": ("data", 4),
    ".mybss": ("bss", 16), ".debug_str": ("dwarf", 1), ".comment": None, ".myinfo": None,
    ".note.foo": None, ".note.GNU-stack": None,
}


@pytest.mark.parametrize("arch", ["amd64", "x86"])
def test_sections_kind_align_bytes(arch, tmp_path):
    obj = build(arch, tmp_path / "secs.s", SECTIONS_S)
    doc = import_json(obj)
    got = {s["name"]: s for s in doc["sections"]}
    elf = readelf_sections(obj)
    for name, want in SECTION_CASES.items():
        assert name in elf, f"the assembler made no {name}"
        if want is None:
            assert name not in got, f"{name} should be left out"
            continue
        s = got[name]
        assert (s["kind"], s.get("align", 1)) == want, name
        assert s.get("align", 1) == max(elf[name]["align"], 1)
        if s["kind"] == "bss":
            assert s["size"] == elf[name]["size"]
        else:
            data = bytes.fromhex(s["data"].replace(" ", ""))
            assert data == dump_section(arch, obj, name, tmp_path), name
    assert set(got) == {n for n, want in SECTION_CASES.items() if want}


# --- symbols: binding, type, size, section, value -----------------------------

SYMBOLS_S = r"""
        .text
        .globl gfunc
        .type gfunc, @function
gfunc:  nop
        nop
        ret
        .size gfunc, . - gfunc
        .type lfunc, @function
lfunc:  ret
        .size lfunc, 1
        .weak wfunc
        .type wfunc, @function
wfunc:  call ext
        call wext
        ret
        .size wfunc, . - wfunc
        .weak wext
        .data
        .globl gobj
        .type gobj, @object
        .size gobj, 8
        .byte 0, 0, 0, 0
gobj:   .zero 8
        .bss
        .type lobj, @object
        .size lobj, 12
lobj:   .zero 12
        .globl absval
        .set absval, 0x1234
        .section .note.GNU-stack, "", @progbits
"""

# name -> (section, binding, type, size, value); section None: undefined
SYMBOL_CASES = {
    "gfunc": (".text", "global", "func", 3, 0),
    "lfunc": (".text", "local", "func", 1, 3),
    "wfunc": (".text", "weak", "func", None, 4),
    "gobj": (".data", "global", "object", 8, 4),
    "lobj": (".bss", "local", "object", 12, 0),
    "absval": ("*ABS*", "global", "notype", 0, 0x1234),
    "ext": (None, "global", "notype", 0, 0),
    "wext": (None, "weak", "notype", 0, 0),
}


@pytest.mark.parametrize("arch", ["amd64", "x86"])
def test_symbols(arch, tmp_path):
    obj = build(arch, tmp_path / "syms.s", SYMBOLS_S)
    doc = import_json(obj)
    got = {s["name"]: s for s in doc["symbols"]}
    elf = readelf_symbols(obj)
    for name, (sec, bind, typ, size, value) in SYMBOL_CASES.items():
        s = got[name]
        assert (s.get("section"), s.get("binding", "global"), s.get("type", "notype")) == \
               (sec, bind, typ), name
        assert s.get("value", 0) == value == elf[name]["value"], name
        assert s.get("size", 0) == elf[name]["size"], name
        if size is not None:
            assert s.get("size", 0) == size, name
        assert elf[name]["bind"].lower() == bind and elf[name]["type"].lower() == typ, name
    # Section symbols come through named after their section, typed "section".
    secsyms = {s["name"] for s in doc["symbols"] if s.get("type") == "section"}
    assert secsyms <= {s["name"] for s in doc["sections"]}


# --- references to section symbols (REL and RELA) ------------------------------

SECREF_S = {
    # _start exits with the byte at ptr: .Lb + 3 in .rodata, reached through a
    # relocation against the section symbol .rodata with an addend.
    "amd64": r"""
        .text
        .globl _start
_start: movq ptr(%rip), %rax
        movzbl (%rax), %edi
        call .Lf
        addl %eax, %edi
        movl $60, %eax
        syscall
        .section .text.other, "ax", @progbits
.Lf:    movl $100, %eax
        ret
        .section .rodata
        .byte 9, 9, 9, 9
.Lb:    .byte 1, 2, 3, 42
        .data
ptr:    .quad .Lb + 3
        .section .note.GNU-stack, "", @progbits
""",
    "x86": r"""
        .text
        .globl _start
_start: movl ptr, %eax
        movzbl (%eax), %ebx
        call .Lf
        addl %eax, %ebx
        movl $1, %eax
        int $0x80
        .section .text.other, "ax", @progbits
.Lf:    movl $100, %eax
        ret
        .section .rodata
        .byte 9, 9, 9, 9
.Lb:    .byte 1, 2, 3, 42
        .data
ptr:    .long .Lb + 3
        .section .note.GNU-stack, "", @progbits
""",
}

# arch -> (section, data relocation type, its addend; call type, its addend)
SECREF_CASES = {
    "amd64": ("R_X86_64_64", 7, "R_X86_64_PLT32", -4),
    "x86": ("R_386_32", 7, "R_386_PC32", -4),
}


@pytest.mark.parametrize("arch", ["amd64", "x86"])
def test_section_symbol_references(arch, tmp_path):
    obj = build(arch, tmp_path / "secref.s", SECREF_S[arch])
    doc = import_json(obj)
    secs = {s["name"]: s for s in doc["sections"]}
    dtype, dadd, ctype, cadd = SECREF_CASES[arch]
    (r,) = secs[".data"]["relocs"]
    assert (r["type"], r["symbol"], r.get("addend", 0)) == (dtype, ".rodata", dadd)
    calls = [x for x in secs[".text"]["relocs"] if x["symbol"] == ".text.other"]
    assert [(x["type"], x.get("addend", 0)) for x in calls] in ([(ctype, cadd)],
                                                                [("R_X86_64_PC32", cadd)])
    # GNU ld's and minild's links of the object run alike (conftest.link_both).
    p, _ = link_both(arch, tmp_path, [obj], (*LDFLAGS[arch], "-static"))
    assert p.returncode == 142


# --- encodings and the loader ---------------------------------------------------

PROGRAM_C = r"""
long sys_write(int fd, const char *buf, long n);
static const char *const words[] = {"alpha\n", "beta\n", "gamma\n", "delta\n", "eps\n"};
int counts[5];
static int pick(int i) {
    switch (i) { case 0: return 3; case 1: return counts[2] + 1; case 2: return 4;
                 case 3: return counts[0] * 2; case 4: return 1; default: return 0; }
}
int main(void) {
    int sum = 0;
    for (int i = 0; i < 5; i++) {
        const char *w = words[(i * 3) % 5]; long n = 0;
        while (w[n]) n++;
        sys_write(1, w, n);
        counts[i] = pick(i);
        sum += counts[i];
    }
    return sum;
}
"""

START_S = {
    "amd64": """
        .globl _start
_start: call main
        movl %eax, %edi
        movl $60, %eax
        syscall
        .globl sys_write
sys_write:
        movl $1, %eax
        syscall
        ret
        .section .note.GNU-stack, "", @progbits
""",
    "x86": """
        .globl _start
_start: call main
        movl %eax, %ebx
        movl $1, %eax
        int $0x80
        .globl sys_write
sys_write:
        pushl %ebx
        movl 8(%esp), %ebx
        movl 12(%esp), %ecx
        movl 16(%esp), %edx
        movl $4, %eax
        int $0x80
        popl %ebx
        ret
        .section .note.GNU-stack, "", @progbits
""",
}


def program_objects(arch: str, d: Path, *flags: str) -> list[Path]:
    return [build(arch, d / "start.s", START_S[arch]),
            build(arch, d / "prog.c", PROGRAM_C, *flags)]


@pytest.mark.parametrize("arch", ["amd64", "x86"])
def test_readable_and_compact_link_identically(arch, tmp_path):
    objs = program_objects(arch, tmp_path, "-g")
    minild("import", *objs, "-o", tmp_path / "r")
    minild("import", *objs, "-o", tmp_path / "c", "--compact")
    for o in objs:
        assert json.loads((tmp_path / "r" / (o.stem + ".obj")).read_text())["encoding"] == \
            "readable"
        assert json.loads((tmp_path / "c" / (o.stem + ".obj")).read_text())["encoding"] == \
            "compact"
    outs = []
    for enc in ("r", "c"):
        out = tmp_path / f"out-{enc}"
        minild("link", *[tmp_path / enc / (o.stem + ".obj") for o in objs], "-o", out)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    p = run_output(arch, tmp_path / "out-r")
    assert (p.stdout, p.returncode) == (b"alpha\ndelta\nbeta\neps\ngamma\n", 15)


def columns(o) -> dict:
    """columns: an Object as comparable values."""
    a = archreg.lookup(o.arch)
    return {
        "arch": o.arch, "sec_name": list(o.sec_name),
        "sec_kind": [KINDS[k] for k in o.sec_kind], "sec_align": o.sec_align.tolist(),
        "sec_size": o.sec_size.tolist(), "sec_data": list(o.sec_data),
        "symbols": sorted(zip(o.sym_name, o.sym_sec.tolist(), o.sym_value.tolist(),
                              o.sym_size.tolist(), [BINDINGS[b] for b in o.sym_bind],
                              [TYPES[t] for t in o.sym_type])),
        "relocs": sorted(zip(o.rel_sec.tolist(), o.rel_off.tolist(),
                             [a.howtos[t].name for t in o.rel_type],
                             [o.sym_name[s] for s in o.rel_sym], o.rel_add.tolist())),
    }


@pytest.mark.parametrize("arch", ["amd64", "x86"])
def test_round_trip_through_the_loader(arch, tmp_path):
    """What import_elf builds is what the loader reads back from either encoding."""
    for obj in program_objects(arch, tmp_path, "-g") + [
            build(arch, tmp_path / "syms.s", SYMBOLS_S),
            build(arch, tmp_path / "secref.s", SECREF_S[arch])]:
        want = columns(import_elf(str(obj)))
        assert want["relocs"] or obj.stem == "syms"
        for compact in (False, True):
            out = tmp_path / f"{obj.stem}-{int(compact)}.obj"
            minild("import", obj, "-o", out, *(["--compact"] if compact else []))
            assert columns(read_object(str(out))) == want, (obj, compact)


def test_x86_rel_addends_match_readelf(tmp_path):
    """x86 REL: the addends made explicit are the words objdump shows in the places."""
    obj = build("x86", tmp_path / "prog.c", PROGRAM_C, "-g")
    o = import_elf(str(obj))
    raw = dump_section("x86", obj, ".debug_info", tmp_path)
    sec = o.sec_name.index(".debug_info")
    sel = np.flatnonzero(o.rel_sec == sec)
    assert len(sel) > 10
    for k in sel.tolist():
        off = int(o.rel_off[k])
        assert int(o.rel_add[k]) == struct.unpack_from("<i", raw, off)[0]


# --- refusals -------------------------------------------------------------------

PATCH_RELOC_TYPE = "patch the type of the first relocation of .rela.text/.rel.text to 150"
PATCH_MACHINE = "patch e_machine to 2 (SPARC)"

# id -> (arch, file name, source, build flags, strings the message must contain)
ERROR_CASES = {
    "comdat": ("amd64", "g.s", '.section .text.g,"axG",@progbits,grp,comdat\nret\n', (),
               ["section [", ".group", "COMDAT", ".text.g"]),
    "tls-amd64": ("amd64", "t.c", "__thread int t;\nint get(void) { return t; }\n", (),
                  [".tbss", "thread-local", "section .rela.text", "R_X86_64_TPOFF32",
                   ".text+0x"]),
    "tls-x86": ("x86", "t.c", "__thread int t;\nint get(void) { return t; }\n", (),
                [".tbss", "section .rel.text", "R_386_TLS_LE", "thread-local"]),
    "gotpcrel-c": ("amd64", "p.c", "extern int x;\nint get(void) { return x; }\n", ("-fpic",),
                   ["section .rela.text", "R_X86_64_REX_GOTPCRELX", "against symbol x",
                    "needs a GOT", "-fno-pic"]),
    "gotpcrel-asm": ("amd64", "p.s", "movq x@GOTPCREL(%rip), %rax\n", ("-mrelax-relocations=no",),
                     ["section .rela.text", "R_X86_64_GOTPCREL (9)", ".text+0x3",
                      "needs a GOT"]),
    "pltoff": ("amd64", "p.s", "movabsq $f@PLTOFF, %rax\n", (),
               ["section .rela.text", "R_X86_64_PLTOFF64", "against symbol f", "needs a PLT"]),
    "got-x86": ("x86", "p.s", "movl x@GOT(%ebx), %eax\n", ("-mrelax-relocations=no",),
                ["section .rel.text", "R_386_GOT32 (3)", "against symbol x", "needs a GOT"]),
    "pic-x86-c": ("x86", "p.c", "extern int x;\nint get(void) { return x; }\n", ("-fpic",),
                  ["COMDAT", "__x86.get_pc_thunk", "R_386_GOTPC", "section .rel.text"]),
    "size32": ("amd64", "u.s", ".reloc ., R_X86_64_SIZE32, foo\n.long 0\n", (),
               ["section .rela.text", "relocation #32", ".text+0x0", "against symbol foo",
                "unknown relocation type"]),
    "unknown-number": ("amd64", "u.s", "call foo\n", (PATCH_RELOC_TYPE,),
                       ["section .rela.text", "relocation #150", ".text+0x1",
                        "unknown relocation type"]),
    "unknown-number-x86": ("x86", "u.s", "call foo\n", (PATCH_RELOC_TYPE,),
                           ["section .rel.text", "relocation #150", ".text+0x1"]),
    "common-asm": ("amd64", "c.s", ".comm buf, 64, 8\n", (), ["symbol buf", "common symbols"]),
    "common-c": ("x86", "c.c", "int shared;\nint get(void) { return shared; }\n", ("-fcommon",),
                 ["symbol shared", "common symbols", "-fno-common"]),
    "init-array": ("amd64", "i.c", "int v;\n__attribute__((constructor)) static void init(void)"
                   " { v = 1; }\n", (), ["section [", ".init_array", "init/fini arrays"]),
    "ifunc": ("amd64", "f.s", ".globl f\n.type f, @gnu_indirect_function\nf: ret\n", (),
              ["symbol f", "IFUNC"]),
    "gnu-unique": ("amd64", "q.s", ".data\n.globl u\n.type u, @gnu_unique_object\nu: .long 1\n",
                   (), ["symbol u", "binding 10"]),
    "left-out-target": ("amd64", "l.s", ".section .comment\nc: .byte 0\n.text\n.quad c\n", (),
                        ["section .rela.text", ".text+0x0", "section .comment", "does not import"]),
    "not-elf": ("amd64", "n.o", "this is text, not ELF\n", ("raw",),
                ["not an ELF object"]),
    "executable": ("amd64", "e.s", ".globl _start\n_start: ret\n", ("link",),
                   ["expected an ELF relocatable object (ET_REL)", "ET_EXEC"]),
    "shared-library": ("x86", "e.s", ".globl f\nf: ret\n", ("shared",),
                       ["expected an ELF relocatable object (ET_REL)", "ET_DYN"]),
    "truncated": ("amd64", "e.s", "ret\n", ("truncate",), ["malformed ELF object"]),
    "machine": ("amd64", "e.s", "ret\n", (PATCH_MACHINE,), ["no minild arch for machine",
                                                            "EM_SPARC"]),
}


def make_bad(arch: str, d: Path, name: str, src: str, flags: tuple) -> Path:
    """make_bad builds the object of an ERROR_CASES row, then bends it as asked."""
    if "raw" in flags:
        p = d / name
        p.write_text(src)
        return p
    bflags = [f for f in flags if f.startswith("-")]
    obj = build(arch, d / name, src, *bflags)
    if "link" in flags or "shared" in flags:
        out = d / ("prog" if "link" in flags else "lib.so")
        subprocess.run([binutil(arch, "ld"), *LDFLAGS[arch],
                        *(["-shared"] if "shared" in flags else []), "-o", str(out), str(obj)],
                       check=True, capture_output=True)
        return out
    data = bytearray(obj.read_bytes())
    if "truncate" in flags:
        data = data[:200]
    if PATCH_MACHINE in flags:
        data[18:20] = (2).to_bytes(2, "little")
    if PATCH_RELOC_TYPE in flags:
        sec = next(s for n, s in readelf_sections(obj).items() if n in (".rela.text",
                                                                          ".rel.text"))
        off = sec["offset"]
        assert sec["size"] > 0
        # r_info's type: the low byte of a u32 (ELF32) or the low u32 of a u64 (ELF64).
        pos = off + (4 if arch == "x86" else 8)
        data[pos] = 150
    obj.write_bytes(bytes(data))
    return obj


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_refusals(case, tmp_path):
    arch, name, src, flags, want = ERROR_CASES[case]
    bad = make_bad(arch, tmp_path, name, src, flags)
    out = tmp_path / "out.obj"
    p = minild("import", bad, "-o", out, check=False)
    assert p.returncode == 1, f"exit {p.returncode}:\n{p.stderr}"
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
    assert p.stderr.startswith("error: ") and p.stdout == ""
    assert str(bad) in p.stderr.split("\n")[0] or f"{bad}:" in p.stderr, p.stderr
    for w in want:
        assert w in p.stderr, f"{w!r} not in:\n{p.stderr}"
    assert not out.exists()


def test_import_of_several_files_reports_every_bad_one(tmp_path):
    good = build("amd64", tmp_path / "good.s", ".globl _start\n_start: ret\n")
    bad1 = make_bad("amd64", tmp_path, "bad1.s", "call x@PLT\nmovq x@GOTPCREL(%rip), %rax\n",
                    ("-mrelax-relocations=no",))
    bad2 = make_bad("amd64", tmp_path, "bad2.o", "not ELF", ("raw",))
    p = minild("import", good, bad1, bad2, "-o", tmp_path / "out", check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert f"{bad1}: section .rela.text: relocation R_X86_64_GOTPCREL" in p.stderr
    assert f"{bad2}: not an ELF object" in p.stderr
    assert (tmp_path / "out" / "good.obj").exists()
    assert not (tmp_path / "out" / "bad1.obj").exists()
    # Two inputs that would land on the same output name are refused up front.
    (tmp_path / "sub").mkdir()
    other = tmp_path / "sub" / "good.o"
    other.write_bytes(good.read_bytes())
    p = minild("import", good, other, "-o", tmp_path / "out2", check=False)
    assert p.returncode == 1 and "would both be imported to" in p.stderr


def test_link_time_refusal_of_an_unknown_type_in_a_readable_object(tmp_path):
    """A hand-edited object naming a GOT type is refused by the loader, located."""
    obj = build("amd64", tmp_path / "a.s", ".globl _start\n_start: call f\n")
    doc = import_json(obj)
    doc["sections"][0]["relocs"][0]["type"] = "R_X86_64_GOTPCREL"
    (tmp_path / "a.obj").write_text(json.dumps(doc))
    p = minild("link", tmp_path / "a.obj", "-o", tmp_path / "out", check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "R_X86_64_GOTPCREL" in p.stderr and "a.obj" in p.stderr and "relocs[0]" in p.stderr


# --- many sections: extended numbering (SHN_XINDEX) --------------------------

def test_more_than_65280_sections(tmp_path):
    n = 65400
    lines = [".text", ".globl _start", f"_start: jmp f{n - 1}"]
    for i in range(n):
        lines += [f'.section .text.f{i},"ax",@progbits', f"f{i}: ret"]
    lines[-1] = f"f{n - 1}: movl $42, %edi\nmovl $60, %eax\nsyscall"
    lines.append('.section .note.GNU-stack,"",@progbits')
    obj = build("amd64", tmp_path / "many.s", "\n".join(lines) + "\n")
    assert int(readelf_symbols(obj)[f"f{n - 1}"]["ndx"]) > 0xff00   # so SHN_XINDEX
    o = import_elf(str(obj))
    k = o.sym_name.tolist().index(f"f{n - 1}")
    assert o.sec_name[o.sym_sec[k]] == f".text.f{n - 1}"
    out = tmp_path / "many.obj"
    minild("import", obj, "-o", out, "--compact")
    minild("link", out, "-o", tmp_path / "many")
    assert run_output("amd64", tmp_path / "many").returncode == 42


# --- performance -----------------------------------------------------------------

# The checksum bench_source's program prints: every step folds a value v into
# %rbx as acc * BENCH_K + v (mod 2**64). BENCH_K is odd and fits imul's immediate.
BENCH_K = 1000003


def bench_word(k: int, m: int) -> int:
    """bench_word: word m of object k's data d{k} (distinct for every k, m)."""
    return (k * 128 + m + 1) * 2654435761 % 2**32


def bench_source(k: int, nobj: int, nfunc: int) -> str:
    """bench_source: one object of nfunc functions, 6 relocations each (calls
    across objects and within, rip-relative data, absolute 32-bit addresses, a
    table of function pointers), and code that runs every one of them.

    Object k has leaves f{k}_{i}, their table tab{k}, 128 words d{k}, 50 merge
    strings, and run{k}: for each i a block that calls f{k+1}_{7i} (another
    object) and f{k}_{i+1} (this one), reads d{k}'s word 2(i%64) through a
    rip-relative address, reads string s{k}_{i%50} through an absolute 32-bit
    one, and calls tab{k}[i] (a rip-relative load of an absolute 64-bit
    pointer). _start (object 0) calls run0 .. run{nobj-1} and prints %rbx as 16
    hex digits: bench_checksum. A leaf adds 1 four times (incq, 48 ff c3), then
    folds its number k*nfunc+i+1, so a relocation a few bytes off changes the
    checksum or faults: a call or pointer 3n bytes late skips increments, 3n+1
    late runs `inc %ebx` (which clears the upper half), 3n+2 late lands on c3
    (ret) and folds nothing; 1 to 8 early is int3 padding (SIGTRAP); further
    off is another leaf's number or another instruction stream. A data
    word 4 bytes off is its neighbour, a string read (8 bytes from its third)
    1 to 8 bytes off reads other bytes, and a table load 4 bytes off makes a
    pointer from two halves of two entries, which is not canonical (SIGSEGV).
    """
    out = [".text"]
    if k == 0:
        out += [".globl _start", "_start: xorl %ebx, %ebx"]
        out += [f"call run{j}" for j in range(nobj)]
        out += ["subq $24, %rsp", "movl $16, %ecx",         # %rbx in hex, then a newline
                "1: movl %ebx, %eax", "andl $15, %eax", "cmpl $10, %eax", "jb 2f",
                "addl $39, %eax", "2: addl $48, %eax", "movb %al, -1(%rsp,%rcx)",
                "shrq $4, %rbx", "decl %ecx", "jnz 1b", "movb $10, 16(%rsp)",
                "movl $1, %eax", "movl $1, %edi", "movq %rsp, %rsi", "movl $17, %edx", "syscall",
                "movl $60, %eax", "xorl %edi, %edi", "syscall"]
    out += [f".globl run{k}", f".type run{k}, @function", f"run{k}:"]
    for i in range(nfunc):
        out += [f"call f{(k + 1) % nobj}_{(i * 7) % nfunc}", f"call f{k}_{(i + 1) % nfunc}",
                f"leaq d{k}+{8 * (i % 64)}(%rip), %rax", "movl (%rax), %eax",
                f"imulq ${BENCH_K}, %rbx, %rbx", "addq %rax, %rbx",
                f"movl $s{k}_{i % 50}, %edi", "movq 2(%rdi), %rax",
                f"imulq ${BENCH_K}, %rbx, %rbx", "addq %rax, %rbx",
                f"movq tab{k}+{8 * i}(%rip), %rcx", "call *%rcx"]
    out += ["ret", f".size run{k}, . - run{k}"]
    for i in range(nfunc):
        f = f"f{k}_{i}"
        out += [".fill 8, 1, 0xcc", f".globl {f}", f".type {f}, @function", f"{f}:",
                "incq %rbx", "incq %rbx", "incq %rbx", "incq %rbx",
                f"imulq ${BENCH_K}, %rbx, %rbx", f"addq ${k * nfunc + i + 1}, %rbx", "ret",
                f".size {f}, . - {f}"]
    out += [".data", ".balign 8", f"d{k}:"]
    out += [f".long {bench_word(k, m)}" for m in range(128)]
    out += [".section .rodata", ".balign 8", f"tab{k}:"]
    out += [f".quad f{k}_{i}" for i in range(nfunc)]
    out += ['.section .rodata.str1.1, "aMS", @progbits, 1']
    out += [f's{k}_{j}: .asciz "string {j:02d}"' for j in range(50)]
    out += ['.section .note.GNU-stack, "", @progbits']
    return "\n".join(out) + "\n"


def bench_checksum(nobj: int, nfunc: int) -> int:
    """bench_checksum: what bench_source's program prints, worked out here from
    the generator's parameters (not from anything minild wrote)."""
    mask = 2**64 - 1

    def fold(acc: int, v: int) -> int:
        return (acc * BENCH_K + v) & mask

    def leaf(acc: int, k: int, i: int) -> int:
        return fold(acc + 4, k * nfunc + i + 1)

    acc = 0
    for k in range(nobj):
        for i in range(nfunc):
            acc = leaf(acc, (k + 1) % nobj, i * 7 % nfunc)
            acc = leaf(acc, k, (i + 1) % nfunc)
            acc = fold(acc, bench_word(k, 2 * (i % 64)))
            acc = fold(acc, int.from_bytes(b"ring %02d\0" % (i % 50), "little"))
            acc = leaf(acc, k, i)
    return acc


def test_import_many_large_objects(tmp_path):
    """Import many large objects in one run (6000 relocations each), link, and
    run every relocated call, table entry and address: the program prints the
    checksum bench_checksum works out (about 144k relocations checked).

    Not a timed test: the figures come from benchmarks/import_bench.py.
    """
    nobj, nfunc = 24, 1000
    objs = assemble_bench(tmp_path, nobj, nfunc)
    minild("import", *objs, "-o", tmp_path / "out", "--compact")
    nrel = len(import_elf(str(objs[0])).rel_off)
    assert nrel >= 6000
    out = tmp_path / "big"
    minild("link", *[tmp_path / "out" / f"o{k}.obj" for k in range(nobj)], "-o", out)
    r = run_output("amd64", out)
    assert (r.stdout, r.returncode) == (b"%016x\n" % bench_checksum(nobj, nfunc), 0)


def test_import_does_no_python_work_per_relocation(tmp_path):
    """Importing 10x the relocations makes (almost) no more Python calls: the
    tables are read as numpy columns, not record by record."""
    import cProfile
    import pstats
    small, big = (assemble_bench(tmp_path / n, 1, f)[0] for n, f in (("s", 100), ("b", 1000)))
    calls = []
    for o in (small, big):
        prof = cProfile.Profile()
        prof.runcall(import_elf, str(o))
        calls.append(pstats.Stats(prof).total_calls)
    assert len(import_elf(str(big)).rel_off) >= 10 * len(import_elf(str(small)).rel_off) - 100
    assert calls[1] < 1.5 * calls[0], calls


def assemble_bench(d, nobj: int, nfunc: int) -> list:
    """assemble_bench writes and assembles nobj objects of bench_source."""
    d.mkdir(parents=True, exist_ok=True)
    asm = binutil("amd64", "as")
    procs = []
    for k in range(nobj):
        s = d / f"o{k}.s"
        s.write_text(bench_source(k, nobj, nfunc))
        procs.append(subprocess.Popen([asm, "-o", str(s.with_suffix(".o")), str(s)]))
        if len(procs) >= 2:
            assert procs.pop(0).wait() == 0
    assert all(p.wait() == 0 for p in procs)
    return [d / f"o{k}.o" for k in range(nobj)]


# --- relocations with no symbol (r_sym 0) ----------------------------------------

NOSYM_S = {
    "amd64": """
        .text
        .globl _start
_start: movq val(%rip), %rdi
        movl $60, %eax
        syscall
        .reloc ., R_X86_64_NONE
        .data
val:    .reloc ., R_X86_64_64, 42
        .quad 0
        .section .note.GNU-stack, "", @progbits
""",
    "x86": """
        .text
        .globl _start
_start: movl val, %ebx
        movl $1, %eax
        int $0x80
        .reloc ., R_386_NONE
        .data
val:    .reloc ., R_386_32          # REL: the addend is the word in the place
        .long 42
        .section .note.GNU-stack, "", @progbits
""",
}


@pytest.mark.parametrize("arch", ["amd64", "x86"])
def test_relocations_without_symbol(arch, tmp_path):
    """r_sym 0 means S = 0: the importer stands in an absolute #zero symbol."""
    obj = build(arch, tmp_path / "nosym.s", NOSYM_S[arch])
    doc = import_json(obj)
    data = next(s for s in doc["sections"] if s["name"] == ".data")
    assert [(r["symbol"], r.get("addend", 0)) for r in data["relocs"]] == [("#zero", 42)]
    zero = next(s for s in doc["symbols"] if s["name"] == "#zero")
    assert (zero["section"], zero.get("value", 0), zero["binding"]) == ("*ABS*", 0, "local")
    ref = tmp_path / "ref"
    subprocess.run([binutil(arch, "ld"), *LDFLAGS[arch], "-static", "-o", str(ref), str(obj)],
                   check=True)
    minild("link", obj.with_suffix(".obj"), "-o", tmp_path / "mine")
    assert run_output(arch, ref).returncode == run_output(arch, tmp_path / "mine").returncode == 42


def test_repeated_section_names(tmp_path):
    """Two sections named .text (as's `unique`): the second becomes .text#1 and
    the relocation against its section symbol still reaches it."""
    obj = build("amd64", tmp_path / "dup.s", """
        .text
        .globl _start
_start: call .Lsecond
        movl %eax, %edi
        movl $60, %eax
        syscall
        .section .text, "ax", @progbits, unique, 1
        nop
.Lsecond: movl $77, %eax
        ret
        .section .note.GNU-stack, "", @progbits
""")
    doc = import_json(obj)
    assert [s["name"] for s in doc["sections"] if s["kind"] == "text"] == [".text", ".text#1"]
    (r,) = doc["sections"][0]["relocs"]
    assert (r["symbol"], r["addend"]) == (".text#1", -3)
    minild("link", obj.with_suffix(".obj"), "-o", tmp_path / "mine")
    assert run_output("amd64", tmp_path / "mine").returncode == 77
