"""What users expect around the link (issue 17): safe defaults and exit
statuses, friendlier errors, explain, the HTML map, --trace, -M -, inspect,
progress, the Python API and the README's promises."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import EXAMPLES, ROOT, minild, run_output

HELLO = EXAMPLES / "hello" / "amd64.obj"


def status(p, code: int) -> str:
    """status checks a refused run: the exit status, no traceback, and
    returns stderr."""
    assert p.returncode == code, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
    return p.stderr


# --- silent hazards and exit statuses ------------------------------------

def test_text_moved_by_alignment_warns(tmp_path):
    out = tmp_path / "o"
    p = minild("link", HELLO, "-o", out, "-T", "0x401001")
    assert re.search(r"^warning: -T 0x401001: \.text starts at 0x401010, not at -T: its "
                     r"alignment is 0x10; say -T 0x401010", p.stderr, re.M), p.stderr
    assert run_output("amd64", out).stdout == b"hello, world\n"
    # Asked for where .text can be: no warning.
    assert "warning" not in minild("link", HELLO, "-o", out, "-T", "0x401010").stderr
    assert "warning" not in minild("link", HELLO, "-o", out).stderr


def test_text_moved_warning_from_the_api(tmp_path):
    from minild.link import Options, link
    seen = []
    ctx = link(Options(objects=[str(HELLO)], output=str(tmp_path / "o"), text_addr=0x401001,
                       warn=seen.append))
    assert ctx.warnings == seen and len(seen) == 1 and "0x401010" in seen[0]


@pytest.mark.parametrize("fmt,arch_obj,r,need", [
    ("elf", HELLO, "0x10", "0x1000"),
    ("elf", HELLO, "0x800", "0x1000"),
    ("plan9", EXAMPLES / "plan9" / "hello" / "amd64.obj", "0x100", "0x1000"),
    ("macho", EXAMPLES / "macho" / "hello" / "arm64.obj", "0x1000", "0x4000"),
])
def test_round_below_the_page_refused(tmp_path, fmt, arch_obj, r, need):
    out = tmp_path / "o"
    e = status(minild("link", "-H", fmt, arch_obj, "-o", out, "-R", r, check=False), 2)
    assert f"-R {r}: below the page size" in e and f"at least {need}" in e, e
    assert not out.exists()


def test_round_at_the_page_links(tmp_path):
    out = tmp_path / "o"
    minild("link", HELLO, "-o", out, "-R", "0x1000")
    assert run_output("amd64", out).stdout == b"hello, world\n"


@pytest.mark.parametrize("args,expect", [
    (["-R", "3"], "-R 0x3: the rounding must be a power of two"),
    (["-H", "foo"], "-H foo: unknown output format; expected one of: elf, macho, pe, plan9, wasm"),
    (["-H", "PE"], "did you mean 'pe'?"),
    (["-H", "pe", "-R", "3"], "power of two"),
    (["-H", "pe", "--file-alignment", "0x300"], "--file-alignment"),
    (["-H", "pe", "-T", "0x401000"], "multiple of 64 KiB"),
    (["-H", "macho", "--macos-version", "x"], "--macos-version"),
    (["-H", "wasm"], "not available for arch amd64"),
    (["--stack-size", "4096"], "only for wasm"),
    (["--max-align", "3"], "power of two"),
    (["--image-base", "0x10000"], "only for -H pe"),
    (["--libc"], "need --externallink"),
    (["-T", "zzz"], "not a number"),
    (["-j", "0"], "-j"),
])
def test_usage_errors_exit_2(tmp_path, args, expect):
    obj = HELLO
    if "macho" in args:
        obj = EXAMPLES / "macho" / "hello" / "arm64.obj"
    e = status(minild("link", obj, "-o", tmp_path / "o", *args, check=False), 2)
    assert expect in e, e


def test_wasm_initial_memory_not_a_page_is_usage(tmp_path):
    e = status(minild("link", EXAMPLES / "wasm" / "hello.obj", "-o", tmp_path / "o.wasm",
                      "--initial-memory", "0x12345", check=False), 2)
    assert "multiple of 64 KiB" in e


def test_output_equal_to_input_refused_by_inode(tmp_path):
    a = tmp_path / "a.obj"
    a.write_bytes(HELLO.read_bytes())
    (tmp_path / "link.obj").symlink_to(a)
    before = a.read_bytes()
    e = status(minild("link", a, "-o", tmp_path / "link.obj", check=False), 2)
    assert "same file" in e and a.read_bytes() == before


def test_readme_exit_status_table_matches():
    """The README has one table of exit statuses; each is what run() uses."""
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `(\d+)` \| (.+) \|$", readme, re.M)
    assert [int(c) for c, _ in rows] == [0, 1, 2, 3, 130], rows
    cli = (ROOT / "minild" / "cli.py").read_text()
    for code in (1, 2, 3, 130):
        assert f"sys.exit({code})" in cli


# --- friendlier errors -----------------------------------------------------

def write(tmp_path, name, doc) -> str:
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return str(p)


def hello_doc() -> dict:
    return json.loads(HELLO.read_text())


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """An ELF .o, an ar archive, a shared object and an executable (GNU tools)."""
    d = tmp_path_factory.mktemp("foreign")
    (d / "a.s").write_text(".globl _start\n_start: ret\n")
    subprocess.run(["as", d / "a.s", "-o", d / "a.o"], check=True)
    subprocess.run(["ar", "rc", d / "lib.a", d / "a.o"], check=True)
    subprocess.run(["ld", "-shared", d / "a.o", "-o", d / "s.so"], check=True)
    subprocess.run(["ld", d / "a.o", "-o", d / "prog"], check=True)
    return d


@pytest.mark.parametrize("name,expect", [
    ("a.o", r"a\.o: an ELF relocatable object \(amd64\), not a minild object; convert it "
            r"first: minild import .*a\.o -o .*a\.obj"),
    ("lib.a", r"lib\.a: an ar archive \(a static library\), not a minild object; extract its "
              r"members with `ar x lib\.a` and convert them with `minild import"),
    ("s.so", r"s\.so: an ELF shared object \(amd64\), not a minild object; minild makes static"),
    ("prog", r"prog: an ELF executable \(amd64\), not a minild object: it is the output of a link"),
])
@pytest.mark.parametrize("cmd", ["link", "inspect"])
def test_foreign_files_named(tmp_path, foreign, name, expect, cmd):
    if name == "lib.a" and cmd == "link":
        # Archives are link inputs of their own (minild/archive.py): a member that is
        # still an ELF object is named when it is needed.
        expect = (r"lib\.a\(a\.o\): .*it is an ELF object, not a minild object; import the "
                  r"archive first: minild import")
    args = [cmd, foreign / name] + (["-o", tmp_path / "o"] if cmd == "link" else [])
    e = status(minild(*args, check=False), 1)
    assert re.search(expect, e), e
    assert "malformed" not in e and "byte 0" not in e


@pytest.mark.parametrize("data,expect", [
    ("b8 01 0g", "bad hex: 'g' at character 7 is not a hex digit"),
    ("b8 01 0", "bad hex: 5 hex digits, an odd number: each byte is two hex digits"),
    ("b8 0 1", "bad hex: a space inside a byte at character 4"),
])
def test_bad_hex_says_where(tmp_path, data, expect):
    d = hello_doc()
    d["sections"][1]["data"] = data
    e = status(minild("link", write(tmp_path, "h.obj", d), "-o", tmp_path / "o", check=False), 1)
    assert f"$.sections[1].data: {expect}" in e, e
    assert "fromhex" not in e and "non-hexadecimal" not in e
    assert len(re.findall("^error:", e, re.M)) == 1, e   # no follow-on relocation errors


@pytest.mark.parametrize("change,expect", [
    (lambda d: d.update(arch="amd46"), "unknown arch 'amd46'; expected one of: "),
    (lambda d: d["sections"][0]["relocs"][0].update(type="R_X86_64_PC23"),
     "unknown relocation type 'R_X86_64_PC23' for arch amd64; did you mean 'R_X86_64_PC32'?"),
    (lambda d: d["sections"][0].update(kind="txt"),
     "$.sections[0].kind: Invalid enum value 'txt'; expected one of: text, rodata, data, bss, "
     "dwarf; did you mean 'text'?"),
])
def test_did_you_mean(tmp_path, change, expect):
    d = hello_doc()
    change(d)
    e = status(minild("link", write(tmp_path, "h.obj", d), "-o", tmp_path / "o", check=False), 1)
    assert expect in e, e
    if "unknown arch" in expect:
        assert "did you mean 'amd64'?" in e


def test_undefined_symbol_names_the_function_and_suggests(tmp_path):
    d = {"version": 1, "encoding": "readable", "arch": "amd64",
         "sections": [{"name": ".text", "kind": "text",
                       "data": "90 e8 00 00 00 00 c3 e8 00 00 00 00",
                       "relocs": [{"offset": 2, "type": "R_X86_64_PLT32", "symbol": "prnt",
                                   "addend": -4},
                                  {"offset": 8, "type": "R_X86_64_PLT32", "symbol": "prnt",
                                   "addend": -4}]}],
         "symbols": [{"name": "_start", "section": ".text", "type": "func", "size": 7},
                     {"name": "print", "section": ".text", "value": 7, "type": "func"}]}
    a = write(tmp_path, "a.obj", d)
    e = status(minild("link", a, "-o", tmp_path / "o", check=False), 1)
    assert e.splitlines() == ["error: undefined symbol: prnt",
                              f">>> referenced by {a}:(_start+0x2)",
                              f">>> referenced by {a}:(print+0x1)",
                              ">>> did you mean: print",
                              f">>> defined in: {a}"], e
    # Nothing close: no suggestion; no symbol before the place: the section.
    d["symbols"] = [{"name": "_start", "section": ".text", "value": 1}]
    d["sections"][0]["relocs"][0]["symbol"] = "zzzzzz"
    d["sections"][0]["relocs"][1]["symbol"] = "zzzzzz"
    d["sections"][0]["relocs"][0]["offset"] = 0
    d["sections"][0]["data"] = "00 00 00 00 " + d["sections"][0]["data"]
    a = write(tmp_path, "b.obj", d)
    e = status(minild("link", a, "-o", tmp_path / "o", check=False), 1)
    assert f"referenced by {a}:(.text+0x0)" in e and "did you mean" not in e, e
    assert f"referenced by {a}:(_start+0x7)" in e, e


def test_schema_errors_every_problem(tmp_path):
    d = hello_doc()
    d["extra"] = 1
    d["sections"][0]["kind"] = "txt"
    d["sections"][0]["align"] = "16"
    d["sections"][0]["relocs"][0]["offset"] = "x"
    d["symbols"][0]["sise"] = 3
    d["symbols"][1]["binding"] = "lokal"
    a = write(tmp_path, "m.obj", d)
    e = status(minild("link", a, "-o", tmp_path / "o", check=False), 1)
    lines = [x.split("invalid object: ")[1] for x in e.splitlines()]
    assert lines == [
        "$: Object contains unknown field `extra`",
        "$.sections[0].kind: Invalid enum value 'txt'; expected one of: text, rodata, data, "
        "bss, dwarf; did you mean 'text'?",
        "$.sections[0].align: Expected `int`, got `str`",
        "$.sections[0].relocs[0].offset: Expected `int`, got `str`",
        "$.symbols[0]: Object contains unknown field `sise`",
        "$.symbols[1].binding: Invalid enum value 'lokal'; expected one of: local, global, "
        "weak; did you mean 'local'?"], e


def compact_hello_doc() -> dict:
    from minild import arch
    from minild.encode import encode_compact
    from minild.loader import read_object
    o = read_object(str(HELLO))
    return json.loads(encode_compact(o, arch.lookup(o.arch)))


def test_compact_schema_errors_every_problem(tmp_path):
    """The compact encoding's schema problems are all said too, each with its
    JSON path, in the readable encoding's words and order (schema.every_problem),
    for link and inspect."""
    d = compact_hello_doc()
    d["extra"] = 1
    d["sections"][0]["kind"] = "txt"
    d["sections"][1]["align"] = "16"
    d["symbols"]["sise"] = 3
    d["symbols"]["value"] = "A!A="
    d["symbols"]["imports"] = [{"symbol": "x", "module": "k"}]
    d["relocs"]["types"] = [7]
    del d["relocs"]["addend"]
    a = write(tmp_path, "c.obj", d)
    want = [
        "$: Object contains unknown field `extra`",
        "$.sections[0].kind: Invalid enum value 'txt'; expected one of: text, rodata, data, "
        "bss, dwarf; did you mean 'text'?",
        "$.sections[1].align: Expected `int`, got `str`",
        "$.symbols: Object contains unknown field `sise`",
        "$.symbols.value: Invalid base64 encoded string",
        "$.symbols.imports[0].symbol: Expected `int`, got `str`",
        "$.relocs.types[0]: Expected `str`, got `int`",
        "$.relocs: Object missing required field `addend`"]
    for cmd in (["link", a, "-o", tmp_path / "o"], ["inspect", a]):
        e = status(minild(*cmd, check=False), 1)
        assert [x.split(f"{a}: invalid object: ")[1] for x in e.splitlines()] == want, e


def test_compact_schema_errors_capped(tmp_path):
    d = compact_hello_doc()
    d["symbols"]["imports"] = [{"symbol": "x", "module": "k"}] * 30
    e = status(minild("link", write(tmp_path, "c.obj", d), "-o", tmp_path / "o",
                      check=False), 1)
    assert len(re.findall(r"^error: .*invalid object: \$\.symbols\.imports\[\d+\]\.symbol", e,
                          re.M)) == 20, e
    assert e.splitlines()[-1] == "error: too many errors emitted: 10 more not shown", e


def test_schema_errors_capped(tmp_path):
    d = hello_doc()
    d["symbols"] = [{"name": f"s{k}", "section": ".text", "value": "x"} for k in range(30)]
    e = status(minild("link", write(tmp_path, "m.obj", d), "-o", tmp_path / "o", check=False), 1)
    assert len(re.findall("^error: .*invalid object", e, re.M)) == 20
    assert e.splitlines()[-1] == "error: too many errors emitted: 10 more not shown", e


# --- minild explain ----------------------------------------------------------

def explain_objects(tmp_path):
    """a.obj defines f strongly and calls it from _start and g; b.obj defines f weakly
    and refers to it from data."""
    a = {"version": 1, "encoding": "readable", "arch": "amd64",
         "sections": [{"name": ".text", "kind": "text", "align": 16,
                       "data": "e8 00 00 00 00 b8 3c 00 00 00 31 ff 0f 05 90 90 "
                               "c3 e8 00 00 00 00 c3",
                       "relocs": [{"offset": 1, "type": "R_X86_64_PLT32", "symbol": "f",
                                   "addend": -4},
                                  {"offset": 18, "type": "R_X86_64_PLT32", "symbol": "f",
                                   "addend": -4}]}],
         "symbols": [{"name": "_start", "section": ".text", "type": "func", "size": 16},
                     {"name": "f", "section": ".text", "value": 16, "size": 1, "type": "func"},
                     {"name": "g", "section": ".text", "value": 17, "size": 6, "type": "func"}]}
    b = {"version": 1, "encoding": "readable", "arch": "amd64",
         "sections": [{"name": ".text", "kind": "text", "data": "c3"},
                      {"name": ".data", "kind": "data", "align": 8, "data": "00" * 8,
                       "relocs": [{"offset": 0, "type": "R_X86_64_64", "symbol": "f"}]}],
         "symbols": [{"name": "f", "section": ".text", "binding": "weak", "type": "func",
                      "size": 1},
                     {"name": "table", "section": ".data", "size": 8, "type": "object"}]}
    return write(tmp_path, "a.obj", a), write(tmp_path, "b.obj", b)


def test_explain_json(tmp_path):
    a, b = explain_objects(tmp_path)
    p = minild("explain", "--json", "f", a, b, cwd=tmp_path)
    e = json.loads(p.stdout)
    assert e["defined"] and e["definition"]["object"] == a
    assert e["definition"]["section"] == ".text" and e["definition"]["binding"] == "global"
    assert e["address"] == 0x401010 and e["size"] == 1 and not e["entry"]
    assert e["output_section"]["name"] == ".text" and e["segment"] == "text"
    assert [(x["object"], x["why"]) for x in e["lost"]] == [(b, "weak: a strong definition wins")]
    refs = [(x["object"], x["section"], x["offset"], x["function"], x["function_offset"],
             x["type"], x["addend"]) for x in e["references"]]
    assert refs == [(a, ".text", 1, "_start", 1, "R_X86_64_PLT32", -4),
                    (a, ".text", 18, "g", 1, "R_X86_64_PLT32", -4),
                    (b, ".data", 0, "table", 0, "R_X86_64_64", 0)]
    assert e["references"][0]["place"] == 0x401001
    # Nothing was written: explain has no output file.
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.obj", "b.obj"]


def test_explain_text(tmp_path):
    a, b = explain_objects(tmp_path)
    t = minild("explain", "f", a, b).stdout.splitlines()
    assert t[0] == "symbol f"
    assert t[1] == f"  defined in {a}:(.text+0x10): global func, size 1"
    assert t[2].startswith("  address 0x401010, size 1, in output section .text [0x401000,")
    assert t[3] == f"  lost: {b}:(.text+0x0) weak (weak: a strong definition wins)"
    assert t[4] == "  referenced 3 times:"
    assert t[5] == f"    {a}:(_start+0x1) in .text+0x1 at 0x401001: R_X86_64_PLT32, addend -4"
    t = minild("explain", "_start", a, b).stdout
    assert "(the entry point)" in t and "referenced 0 times" in t


def test_explain_unknown_symbol(tmp_path):
    a, b = explain_objects(tmp_path)
    p = minild("explain", "tabel", a, b, check=False)
    e = status(p, 1)
    assert "error: tabel: no object defines or refers to it; did you mean table?" in e
    assert "did you mean table?" in p.stdout


# --- the HTML map, in a real browser ------------------------------------------

def test_html_map_in_a_browser(tmp_path):
    """--map-format html: one self-contained page; Chromium (Debian's, through
    Playwright, which downloads nothing) draws every bar to scale and shows a
    section's details on hover."""
    import shutil
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed (scripts/deps/browser.apt)"
    out, m = tmp_path / "m", tmp_path / "m.html"
    objs = sorted((EXAMPLES / "multi").glob("*.obj"))
    minild("link", *objs, "-o", out, "-M", m, "--map-format", "html")
    page = m.read_text()
    # Self-contained: nothing fetched from anywhere.
    assert not re.search(r"""(src|href)\s*=|@import|url\(|https?://""", page), page[:500]
    minild("link", *objs, "-o", out, "-M", tmp_path / "m.json", "--map-format", "json")
    sections = json.loads((tmp_path / "m.json").read_text())["sections"]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            pg = browser.new_page(viewport={"width": 1200, "height": 900})
            pg.goto(m.as_uri())
            bars = pg.evaluate("""() => [...document.querySelectorAll('.bar')].map(b => ({
                cls: b.className, name: b.dataset.name, base: +b.dataset.base,
                span: +b.dataset.span, width: b.clientWidth,
                boxes: [...b.querySelectorAll('.box')].map(x => ({
                    name: x.dataset.name, addr: +x.dataset.addr, size: +x.dataset.size,
                    left: x.getBoundingClientRect().left - b.getBoundingClientRect().left
                          - b.clientLeft,
                    width: x.getBoundingClientRect().width}))}))""")
            # Every output section and every input of the JSON map is drawn.
            drawn = {x["name"] for b in bars if "segbar" in b["cls"] for x in b["boxes"]}
            assert {s["name"] for s in sections} <= drawn
            inputs = [x for b in bars if "secbar" in b["cls"] for x in b["boxes"]]
            assert len(inputs) == sum(len(s["inputs"]) for s in sections)
            assert any("space" in b["cls"] and len(b["boxes"]) == 3 for b in bars)
            # To scale: each box's position and width are its address and size on its bar's.
            for b in bars:
                assert b["width"] > 500
                for x in b["boxes"]:
                    scale = b["width"] / b["span"]
                    assert abs(x["width"] - x["size"] * scale) < 1.5, (b["name"], x)
                    assert abs(x["left"] - (x["addr"] - b["base"]) * scale) < 1.5, (b["name"], x)
            # The text section is 0x7b bytes of the 0x107b-byte text segment: drawn so.
            text = next(x for b in bars if b["name"] == "text" for x in b["boxes"]
                        if x["name"] == ".text")
            assert text["size"] == next(s["size"] for s in sections if s["name"] == ".text")
            # Hovering shows the details.
            pg.hover(".secbar .box >> nth=0")
            tip = pg.locator("#tip")
            assert tip.is_visible()
            assert "greet.obj:(.text)" in tip.inner_text() and "size 0x19" in tip.inner_text()
        finally:
            browser.close()


# --- --trace ------------------------------------------------------------------

def test_trace_chrome_json(tmp_path):
    """--trace FILE: Chrome trace JSON (lld's --time-trace) with the phases on the
    main track and each forked worker's share on its own, inside its phase."""
    out, t = tmp_path / "m", tmp_path / "t.json"
    objs = sorted((EXAMPLES / "multi").glob("*.obj"))
    env = {"MINILD_BLOCK_SIZE": "64", "MINILD_FORK_BLOCKS": "1", "MINILD_FORK_LOAD_BYTES": "1"}
    minild("link", *objs, "-o", out, "-j", "3", "--trace", t, env=env)
    assert run_output("amd64", out).stdout == b"hello from greet\ndone\n"
    doc = json.loads(t.read_text())
    ev = doc["traceEvents"]
    meta = [e for e in ev if e["ph"] == "M"]
    x = [e for e in ev if e["ph"] == "X"]
    assert all(isinstance(e["ts"], (int, float)) and e["dur"] >= 0 for e in x)
    main = {e["pid"] for e in meta if e["name"] == "process_name"}
    assert len(main) == 1
    pid = main.pop()
    phases = {e["name"]: e for e in x if e["cat"] == "phase"}
    assert {"loadlib", "read", "columns", "resolve", "dodata", "address", "layout", "mmap",
            "asmb", "asmb2", "munmap"} <= set(phases)
    assert all(e["tid"] == pid for e in phases.values())
    # Nested phases lie inside their parent.
    lo = phases["loadlib"]
    for p in ("read", "columns", "resolve"):
        assert lo["ts"] <= phases[p]["ts"] and phases[p]["ts"] + phases[p]["dur"] <= \
            lo["ts"] + lo["dur"] + 1
    workers = [e for e in x if e["cat"] == "worker"]
    forked = {e["tid"] for e in workers if e["args"]["forked"]}
    assert len(forked) >= 2, workers       # readers and block writers in children
    named = {e["tid"] for e in meta if e["name"] == "thread_name"}
    assert forked <= named
    for w in workers:
        phase = phases["read" if w["name"].startswith("loader") else "asmb"]
        assert phase["ts"] - 1 <= w["ts"] and w["ts"] + w["dur"] <= phase["ts"] + phase["dur"] + 1


def test_trace_without_workers(tmp_path):
    t = tmp_path / "t.json"
    minild("link", HELLO, "-o", tmp_path / "o", "-j", "1", "--trace", t)
    ev = json.loads(t.read_text())["traceEvents"]
    assert any(e["name"] == "asmb" for e in ev)
    assert not list(tmp_path.glob("minild-trace-*"))


# --- -M -, --print-map, inspect -------------------------------------------------

def test_map_to_stdout(tmp_path):
    m = tmp_path / "m.map"
    minild("link", HELLO, "-o", tmp_path / "o", "-M", m)
    assert minild("link", HELLO, "-o", tmp_path / "o", "-M", "-").stdout == m.read_text()
    assert minild("link", HELLO, "-o", tmp_path / "o", "--print-map").stdout == m.read_text()
    j = minild("link", HELLO, "-o", tmp_path / "o", "--print-map", "--map-format", "json").stdout
    assert json.loads(j)["sections"][0]["name"] == ".text"
    assert not (tmp_path / "-").exists()
    e = status(minild("link", HELLO, "-o", tmp_path / "o", "--print-map", "-M", m, check=False), 2)
    assert "--print-map" in e


def test_inspect_several_files_plain_when_piped(tmp_path):
    objs = sorted((EXAMPLES / "multi").glob("*.obj"))
    p = minild("inspect", *objs)
    assert not re.search("[\u2500-\u257f]", p.stdout)          # no box drawing
    assert "\x1b[" not in p.stdout                              # no colour
    heads = re.findall(r"^(\S+): arch amd64$", p.stdout, re.M)
    assert heads == [str(o) for o in objs]
    assert re.search(r"^  \d+\s+_start\s+\.text\s+0x0\s+0\s+global\s+notype$", p.stdout, re.M)
    assert re.search(r"^  \.text\s+0x1\s+R_X86_64_PLT32\s+greet\s+-4$", p.stdout, re.M)


def test_inspect_json_and_errors(tmp_path):
    bad = tmp_path / "bad.obj"
    bad.write_text("{")
    p = minild("inspect", "--json", HELLO, bad, EXAMPLES / "multi" / "main.obj", check=False)
    e = status(p, 1)
    docs = json.loads(p.stdout)
    assert [d["path"] for d in docs] == [str(HELLO), str(EXAMPLES / "multi" / "main.obj")]
    assert docs[0]["arch"] == "amd64"
    assert docs[0]["sections"][0] == {"name": ".text", "kind": "text", "align": 16, "size": 33,
                                      "relocs": 1}
    assert docs[0]["relocations"] == [{"section": ".text", "offset": 13, "type": "R_X86_64_PC32",
                                       "symbol": "msg", "addend": -4}]
    assert {"name": "msg", "section": ".rodata", "value": 0, "size": 13, "binding": "local",
            "type": "object"} in docs[0]["symbols"]
    assert "bad.obj" in e and e.count("error:") == 1


# --- progress on a terminal ----------------------------------------------------

def on_a_terminal(*args, **env) -> tuple[int, bytes]:
    """on_a_terminal runs minild with stderr on a pseudo-terminal; returns its
    status and what it wrote there."""
    import os
    import pty
    m, s = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "minild.cli", *map(str, args)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=s,
                         env=dict(os.environ, TERM="xterm", **env))
    os.close(s)
    got = b""
    while True:
        try:
            chunk = os.read(m, 4096)
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    os.close(m)
    return p.wait(), got


def test_progress_on_a_terminal(tmp_path):
    out = tmp_path / "o"
    # A link past the delay (0 s here) shows its phases, then erases the line.
    code, got = on_a_terminal("link", HELLO, "-o", out, MINILD_PROGRESS_AFTER="0")
    assert code == 0
    assert b"minild: linking 1 object into o: loading objects" in got, got
    assert got.endswith(b"\x1b[2K"), got                     # transient: erased at the end
    # A link shorter than the delay (the default: about a second) shows nothing.
    code, got = on_a_terminal("link", HELLO, "-o", out)
    assert code == 0 and got == b"", got
    # -q: nothing, even past the delay.
    code, got = on_a_terminal("link", HELLO, "-o", out, "-q", MINILD_PROGRESS_AFTER="0")
    assert code == 0 and got == b"", got


def test_import_progress_on_a_terminal(tmp_path, foreign):
    code, got = on_a_terminal("import", foreign / "a.o", "-o", tmp_path / "a.obj",
                              MINILD_PROGRESS_AFTER="0")
    assert code == 0 and b"minild: importing 1 object: converting" in got, got
    code, got = on_a_terminal("import", foreign / "a.o", "-o", tmp_path / "a.obj", "-q",
                              MINILD_PROGRESS_AFTER="0")
    assert code == 0 and got == b"", got


def test_progress_counts_on_a_terminal(tmp_path):
    """The display counts objects read and blocks written, those of forked
    workers included (-j2, forks forced, 16-byte blocks: the second share of
    blocks is written by a child), and the output is the same bytes as a
    link with no display."""
    import os
    objs = sorted((EXAMPLES / "multi").glob("*.obj"))
    forced = dict(MINILD_FORK_LOAD_BYTES="0", MINILD_FORK_BLOCKS="1", MINILD_BLOCK_SIZE="16")
    log = tmp_path / "forks"
    code, got = on_a_terminal("link", "-j2", *objs, "-o", tmp_path / "shown",
                              MINILD_PROGRESS_AFTER="0", MINILD_FORK_LOG=str(log), **forced)
    assert code == 0, got
    assert b"3 of 3 objects read" in got, got
    blocks = [int(n) for n, m in re.findall(rb"(\d+) of (\d+) blocks written", got) if n == m]
    assert blocks and blocks[-1] > 2, got
    assert re.search(r"^minild\.asmb \d+ \d+ 0$", log.read_text(), re.M), log.read_text()
    p = subprocess.run([sys.executable, "-m", "minild.cli", "link", "-j2", *objs, "-o",
                        tmp_path / "piped"], capture_output=True,
                       env=dict(os.environ, MINILD_PROGRESS_AFTER="0", **forced))
    assert p.returncode == 0 and p.stderr == b"", p.stderr
    assert (tmp_path / "shown").read_bytes() == (tmp_path / "piped").read_bytes()


def test_import_progress_counts(tmp_path, foreign):
    code, got = on_a_terminal("import", foreign / "a.o", foreign / "a.o", "-o", tmp_path / "d",
                              MINILD_PROGRESS_AFTER="0")
    assert re.search(rb"[0-2] of 2 objects converted", got), got


def test_progress_counts_the_tally():
    """Progress draws a bench.Tally's count, which forked children add to and
    an item done twice adds to once; with no display, Bench counts nothing."""
    import io
    import os
    from rich.console import Console
    from minild import bench, progress

    assert bench.Bench().tally("objects read", 3) is None   # no listener: nothing counted
    buf = io.StringIO()
    shown = progress.Progress("linking 5 objects into o", after=0,
                              console=Console(file=buf, force_terminal=True, width=120,
                                              color_system=None))
    b = bench.Bench()
    b.listener = shown
    with b.phase("read"):
        t = b.tally("objects read", 5)
        t.done(0)
        t.done(3)
        t.done(3)
        pid = os.fork()
        if pid == 0:
            t.done(4)
            os._exit(0)
        os.waitpid(pid, 0)
        assert t.count() == 3
    assert shown.tally is None      # the phase ended: the count goes with it
    shown.stop()
    assert "3 of 5 objects read  minild: linking 5 objects into o: reading objects" in \
        buf.getvalue(), buf.getvalue()


def test_no_progress_when_piped(tmp_path):
    import os
    p = subprocess.run([sys.executable, "-m", "minild.cli", "link", HELLO, "-o", tmp_path / "o"],
                       capture_output=True, env=dict(os.environ, MINILD_PROGRESS_AFTER="0"))
    assert p.returncode == 0 and p.stderr == b"" and p.stdout == b""


def test_quiet_silences_warnings(tmp_path):
    p = minild("link", HELLO, "-o", tmp_path / "o", "-T", "0x401001", "-q")
    assert p.stderr == ""


# --- install and first use: README's promises ---------------------------------

def test_readme_python_example(tmp_path):
    """The README's Python example runs as written (from a copy of the clone's examples)."""
    import os
    import shutil
    text = (ROOT / "README.md").read_text()
    code = re.search(r"### Using minild from Python.*?```python\n(.*?)```", text, re.S)[1]
    shutil.copytree(EXAMPLES / "hello", tmp_path / "examples" / "hello")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "entry 0x401000"
    assert lines[1] == ".text    0x401000 33 bytes"
    assert lines[-2].startswith("undefined entry symbol: main (no object defines it")
    assert lines[-1] == ".rodata _start"
    assert run_output("amd64", tmp_path / "hello").stdout == b"hello, world\n"


def test_import_minild_is_cheap():
    import os
    p = subprocess.run([sys.executable, "-c", "import minild, sys; print('numpy' in sys.modules)"],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.stdout.strip() == "False"


def test_api_errors_are_link_errors(tmp_path):
    import minild
    with pytest.raises(minild.UsageError) as e:
        minild.link_objects([HELLO], output=tmp_path / "o", round=3)
    assert isinstance(e.value, minild.LinkError)
    assert "power of two" in e.value.diags[0].render()


def test_shell_completion():
    import os
    import shutil
    exe = shutil.which("minild")
    assert exe, "the minild console script is not installed (pip install -e .)"
    p = subprocess.run([exe], capture_output=True, text=True,
                       env=dict(os.environ, _MINILD_COMPLETE="bash_source"))
    assert p.returncode == 0 and "complete " in p.stdout and "_minild_completion" in p.stdout
    p = subprocess.run([exe], capture_output=True, text=True,
                       env=dict(os.environ, _MINILD_COMPLETE="bash_complete",
                                COMP_WORDS="minild ex", COMP_CWORD="1"))
    assert "explain" in p.stdout
    readme = (ROOT / "README.md").read_text()
    assert 'eval "$(_MINILD_COMPLETE=bash_source minild)"' in readme


def test_help():
    top = minild("--help").stdout
    assert "Examples:" in top and "_MINILD_COMPLETE=bash_source" in top
    for cmd in ("link", "import", "inspect", "explain"):   # descriptions not cut off
        line = next(x for x in top.splitlines() if x.strip().startswith(cmd + " "))
        assert not line.rstrip().endswith("..."), line
    h = minild("link", "--help").stdout
    assert re.search(r"-T, --text-addr ADDR\s+Address of the start of \.text, hex accepted", h)
    assert "-R, --round N" in h and "-o, --output FILE" in h
    assert "Examples:" in h and "minild link a.obj b.obj -o prog" in h


def test_verbose_counts_in_words(tmp_path):
    e = minild("link", "-v", HELLO, "-o", tmp_path / "o").stderr
    assert "linked 1 object (amd64, elf)" in e and "1 relocation," in e and "2 symbols" in e


def test_hello_sh_uses_a_venv():
    """hello.sh installs into .venv only: never system pip, never
    --break-system-packages (run for real in a stock Debian chroot: see the
    commit that added this test)."""
    s = (ROOT / "scripts" / "hello.sh").read_text()
    code = [x for x in s.splitlines() if not x.lstrip().startswith("#")]
    assert not any("--break-system-packages" in x for x in code)
    assert "python3 -m venv .venv" in s and ".venv/bin/python -m pip install" in s
    assert all(".venv/bin/python -m pip" in x for x in code if "pip install" in x)
    p = subprocess.run(["bash", "-n", ROOT / "scripts" / "hello.sh"], capture_output=True)
    assert p.returncode == 0, p.stderr


def test_explain_when_the_link_fails(tmp_path):
    """An undefined symbol stops the link; explain still says who refers to it
    (resolving as --externallink's object does), with the link's errors."""
    a, b = explain_objects(tmp_path)
    d = json.loads((tmp_path / "a.obj").read_text())
    d["sections"][0]["relocs"][1]["symbol"] = "missing"
    c = write(tmp_path, "c.obj", d)
    e = json.loads(minild("explain", "--json", "missing", c, b).stdout)
    assert not e["defined"]
    assert [(x["function"], x["offset"]) for x in e["references"]] == [("g", 18)]
    assert e["link_errors"][0].startswith("undefined symbol: missing")
    t = minild("explain", "missing", c, b).stdout
    assert "the link fails (1 error; addresses not known):" in t
    assert f"{c}:(g+0x1) in .text+0x12: R_X86_64_PLT32" in t


def test_link_why(tmp_path):
    a, b = explain_objects(tmp_path)
    p = minild("link", a, b, "-o", tmp_path / "o", "--why", "f", "--why", "table")
    assert p.stdout == minild("explain", "f", a, b).stdout + minild("explain", "table", a, b).stdout
    assert run_output("amd64", tmp_path / "o").returncode == 0
