"""`minild import` of WebAssembly objects from clang-14 --target=wasm32 (minild/wasmobj.py).

The C program in tests/data/wasm_c (calls across objects, function pointers
through the table, from data and from code, a switch, rodata strings, data
with pointers to other data with addends, bss, WASI fd_write/proc_exit
declared with import_module/import_name, an export_name, entry _start) is
compiled at -O2, -O0 and -Os and each object imported. Each imported object is
checked against what wabt's wasm-objdump says about the .o (-x -r: types,
imports, function bodies' sizes, data segments with their bytes, names,
alignment and relocations, the symbol table; -d: where each function body
starts in the file, to rebase the code relocations independently). Then
broken and unsupported inputs: each is refused with exit status 1, a located
message and no traceback; truncated and corrupted files never raise anything
but LinkError.
"""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from minild import arch as archreg
from minild import wasmobj
from minild.errors import LinkError
from minild.vocab import ABS, BINDINGS, IMPORT, KINDS, TYPES, UNDEF

from conftest import ROOT, minild, tool

WASM_C = ROOT / "tests" / "data" / "wasm_c"
SOURCES = ("main.c", "ops.c", "out.c", "tables.c")
CFLAGS = ("--target=wasm32", "-c", "-nostdlib", "-ffreestanding", "-Wall", "-Wextra", "-Werror")
OPTS = ("-O2", "-O0", "-Os")


def run(cmd) -> str:
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))}:\n{p.stdout}{p.stderr}"
    return p.stdout


def compile_c(d: Path, flags=(), sources=SOURCES, src_dir=WASM_C) -> list[Path]:
    out = []
    for s in sources:
        o = d / Path(s).with_suffix(".o").name
        run([tool("clang-14"), *CFLAGS, *flags, "-I", WASM_C, "-o", o, src_dir / s])
        out.append(o)
    return out


@pytest.fixture(scope="module", params=OPTS)
def objects(request, tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("wasm" + request.param)
    return compile_c(d, (request.param,))


# --- wasm-objdump's view of an object ----------------------------------------

class Dump:
    """Dump is what `wasm-objdump -x -r` and `-d` say about one object."""

    def __init__(self, path: Path):
        x = run([tool("wasm-objdump"), "-x", "-r", path])
        dis = run([tool("wasm-objdump"), "-d", path])
        self.types, self.fimports, self.ftypes, self.code = [], [], {}, []
        self.segs, self.seginfo, self.syms, self.relocs = [], [], [], []
        self.exports = {}
        self.body_start = {int(m[1]): int(m[0], 16) for m in
                           re.findall(r"^([0-9a-f]+) func\[(\d+)\] <.*>:$", dis, re.M)}
        cur = None
        for line in x.splitlines():
            if m := re.match(r"^(\w+)(\[\d+\])?:$", line):
                cur = m[1]
                continue
            if cur == "Custom" and (m := re.match(r' - name: "(.*)"$', line)):
                cur = m[1]
                continue
            if cur == "Type" and (m := re.match(r" - type\[\d+\] \((.*)\) -> (.*)$", line)):
                params = tuple(p for p in m[1].split(", ") if p)
                results = () if m[2] == "nil" else tuple(m[2].split(", "))
                self.types.append((params, results))
            elif cur == "Import" and (m := re.match(r" - func\[(\d+)\] sig=(\d+) .*<- (.+?)\.(.+)$",
                                                    line)):
                self.fimports.append((m[3], m[4], int(m[2])))
                self.ftypes[int(m[1])] = int(m[2])
            elif cur == "Function" and (m := re.match(r" - func\[(\d+)\] sig=(\d+)", line)):
                self.ftypes[int(m[1])] = int(m[2])
            elif cur == "Export" and (m := re.match(r' - func\[(\d+)\] .*-> "(.*)"$', line)):
                self.exports[int(m[1])] = m[2]
            elif cur == "Code" and (m := re.match(r" - func\[(\d+)\] size=(\d+)", line)):
                self.code.append((int(m[1]), int(m[2])))
            elif cur == "Data":
                if m := re.match(r" - segment\[\d+\] <(.*)> memory=0 size=(\d+) - init i32=(\d+)$",
                                 line):
                    self.segs.append({"name": m[1], "size": int(m[2]), "init": int(m[3]),
                                      "bytes": bytearray()})
                elif m := re.match(r"  - [0-9a-f]{7}: (.*)$", line):
                    self.segs[-1]["bytes"] += bytes.fromhex(m[1][:39])
                elif m := re.match(r"\s+([0-9a-f]{6}): (R_WASM_\w+) (\d+)(?: ([+-]) (\d+))? <",
                                   line):
                    seg = self.segs[-1]
                    add = int(m[5] or 0) * (-1 if m[4] == "-" else 1)
                    self.relocs.append(("data", seg["name"], m[2], int(m[1], 16) - seg["init"],
                                        int(m[3]), add))
            elif cur == "linking":
                if m := re.match(r"   - (\d+): ([FDGTS]) <(.*?)> (.*)\[ (.*)\]$", line):
                    flags = m[5].split()
                    rest = dict(kv.split("=") for kv in m[4].split())
                    self.syms.append({"kind": m[2], "name": m[3], "flags": flags, **rest})
                elif m := re.match(r"   - \d+: (\S+) p2align=(\d+)", line):
                    self.seginfo.append((m[1], int(m[2])))
            elif cur == "reloc.CODE" and (m := re.match(
                    r"   - (R_WASM_\w+) offset=0x[0-9a-f]+\(file=0x([0-9a-f]+)\) "
                    r"(symbol|type)=(\d+)(?: <.*?>([+-]0x[0-9a-f]+)?)?$", line)):
                self.relocs.append(("code", int(m[2], 16), m[1], m[3], int(m[4]),
                                    int(m[5] or "0", 16)))

    def symbol_name(self, k: int) -> str:
        """The symbol's own name: wasm-objdump shows an undefined function or
        global without an explicit name as module.field; its name is the field."""
        s = self.syms[k]
        if "undefined" in s["flags"] and "explicit_name" not in s["flags"] and "." in s["name"]:
            return s["name"].split(".", 1)[1]
        return s["name"]


def reloc_name(obj, k: int) -> str:
    return archreg.lookup("wasm").howtos[int(obj.rel_type[k])].name


# --- the objects, against wasm-objdump ----------------------------------------

def test_objects_match_objdump(objects):
    for path in objects:
        obj = wasmobj.read(str(path), path.read_bytes())
        dump = Dump(path)
        data = path.read_bytes()
        assert obj.arch == "wasm"
        assert obj.types == dump.types, path
        nimp = len(dump.fimports)

        # One text section per function body, its bytes the body from the file.
        text = [i for i, k in enumerate(obj.sec_kind.tolist()) if KINDS[k] == "text"]
        assert len(text) == len(dump.code), path
        for i, (fidx, size) in zip(text, dump.code):
            start = dump.body_start[fidx]
            assert obj.sec_size[i] == size
            assert obj.sec_data[i] == data[start:start + size]
            assert obj.sec_data[i][-1] == 0x0B
            assert obj.sec_align[i] == 1

        # One section per data segment: name, size, kind, alignment, bytes.
        datas = [i for i, k in enumerate(obj.sec_kind.tolist()) if KINDS[k] != "text"]
        assert [obj.sec_name[i] for i in datas] == [s["name"] for s in dump.segs]
        assert [n for n, _ in dump.seginfo] == [s["name"] for s in dump.segs]
        for i, seg, (_, p2) in zip(datas, dump.segs, dump.seginfo):
            name, kind = seg["name"], KINDS[obj.sec_kind[i]]
            assert obj.sec_size[i] == seg["size"] == len(seg["bytes"])
            assert obj.sec_align[i] == 1 << p2
            want = ("rodata" if name.startswith(".rodata") else
                    "bss" if name.startswith(".bss") else "data")
            assert kind == want, name
            if kind == "bss":
                assert obj.sec_data[i] is None and not any(seg["bytes"])
            else:
                assert obj.sec_data[i] == bytes(seg["bytes"])

        # Symbols: every one but the function table's, in order; then the
        # empty-named absolute symbol if a call_indirect needs it.
        names = list(obj.sym_name)
        ours = {}       # wasm symbol index -> minild symbol index
        j = 0
        for k, s in enumerate(dump.syms):
            if s["kind"] == "T":
                assert s["name"].endswith("__indirect_function_table")
                continue
            ours[k] = j
            name = dump.symbol_name(k)
            assert names[j] == name, (path, k)
            bind = next(f.split("=")[1] for f in s["flags"] if f.startswith("binding="))
            assert BINDINGS[obj.sym_bind[j]] == bind, name
            undef = "undefined" in s["flags"]
            if s["kind"] == "F":
                fidx = int(s["func"])
                assert TYPES[obj.sym_type[j]] == "func"
                assert obj.signatures[j] == dump.ftypes[fidx]
                if undef:
                    module, field, _ = dump.fimports[fidx]
                    if module != "env" or "explicit_name" in s["flags"]:
                        assert obj.sym_sec[j] == IMPORT
                        assert (j, module, field) in obj.imports
                    else:
                        assert obj.sym_sec[j] == UNDEF
                else:
                    sec = int(obj.sym_sec[j])
                    assert obj.sec_name[sec] == f".text.{name}"
                    assert obj.sec_data[sec] == obj.sec_data[text[fidx - nimp]]
                    assert obj.sym_value[j] == 0
                if "exported" in s["flags"] or fidx in dump.exports:
                    assert obj.exports[j] == dump.exports.get(fidx, name)
                else:
                    assert j not in obj.exports
            elif s["kind"] == "D":
                assert TYPES[obj.sym_type[j]] == "object"
                if undef:
                    assert obj.sym_sec[j] == UNDEF
                else:
                    seg = int(s["segment"])
                    assert obj.sym_sec[j] == datas[seg]
                    assert obj.sym_value[j] == int(s["offset"])
                    assert obj.sym_size[j] == int(s["size"])
            else:
                assert s["kind"] == "G" and name == "__stack_pointer" and undef
                assert obj.sym_sec[j] == UNDEF
            j += 1
        if any(r[2] == "R_WASM_TYPE_INDEX_LEB" for r in dump.relocs):
            assert names[j] == "" and obj.sym_sec[j] == ABS and obj.sym_value[j] == 0
            j += 1
        assert j == len(names)
        assert {j for j, _, _ in obj.imports} == set(np.flatnonzero(obj.sym_sec == IMPORT))

        # Relocations: every one, its offset rebased to the function body or segment.
        want = []
        for r in dump.relocs:
            if r[0] == "code":
                _, fileoff, typ, what, idx, add = r
                fidx = max(f for f, st in dump.body_start.items() if st <= fileoff)
                sec = f".text.{names[ours[next(k for k, s in enumerate(dump.syms) if s['kind'] == 'F' and int(s['func']) == fidx)]]}"  # noqa: E501
                off = fileoff - dump.body_start[fidx]
                if what == "type":
                    want.append((sec, off, typ, "", idx))
                else:
                    want.append((sec, off, typ, names[ours[idx]], add))
            else:
                _, seg, typ, off, idx, add = r
                want.append((seg, off, typ, names[ours[idx]], add))
        got = [(obj.sec_name[int(obj.rel_sec[k])], int(obj.rel_off[k]), reloc_name(obj, k),
                names[int(obj.rel_sym[k])], int(obj.rel_add[k])) for k in range(len(obj.rel_off))]
        assert sorted(got) == sorted(want), path


def test_what_the_program_holds(objects):
    """The objects exercise what the importer must handle (so that the test
    above checks something)."""
    objs = {p.stem: wasmobj.read(str(p), p.read_bytes()) for p in objects}
    types = set()
    for o in objs.values():
        types |= {reloc_name(o, k) for k in range(len(o.rel_off))}
    assert types == {h.name for h in archreg.lookup("wasm").howtos} >= {
        "R_WASM_FUNCTION_INDEX_LEB", "R_WASM_TABLE_INDEX_SLEB", "R_WASM_TABLE_INDEX_I32",
        "R_WASM_MEMORY_ADDR_LEB", "R_WASM_MEMORY_ADDR_SLEB", "R_WASM_MEMORY_ADDR_I32",
        "R_WASM_TYPE_INDEX_LEB", "R_WASM_GLOBAL_INDEX_LEB"}
    out = objs["out"]
    assert sorted((m, n) for _, m, n in out.imports) == [
        ("wasi_snapshot_preview1", "fd_write"), ("wasi_snapshot_preview1", "proc_exit")]
    assert "__stack_pointer" in list(out.sym_name)
    assert {KINDS[k] for k in out.sec_kind.tolist()} == {"text", "bss"}
    main = objs["main"]
    assert list(main.exports.values()) == ["answer"]
    assert "_start" in list(main.sym_name)
    tables = objs["tables"]
    adds = {int(a) for a in tables.rel_add.tolist()}
    assert {12, 4} <= adds      # &counters[3], &"the tail"[4]
    assert {KINDS[k] for k in tables.sec_kind.tolist()} == {"rodata", "data", "bss"}


def test_cli_round_trip(objects, tmp_path):
    """minild import writes the object; the loader reads back what read() made."""
    from minild.loader import read_object
    for compact in (False, True):
        d = tmp_path / ("compact" if compact else "readable")
        minild("import", *objects, "-o", d, *(["--compact"] if compact else []))
        for p in objects:
            a = wasmobj.read(str(p), p.read_bytes())
            b = read_object(str(d / (p.stem + ".obj")))
            assert b.arch == "wasm" and b.sec_name == a.sec_name
            assert b.sec_data == a.sec_data
            assert list(b.sym_name) == list(a.sym_name)
            for col in ("sec_kind", "sec_align", "sec_size", "sym_sec", "sym_value", "sym_size",
                        "sym_bind", "sym_type", "rel_sec", "rel_off", "rel_type", "rel_sym",
                        "rel_add"):
                assert getattr(b, col).tolist() == getattr(a, col).tolist(), col
            assert sorted(b.imports) == sorted(a.imports)
            assert [tuple(map(tuple, t)) for t in b.types] == a.types
            assert dict(b.signatures) == a.signatures and dict(b.exports) == a.exports


# --- what is refused ------------------------------------------------------------

def leb(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def sections(data: bytes) -> list[tuple[int, bytes]]:
    """sections splits a module into (id, payload) (custom payloads keep their name)."""
    out, pos = [], 8
    while pos < len(data):
        sid = data[pos]
        pos += 1
        size = shift = 0
        while True:
            b = data[pos]
            pos += 1
            size |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        out.append((sid, data[pos:pos + size]))
        pos += size
    return out


def module(secs) -> bytes:
    return data_header() + b"".join(bytes([sid]) + leb(len(p)) + p for sid, p in secs)


def data_header() -> bytes:
    return b"\0asm\1\0\0\0"


def custom(name: str, payload: bytes) -> tuple[int, bytes]:
    return 0, leb(len(name)) + name.encode() + payload


def custom_name(payload: bytes) -> str:
    return payload[1:1 + payload[0]].decode()


@pytest.fixture(scope="module")
def o2(tmp_path_factory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("wasmbad")
    return {p.stem: p.read_bytes() for p in compile_c(d, ("-O2",))}


def with_reloc_code(data: bytes, entries: bytes, count: int = 1) -> bytes:
    secs = sections(data)
    code = next(i for i, (sid, _) in enumerate(secs) if sid == 10)
    secs = [s for s in secs if not (s[0] == 0 and custom_name(s[1]) == "reloc.CODE")]
    secs.append(custom("reloc.CODE", leb(code) + leb(count) + entries))
    return module(secs)


def refused(tmp_path, name: str, data: bytes, *patterns: str):
    p = tmp_path / name
    p.write_bytes(data)
    r = minild("import", p, "-o", tmp_path / (name + ".obj"), check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / (name + ".obj")).exists()
    assert r.stderr.startswith(f"error: {p}: "), r.stderr
    for pat in patterns:
        assert re.search(pat, r.stderr), f"{pat!r} not in:\n{r.stderr}"


def pad5(n: int) -> bytes:
    return bytes([(n >> (7 * i)) & 0x7F | (0x80 if i < 4 else 0) for i in range(5)])


def test_refused(o2, tmp_path):
    main = o2["main"]
    refused(tmp_path, "v2.o", main[:4] + b"\2\0\0\0" + main[8:],
            r"wasm binary version 2 is not supported")
    no_linking = module(s for s in sections(main)
                        if not (s[0] == 0 and custom_name(s[1]).startswith(("linking", "reloc."))))
    refused(tmp_path, "nolink.o", no_linking, r"not a relocatable wasm object")
    # relocations: an unknown type, a place outside any body, a symbol past the table
    refused(tmp_path, "rtype.o", with_reloc_code(main, bytes([99]) + leb(0) + leb(0)),
            r"section \[\d+\] reloc\.CODE: relocation \[0\]: unknown relocation type 99")
    refused(tmp_path, "roff.o", with_reloc_code(main, bytes([0]) + leb(0x7FFFFF) + leb(2)),
            r"reloc\.CODE: relocation R_WASM_FUNCTION_INDEX_LEB at Code\+0x7fffff: its 5-byte "
            r"place does not lie inside one function body")
    refused(tmp_path, "rsym.o", with_reloc_code(main, bytes([0]) + leb(0x12) + leb(999)),
            r"refers to symbol #999, past the end of the symbol table")
    refused(tmp_path, "rcount.o", with_reloc_code(main, bytes([0]) + pad5(0x12) + leb(2), 2),
            r"reloc\.CODE: malformed: 2 relocations declared")
    refused(tmp_path, "r64.o", with_reloc_code(main, bytes([14]) + leb(0x12) + leb(2) + leb(0)),
            r"relocation R_WASM_MEMORY_ADDR_LEB64 \(14\) at Code\+0x12 against symbol apply: "
            r"unknown relocation type for minild's wasm")
    # a COMDAT and an init function added to the linking section
    secs = sections(main)
    k = next(i for i, s in enumerate(secs) if s[0] == 0 and custom_name(s[1]) == "linking")
    comdat = leb(1) + leb(3) + b"cdt" + leb(0) + leb(0)
    secs[k] = (0, secs[k][1] + bytes([7]) + leb(len(comdat)) + comdat)
    refused(tmp_path, "comdat.o", module(secs),
            r"section \[\d+\] linking: subsection WASM_COMDAT_INFO: COMDATs are not supported "
            r"\(cdt\)")
    # a second Type section
    secs = sections(main)
    secs.insert(1, secs[0])
    refused(tmp_path, "twotypes.o", module(secs), r"section \[1\] Type: a second Type section")
    # a linked module is not an object
    exe = tmp_path / "prog.wasm"
    objs = [tmp_path / f"{n}.o" for n in o2]
    for n, o in zip(o2, objs):
        o.write_bytes(o2[n])
    run([tool("wasm-ld-14"), "--allow-undefined", "-o", exe, *objs])
    refused(tmp_path, "prog.wasm", exe.read_bytes(), r"not a relocatable wasm object")


def test_refused_from_sources(tmp_path):
    """What clang writes that minild cannot link: constructors, wasm64; and a
    global whose initial value is not a constant."""
    (tmp_path / "ctor.c").write_text("void setup(void);\n__attribute__((constructor)) static "
                                     "void init(void) { setup(); }\n")
    (tmp_path / "glob.s").write_text(".globaltype g, i32\ng:\n")   # initial value: 0
    (tmp_path / "w64.c").write_text("int x;\nint *p(void) { return &x; }\n")
    ctor, = compile_c(tmp_path, ("-O2",), ("ctor.c",), tmp_path)
    refused(tmp_path, "ctor.o", ctor.read_bytes(),
            r"linking: subsection WASM_INIT_FUNCS: 1 init functions \(constructors\)")
    run([tool("clang-14"), "--target=wasm32", "-c", "-o", tmp_path / "glob.o",
         tmp_path / "glob.s"])
    raw = bytearray((tmp_path / "glob.o").read_bytes())
    at = raw.index(bytes([0x7F, 0x01, 0x41, 0x00, 0x0B]))   # i32, mutable, i32.const 0, end
    raw[at + 2:at + 4] = bytes([0x23, 0x00])                 # global.get 0: not a constant
    refused(tmp_path, "glob2.o", bytes(raw),
            r"global \[0\]: an initial value other than a constant \(opcode 0x23\)")
    run([tool("clang-14"), "--target=wasm64", "-O2", "-c", "-o", tmp_path / "w64.o",
         tmp_path / "w64.c"])
    refused(tmp_path, "w64b.o", (tmp_path / "w64.o").read_bytes(),
            r"section \[\d+\] Import: import \[0\] env.__linear_memory: a 64-bit memory "
            r"\(wasm64\) is not supported")


def test_fuzz(o2, tmp_path):
    """Truncated at every byte and corrupted at random: an Object or a
    LinkError, never another exception."""
    rng = random.Random(7)
    for name, data in o2.items():
        for cut in range(8, len(data)):
            try:
                wasmobj.read(name, data[:cut])
            except LinkError:
                pass
        for _ in range(400):
            b = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(8, len(b))] = rng.choice((0, 0x7F, 0x80, 0xFF, rng.randrange(256)))
            try:
                wasmobj.read(name, bytes(b))
            except LinkError:
                pass
    refused(tmp_path, "cut.o", o2["out"][:len(o2["out"]) // 2], r"section \[\d+\] ")
