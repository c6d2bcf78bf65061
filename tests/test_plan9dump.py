"""The plan 9 a.out oracle (tests/plan9dump.py, Go's debug/plan9obj) checked on files
that Go's own linker writes for plan9/amd64, plan9/386 and plan9/arm.

Besides what plan9obj reports, the header and the symbol table are decoded here from
the raw bytes, independently, so that the oracle is checked against the format and
not only against itself.
"""

from __future__ import annotations

import struct
import subprocess

import pytest

from plan9dump import go_binary, go_env, plan9dump, plan9dump_run

# GOARCH -> (magic, pointer size, load address (UTZERO), header size, segment rounding)
ARCHES = {
    "amd64": (0x8A97, 8, 0x200000, 40, 0x200000),
    "386": (0x01EB, 4, 0x1000, 32, 0x1000),
    "arm": (0x0647, 4, 0x1000, 32, 0x1000),
}

HELLO_GO = """\
package main

import "os"

var counter = 42

var scratch [4096]byte

func main() {
	scratch[counter] = 1
	os.Stdout.WriteString("hello\\n")
	os.Exit(counter - 42 + int(scratch[0]))
}
"""


@pytest.fixture(scope="module")
def go_plan9(tmp_path_factory) -> dict:
    """go_plan9 builds one tiny stdlib-only Go program for each plan 9 GOARCH, offline;
    it maps GOARCH -> path of the a.out."""
    src = tmp_path_factory.mktemp("hello-plan9")
    (src / "go.mod").write_text("module hello\n\ngo 1.19\n")
    (src / "main.go").write_text(HELLO_GO)
    go = go_binary()
    procs = {}
    for goarch in ARCHES:
        out = src / f"hello.{goarch}"
        procs[goarch] = (out, subprocess.Popen(
            [go, "build", "-trimpath", "-o", str(out), "."], cwd=src,
            env=go_env(GOOS="plan9", GOARCH=goarch),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    built = {}
    for goarch, (out, p) in procs.items():
        log, _ = p.communicate(timeout=600)
        assert p.returncode == 0, f"GOOS=plan9 GOARCH={goarch} go build failed:\n{log}"
        built[goarch] = out
    return built


def raw_header(data: bytes) -> dict:
    """raw_header decodes the a.out header words from the file's bytes (big-endian)."""
    names = ("magic", "text", "data", "bss", "syms", "entry", "spsz", "pcsz")
    h = dict(zip(names, struct.unpack(">8I", data[:32])))
    if h["magic"] & 0x8000:  # 64-bit: the full entry follows the 32-byte header
        h["entry"] = struct.unpack(">Q", data[32:40])[0]
    return h


def raw_symbols(table: bytes, ptrsize: int) -> list[dict]:
    """raw_symbols decodes a plan 9 symbol table as Go writes it: per symbol a big-endian
    value of ptrsize bytes, one type byte with 0x80 set, a NUL-terminated name."""
    syms, i = [], 0
    while i < len(table):
        value = int.from_bytes(table[i:i + ptrsize], "big")
        i += ptrsize
        t = table[i]
        assert t & 0x80, f"type byte {t:#x} at {i:#x} lacks 0x80"
        i += 1
        end = table.index(b"\0", i)
        syms.append({"name": table[i:end].decode(), "type": chr(t & 0x7F), "value": value})
        i = end + 1
    return syms


@pytest.mark.parametrize("goarch", list(ARCHES))
def test_go_built_plan9(go_plan9, goarch):
    magic, ptrsize, load, hdrsize, rnd = ARCHES[goarch]
    path = go_plan9[goarch]
    data = path.read_bytes()
    d = plan9dump(path)

    # plan9obj.FileHeader
    assert d["magic"] == magic
    assert (d["ptrsize"], d["loadaddress"], d["hdrsize"]) == (ptrsize, load, hdrsize)

    # the header words, as plan9obj reports them and as the bytes say
    h = d["header"]
    assert h == raw_header(data)
    assert plan9dump(path, raw=True) == h
    assert (h["bss"], h["entry"]) == (d["bss"], d["entry"])
    assert h["spsz"] == 0 and h["pcsz"] == 0  # Go writes neither table

    # sections follow the header back to back and fill the file exactly
    assert [s["name"] for s in d["sections"]] == ["text", "data", "syms", "spsz", "pcsz"]
    off = hdrsize
    for s in d["sections"]:
        assert s["offset"] == off and s["size"] == h[s["name"]]
        off += s["size"]
    assert off == len(data)

    # memory: text at loadaddress + header size, data at the next multiple of rnd
    text_start = load + hdrsize
    text_end = text_start + h["text"]
    data_start = -(-text_end // rnd) * rnd
    data_end = data_start + h["data"]
    bss_end = data_end + h["bss"]
    assert text_start <= d["entry"] < text_end

    syms = {s["name"]: s for s in d["symbols"]}
    assert syms["main.main"]["type"] == "T"
    assert text_start <= syms["main.main"]["value"] < text_end
    assert syms[f"_rt0_{goarch}_plan9"]["value"] == d["entry"]
    assert text_start <= syms["runtime.text"]["value"] < text_end
    assert syms["runtime.etext"]["value"] <= text_end
    assert syms["runtime.epclntab"]["value"] == text_end
    assert syms["go.buildinfo"]["value"] == data_start
    assert syms["main.counter"]["type"] == "D"
    assert data_start <= syms["main.counter"]["value"] < data_end
    assert syms["main.scratch"]["type"] == "B"
    assert data_end <= syms["main.scratch"]["value"] < bss_end
    assert syms["runtime.end"]["value"] == bss_end
    assert {s["type"] for s in d["symbols"]} <= set("TtDdBb")

    # every symbol, decoded independently from the bytes
    table = data[d["sections"][2]["offset"]:][:h["syms"]]
    assert raw_symbols(table, ptrsize) == d["symbols"]
    # Go writes runtime.text and runtime.etext first
    assert [s["name"] for s in d["symbols"][:2]] == ["runtime.text", "runtime.etext"]


def test_damaged_files_exit_1(go_plan9, tmp_path):
    data = go_plan9["amd64"].read_bytes()
    d = plan9dump(go_plan9["amd64"])
    syms_off = d["sections"][2]["offset"]
    cases = {
        "short-header": data[:20],  # the 32-byte header is cut
        "short-header64": data[:36],  # the 64-bit entry word is cut
        "short-text": data[:1000],
        "short-syms": data[:syms_off + d["header"]["syms"] // 2],
        "bad-magic": b"\0\0\x01\x07" + data[4:],
        "empty": b"",
    }
    for name, content in cases.items():
        f = tmp_path / name
        f.write_bytes(content)
        p = plan9dump_run(f)
        assert p.returncode == 1, f"{name}: exit {p.returncode}, stdout {p.stdout[:200]!r}"
        assert p.stderr.strip() and not p.stdout, name
        with pytest.raises(AssertionError, match="plan9dump"):
            plan9dump(f)
    p = plan9dump_run(tmp_path / "missing")
    assert p.returncode == 1 and "no such file" in p.stderr


def test_missing_go_fails_loudly(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="golang-go"):
        go_binary()
