"""Layout, table-driven: where sections land (alignment, order by kind, VA ==
file offset mod R, bss taking no file space, DWARF at address 0 and not
loaded), checked on the linked file with pyelftools and readelf."""

import json

import pytest
from elftools.elf.elffile import ELFFile

from conftest import minild, readelf, run_output


def hello_text():
    # amd64: exit(7)
    return "b8 3c 00 00 00 bf 07 00 00 00 0f 05"


def write_obj(tmp_path, name, sections, symbols):
    doc = {"version": 1, "encoding": "readable", "arch": "amd64", "sections": sections,
           "symbols": symbols}
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


@pytest.mark.parametrize("sections,expect", [
    # (name, kind, align, size) of input sections -> {output section: (align, size)}
    ([(".a", "rodata", 1, 3), (".b", "rodata", 16, 5)], {".rodata": (16, 21)}),
    ([(".a", "data", 8, 1), (".b", "data", 4, 4), (".c", "data", 64, 1)], {".data": (64, 65)}),
    ([(".a", "bss", 4096, 10), (".b", "bss", 8, 8)], {".bss": (4096, 24)}),
    ([(".r", "rodata", 1, 1), (".d", "data", 1, 1), (".z", "bss", 1, 1)],
     {".rodata": (1, 1), ".data": (1, 1), ".bss": (1, 1)}),
])
def test_output_sections(tmp_path, sections, expect):
    secs = [{"name": ".text", "kind": "text", "data": hello_text()}]
    for name, kind, align, size in sections:
        s = {"name": name, "kind": kind, "align": align}
        if kind == "bss":
            s["size"] = size
        else:
            s["data"] = "00" * size
        secs.append(s)
    p = write_obj(tmp_path, "a.obj", secs, [{"name": "_start", "section": ".text"}] + [
        {"name": f"sym{name}", "section": name, "binding": "local"} for name, *_ in sections])
    out = tmp_path / "out"
    minild("link", p, "-o", out)
    assert run_output("amd64", out).returncode == 7
    readelf(out)
    with open(out, "rb") as f:
        e = ELFFile(f)
        syms = {s.name: s["st_value"] for s in e.get_section_by_name(".symtab").iter_symbols()}
        for name, (align, size) in expect.items():
            s = e.get_section_by_name(name)
            assert (s["sh_addralign"], s["sh_size"]) == (align, size), name
            assert s["sh_addr"] % align == 0
        for name, kind, align, size in sections:
            assert syms[f"sym{name}"] % align == 0
        for seg in e.iter_segments():
            if seg["p_type"] == "PT_LOAD":
                assert seg["p_vaddr"] % 0x1000 == seg["p_offset"] % 0x1000


@pytest.mark.parametrize("text_addr,round_", [
    (0x401000, 0x1000), (0x400100, 0x1000), (0x10000000, 0x10000), (0x401234, 0x1000),
    (0x600000, 0x200000),
])
def test_text_address_and_rounding(tmp_path, text_addr, round_):
    p = write_obj(tmp_path, "a.obj",
                  [{"name": ".text", "kind": "text", "data": hello_text()},
                   {"name": ".data", "kind": "data", "data": "01 02"},
                   {"name": ".bss", "kind": "bss", "size": 100}],
                  [{"name": "_start", "section": ".text"}])
    out = tmp_path / "out"
    minild("link", p, "-o", out, "-T", hex(text_addr), "-R", hex(round_))
    assert run_output("amd64", out).returncode == 7
    with open(out, "rb") as f:
        e = ELFFile(f)
        assert e.get_section_by_name(".text")["sh_addr"] == text_addr
        assert e.header["e_entry"] == text_addr
        loads = [s for s in e.iter_segments() if s["p_type"] == "PT_LOAD"]
        for s in loads:
            assert s["p_align"] == round_ and s["p_vaddr"] % round_ == s["p_offset"] % round_
        # segments do not overlap in memory
        spans = sorted((s["p_vaddr"], s["p_vaddr"] + s["p_memsz"]) for s in loads)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_text_address_too_low(tmp_path):
    p = write_obj(tmp_path, "a.obj", [{"name": ".text", "kind": "text", "data": hello_text()}],
                  [{"name": "_start", "section": ".text"}])
    r = minild("link", p, "-o", tmp_path / "out", "-T", "0x10", check=False)
    assert r.returncode == 1 and "leaves no room for the" in r.stderr


def test_dwarf_carried_relocated_not_loaded(tmp_path):
    """A .debug_info that points at _start (64-bit) and at an offset into
    .debug_abbrev (32-bit, through a section symbol): the first gets _start's
    address, the second the offset inside the output .debug_abbrev."""
    a = write_obj(tmp_path, "a.obj", [
        {"name": ".text", "kind": "text", "data": hello_text()},
        {"name": ".debug_abbrev", "kind": "dwarf", "data": "aa bb cc dd"},
        {"name": ".debug_info", "kind": "dwarf", "data": "00" * 12, "relocs": [
            {"offset": 0, "type": "R_X86_64_64", "symbol": "_start", "addend": 2},
            {"offset": 8, "type": "R_X86_64_32", "symbol": ".debug_abbrev", "addend": 1}]},
    ], [{"name": "_start", "section": ".text"},
        {"name": ".debug_abbrev", "section": ".debug_abbrev", "binding": "local",
         "type": "section"}])
    b = write_obj(tmp_path, "b.obj", [
        {"name": ".debug_abbrev", "kind": "dwarf", "data": "11 22 33"},
        {"name": ".debug_info", "kind": "dwarf", "data": "00" * 4, "relocs": [
            {"offset": 0, "type": "R_X86_64_32", "symbol": ".debug_abbrev", "addend": 2}]},
    ], [{"name": ".debug_abbrev", "section": ".debug_abbrev", "binding": "local",
         "type": "section"}])
    out = tmp_path / "out"
    minild("link", a, b, "-o", out)
    assert run_output("amd64", out).returncode == 7
    readelf(out)
    with open(out, "rb") as f:
        e = ELFFile(f)
        info = e.get_section_by_name(".debug_info")
        abbrev = e.get_section_by_name(".debug_abbrev")
        assert info["sh_addr"] == 0 and info["sh_flags"] == 0 and abbrev["sh_size"] == 7
        d = info.data()
        assert int.from_bytes(d[0:8], "little") == 0x401000 + 2
        assert int.from_bytes(d[8:12], "little") == 1            # a.obj's abbrev at 0
        assert int.from_bytes(d[12:16], "little") == 4 + 2       # b.obj's abbrev at 4
        assert abbrev.data() == bytes.fromhex("aabbccdd112233")
        for seg in e.iter_segments():
            if seg["p_type"] == "PT_LOAD":
                assert not seg.section_in_segment(info)
    minild("link", a, b, "-o", out, "-s")
    assert ".debug_info" not in readelf(out, "-S")


def test_linker_defined_symbols(tmp_path):
    """_etext, _edata and _end, referred to and not defined, come from the linker."""
    p = write_obj(tmp_path, "a.obj", [
        {"name": ".text", "kind": "text", "data": hello_text()},
        {"name": ".data", "kind": "data", "data": "00" * 24, "relocs": [
            {"offset": 0, "type": "R_X86_64_64", "symbol": "_etext"},
            {"offset": 8, "type": "R_X86_64_64", "symbol": "_edata"},
            {"offset": 16, "type": "R_X86_64_64", "symbol": "_end"}]},
        {"name": ".bss", "kind": "bss", "size": 64}],
        [{"name": "_start", "section": ".text"}])
    out = tmp_path / "out"
    minild("link", p, "-o", out)
    with open(out, "rb") as f:
        e = ELFFile(f)
        text, data, bss = (e.get_section_by_name(n) for n in (".text", ".data", ".bss"))
        d = data.data()
        vals = [int.from_bytes(d[i:i + 8], "little") for i in (0, 8, 16)]
        assert vals == [text["sh_addr"] + text["sh_size"], data["sh_addr"] + data["sh_size"],
                        bss["sh_addr"] + bss["sh_size"]]


def test_weak_symbols(tmp_path):
    """A strong definition beats a weak one; an undefined weak one is 0."""
    a = write_obj(tmp_path, "a.obj", [
        {"name": ".text", "kind": "text", "data": hello_text()},
        {"name": ".data", "kind": "data", "data": "00" * 16, "relocs": [
            {"offset": 0, "type": "R_X86_64_64", "symbol": "f"},
            {"offset": 8, "type": "R_X86_64_64", "symbol": "maybe"}]}],
        [{"name": "_start", "section": ".text"},
         {"name": "f", "section": ".text", "value": 4, "binding": "weak"},
         {"name": "maybe", "binding": "weak"}])
    b = write_obj(tmp_path, "b.obj", [{"name": ".text", "kind": "text", "data": "c3"}],
                  [{"name": "f", "section": ".text"}])
    out = tmp_path / "out"
    minild("link", a, b, "-o", out)
    with open(out, "rb") as f:
        e = ELFFile(f)
        d = e.get_section_by_name(".data").data()
        syms = {s.name: s for s in e.get_section_by_name(".symtab").iter_symbols()}
        assert int.from_bytes(d[0:8], "little") == syms["f"]["st_value"] == 0x401000 + 12
        assert syms["f"]["st_info"]["bind"] == "STB_GLOBAL"
        assert int.from_bytes(d[8:16], "little") == 0
        assert syms["maybe"]["st_info"]["bind"] == "STB_WEAK" and syms["maybe"]["st_shndx"] == "SHN_UNDEF"
