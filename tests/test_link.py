"""End-to-end links of the amd64 and x86 examples: they run (natively; the
kernel runs i386 too), readelf accepts them and matches the golden dumps, the
flags do what they say, and every way of writing gives the same bytes."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import EXAMPLES, golden, minild, readelf, run_output
from minild import arch
from minild.encode import encode_compact
from minild.loader import GLOBAL, KIND_ID, Object, read_object
from minild.names import Names

MULTI = [EXAMPLES / "multi" / f"{n}.obj" for n in ("main", "greet", "ops")]


@pytest.mark.parametrize("archname", ["amd64", "x86"])
def test_hello_runs_and_matches_golden(tmp_path, archname):
    out = tmp_path / "hello"
    minild("link", EXAMPLES / "hello" / f"{archname}.obj", "-o", out)
    p = run_output(archname, out)
    assert (p.stdout, p.returncode) == (b"hello, world\n", 0)
    golden(f"hello-{archname}.readelf", readelf(out))


# Every ELF arch's header and stack, from the ELF and psABI documents (not from
# minild's arch table): class, byte order, e_machine, e_flags.
ELF_IDENT = {
    "amd64": (2, "<", 62, 0), "x86": (1, "<", 3, 0),
    "arm": (1, "<", 40, 0x05000000),                 # EF_ARM_EABI_VER5
    "arm64": (2, "<", 183, 0),
    "mips": (1, ">", 8, 0x70001001), "mipsle": (1, "<", 8, 0x70001001),  # 32r2, o32, noreorder
    "mips64": (2, ">", 8, 0x80000001), "mips64le": (2, "<", 8, 0x80000001),  # 64r2, noreorder
    "ppc64": (2, ">", 21, 2), "ppc64le": (2, "<", 21, 2),                # ELFv2
    "riscv64": (2, "<", 243, 5),                     # RVC, double-float ABI
    "s390x": (2, ">", 22, 0),
}
PT_LOAD, PT_GNU_STACK = 1, 0x6474E551


def elf_header_and_phdrs(data: bytes):
    """elf_header_and_phdrs parses the ELF header and program headers with
    struct alone: (class, order, e_machine, e_flags, [(p_type, p_flags)])."""
    import struct
    assert data[:4] == b"\x7fELF"
    cls, order = data[4], "<" if data[5] == 1 else ">"
    if cls == 2:
        machine, = struct.unpack_from(order + "H", data, 18)
        phoff, = struct.unpack_from(order + "Q", data, 32)
        flags, _, phentsize, phnum = struct.unpack_from(order + "IHHH", data, 48)
        ph = [struct.unpack_from(order + "II", data, phoff + k * phentsize) for k in range(phnum)]
    else:
        machine, = struct.unpack_from(order + "H", data, 18)
        phoff, = struct.unpack_from(order + "I", data, 28)
        flags, _, phentsize, phnum = struct.unpack_from(order + "IHHH", data, 36)
        ph = [struct.unpack_from(order + "I", data, phoff + k * phentsize)
              + struct.unpack_from(order + "I", data, phoff + k * phentsize + 24)
              for k in range(phnum)]
    return cls, order, machine, flags, ph


@pytest.mark.parametrize("archname", sorted(ELF_IDENT))
def test_elf_header_and_stack_of_every_arch(tmp_path, archname):
    """minild's own output, read directly: the ELF class, byte order, e_machine
    and e_flags of the arch, loadable segments, and a PT_GNU_STACK that is
    read-write and not executable."""
    out = tmp_path / "hello"
    minild("link", EXAMPLES / "hello" / f"{archname}.obj", "-o", out)
    cls, order, machine, flags, ph = elf_header_and_phdrs(out.read_bytes())
    assert (cls, order, machine, flags) == ELF_IDENT[archname]
    stacks = [f for t, f in ph if t == PT_GNU_STACK]
    assert stacks == [6], f"PT_GNU_STACK flags {stacks} (want RW = 6)"
    assert any(t == PT_LOAD for t, _ in ph)


def test_golden_files_are_strict(tmp_path, monkeypatch):
    """A missing golden file fails the test instead of being written, and a
    different text fails too; only MINILD_REGEN_GOLDEN=1 writes."""
    import conftest
    monkeypatch.setattr(conftest, "GOLDEN", tmp_path)
    monkeypatch.setattr(conftest, "REGEN", False)
    with pytest.raises(pytest.fail.Exception, match="missing"):
        conftest.golden("nope.readelf", "text")
    assert not (tmp_path / "nope.readelf").exists()
    (tmp_path / "g").write_text("old")
    with pytest.raises(AssertionError, match="differs from golden"):
        conftest.golden("g", "new")
    monkeypatch.setattr(conftest, "REGEN", True)
    conftest.golden("g", "new")
    assert (tmp_path / "g").read_text() == "new"


def test_ci_refuses_to_regenerate_golden_files():
    """.ci/run stops before running anything when MINILD_REGEN_GOLDEN is set."""
    ci = Path(__file__).resolve().parent.parent / ".ci" / "run"
    for value in ("1", "0", ""):
        p = subprocess.run(["bash", str(ci)], capture_output=True, text=True,
                           env=dict(os.environ, MINILD_REGEN_GOLDEN=value), timeout=30)
        assert p.returncode == 2 and "MINILD_REGEN_GOLDEN" in p.stderr, p.stderr


def test_multi_object_example_runs(tmp_path):
    out = tmp_path / "multi"
    minild("link", *MULTI, "-o", out)
    p = run_output("amd64", out)
    # greet() prints, three functions from a pointer table add 5, 10 and 15 into bss.
    assert (p.stdout, p.returncode) == (b"hello from greet\ndone\n", 30)
    golden("multi-amd64.readelf", readelf(out))


def test_segments_permissions_and_congruence(tmp_path):
    out = tmp_path / "multi"
    minild("link", *MULTI, "-o", out)
    from elftools.elf.elffile import ELFFile
    with open(out, "rb") as f:
        e = ELFFile(f)
        loads = [s for s in e.iter_segments() if s["p_type"] == "PT_LOAD"]
        assert [s["p_flags"] for s in loads] == [5, 4, 6]   # R+X, R, R+W
        for s in loads:
            assert s["p_vaddr"] % s["p_align"] == s["p_offset"] % s["p_align"]
        bss = e.get_section_by_name(".bss")
        data = e.get_section_by_name(".data")
        assert bss["sh_type"] == "SHT_NOBITS" and bss["sh_addr"] >= data["sh_addr"] + data["sh_size"]
        assert loads[2]["p_memsz"] > loads[2]["p_filesz"]  # bss takes no file space
        assert e.header["e_entry"] == e.get_section_by_name(".symtab").get_symbol_by_name("_start")[0]["st_value"]


def test_text_addr_round_and_entry_flags(tmp_path):
    out = tmp_path / "t"
    minild("link", *MULTI, "-o", out, "-T", "0x800000", "-R", "0x10000", "-e", "_start")
    from elftools.elf.elffile import ELFFile
    with open(out, "rb") as f:
        e = ELFFile(f)
        assert e.get_section_by_name(".text")["sh_addr"] == 0x800000
        assert all(s["p_align"] == 0x10000 for s in e.iter_segments() if s["p_type"] == "PT_LOAD")
    assert run_output("amd64", out).returncode == 30
    # -e names another entry: greet returns into nowhere, so only check e_entry.
    minild("link", *MULTI, "-o", out, "-e", "greet")
    syms = readelf(out, "-s", "-h")
    greet = [ln.split()[1] for ln in syms.splitlines() if ln.endswith(" greet")][0]
    assert f"Entry point address:               0x{int(greet, 16):x}" in syms


def test_strip_drops_symbols(tmp_path):
    out = tmp_path / "s"
    minild("link", *MULTI, "-o", out, "-s")
    text = readelf(out)
    assert ".symtab" not in text and ".strtab" not in text
    assert run_output("amd64", out).returncode == 30


def _compact_copy(src, dst):
    obj = read_object(str(src))
    dst.write_bytes(encode_compact(obj, arch.lookup(obj.arch)))
    return dst


def test_readable_and_compact_link_to_identical_bytes(tmp_path):
    compact = [_compact_copy(p, tmp_path / p.name) for p in MULTI]
    assert json.loads(compact[0].read_text())["encoding"] == "compact"
    minild("link", *MULTI, "-o", tmp_path / "r")
    minild("link", *compact, "-o", tmp_path / "c")
    # The map names the object files, so compare outputs whose symbol tables
    # name the same files: link both from the same basenames.
    a, b = (tmp_path / "r").read_bytes(), (tmp_path / "c").read_bytes()
    assert a == b


def big_program(tmp_path, nfuncs=40000, nobj=4):
    """big_program writes nobj compact objects whose text spans several 1 MB
    blocks, each function calling the next object's functions and storing its
    own address in a data table: relocations of several types in every block."""
    a = arch.lookup("amd64")
    paths = []
    per = nfuncs // nobj
    # A function: call rel32 (5 bytes), lea rip-relative (7 bytes), int3 padding to 32.
    body = bytes.fromhex("e800000000" "488d0500000000") + b"\xcc" * 20
    for k in range(nobj):
        nxt = (k + 1) % nobj
        text = body * per
        names = [f"f{k}_{i}" for i in range(per)] + [f"f{nxt}_{i}" for i in range(per)]
        names += [f"tab{k}"] + (["_start"] if k == 0 else [])
        nsym = len(names)
        sec = np.full(nsym, -1, np.int32)
        sec[:per] = 0
        sec[2 * per] = 1
        val = np.zeros(nsym, np.int64)
        val[:per] = np.arange(per) * 32
        bind = np.full(nsym, GLOBAL, np.uint8)
        if k == 0:
            sec[-1] = 0
        i = np.arange(per)
        rsec = np.concatenate((np.zeros(2 * per), np.ones(per))).astype(np.int32)
        roff = np.concatenate((i * 32 + 1, i * 32 + 8, i * 8)).astype(np.int64)
        rtype = np.concatenate((np.full(per, a.index["R_X86_64_PLT32"]),
                                np.full(per, a.index["R_X86_64_PC32"]),
                                np.full(per, a.index["R_X86_64_64"]))).astype(np.int16)
        rsym = np.concatenate((per + i, np.full(per, 2 * per), i)).astype(np.int32)
        radd = np.concatenate((np.full(2 * per, -4), np.zeros(per))).astype(np.int64)
        o = Object(path=f"big{k}", arch="amd64", sec_name=[".text", ".data", ".bss"],
                   sec_kind=np.array([KIND_ID["text"], KIND_ID["data"], KIND_ID["bss"]], np.uint8),
                   sec_align=np.array([32, 8, 64], np.int64),
                   sec_size=np.array([len(text), per * 8, 4096], np.int64),
                   sec_data=[text, bytes(per * 8), None], sym_name=Names.from_list(names), sym_sec=sec,
                   sym_value=val, sym_size=np.zeros(nsym, np.int64), sym_bind=bind,
                   sym_type=np.zeros(nsym, np.uint8), rel_sec=rsec, rel_off=roff,
                   rel_type=rtype, rel_sym=rsym, rel_add=radd)
        p = tmp_path / f"big{k}.obj"
        p.write_bytes(encode_compact(o, a))
        paths.append(p)
    return paths


def test_deterministic_across_jobs_and_mmap(tmp_path):
    objs = big_program(tmp_path)
    outs = {}
    for name, flags in {"j1": ["-j1"], "j2": ["-j2"], "j4": ["-j4"],
                        "nommap": ["--no-mmap"], "nommap-j2": ["--no-mmap", "-j2"]}.items():
        out = tmp_path / f"out-{name}"
        minild("link", *objs, "-o", out, *flags)
        outs[name] = out.read_bytes()
    assert len(outs["j1"]) > 2 << 20   # several 1 MB blocks
    for name, data in outs.items():
        assert data == outs["j1"], name
    readelf(tmp_path / "out-j1")


def test_deterministic_with_small_blocks_through_the_api(tmp_path, monkeypatch):
    """Cut MULTI into as many blocks as possible, written by forked helpers
    even for a small link: same bytes as one block and -j1."""
    from minild import asmb
    from minild.link import Options, link
    monkeypatch.setattr(asmb, "FORK_BLOCKS", 2)
    outs = []
    for jobs, block, use_mmap in ((1, 1 << 20, True), (4, 1, True), (3, 1, False)):
        out = tmp_path / f"o{jobs}"
        link(Options(objects=[str(p) for p in MULTI], output=str(out), jobs=jobs,
                     block_size=block, mmap=use_mmap))
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]


# Thresholds lowered so that MULTI forks from the CLI: one block per input
# section, forked writers from 2 blocks, forked readers for any input.
FORK_ENV = {"MINILD_BLOCK_SIZE": "1", "MINILD_FORK_BLOCKS": "2", "MINILD_FORK_LOAD_BYTES": "0"}


def forks(log: Path) -> list[tuple[str, int, int, int]]:
    """forks reads MINILD_FORK_LOG: (module, lo, hi, exit status) per forked child."""
    if not log.exists():
        return []
    return [(m, int(lo), int(hi), int(c))
            for m, lo, hi, c in (line.split() for line in log.read_text().splitlines())]


def counting_program(d: Path, n: int = 8) -> list[Path]:
    """counting_program writes n+1 amd64 objects: f1..fn each add k to a counter
    in bss, through a pointer table in .data; _start calls each directly and
    through the table, then exits with the counter (2 * n(n+1)/2)."""
    def obj(name, text, relocs, symbols, extra=()):
        (d / name).write_text(json.dumps({
            "version": 1, "encoding": "readable", "arch": "amd64",
            "sections": [{"name": ".text", "kind": "text", "data": text.hex(" "),
                          "relocs": relocs}, *extra], "symbols": symbols}))
        return d / name
    objs = []
    for k in range(1, n + 1):   # add dword [rip+counter], k; ret
        objs.append(obj(f"f{k}.obj", bytes([0x83, 0x05, 0, 0, 0, 0, k, 0xC3]),
                        [{"offset": 2, "type": "R_X86_64_PC32", "symbol": "counter",
                          "addend": -5}],
                        [{"name": f"f{k}", "section": ".text"}, {"name": "counter"}]))
    text, relocs = b"", []
    for k in range(1, n + 1):   # call fk; call [rip+table+8(k-1)]
        relocs.append({"offset": len(text) + 1, "type": "R_X86_64_PLT32", "symbol": f"f{k}",
                       "addend": -4})
        relocs.append({"offset": len(text) + 7, "type": "R_X86_64_PC32", "symbol": "table",
                       "addend": 8 * (k - 1) - 4})
        text += bytes.fromhex("e8 00000000 ff15 00000000")
    relocs.append({"offset": len(text) + 2, "type": "R_X86_64_PC32", "symbol": "counter",
                   "addend": -4})   # mov edi, [rip+counter]; mov eax, 60; syscall
    text += bytes.fromhex("8b3d 00000000 b8 3c000000 0f05")
    table = {"name": ".data", "kind": "data", "align": 8, "data": "00 " * (8 * n),
             "relocs": [{"offset": 8 * (k - 1), "type": "R_X86_64_64", "symbol": f"f{k}"}
                        for k in range(1, n + 1)]}
    bss = {"name": ".bss", "kind": "bss", "align": 4, "size": 4}
    return [obj("main.obj", text, relocs,
                [{"name": "_start", "section": ".text"}, {"name": "counter", "section": ".bss"},
                 {"name": "table", "section": ".data", "binding": "local"}]
                + [{"name": f"f{k}"} for k in range(1, n + 1)], (table, bss))] + objs


def test_cli_jobs_really_fork(tmp_path):
    """The CLI's -j forks readers and block writers (MINILD_FORK_LOG says so),
    each child finishes its share, and -j1, -j2, -j4 and --no-mmap write the
    same bytes, which run to the exit status they compute."""
    objs = counting_program(tmp_path)
    outs = {}
    for name, flags in {"j1": ["-j1"], "j2": ["-j2"], "j4": ["-j4"],
                        "nommap-j2": ["--no-mmap", "-j2"]}.items():
        out, log = tmp_path / f"out-{name}", tmp_path / f"forks-{name}"
        minild("link", *objs, "-o", out, *flags, env=dict(FORK_ENV, MINILD_FORK_LOG=str(log)))
        outs[name] = out.read_bytes()
        f = forks(log)
        if name == "j1":
            assert f == [], f
            continue
        jobs = 4 if name == "j4" else 2
        readers = [x for x in f if x[0] == "minild.loader"]
        writers = [x for x in f if x[0] == "minild.asmb"]
        assert len(readers) == len(writers) == jobs - 1, f
        # Every child had a share and did it (none handed back to the parent).
        assert all(c == 0 and hi > lo for _, lo, hi, c in f), f
        p = run_output("amd64", out)
        assert (p.stdout, p.returncode) == (b"", 72)
    for name, data in outs.items():
        assert data == outs["j1"], name
    # The default thresholds: a link this small forks nothing.
    log = tmp_path / "forks-default"
    minild("link", *objs, "-o", tmp_path / "out-default", "-j4",
           env={"MINILD_FORK_LOG": str(log)})
    assert forks(log) == [] and (tmp_path / "out-default").read_bytes() == outs["j1"]


def test_map_text_and_json(tmp_path):
    """The JSON map agrees with what pyelftools reads from the output (every
    output section's address, size, alignment and file offset; every symbol's
    address, size and binding; input sections inside their output section, in
    order, holding their symbols and, where nothing relocates them, their
    object's bytes); the text map is the JSON map line for line."""
    from elftools.elf.elffile import ELFFile
    out = tmp_path / "m"
    minild("link", *MULTI, "-o", out, "-M", tmp_path / "map.json", "--map-format", "json")
    m = json.loads((tmp_path / "map.json").read_text())
    data = out.read_bytes()
    with open(out, "rb") as f:
        e = ELFFile(f)
        assert m["entry"] == e.header["e_entry"] and m["output"] == str(out)
        shdrs = {s.name: s for s in e.iter_sections()}
        elfsyms = {s.name: s for s in e.get_section_by_name(".symtab").iter_symbols() if s.name}
        assert [o["name"] for o in m["sections"]] == [n for n in shdrs if n in
                                                      (".text", ".rodata", ".data", ".bss")]
        listed = set()
        for o in m["sections"]:
            h = shdrs[o["name"]]
            assert (o["address"], o["size"], o["align"]) == \
                (h["sh_addr"], h["sh_size"], h["sh_addralign"]), o["name"]
            if h["sh_type"] != "SHT_NOBITS":
                assert o["fileoff"] == h["sh_offset"], o["name"]
            at = o["address"]
            for i in o["inputs"]:
                assert at <= i["address"] and i["address"] % i["align"] == 0, i
                at = i["address"] + i["size"]
                src = json.loads(Path(i["object"]).read_text())
                sec = next(s for s in src["sections"] if s["name"] == i["section"])
                assert i["size"] == (sec.get("size") or len(sec["data"].split()))
                if sec.get("data") and not sec.get("relocs"):
                    off = i["address"] - o["address"] + o["fileoff"]
                    assert data[off:off + i["size"]] == bytes.fromhex(sec["data"]), i
                for s in i["symbols"]:
                    es = elfsyms[s["name"]]
                    assert (s["address"], s["size"]) == (es["st_value"], es["st_size"]), s
                    assert s["binding"] == es["st_info"]["bind"][4:].lower(), s
                    assert i["address"] <= s["address"] <= i["address"] + i["size"], s
                    listed.add(s["name"])
            assert at <= o["address"] + o["size"]
        # Every named symbol the output defines in a section is in the map.
        want = {n for n, s in elfsyms.items()
                if s["st_shndx"] not in ("SHN_UNDEF", "SHN_ABS") and s["st_info"]["type"] in
                ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE")}
        assert want and want <= listed, want - listed
    # The text map, every line: lld's -Map columns.
    minild("link", *MULTI, "-o", out, "-M", tmp_path / "map.txt")
    lines = [f"{'VMA':>16} {'Size':>10} {'Align':>6} Out     In      Symbol"]
    for o in m["sections"]:
        lines.append(f"{o['address']:16x} {o['size']:10x} {o['align']:6} {o['name']}")
        for i in o["inputs"]:
            lines.append(f"{i['address']:16x} {i['size']:10x} {i['align']:6}         "
                         f"{i['object']}:({i['section']})")
            lines += [f"{s['address']:16x} {s['size']:10x} {'':6}                 {s['name']}"
                      for s in i["symbols"]]
    assert (tmp_path / "map.txt").read_text().splitlines() == lines
    assert "greet.obj:(.text)" in (tmp_path / "map.txt").read_text()


def test_bench_and_verbose(tmp_path):
    p = minild("link", *MULTI, "-o", tmp_path / "b", "--bench", "-v")
    for phase in ("loadlib", "dodata", "address", "layout", "mmap", "asmb", "asmb2", "munmap",
                  "total"):
        assert phase in p.stderr
    assert "peak MiB" in p.stderr and "faults" in p.stderr and "linked 3 objects" in p.stderr


def test_benchmark_reads_the_bench_table(tmp_path):
    """benchmarks/run.py parses --bench's table: every phase, its parts
    indented, every column a number."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "bench_run", Path(__file__).resolve().parent.parent / "benchmarks" / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    p = minild("link", *MULTI, "-o", tmp_path / "b", "--bench")
    rows = {r["phase"]: r for r in run.parse_bench(p.stderr)}
    assert {"loadlib", "read", "columns", "resolve", "asmb", "total"} <= rows.keys()
    assert rows["read"]["depth"] == 1 and rows["loadlib"]["depth"] == 0
    assert all(r["faults"] >= 0 and r["peak_mib"] > 0 for r in rows.values())


def test_inspect(tmp_path):
    p = minild("inspect", EXAMPLES / "multi" / "main.obj")
    for needle in ("sections", "symbols", "relocations", "R_X86_64_PLT32", "greet", ".rodata"):
        assert needle in p.stdout


def test_output_mode_follows_umask(tmp_path):
    out = tmp_path / "x"
    old = os.umask(0o027)
    try:
        minild("link", EXAMPLES / "hello" / "amd64.obj", "-o", out)
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o750
    assert subprocess.run([out], capture_output=True).returncode == 0


def test_entry_point(tmp_path, monkeypatch):
    """The console script's entry (minild.__main__) links as the CLI module
    does, and turns the garbage collector off only for a link."""
    import gc
    import sys
    p = subprocess.run([sys.executable, "-m", "minild", "link", *map(str, MULTI), "-o",
                        str(tmp_path / "entry")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    minild("link", *MULTI, "-o", tmp_path / "cli")
    assert (tmp_path / "entry").read_bytes() == (tmp_path / "cli").read_bytes()
    from minild import __main__ as entry
    monkeypatch.setattr(sys, "argv", ["minild", "--version"])
    with pytest.raises(SystemExit) as e:
        entry.main()
    assert e.value.code == 0 and gc.isenabled()
