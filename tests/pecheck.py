"""Oracles for PE/COFF executables, none of them written here: LLVM's llvm-readobj,
GNU objdump from the mingw-w64 binutils (llvm-objdump for arm64, which GNU objdump
does not read), and the pefile package.

Each tool is held to a strict standard: a non-zero exit, anything at all on stderr
(GNU objdump exits 0 after "error: ... is too large" on a truncated file) or a
line of its output containing "warning" is an AssertionError. A missing tool is a
pytest.fail naming the Debian package (tests never skip for a missing tool).

Needs: Debian llvm (llvm-readobj, llvm-objdump), binutils-mingw-w64-x86-64
(x86_64-w64-mingw32-objdump); pip pefile.
"""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest

COFF_MACHINES = {0x8664: "amd64", 0x14C: "x86", 0xAA64: "arm64"}


def find_tool(names, package: str) -> str:
    """The first of `names` on PATH (e.g. llvm-readobj, llvm-readobj-14); pytest.fail
    naming the Debian package when none is."""
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    pytest.fail(f"none of {', '.join(names)} is installed (Debian package {package}; "
                "see scripts/deps/pe.apt)")


def _strict(cmd) -> str:
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    where = " ".join(str(c) for c in cmd)
    assert p.returncode == 0, f"{where} exited {p.returncode}:\n{p.stderr}{p.stdout[-2000:]}"
    assert p.stderr == "", f"{where} wrote on stderr:\n{p.stderr}"
    bad = [line for line in p.stdout.splitlines() if "warning" in line.lower()]
    assert not bad, f"{where} warned:\n" + "\n".join(bad)
    return p.stdout


def coff_machine(path) -> str | None:
    """The PE file's machine (amd64, x86, arm64), or None if it cannot be read."""
    with open(path, "rb") as f:
        data = f.read(4096)
    if len(data) < 0x40 or data[:2] != b"MZ":
        return None
    (lfanew,) = struct.unpack_from("<I", data, 0x3C)
    if lfanew + 6 > len(data) or data[lfanew:lfanew + 4] != b"PE\0\0":
        return None
    (m,) = struct.unpack_from("<H", data, lfanew + 4)
    return COFF_MACHINES.get(m)


def llvm_readobj(path) -> str:
    """llvm-readobj --file-headers --sections --coff-imports --coff-basereloc PATH."""
    exe = find_tool(["llvm-readobj", "llvm-readobj-14", "llvm-readobj-15", "llvm-readobj-16"], "llvm")
    return _strict([exe, "--file-headers", "--sections", "--coff-imports", "--coff-basereloc", path])


def mingw_objdump(path) -> str:
    """GNU `x86_64-w64-mingw32-objdump -p PATH` (it reads pei-x86-64 and pei-i386);
    for arm64 PE, which GNU objdump 2.40 does not recognise ("file format not
    recognized"), `llvm-objdump -p PATH`."""
    if coff_machine(path) == "arm64":
        exe = find_tool(["llvm-objdump", "llvm-objdump-14", "llvm-objdump-15", "llvm-objdump-16"], "llvm")
    else:
        exe = find_tool(["x86_64-w64-mingw32-objdump"], "binutils-mingw-w64-x86-64")
    return _strict([exe, "-p", path])


# pefile's warning for any small file that is mostly zero bytes (it fires on every
# hello-sized PE, padded to FileAlignment): a heuristic, not a finding about the format.
_ZERO_BYTES_HEURISTIC = "Byte 0x00 makes up"


def pefile_summary(path) -> dict:
    """What the pefile package reads: entry_rva, image_base, machine (number),
    subsystem, dll_characteristics, characteristics, sections [(name, rva, vsize,
    raw_size, characteristics)], imports {dll: [names]} (an ordinal as '#N'),
    base_relocs (entries other than ABSOLUTE padding), and pefile's own warnings
    (`warnings`: pe.get_warnings() less the zero-bytes heuristic; `all_warnings`:
    all of them) so that tests can assert there are none."""
    try:
        import pefile
    except ImportError:
        pytest.fail("the Python package pefile is not installed (pip install pefile)")
    pe = pefile.PE(str(path))
    try:
        oh, fh = pe.OPTIONAL_HEADER, pe.FILE_HEADER
        sections = [(s.Name.rstrip(b"\0").decode("utf-8", "replace"), s.VirtualAddress, s.Misc_VirtualSize,
                     s.SizeOfRawData, s.Characteristics) for s in pe.sections]
        imports = {}
        for e in getattr(pe, "DIRECTORY_ENTRY_IMPORT", []):
            imports.setdefault(e.dll.decode("ascii", "replace"), []).extend(
                i.name.decode("ascii", "replace") if i.name is not None else f"#{i.ordinal}"
                for i in e.imports)
        nrel = sum(1 for b in getattr(pe, "DIRECTORY_ENTRY_BASERELOC", []) for r in b.entries if r.type != 0)
        warnings = list(pe.get_warnings())
        return dict(
            entry_rva=oh.AddressOfEntryPoint, image_base=oh.ImageBase, machine=fh.Machine,
            characteristics=fh.Characteristics, subsystem=oh.Subsystem,
            dll_characteristics=oh.DllCharacteristics, magic=oh.Magic,
            section_alignment=oh.SectionAlignment, file_alignment=oh.FileAlignment,
            size_of_image=oh.SizeOfImage, size_of_headers=oh.SizeOfHeaders,
            sections=sections, imports=imports, base_relocs=nrel,
            warnings=[w for w in warnings if not w.startswith(_ZERO_BYTES_HEURISTIC)],
            all_warnings=warnings,
        )
    finally:
        pe.close()
