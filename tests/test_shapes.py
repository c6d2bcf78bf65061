"""The benchmark's program shapes link and run, and cost no Python work per section.

benchmarks/program.py spells one program in several shapes, as compilers
would (issue 18): long and mangled names, few or many undefined references,
a section per function, local symbols, mergeable strings, DWARF, few big or
many small objects. Every shape, at a tiny size, is assembled by GNU as,
linked by GNU ld and by minild (after `minild import`), and both outputs must
print the checksum the model computes: the generator itself is checked by a
linker we did not write. The last tests pin the layout's run-of-alignments
placement against a plain loop and count the Python events per input section.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import binutil, minild, run_output

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import gen  # noqa: E402
from program import SHAPES, build  # noqa: E402


def assemble(d: Path, shape: str, funcs: int, objects: int) -> tuple[dict, list[Path]]:
    m = gen.write(build(funcs, objects, seed=5, shape=SHAPES[shape]), str(d), 5)
    objs = []
    for s in m["sources"]:
        o = d / (s[:-2] + ".o")
        subprocess.run([binutil("amd64", "as"), *(["-g"] if m["dwarf"] else []), "-o", str(o),
                        str(d / s)], check=True)
        objs.append(o)
    return m, objs


@pytest.mark.parametrize("shape", list(SHAPES))
def test_shape_links_and_runs(tmp_path, shape):
    m, objs = assemble(tmp_path, shape, 200, 4)
    want = (m["stdout"].encode(), m["status"])
    ld = tmp_path / "out.ld"
    subprocess.run([binutil("amd64", "ld"), "-static", "-nostdlib", "-e", "_start", "-o", ld,
                    *objs], check=True)
    p = run_output("amd64", ld)
    assert (p.stdout, p.returncode) == want, "GNU ld's output: the generator is wrong"
    minild("import", "--compact", *objs, "-o", tmp_path)
    out = tmp_path / "out.minild"
    minild("link", *[o.with_suffix(".obj") for o in objs], "-o", out)
    p = run_output("amd64", out)
    assert (p.stdout, p.returncode) == want


def test_shapes_differ_as_named(tmp_path):
    """Each shape has the property it is named for (the sweep measures what it says)."""
    from elftools.elf.elffile import ELFFile

    def stats(shape):
        d = tmp_path / shape
        d.mkdir()
        _, objs = assemble(d, shape, 200, 4)
        with open(objs[0], "rb") as f:
            e = ELFFile(f)
            syms = list(e.get_section_by_name(".symtab").iter_symbols())
            return {"sections": sum(1 for s in e.iter_sections() if s["sh_flags"] & 2),
                    "undef": sum(1 for s in syms if s["st_shndx"] == "SHN_UNDEF" and s.name),
                    "relocs": sum(s.num_relocations() for s in e.iter_sections()
                                  if s["sh_type"] == "SHT_RELA"),
                    "locals": sum(1 for s in syms if s["st_info"]["bind"] == "STB_LOCAL"
                                  and s["st_info"]["type"] in ("STT_FUNC", "STT_NOTYPE")
                                  and s.name and not s.name.startswith(".L")),
                    "maxname": max(len(s.name) for s in syms),
                    "debug": any(s.name.startswith(".debug_info") for s in e.iter_sections()),
                    "merge": any(s["sh_flags"] & 0x10 for s in e.iter_sections())}
    base, few, many = stats("base"), stats("fewundef"), stats("manyundef")
    # (at this size the distinct callees saturate: count the references)
    assert few["undef"] < base["undef"] / 5 and many["relocs"] > 1.4 * base["relocs"]
    assert stats("fsections")["sections"] > 100 > base["sections"]
    assert stats("locals")["locals"] >= 4 * 50 > base["locals"]
    assert stats("mangled")["maxname"] >= 100 and base["maxname"] < 10
    assert 20 <= stats("uneven")["maxname"] <= 30
    assert stats("dwarf")["debug"] and not base["debug"]
    assert stats("strings")["merge"] and not base["merge"]


def test_place_runs_of_one_alignment_match_a_plain_loop():
    """layout._place's runs of one alignment give each input section the
    offset a section-by-section loop gives (mixed alignments, sizes not
    multiples of them, runs of one)."""
    from types import SimpleNamespace

    from minild.layout import _place
    from minild.vocab import OutSection
    rng = np.random.default_rng(3)
    for trial in range(200):
        n = int(rng.integers(1, 60))
        aligns = 1 << rng.integers(0, 7, n) if trial % 3 else \
            np.repeat(1 << rng.integers(0, 7, 3), [n // 3, n // 3, n - 2 * (n // 3)])
        sizes = rng.integers(0, 300, n)
        ctx = SimpleNamespace(sec_align=aligns.astype(np.int64), sec_size=sizes.astype(np.int64),
                              sec_off=np.zeros(n, np.int64), sec_out=np.zeros(n, np.int32))
        os_ = OutSection(".text", 0, np.arange(n, dtype=np.int64))
        _place(ctx, os_, 0)
        end, want = 0, []
        for a, s in zip(aligns.tolist(), sizes.tolist()):
            end = -(-end // a) * a
            want.append(end)
            end += s
        assert ctx.sec_off.tolist() == want and os_.size == end
        assert os_.align == int(aligns.max())


def test_python_work_per_input_section_is_small(tmp_path):
    """A section per function (-ffunction-sections): ten times the sections
    adds at most a few Python events per section (the compact reader's list
    passes and asmb's join), not the dozens a loop with checks per section
    costs."""
    from test_hotpath import traced_link
    n = {}
    for funcs in (200, 2000):
        d = tmp_path / f"f{funcs}"
        d.mkdir()
        _, objs = assemble(d, "fsections", funcs, 4)
        minild("import", "--compact", *objs, "-o", d)
        inputs = [str(o.with_suffix(".obj")) for o in objs]
        from minild.link import Options, link
        link(Options(objects=inputs, output=str(d / "a.out")))  # warm
        n[funcs] = traced_link(inputs, str(d / "a.out"))
    sections = 2 * (2000 - 200)   # .text.NAME and .rodata.NAME per function
    per = (n[2000] - n[200]) / sections
    assert per < 8, (n, per)
