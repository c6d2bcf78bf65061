"""Oracles for Mach-O executables from LLVM, none of them written here:
llvm-objdump --macho (headers, load commands, the rebase/bind/lazy-bind tables and the
export trie as LLVM decodes them) and llvm-readobj (file header, segments, dysymtab).

Each tool is held to a strict standard: a non-zero exit, anything at all on stderr, or
a line of its output containing "warning", "error" or "malformed" is an
AssertionError (llvm reports a broken file as "truncated or malformed object"), and so
is "PATH: is not an object file", which llvm-objdump-14 --macho prints on stdout with
exit status 0 for a file shorter than a Mach-O header. (A symbol whose name contains
"error" would trip the word check too: none of the programs tested here has one.) A
missing tool is a pytest.fail naming the Debian package (tests never skip).

Needs: Debian llvm (llvm-objdump, llvm-readobj; the -14 names are accepted too).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

_BAD = ("warning", "error", "malformed")


def find_tool(names, package: str = "llvm") -> str:
    """The first of `names` on PATH; pytest.fail naming the Debian package when none is."""
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    pytest.fail(f"none of {', '.join(names)} is installed (Debian package {package})", pytrace=False)


def _versions(name):
    return [name, f"{name}-14", f"{name}-15", f"{name}-16", f"{name}-17"]


def _strict(cmd) -> str:
    cmd = [str(c) for c in cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    where = " ".join(cmd)
    assert p.returncode == 0, f"{where} exited {p.returncode}:\n{p.stderr}{p.stdout[-2000:]}"
    assert p.stderr == "", f"{where} wrote on stderr:\n{p.stderr}"
    bad = [line for line in p.stdout.splitlines() if any(w in line.lower() for w in _BAD)]
    # llvm-objdump --macho on a file too short for a header says so on stdout, and exits 0
    bad += [line for line in p.stdout.splitlines() if line.endswith("is not an object file")]
    assert not bad, f"{where} complained:\n" + "\n".join(bad)
    return p.stdout


def llvm_objdump_macho(path, *extra: str) -> str:
    """llvm-objdump --macho --private-headers --rebase --bind --lazy-bind --exports-trie PATH."""
    exe = find_tool(_versions("llvm-objdump"))
    return _strict([exe, "--macho", "--private-headers", "--rebase", "--bind", "--lazy-bind",
                    "--exports-trie", *extra, path])


def llvm_readobj_macho(path) -> str:
    """llvm-readobj --file-headers --macho-segment --macho-dysymtab PATH."""
    exe = find_tool(_versions("llvm-readobj"))
    return _strict([exe, "--file-headers", "--macho-segment", "--macho-dysymtab", path])


def _table(path, flag, title):
    exe = find_tool(_versions("llvm-objdump"))
    out = _strict([exe, "--macho", flag, path])
    rows, on = [], False
    for line in out.splitlines():
        if line.strip() == title:
            on = True
            continue
        if not on or not line.strip():
            continue
        f = line.split()
        if f[0] == "segment":  # the column titles
            continue
        rows.append(f)
    return rows


def rebases(path) -> list[tuple]:
    """llvm-objdump's rebase table: [(segment, section, address, type)]."""
    return [(f[0], f[1], int(f[2], 16), f[3]) for f in _table(path, "--rebase", "Rebase table:")]


def binds(path) -> list[tuple]:
    """llvm-objdump's (non-lazy) bind table: [(segment, section, address, type, addend,
    dylib, symbol)]; a weak import's symbol keeps its " (weak_import)" mark."""
    return [(f[0], f[1], int(f[2], 16), f[3], int(f[4], 0), f[5], " ".join(f[6:]))
            for f in _table(path, "--bind", "Bind table:")]


def lazy_binds(path) -> list[tuple]:
    """llvm-objdump's lazy bind table: [(segment, section, address, dylib, symbol)]."""
    return [(f[0], f[1], int(f[2], 16), f[3], " ".join(f[4:]))
            for f in _table(path, "--lazy-bind", "Lazy bind table:")]
