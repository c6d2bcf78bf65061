"""`minild import` of COFF objects from the MinGW cross toolchains (minild/coff.py).

The C program in tests/data/pe_c (calls across objects, a function-pointer
table, a switch with a jump table, rodata strings, bss, kernel32 called through
__declspec(dllimport) and without) is compiled by x86_64-w64-mingw32-gcc and
i686-w64-mingw32-gcc at -O0, -O2 and -Os, with and without unwind tables, and
imported; each imported object is checked against what the MinGW binutils say
about the .o: sections (objdump -h: name, size, alignment; objcopy
--dump-section: bytes), symbols (objdump -t) and relocations (objdump -r:
section, offset, type and target; the addend against the bytes at the place).
Then broken and unsupported inputs: each is refused with exit status 1, a
located message and no traceback.
"""

from __future__ import annotations

import random
import re
import struct
import subprocess
from pathlib import Path

import pytest

from minild import arch as archreg
from minild.errors import LinkError
from minild.importer import import_elf
from minild.loader import read_object
from minild.vocab import ABS, BINDINGS, KINDS, TYPES, UNDEF

from conftest import ROOT, minild, tool

PE_C = ROOT / "tests" / "data" / "pe_c"
SOURCES = ("main.c", "ops.c", "out.c", "direct.c")
PREFIX = {"amd64": "x86_64-w64-mingw32-", "x86": "i686-w64-mingw32-"}
CFLAGS = ("-c", "-ffreestanding", "-fno-stack-protector", "-Wall", "-Wextra", "-Werror")

# objdump's names of COFF relocation types -> (minild Howto, place bytes, addend delta)
RELOC_MAP = {
    "amd64": {"IMAGE_REL_AMD64_ADDR64": ("R_X86_64_64", 8, 0),
              "IMAGE_REL_AMD64_ADDR32": ("R_X86_64_32", 4, 0),
              "IMAGE_REL_AMD64_ADDR32NB": ("IMAGE_REL_AMD64_ADDR32NB", 4, 0),
              "IMAGE_REL_AMD64_REL32": ("R_X86_64_PC32", 4, -4),
              **{f"IMAGE_REL_AMD64_REL32_{k}": ("R_X86_64_PC32", 4, -4 - k)
                 for k in range(1, 6)}},
    # BFD's pe-i386 names: dir32 = IMAGE_REL_I386_DIR32, DISP32 = REL32, rva32 = DIR32NB
    "x86": {"dir32": ("R_386_32", 4, 0), "DISP32": ("R_386_PC32", 4, -4),
            "rva32": ("IMAGE_REL_I386_DIR32NB", 4, 0)},
}
LEFT_OUT = (".drectve", ".eh_frame", ".comment")


def objtool(arch: str, name: str) -> str:
    return tool(PREFIX[arch] + name)


def compile_c(arch: str, d: Path, flags, sources=SOURCES) -> list[Path]:
    objs = []
    for s in sources:
        o = d / Path(s).with_suffix(".o").name
        cmd = [objtool(arch, "gcc"), *CFLAGS, *flags, "-I", str(PE_C), "-o", str(o),
               str(PE_C / s if (PE_C / s).exists() else d / s)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        assert p.returncode == 0, f"{' '.join(cmd)}:\n{p.stderr}"
        objs.append(o)
    return objs


def expected_kind(name: str) -> str:
    """The kinds the issue asks for, by section name."""
    if name.startswith(".debug_"):
        return "dwarf"
    if re.match(r"\.text($|\$|\.)", name):
        return "text"
    if re.match(r"\.(rdata|rodata|xdata|pdata)($|\$|\.)", name):
        return "rodata"
    if re.match(r"\.data($|\$|\.)", name):
        return "data"
    if re.match(r"\.bss($|\$|\.)", name):
        return "bss"
    raise AssertionError(f"unexpected section {name}")


# --- what the MinGW binutils say ------------------------------------------------

def dump_sections(arch: str, o: Path) -> list[dict]:
    """objdump -h: name, size, alignment, whether COMDAT (and which selection)."""
    out = subprocess.run([objtool(arch, "objdump"), "-h", str(o)], capture_output=True,
                         text=True, check=True).stdout
    secs = []
    for m in re.finditer(r"^\s*\d+ (\S+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+[0-9a-f]+\s+[0-9a-f]+\s+"
                         r"2\*\*(\d+)\n\s+(.*)$", out, re.M):
        secs.append({"name": m[1], "size": int(m[2], 16), "align": 1 << int(m[3]),
                     "flags": m[4], "comdat": "COMDAT" in m[4]})
    return secs


def dump_symbols(arch: str, o: Path) -> list[dict]:
    """objdump -t: every symbol record (aux records left out)."""
    out = subprocess.run([objtool(arch, "objdump"), "-t", str(o)], capture_output=True,
                         text=True, check=True).stdout
    return [{"sec": int(m[1]), "ty": int(m[2], 16), "scl": int(m[3]), "nx": int(m[4]),
             "value": int(m[5], 16), "name": m[6]}
            for m in re.finditer(r"^\[\s*\d+\]\(sec\s+(-?\d+)\)\(fl 0x[0-9a-f]+\)\(ty\s+"
                                 r"([0-9a-f]+)\)\(scl\s+(\d+)\) \(nx (\d+)\) 0x([0-9a-f]+) (.*)$",
                                 out, re.M)]


def dump_relocs(arch: str, o: Path) -> list[tuple[str, int, str, str]]:
    """objdump -r: (section, offset, COFF type, target) for every relocation."""
    out = subprocess.run([objtool(arch, "objdump"), "-r", str(o)], capture_output=True,
                         text=True, check=True).stdout
    rels, sec = [], None
    for line in out.splitlines():
        m = re.match(r"RELOCATION RECORDS FOR \[(.*)\]:", line)
        if m:
            sec = m[1]
            continue
        m = re.match(r"^([0-9a-f]{8,16}) (\S+)\s+(\S+)$", line)
        if m and sec is not None:
            rels.append((sec, int(m[1], 16), m[2], m[3]))
    return rels


def dump_bytes(arch: str, o: Path, names: list[str]) -> dict[str, bytes]:
    """objcopy --dump-section: the bytes of each named (non-empty) section."""
    d = o.parent / (o.stem + ".dump")
    d.mkdir(exist_ok=True)
    args = []
    for i, n in enumerate(names):
        args += ["--dump-section", f"{n}={d / str(i)}"]
    subprocess.run([objtool(arch, "objcopy"), *args, str(o), str(d / "copy.o")], check=True,
                   capture_output=True)
    return {n: (d / str(i)).read_bytes() for i, n in enumerate(names)}


# --- the program, compiled and imported -------------------------------------------

BUILDS = [(arch, opt, unwind) for arch in ("amd64", "x86") for opt in ("-O0", "-O2", "-Os")
          for unwind in (True, False)]


def build_id(b) -> str:
    return f"{b[0]}{b[1]}{'' if b[2] else '-nounwind'}"


def has_howto(arch: str, name: str) -> bool:
    return name in archreg.lookup(arch).index


@pytest.fixture(scope="module", params=BUILDS, ids=build_id)
def imported(request, tmp_path_factory):
    """The C program compiled for one (arch, -O, unwind tables) and imported:
    (arch, flags, objects, imported objects)."""
    arch, opt, unwind = request.param
    d = tmp_path_factory.mktemp(build_id(request.param))
    flags = [opt] + ([] if unwind else ["-fno-asynchronous-unwind-tables"])
    objs = compile_c(arch, d, flags)
    out = d / "objs"
    p = minild("import", *objs, "-o", out, check=False)
    assert p.returncode == 0, p.stderr
    return arch, flags, objs, [out / (o.stem + ".obj") for o in objs]


def test_sections_as_objdump_says(imported):
    arch, flags, objs, outs = imported
    for o, out in zip(objs, outs):
        obj = read_object(str(out))     # minild's own loader accepts what import wrote
        assert obj.arch == arch
        secs = [s for s in dump_sections(arch, o) if s["name"] not in LEFT_OUT]
        assert obj.sec_name == [s["name"] for s in secs], o
        assert [KINDS[k] for k in obj.sec_kind] == [expected_kind(s["name"]) for s in secs]
        assert obj.sec_align.tolist() == [s["align"] for s in secs]
        assert obj.sec_size.tolist() == [s["size"] for s in secs]
        nonempty = [s["name"] for s in secs if s["size"] and KINDS[obj.sec_kind[
            obj.sec_name.index(s["name"])]] != "bss"]
        dumped = dump_bytes(arch, o, nonempty)
        for name, data in zip(obj.sec_name, obj.sec_data):
            if name in dumped:
                assert bytes(data) == dumped[name], (o, name)
            elif data is not None:
                assert len(data) == 0
        names = set(obj.sec_name)
        if arch == "amd64" and "-fno-asynchronous-unwind-tables" not in flags:
            assert {".pdata", ".xdata"} <= names, names
        else:
            assert not names & {".pdata", ".xdata", ".eh_frame"}, names


def expected_symbols(arch: str, o: Path) -> list[tuple]:
    """What minild should make of objdump's symbol records: (name, section,
    value, binding, type) in table order."""
    secs = dump_sections(arch, o)
    want = []
    for s in dump_symbols(arch, o):
        if s["scl"] == 103 or s["sec"] == -2:       # files, debug symbols
            continue
        sec = None if s["sec"] == 0 else "*ABS*" if s["sec"] == -1 else secs[s["sec"] - 1]
        if sec not in (None, "*ABS*") and sec["name"] in LEFT_OUT:
            continue
        typ = "func" if s["ty"] == 0x20 else "notype"
        if s["scl"] == 2:
            bind = "weak" if sec not in (None, "*ABS*") and sec["comdat"] else "global"
        elif s["scl"] == 105:
            bind = "weak"
        else:
            assert s["scl"] in (3, 6), s
            bind = "local"
            if sec not in (None, "*ABS*") and s["nx"] and s["name"] == sec["name"]:
                typ = "section"
        secname = sec if sec in (None, "*ABS*") else sec["name"]
        want.append((s["name"], secname, s["value"], bind, typ))
    return want


def symbols_of(obj) -> list[tuple]:
    out = []
    for i, name in enumerate(obj.sym_name.tolist()):
        si = int(obj.sym_sec[i])
        sec = None if si == UNDEF else "*ABS*" if si == ABS else obj.sec_name[si]
        out.append((name, sec, int(obj.sym_value[i]), BINDINGS[obj.sym_bind[i]],
                    TYPES[obj.sym_type[i]]))
    return out


def test_symbols_as_objdump_says(imported):
    arch, _, objs, outs = imported
    for o, out in zip(objs, outs):
        got = symbols_of(read_object(str(out)))
        assert got == expected_symbols(arch, o), o
    # kernel32, through __imp_ pointers (dllimport) and by the plain names
    by_file = {o.stem: {s[0] for s in symbols_of(read_object(str(out))) if s[1] is None}
               for o, out in zip(objs, outs)}
    if arch == "amd64":
        assert {"__imp_GetStdHandle", "__imp_WriteFile"} <= by_file["out"]
        assert "__imp_ExitProcess" in by_file["main"]
        assert {"GetStdHandle", "WriteFile"} <= by_file["direct"]
        assert not any(n.startswith("__imp_") for n in by_file["direct"])
    else:
        assert {"__imp__GetStdHandle@4", "__imp__WriteFile@20"} <= by_file["out"]
        assert "__imp__ExitProcess@4" in by_file["main"]
        assert {"_GetStdHandle@4", "_WriteFile@20"} <= by_file["direct"]
    # cross-object calls: defined in one object, undefined in another
    defined = {s[0] for out in outs for s in symbols_of(read_object(str(out)))
               if s[1] is not None and s[3] == "global"}
    pre = "_" if arch == "x86" else ""
    for f in ("out_str", "out_num", "out_flush", "classify", "say_direct", "op_table"):
        assert pre + f in defined and pre + f in by_file["main"], f


def test_relocations_as_objdump_says(imported):
    arch, flags, objs, outs = imported
    a = archreg.lookup(arch)
    seen = set()
    for o, out in zip(objs, outs):
        obj = read_object(str(out))
        names = obj.sym_name.tolist()
        want = [r for r in dump_relocs(arch, o) if r[0] not in LEFT_OUT]
        got = [(obj.sec_name[s], int(off), a.howtos[t].name, names[y], int(ad))
               for s, off, t, y, ad in zip(obj.rel_sec, obj.rel_off, obj.rel_type, obj.rel_sym,
                                           obj.rel_add)]
        assert len(got) == len(want), o
        data = dict(zip(obj.sec_name, obj.sec_data))
        for g, (sec, off, ctype, target) in zip(sorted(got), sorted(want)):
            howto, width, delta = RELOC_MAP[arch][ctype]
            place = int.from_bytes(bytes(data[sec][off:off + width]), "little", signed=True)
            assert g == (sec, off, howto, target, place + delta), (o, g)
            seen.add(ctype)
    unwind = "-fno-asynchronous-unwind-tables" not in flags
    if arch == "amd64":
        assert {"IMAGE_REL_AMD64_REL32", "IMAGE_REL_AMD64_ADDR64"} <= seen, seen
        assert ("IMAGE_REL_AMD64_ADDR32NB" in seen) == unwind, seen
    else:
        assert seen == {"dir32", "DISP32"}, seen


def test_comdat_refptr_leaders_are_weak(imported):
    """x86_64 gcc reaches extern variables through .refptr.NAME, one copy per
    object in a COMDAT (selection ANY) section: the copies' leaders are weak,
    so that two objects that both have one link."""
    arch, _, objs, outs = imported
    refptrs = [s for out in outs for s in symbols_of(read_object(str(out)))
               if s[0].startswith(".refptr.")]
    assert bool(refptrs) == (arch == "amd64"), refptrs    # i686 gcc makes none
    assert all(s[1] == ".rdata$" + s[0] and s[3] == "weak" for s in refptrs), refptrs


def test_readable_and_compact_agree(imported, tmp_path):
    arch, _, objs, outs = imported
    p = minild("import", *objs, "-o", tmp_path, "--compact")
    assert p.returncode == 0
    for o, out in zip(objs, outs):
        r, c = read_object(str(out)), read_object(str(tmp_path / (o.stem + ".obj")))
        assert symbols_of(r) == symbols_of(c)
        assert r.sec_data == c.sec_data and r.rel_off.tolist() == c.rel_off.tolist()
        assert r.rel_add.tolist() == c.rel_add.tolist()


# --- weak externals ----------------------------------------------------------------

WEAK_C = """
extern void maybe(void) __attribute__((weak));
void wdef(void) __attribute__((weak));
void wdef(void) {}
int call(void) { if (maybe) maybe(); wdef(); return 0; }
"""


@pytest.mark.parametrize("arch", ["amd64", "x86"])
def test_weak_externals(arch, tmp_path):
    """A weak definition (weak external whose default is .weak.wdef.call in
    .text) is a weak symbol defined there; a weak reference (default: an
    absolute 0) is an undefined weak symbol; gas's .weak.* defaults are local."""
    (tmp_path / "w.c").write_text(WEAK_C)
    (o,) = compile_c(arch, tmp_path, ["-O2"], ["w.c"])
    minild("import", o, "-o", tmp_path / "w.obj")
    syms = {s[0]: s for s in symbols_of(read_object(str(tmp_path / "w.obj")))}
    pre = "_" if arch == "x86" else ""
    assert syms[pre + "wdef"][1:] == (".text", 0, "weak", "func")
    assert syms[pre + "maybe"][1:] == (None, 0, "weak", "func")
    defaults = [s for n, s in syms.items() if n.startswith(".weak.")]
    assert len(defaults) == 2 and all(s[3] == "local" for s in defaults), defaults


# --- refused and broken inputs -------------------------------------------------------

def refused(obj: Path, tmp_path: Path, *words: str) -> str:
    out = tmp_path / "refused.obj"
    p = minild("import", obj, "-o", out, check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and not out.exists(), p.stderr
    assert p.stderr.startswith(f"error: {obj}:"), p.stderr
    for w in words:
        assert w in p.stderr, p.stderr
    return p.stderr


def one_object(arch: str, tmp_path: Path, src: str, *flags: str) -> Path:
    (tmp_path / "t.c").write_text(src)
    return compile_c(arch, tmp_path, ["-O2", *flags], ["t.c"])[0]


def assemble(arch: str, tmp_path: Path, src: str) -> Path:
    s, o = tmp_path / "t.s", tmp_path / "t.o"
    s.write_text(src)
    subprocess.run([objtool(arch, "as"), "-o", str(o), str(s)], check=True)
    return o


@pytest.mark.parametrize("arch", ["amd64", "x86"])
def test_common_symbol_refused(arch, tmp_path):
    o = one_object(arch, tmp_path, "int counter;\nint get(void) { return counter; }\n",
                   "-fcommon")
    name = "_counter" if arch == "x86" else "counter"
    refused(o, tmp_path, f"common symbol {name} (4 bytes)", "-fno-common")


@pytest.mark.parametrize("arch", ["amd64", "x86"])
def test_tls_section_refused(arch, tmp_path):
    o = assemble(arch, tmp_path, '.section .tls$,"w"\n.globl v\nv: .long 1\n'
                                 '.text\n.globl f\nf: ret\n')
    refused(o, tmp_path, "section [", ".tls$: thread-local storage is not supported")


@pytest.mark.parametrize("arch", ["amd64", "x86"])
def test_constructor_refused(arch, tmp_path):
    o = one_object(arch, tmp_path, "int x;\n__attribute__((constructor)) static void init(void)"
                                   " { x = 1; }\n")
    refused(o, tmp_path, ".ctors: constructors and destructors need a C runtime")


def test_largest_comdat_refused(tmp_path):
    o = assemble("amd64", tmp_path, '.section .data$b,"w"\n.linkonce same_size\n'
                                    '.globl big\nbig: .quad 1\n')
    minild("import", o, "-o", tmp_path / "ok.obj")     # SAME_SIZE: imported, weak
    syms = {s[0]: s for s in symbols_of(read_object(str(tmp_path / "ok.obj")))}
    assert syms["big"][1:4] == (".data$b", 0, "weak")
    # The aux record of the section-definition symbol: selection byte at +14.
    raw = bytearray(o.read_bytes())
    _, nsec, _, symoff, nsym, _, _ = struct.unpack_from("<HHIIIHH", raw)
    for i in range(nsym):
        rec = symoff + 18 * i
        if raw[rec:rec + 8].rstrip(b"\0") == b".data$b" and raw[rec + 17]:
            assert raw[rec + 18 + 14] == 3             # IMAGE_COMDAT_SELECT_SAME_SIZE
            raw[rec + 18 + 14] = 6                     # IMAGE_COMDAT_SELECT_LARGEST
            break
    else:
        raise AssertionError("no section-definition symbol for .data$b")
    o.write_bytes(raw)
    refused(o, tmp_path, ".data$b: COMDAT selection LARGEST (6) is not supported")


def reloc_tables(raw: bytes):
    """(section name, file offset of its relocations, count) of a COFF object."""
    _, nsec, _, _, _, opt, _ = struct.unpack_from("<HHIIIHH", raw)
    for i in range(nsec):
        h = 20 + opt + 40 * i
        name = raw[h:h + 8].rstrip(b"\0").decode()
        reloff, nreloc = struct.unpack_from("<I", raw, h + 24)[0], \
            struct.unpack_from("<H", raw, h + 32)[0]
        yield name, reloff, nreloc


@pytest.mark.parametrize("arch,code,name", [("amd64", 0xA, "IMAGE_REL_AMD64_SECTION (0xa)"),
                                            ("amd64", 0x42, "#0x42"),
                                            ("x86", 0xC, "IMAGE_REL_I386_TOKEN (0xc)")])
def test_bad_relocation_type_refused(arch, code, name, tmp_path):
    o = compile_c(arch, tmp_path, ["-O2"], ["ops.c"])[0]
    raw = bytearray(o.read_bytes())
    _, reloff, n = next(t for t in reloc_tables(raw) if t[0] == ".text" and t[2])
    off = struct.unpack_from("<I", raw, reloff)[0]
    struct.pack_into("<H", raw, reloff + 8, code)
    o.write_bytes(raw)
    refused(o, tmp_path, f"section [1] .text: relocation {name} at .text+{off:#x}",
            "unknown relocation type")


def test_relocation_past_symbol_table_refused(tmp_path):
    o = compile_c("amd64", tmp_path, ["-O2"], ["ops.c"])[0]
    raw = bytearray(o.read_bytes())
    _, reloff, _ = next(t for t in reloc_tables(raw) if t[0] == ".text")
    struct.pack_into("<I", raw, reloff + 4, 99999)
    o.write_bytes(raw)
    refused(o, tmp_path, "refers to symbol #99999, past the end of the symbol table")


@pytest.mark.parametrize("arch", ["amd64", "x86"])
def test_truncated_refused(arch, tmp_path):
    whole = compile_c(arch, tmp_path, ["-O2"], ["out.c"])[0].read_bytes()
    for n in (3, 20, 100, len(whole) // 2, len(whole) - 5):
        cut = tmp_path / f"cut{n}.o"
        cut.write_bytes(whole[:n])
        err = refused(cut, tmp_path)
        assert "malformed COFF object" in err or "past the end" in err, err


def test_fuzzed_objects_fail_cleanly(tmp_path):
    """Random byte changes and cuts: an Object or a LinkError, nothing else."""
    rng = random.Random(1)
    seeds = [compile_c(arch, tmp_path / arch, ["-O2"], ["main.c"])[0].read_bytes()
             for arch in ("amd64", "x86") if (tmp_path / arch).mkdir() is None]
    f = tmp_path / "fuzz.o"
    for i in range(400):
        raw = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            k = rng.randrange(2, len(raw))
            raw[k] = rng.randrange(256) if rng.random() < 0.7 else 0xFF
        if rng.random() < 0.2:
            raw = raw[:rng.randrange(2, len(raw))]
        f.write_bytes(raw)
        try:
            import_elf(str(f))
        except LinkError as e:
            assert str(e).startswith(str(f)), str(e)


def test_image_refused(tmp_path):
    o = compile_c("amd64", tmp_path, ["-O2"], ["ops.c"])[0]
    raw = bytearray(o.read_bytes())
    struct.pack_into("<H", raw, 18, 0x2)     # IMAGE_FILE_EXECUTABLE_IMAGE
    o.write_bytes(raw)
    refused(o, tmp_path, "expected a COFF relocatable object, got an image")


def test_debug_info_needs_secrel(tmp_path):
    """-g: DWARF's section-relative offsets are IMAGE_REL_AMD64_SECREL, which
    minild does not link (PE output leaves DWARF out): refused by name."""
    assert not has_howto("amd64", "IMAGE_REL_AMD64_SECREL")
    o = one_object("amd64", tmp_path, (PE_C / "ops.c").read_text().replace(
        '#include "win.h"', '#include "' + str(PE_C / "win.h") + '"'), "-g")
    refused(o, tmp_path, "relocation IMAGE_REL_AMD64_SECREL (0xb) at .debug_",
            "unknown relocation type")
