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
