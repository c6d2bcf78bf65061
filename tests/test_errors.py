"""Bad input: each case gets one located error (file, JSON path or symbol, what
was expected), exit status 1, no traceback, and the previous output file is
left untouched with no temporary file beside it."""

import base64
import json
import os
import re
import stat
import subprocess
import sys

import pytest

from conftest import EXAMPLES, minild, tool

HELLO = json.loads((EXAMPLES / "hello" / "amd64.obj").read_text())


def obj(**changes):
    """obj returns a copy of the amd64 hello object with top-level changes."""
    o = json.loads(json.dumps(HELLO))
    o.update(changes)
    return o


def sec(i, **changes):
    o = obj()
    o["sections"][i].update(changes)
    return o


def with_reloc(**r):
    o = obj()
    o["sections"][0]["relocs"] = [dict({"offset": 13, "type": "R_X86_64_PC32", "symbol": "msg",
                                        "addend": -4}, **r)]
    return o


def b64(b):
    return base64.b64encode(b).decode()


COMPACT = {
    "version": 1, "encoding": "compact", "arch": "amd64",
    "sections": [{"name": ".text", "kind": "text", "data": b64(b"\x90" * 8)}],
    "symbols": {"count": 1, "name": ["_start"], "section": b64((0).to_bytes(4, "little")),
                "value": b64(bytes(8)), "size": b64(bytes(8)), "binding": b64(b"\x01"),
                "type": b64(b"\x02")},
    "relocs": {"count": 0, "types": [], "section": "", "offset": "", "type": "", "symbol": "",
               "addend": ""},
}


def compact(**path_values):
    o = json.loads(json.dumps(COMPACT))
    for path, v in path_values.items():
        group, _, field = path.partition("__")
        if field:
            o[group][field] = v
        else:
            o[group] = v
    return o


CASES = [
    # name, file contents (str: raw text; dict: JSON), expected substrings of stderr
    ("not-json", "this is not json", ["bad.obj", "not a minild object", "malformed"]),
    ("empty-file", "", ["bad.obj", "not a minild object"]),
    ("wrong-shape", obj(sections={"name": ".text"}), ["bad.obj", "$.sections", "array"]),
    ("missing-field", {"version": 1, "encoding": "readable", "arch": "amd64"},
     ["bad.obj", "sections"]),
    ("unknown-field", obj(colour="blue"), ["bad.obj", "colour"]),
    ("unknown-field-in-reloc", with_reloc(weight=3), ["bad.obj", "weight",
                                                      "$.sections[0].relocs[0]"]),
    ("bad-version", obj(version=7), ["bad.obj", "$.version", "7"]),
    ("unknown-arch", obj(arch="vax"), ["bad.obj", "$.arch", "vax", "amd64"]),
    ("bad-kind", sec(0, kind="code"), ["bad.obj", "$.sections[0].kind", "text"]),
    ("bad-hex", sec(1, data="68 65 zz"), ["bad.obj", "$.sections[1].data", "bad hex"]),
    ("bad-align", sec(0, align=3), ["bad.obj", "$.sections[0].align", "power of two"]),
    ("bss-with-data", sec(1, kind="bss"), ["bad.obj", "$.sections[1]", "bss"]),
    ("unknown-reloc-type", with_reloc(type="R_X86_64_GOTPCREL"),
     ["bad.obj", "$.sections[0].relocs[0].type", "R_X86_64_GOTPCREL", "amd64"]),
    ("reloc-outside-section", with_reloc(offset=31),
     ["bad.obj", "$.sections[0].relocs[0].offset", "outside section .text"]),
    ("symbol-outside-section",
     obj(symbols=[{"name": "_start", "section": ".text"},
                  {"name": "msg", "section": ".rodata", "value": 14, "binding": "local"}]),
     ["bad.obj", "$.symbols[1].value", "msg", "outside section .rodata"]),
    ("symbol-in-unknown-section",
     obj(symbols=[{"name": "_start", "section": ".txt"}]),
     ["bad.obj", "$.symbols[0].section", ".txt"]),
    ("undefined-local", obj(symbols=[{"name": "_start", "section": ".text"},
                                     {"name": "msg", "binding": "local"}]),
     ["bad.obj", "$.symbols[1]", "local symbol 'msg'"]),
    ("missing-entry", obj(symbols=[{"name": "main", "section": ".text"},
                                   {"name": "msg", "section": ".rodata", "binding": "local"}]),
     ["undefined entry symbol: _start"]),
    ("undefined-symbol", with_reloc(symbol="nowhere"),
     ["undefined symbol: nowhere", ">>> referenced by ", "bad.obj:(_start+0xd)"]),
    ("compact-bad-base64", compact(sections=[{"name": ".text", "kind": "text", "data": "!!"}]),
     ["bad.obj", "$.sections[0].data", "base64"]),
    ("compact-names-not-an-array", compact(symbols__name=5),
     ["bad.obj", "$.symbols.name", "Expected `array`, got `int`"]),
    ("compact-name-not-a-string", compact(symbols__name=[7]),
     ["bad.obj", "$.symbols.name[0]", "Expected `str`, got `int`"]),
    ("compact-name-with-nul", compact(symbols__name=["_st\u0000art"]),
     ["bad.obj", "$.symbols.name[0]", "may not contain NUL"]),
    ("compact-names-count", compact(symbols__name=["_start", "extra"]),
     ["bad.obj", "$.symbols.name", "expected 1 names, got 2"]),
    ("compact-short-column", compact(symbols__value=b64(bytes(3))),
     ["bad.obj", "$.symbols.value", "expected 1 values of 1, 2, 4 or 8 bytes each",
      "(1, 2, 4, 8 bytes), got 3 bytes"]),
    ("compact-too-wide-column", compact(symbols__binding=b64(bytes(2))),
     ["bad.obj", "$.symbols.binding", "expected 1 values of 1 bytes each (1 bytes), got 2"]),
    ("compact-symbol-outside", compact(symbols__value=b64((9).to_bytes(8, "little"))),
     ["bad.obj", "$.symbols.value[0]", "_start", "outside section .text"]),
    ("compact-unknown-reloc", compact(relocs={
        "count": 1, "types": ["R_X86_64_TPOFF32"], "section": b64(bytes(4)),
        "offset": b64(bytes(8)), "type": b64(bytes(2)), "symbol": b64(bytes(4)),
        "addend": b64(bytes(8))}), ["bad.obj", "$.relocs.types[0]", "R_X86_64_TPOFF32"]),
    ("compact-reloc-outside", compact(relocs={
        "count": 1, "types": ["R_X86_64_64"], "section": b64(bytes(4)),
        "offset": b64((4).to_bytes(8, "little")), "type": b64(bytes(2)),
        "symbol": b64(bytes(4)), "addend": b64(bytes(8))}),
     ["bad.obj", "$.relocs.offset[0]", "outside section .text"]),
    ("compact-reloc-in-bss", compact(
        sections=[{"name": ".text", "kind": "text", "data": b64(b"\x90" * 8)},
                  {"name": ".bss", "kind": "bss", "size": 64}],
        relocs={"count": 1, "types": ["R_X86_64_64"], "section": b64((1).to_bytes(4, "little")),
                "offset": b64(bytes(8)), "type": b64(bytes(2)), "symbol": b64(bytes(4)),
                "addend": b64(bytes(8))}),
     ["bad.obj", "$.relocs.section[0]", "section .bss is bss and has no bytes to relocate"]),
    ("compact-bad-symbol-index", compact(relocs={
        "count": 1, "types": ["R_X86_64_32"], "section": b64(bytes(4)),
        "offset": b64(bytes(8)), "type": b64(bytes(2)),
        "symbol": b64((5).to_bytes(4, "little")), "addend": b64(bytes(8))}),
     ["bad.obj", "$.relocs.symbol[0]", "no symbol 5"]),
]


def check_failed_link(tmp_path, p, out, before):
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout
    assert p.stderr.startswith("error: ")
    assert out.read_bytes() == before, "the previous output was changed"
    left = [f for f in os.listdir(out.parent) if f.endswith(".tmp")]
    assert left == [], f"temporary files left behind: {left}"


@pytest.mark.parametrize("name,content,expect", CASES, ids=[c[0] for c in CASES])
def test_bad_object(tmp_path, name, content, expect):
    bad = tmp_path / "bad.obj"
    bad.write_text(content if isinstance(content, str) else json.dumps(content))
    out = tmp_path / "out"
    out.write_bytes(b"previous output")
    p = minild("link", bad, "-o", out, check=False)
    check_failed_link(tmp_path, p, out, b"previous output")
    for e in expect:
        assert e in p.stderr, f"{e!r} not in:\n{p.stderr}"


def test_mixed_arches(tmp_path):
    out = tmp_path / "out"
    out.write_bytes(b"old")
    p = minild("link", EXAMPLES / "hello" / "amd64.obj", EXAMPLES / "hello" / "x86.obj", "-o",
               out, check=False)
    check_failed_link(tmp_path, p, out, b"old")
    assert "x86.obj is incompatible with" in p.stderr and "amd64" in p.stderr


def test_duplicate_symbol(tmp_path):
    out = tmp_path / "out"
    out.write_bytes(b"old")
    h = EXAMPLES / "hello" / "amd64.obj"
    p = minild("link", h, h, "-o", out, check=False)
    check_failed_link(tmp_path, p, out, b"old")
    assert "duplicate symbol: _start" in p.stderr
    assert p.stderr.count(">>> defined at") == 2 and "amd64.obj:(.text+0x0)" in p.stderr


def test_out_of_range_relocation(tmp_path):
    # A 32-bit pc-relative reference to a symbol placed 4 GiB away (absolute).
    o = with_reloc(symbol="far")
    o["symbols"].append({"name": "far", "section": "*ABS*", "value": 0x200000000})
    bad = tmp_path / "far.obj"
    bad.write_text(json.dumps(o))
    out = tmp_path / "out"
    out.write_bytes(b"old")
    p = minild("link", bad, "-o", out, check=False)
    check_failed_link(tmp_path, p, out, b"old")
    value = 0x200000000 - 4 - (0x401000 + 13)  # S + A - P
    assert (f"far.obj:(.text+0xd): relocation R_X86_64_PC32 out of range: {value} is not in "
            "[-2147483648, 2147483647]; references far") in p.stderr


def test_all_errors_reported_together_and_capped(tmp_path):
    objs = []
    for i in range(25):
        o = with_reloc(symbol=f"missing{i}")
        o["symbols"][0]["name"] = f"start{i}"
        f = tmp_path / f"o{i}.obj"
        f.write_text(json.dumps(o))
        objs.append(f)
    p = minild("link", *objs, "-o", tmp_path / "out", "-e", "start0", check=False)
    assert p.returncode == 1
    assert p.stderr.count("undefined symbol: missing") == 20
    assert "5 more not shown" in p.stderr


def test_errors_of_several_files_together(tmp_path):
    a, b = tmp_path / "a.obj", tmp_path / "b.obj"
    a.write_text("{")
    b.write_text(json.dumps(sec(1, data="zz")))
    p = minild("link", a, b, "-o", tmp_path / "out", check=False)
    assert p.returncode == 1
    assert "a.obj: not a minild object" in p.stderr and "b.obj: $.sections[1].data" in p.stderr


def test_missing_input_file(tmp_path):
    p = minild("link", tmp_path / "nope.obj", "-o", tmp_path / "out", check=False)
    assert p.returncode == 1 and "cannot open" in p.stderr and "nope.obj" in p.stderr


def test_output_directory_missing(tmp_path):
    out = tmp_path / "no" / "such" / "dir" / "out"
    p = minild("link", EXAMPLES / "hello" / "amd64.obj", "-o", out, check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert f"cannot create output file {out}" in p.stderr and "No such file" in p.stderr


def test_output_directory_not_writable(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    out = d / "out"
    out.write_bytes(b"old")
    cmd = [sys.executable, "-m", "minild.cli", "link", str(EXAMPLES / "hello" / "amd64.obj"),
           "-o", str(out)]
    if os.geteuid() == 0:
        # root ignores permission bits: run minild as root without the
        # capabilities that override them (util-linux's setpriv).
        cmd = [tool("setpriv"), "--bounding-set", "-dac_override,-dac_read_search,-fowner",
               *cmd]
    d.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        d.chmod(0o755)
    assert p.returncode == 1 and f"cannot create output file {out}" in p.stderr, p.stderr
    assert "Permission denied" in p.stderr and "Traceback" not in p.stderr
    assert out.read_bytes() == b"old" and os.listdir(d) == ["out"]


def test_output_is_a_directory(tmp_path):
    out = tmp_path / "adir"
    out.mkdir()
    p = minild("link", EXAMPLES / "hello" / "amd64.obj", "-o", out, check=False)
    assert p.returncode == 1 and "cannot write output file" in p.stderr
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


@pytest.mark.parametrize("args,expect", [
    (["link"], "Missing argument"),
    (["link", "x.obj", "-j", "0"], "-j"),
    (["link", "x.obj", "-T", "zzz"], "not a number"),
    (["link", "x.obj", "--map-format", "yaml"], "yaml"),
    (["frobnicate"], "No such command"),
])
def test_usage_errors_exit_2(args, expect):
    p = minild(*args, check=False)
    assert p.returncode == 2 and expect in p.stderr and "Traceback" not in p.stderr


def test_bad_round_and_headtype(tmp_path):
    h = EXAMPLES / "hello" / "amd64.obj"
    p = minild("link", h, "-o", tmp_path / "o", "-R", "0x1001", check=False)
    assert p.returncode == 2 and "power of two" in p.stderr     # usage errors (README's table)
    p = minild("link", h, "-o", tmp_path / "o", "-H", "coff", check=False)
    assert p.returncode == 2 and "-H coff: unknown output format" in p.stderr


def test_relocation_errors_found_by_forked_workers(tmp_path, monkeypatch):
    """With -jN, a block written by a forked worker that hits a relocation error
    is written again by the parent, which reports it: the same errors as -j1."""
    from minild import asmb
    from minild.errors import LinkError
    from minild.link import Options, link

    monkeypatch.setattr(asmb, "FORK_BLOCKS", 2)  # fork even for this small link

    secs, syms = [], [{"name": "_start", "section": ".t0"},
                      {"name": "far", "section": "*ABS*", "value": 0x200000000}]
    for k in range(6):
        secs.append({"name": f".t{k}", "kind": "text", "data": "e8 00 00 00 00",
                     "relocs": [{"offset": 1, "type": "R_X86_64_PLT32",
                                 "symbol": "far" if k in (2, 5) else "_start", "addend": -4}]})
    f = tmp_path / "many.obj"
    f.write_text(json.dumps({"version": 1, "encoding": "readable", "arch": "amd64",
                             "sections": secs, "symbols": syms}))
    messages = []
    for jobs, use_mmap in ((1, True), (3, True), (3, False)):
        with pytest.raises(LinkError) as e:
            link(Options(objects=[str(f)], output=str(tmp_path / "out"), jobs=jobs,
                         block_size=1, mmap=use_mmap))
        messages.append(str(e.value))
    assert messages[0].count("out of range") == 2 and ".t2+0x1" in messages[0]
    assert ".t5+0x1" in messages[0]
    assert messages[0] == messages[1] == messages[2]
    assert not (tmp_path / "out").exists()


def test_checks_left_to_the_link_name_every_object(tmp_path, monkeypatch):
    """A link's read leaves the per-row section checks of compact objects to
    one link-wide pass (loader.bounds_ok); when it or any object's read
    fails, the link reports what reading each object on its own reports:
    every object's errors, in order, whatever -j is."""
    from minild import loader
    from minild.errors import LinkError
    from minild.link import Options, link

    files = {
        "a.obj": compact(symbols__value=b64((9).to_bytes(8, "little"))),
        "b.obj": dict(compact(symbols__name=["main"]), sections=[
            {"name": ".text", "kind": "text", "data": b64(bytes(8))},
            {"name": ".bss", "kind": "bss", "size": 8}], relocs={
            "count": 2, "types": ["R_X86_64_32"], "section": b64(bytes([0, 1])),
            "offset": b64(bytes([0, 6])), "type": b64(bytes(2)), "symbol": b64(bytes(2)),
            "addend": b64(bytes(2))}),
        "c.obj": compact(symbols__name=["other"]),
        "d.obj": "{",
    }
    paths = []
    for name, content in files.items():
        (tmp_path / name).write_text(content if isinstance(content, str) else json.dumps(content))
        paths.append(str(tmp_path / name))
    want = []
    for p in paths:
        try:
            loader.read_object(p)
        except LinkError as e:
            want.append(str(e))
    assert len(want) == 3 and "a.obj: $.symbols.value[0]" in want[0]
    assert "b.obj: $.relocs.section[1]" in want[1] and "d.obj" in want[2]
    for subset in (paths, paths[:3]):   # with and without an object that fails to decode
        messages = []
        for jobs, fork_bytes in ((1, loader.FORK_LOAD_BYTES), (2, 0)):
            monkeypatch.setattr(loader, "FORK_LOAD_BYTES", fork_bytes)
            with pytest.raises(LinkError) as e:
                link(Options(objects=subset, output=str(tmp_path / "out"), jobs=jobs))
            messages.append(str(e.value))
        assert messages[0] == messages[1] == "\n".join(want[:len(subset) - 1])


@pytest.mark.parametrize("case", [
    # (section sizes, kinds, symbol sections and values, relocation sections,
    #  offsets and types (R_X86_64_64: 8 bytes, R_X86_64_32: 4), in bounds?)
    ([16], ["text"], [(0, 16), (-1, 99), (-2, 1 << 63)], [(0, 8, "R_X86_64_64")], True),
    ([16], ["text"], [(0, 17)], [], False),
    ([16], ["text"], [], [(0, 9, "R_X86_64_64")], False),
    ([16], ["text"], [], [(0, 12, "R_X86_64_32")], True),
    ([16, 8], ["text", "bss"], [(1, 8)], [(0, 0, "R_X86_64_32")], True),
    ([16, 8], ["text", "bss"], [], [(1, 0, "R_X86_64_32")], False),
    # the int32 arithmetic must not wrap next to 2 GiB
    ([(1 << 31) - 4], ["data"], [], [((0), (1 << 31) - 8, "R_X86_64_64")], False),
    ([(1 << 31) - 4], ["data"], [], [((0), (1 << 31) - 8, "R_X86_64_32")], True),
])
@pytest.mark.parametrize("chunk", [1, 1 << 16])
def test_bounds_ok(case, chunk, monkeypatch):
    import numpy as np

    from minild import arch, loader
    from minild.loader import KIND_ID, bounds_ok
    monkeypatch.setattr(loader, "BOUNDS_CHUNK", chunk)
    sizes, kinds, syms, rels = case[:4]
    a = arch.lookup("amd64")
    ok = bounds_ok(np.array(sizes, np.int64), np.array([KIND_ID[k] for k in kinds], np.uint8),
                   a.widths, np.array([s for s, _ in syms], np.int64),
                   np.array([v % (1 << 64) for _, v in syms], np.uint64).view(np.int64),
                   np.array([r[0] for r in rels], np.int32),
                   np.array([r[1] for r in rels], np.int32),
                   np.array([a.index[r[2]] for r in rels], np.int16))
    assert ok == case[4]


# --- contracts of the CLI ---------------------------------------------------

def patched_cli(code: str, *args, env=None) -> subprocess.CompletedProcess:
    """patched_cli runs the minild CLI after CODE (Python that patches minild,
    to make a failure that no input makes: a bug, a refused mapping, a failing
    write)."""
    prog = (f"import sys\n{code}\nsys.argv = ['minild', *{[str(a) for a in args]!r}]\n"
            "from minild.cli import main\nmain()\n")
    return subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})))


BUG = """
import minild.link
def boom(*a, **k):
    raise ZeroDivisionError("boom")
minild.link.address = boom
"""


def test_internal_error_exit_3_one_line(tmp_path):
    """A bug (any exception but a LinkError) exits 3 with one line and no
    traceback; MINILD_TRACEBACK=1 shows the traceback."""
    out = tmp_path / "out"
    out.write_bytes(b"old")
    env = {k: v for k, v in os.environ.items() if k != "MINILD_TRACEBACK"}
    prog = (f"import sys\n{BUG}\nsys.argv = ['minild', 'link', "
            f"{str(EXAMPLES / 'hello' / 'amd64.obj')!r}, '-o', {str(out)!r}]\n"
            "from minild.cli import main\nmain()\n")
    p = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, env=env)
    assert p.returncode == 3, p.stderr
    assert p.stderr == ("minild: internal error (a bug in minild, please report it): "
                        "ZeroDivisionError: boom\n"), p.stderr
    assert out.read_bytes() == b"old"
    p = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                       env=dict(env, MINILD_TRACEBACK="1"))
    assert p.returncode != 0 and "Traceback (most recent call last)" in p.stderr
    assert "ZeroDivisionError: boom" in p.stderr and "in boom" in p.stderr
    assert out.read_bytes() == b"old"


def test_undefined_reference_cap(tmp_path):
    """An undefined symbol lists its first 50 references, then one line
    'referenced N more times' (lld's shape)."""
    o = obj()
    o["sections"][0]["data"] = "00 " * 4 * 53
    o["sections"][0]["relocs"] = [{"offset": 4 * k, "type": "R_X86_64_32", "symbol": "nowhere"}
                                  for k in range(53)]
    bad = tmp_path / "bad.obj"
    bad.write_text(json.dumps(o))
    p = minild("link", bad, "-o", tmp_path / "out", check=False)
    assert p.returncode == 1
    lines = p.stderr.splitlines()
    assert lines[0] == "error: undefined symbol: nowhere"
    # The place is named by the function that holds it (_start, at .text's start), as lld does.
    assert lines[1:51] == [f">>> referenced by {bad}:(_start+{4 * k:#x})" for k in range(50)]
    assert lines[51:] == [">>> referenced 3 more times"], lines[51:]
    # 50 references: all listed, no count line.
    o["sections"][0]["relocs"] = o["sections"][0]["relocs"][:50]
    bad.write_text(json.dumps(o))
    p = minild("link", bad, "-o", tmp_path / "out", check=False)
    assert len(p.stderr.splitlines()) == 51 and "more times" not in p.stderr


def test_address_space_overflow(tmp_path):
    """A segment that ends past the arch's address space is refused (x86:
    32 bits), before any output file is made."""
    x86 = EXAMPLES / "hello" / "x86.obj"
    out = tmp_path / "out"
    out.write_bytes(b"old")
    p = minild("link", x86, "-o", out, "-T", "0xfffff000", check=False)
    check_failed_link(tmp_path, p, out, b"old")
    assert re.fullmatch(r"error: segment \S+ ends at 0x1[0-9a-f]{8}, past the 32-bit address "
                        r"space\n", p.stderr), p.stderr
    # The same text one page lower fits.
    size = len(json.loads(x86.read_text())["sections"][0]["data"].split())
    minild("link", x86, "-o", out, "-T", hex((1 << 32) - 0x2000 - size))


def test_cannot_map_output_file(tmp_path):
    """A mapping the system refuses is one located error; the old output stays."""
    out = tmp_path / "out"
    out.write_bytes(b"old")
    p = patched_cli("""
import errno, minild.outbuf
def refuse(self, *a, **k):
    raise OSError(errno.ENOMEM, "Cannot allocate memory")
minild.outbuf.OutBuf.mmap = refuse
""", "link", EXAMPLES / "hello" / "amd64.obj", "-o", out)
    check_failed_link(tmp_path, p, out, b"old")
    assert p.stderr == f"error: cannot map output file {out}: Cannot allocate memory\n"
    assert os.listdir(tmp_path) == ["out"]


MULTI = [EXAMPLES / "multi" / f"{n}.obj" for n in ("main", "greet", "ops")]


def test_failing_map_write_leaves_no_file(tmp_path):
    """-M whose write fails half way is an error, and no file of any name is
    left beside it (the old map stays as it was)."""
    d = tmp_path / "maps"
    d.mkdir()
    (d / "m.txt").write_text("old map")
    p = patched_cli(f"""
import errno, os
real = os.write
def write(fd, data):
    if os.readlink(f"/proc/self/fd/{{fd}}").startswith({str(d)!r}):
        real(fd, bytes(data)[:10])
        raise OSError(errno.ENOSPC, "No space left on device")
    return real(fd, data)
os.write = write
""", "link", *MULTI, "-o", tmp_path / "out", "-M", d / "m.txt")
    assert p.returncode == 1, p.stderr
    assert p.stderr == f"error: cannot write map file {d / 'm.txt'}: No space left on device\n"
    assert os.listdir(d) == ["m.txt"] and (d / "m.txt").read_text() == "old map"


# --- failures after the output is mapped: the old output must survive ---------

def test_failure_in_asmb2_keeps_old_output(tmp_path):
    """A format's asmb2 that fails after writing everything: the old output
    is untouched and the finished temporary file is removed."""
    out = tmp_path / "out"
    out.write_bytes(b"old")
    p = patched_cli("""
import msgspec, minild.format.elf as E
from minild.errors import fail
real = E.FORMAT.asmb2
def asmb2(ctx, out):
    real(ctx, out)
    raise fail("asmb2 failed on purpose")
E.FORMAT = msgspec.structs.replace(E.FORMAT, asmb2=asmb2)
""", "link", *MULTI, "-o", out)
    check_failed_link(tmp_path, p, out, b"old")
    assert p.stderr == "error: asmb2 failed on purpose\n"
    assert os.listdir(tmp_path) == ["out"]


@pytest.mark.parametrize("flags", [["-j1"], ["-j3"], ["-j3", "--no-mmap"]])
def test_relocation_error_in_forked_writers_keeps_old_output(tmp_path, flags):
    """Relocation errors found while blocks are written into the mapped
    output, by forked writers (MINILD_FORK_LOG shows that they ran): the
    error, the old output untouched, nothing left beside it."""
    secs, syms = [], [{"name": "_start", "section": ".t0"},
                      {"name": "far", "section": "*ABS*", "value": 0x200000000}]
    for k in range(6):
        secs.append({"name": f".t{k}", "kind": "text", "data": "e8 00 00 00 00",
                     "relocs": [{"offset": 1, "type": "R_X86_64_PLT32",
                                 "symbol": "far" if k in (2, 5) else "_start", "addend": -4}]})
    f = tmp_path / "many.obj"
    f.write_text(json.dumps({"version": 1, "encoding": "readable", "arch": "amd64",
                             "sections": secs, "symbols": syms}))
    out, log = tmp_path / "out", tmp_path.parent / f"{tmp_path.name}.forks"
    out.write_bytes(b"old")
    p = minild("link", f, "-o", out, *flags, check=False,
               env={"MINILD_BLOCK_SIZE": "1", "MINILD_FORK_BLOCKS": "2",
                    "MINILD_FORK_LOG": str(log)})
    check_failed_link(tmp_path, p, out, b"old")
    assert p.stderr.count("out of range") == 2 and ".t2+0x1" in p.stderr
    assert ".t5+0x1" in p.stderr
    writers = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    if flags != ["-j1"]:
        assert len(writers) == 2 and {w[0] for w in writers} == {"minild.asmb"}, writers
    assert sorted(os.listdir(tmp_path)) == ["many.obj", "out"]
