"""Range-extension thunks. ppc64: a bl out of +-32 MiB (33 MiB of filler
between _start and far, assembled by GNU as, linked by GNU ld and, after
`minild import --compact`, by minild; both run under qemu; the thunk is in the
-M map and loads far's global entry into r12). Every arch with thunks: a .text
bigger than the branches' reach (a section aligned past it: no filler bytes in
the objects), called across in both directions, run under qemu against GNU ld.
One walk places the thunks: nothing placed before a thunk moves, and every
section after one moves by exactly the thunk sections before it.
"""

import re

import numpy as np
import pytest

from conftest import assemble, gnu_ld, import_all, link_both, minild, objdump, run_output
from minild.arch import lookup
from test_arch_ppc64 import ERR_A, ERR_B

PROGRAM = r"""	.abiversion 2
	.text
	.globl _start
_start:
	lis 2, .TOC.@ha
	addi 2, 2, .TOC.@l
	bl far
	nop
	li 0, 1
	sc
	.section .text.filler, "ax"
	.space 33*1024*1024
	.section .text.far, "ax"
	.globl far
	.type far, @function
far:	addis 2, 12, .TOC.-far@ha
	addi 2, 2, .TOC.-far@l
	.localentry far, .-far
	li 3, 1
	addis 4, 2, msg@toc@ha
	addi 4, 4, msg@toc@l
	li 5, 4
	li 0, 4
	sc
	li 3, 7
	blr
	.section .rodata
msg:	.ascii "far\n"
"""


@pytest.mark.parametrize("arch", ["ppc64", "ppc64le"])
def test_ppc64_call_out_of_range_gets_a_thunk(tmp_path, arch):
    (o,) = [assemble(arch, PROGRAM, tmp_path / "p.o")]
    p, mine = link_both(arch, tmp_path, [o], ("-static", "--no-toc-optimize"), compact=True)
    assert (p.stdout, p.returncode) == (b"far\n", 7)
    (j,) = import_all([o], compact=True)
    m, again = tmp_path / "map.txt", tmp_path / "again"
    minild("link", j, "-o", again, "-M", m)
    assert again.read_bytes() == mine.read_bytes()
    text = m.read_text()
    assert text.index("<thunks>:(.text.thunk)") < text.index("(.text.filler)"), text
    dis = objdump(arch, mine, "-d", "--start-address=0x10001000", "--stop-address=0x10001038")
    assert re.search(r"bl\s+[0-9a-f]+ <__long_branch_far>", dis), dis
    assert re.search(r"<__long_branch_far>:\n(.*\n){5}.*mtctr\s+r12\n.*bctr", dis), dis


@pytest.mark.parametrize("insn,sym", [("bl far_up", "far_up"), ("b far_down", "far_down")])
@pytest.mark.parametrize("arch", ["ppc64", "ppc64le"])
def test_ppc64_branch_just_out_of_range(tmp_path, arch, insn, sym):
    # One step past +-32 MiB (an error before thunks): the branch reaches a thunk
    # that loads the absolute target.
    text = lookup(arch).elf.text_addr
    a, b = import_all([assemble(arch, ERR_A.format(insn=insn), tmp_path / "a.o"),
                       assemble(arch, ERR_B.format(text=text), tmp_path / "b.o")])
    out = tmp_path / "out"
    minild("link", a, b, "-o", out)
    dis = objdump(arch, out)
    assert re.search(rf"\bbl?\s+[0-9a-f]+ <__long_branch_{sym}>", dis), dis


# --- .text bigger than the reach: both directions, run under qemu ------------------

# _start calls far, past a section aligned to the reach (the gap: padding, not
# bytes in the object); far calls back, before the gap. Each call gets a thunk,
# placed right after its caller's section. -T puts .text on that alignment.
GAP = {
    "arm64": (27, r"""	.text
	.globl _start, back
_start:	bl far
	mov x8, #93
	svc #0
	.type back, %function
back:	mov x0, #1
	adr x1, m1
	mov x2, #5
	mov x8, #64
	svc #0
	ret
m1:	.ascii "back\n"
	.section .text.mid, "ax"
	.p2align 27
	.fill 64, 4, 0xd503201f
	.section .text.far, "ax"
	.globl far
	.type far, %function
far:	stp x29, x30, [sp, #-16]!
	bl back
	mov x0, #1
	adr x1, m2
	mov x2, #4
	mov x8, #64
	svc #0
	ldp x29, x30, [sp], #16
	mov x0, #7
	ret
m2:	.ascii "far\n"
"""),
    "arm": (25, r"""	.syntax unified
	.arm
	.text
	.globl _start, back
_start:	bl far
	mov r7, #1
	svc #0
	.type back, %function
back:	push {r7, lr}
	mov r0, #1
	adr r1, m1
	mov r2, #5
	mov r7, #4
	svc #0
	pop {r7, pc}
m1:	.ascii "back\n"
	.section .text.mid, "ax"
	.p2align 25
	.fill 64, 4, 0xe320f000
	.section .text.far, "ax"
	.globl far
	.type far, %function
far:	push {r7, lr}
	bl back
	mov r0, #1
	adr r1, m2
	mov r2, #4
	mov r7, #4
	svc #0
	mov r0, #7
	pop {r7, pc}
m2:	.ascii "far\n"
"""),
    "thumb": (24, r"""	.syntax unified
	.thumb
	.text
	.globl _start, back
	.thumb_func
_start:	bl far
	movs r7, #1
	svc #0
	.thumb_func
back:	push {r7, lr}
	movs r0, #1
	adr r1, m1
	movs r2, #5
	movs r7, #4
	svc #0
	pop {r7, pc}
	.align 2
m1:	.ascii "back\n"
	.section .text.mid, "ax"
	.p2align 24
	.fill 64, 2, 0xbf00
	.section .text.far, "ax"
	.globl far
	.thumb_func
far:	push {r7, lr}
	bl back
	movs r0, #1
	adr r1, m2
	movs r2, #4
	movs r7, #4
	svc #0
	movs r0, #7
	pop {r7, pc}
	.align 2
m2:	.ascii "far\n"
"""),
    "ppc64": (25, r"""	.abiversion 2
	.text
	.globl _start, back
_start:	lis 2, .TOC.@ha
	addi 2, 2, .TOC.@l
	bl far
	nop
	li 0, 1
	sc
	.type back, @function
back:	addis 2, 12, .TOC.-back@ha
	addi 2, 2, .TOC.-back@l
	.localentry back, .-back
	li 3, 1
	addis 4, 2, m1@toc@ha
	addi 4, 4, m1@toc@l
	li 5, 5
	li 0, 4
	sc
	blr
	.section .text.mid, "ax"
	.p2align 25
	.fill 64, 4, 0x60000000
	.section .text.far, "ax"
	.globl far
	.type far, @function
far:	addis 2, 12, .TOC.-far@ha
	addi 2, 2, .TOC.-far@l
	.localentry far, .-far
	mflr 0
	std 0, 16(1)
	stdu 1, -32(1)
	bl back
	nop
	li 3, 1
	addis 4, 2, m2@toc@ha
	addi 4, 4, m2@toc@l
	li 5, 4
	li 0, 4
	sc
	addi 1, 1, 32
	ld 0, 16(1)
	mtlr 0
	li 3, 7
	blr
	.section .rodata
m1:	.ascii "back\n"
m2:	.ascii "far\n"
"""),
}
GAP["ppc64le"] = GAP["ppc64"]
PREFIX = {"arm64": "__AArch64AbsLongThunk_", "arm": "__ARMv5LongLdrPcThunk_",
          "thumb": "__Thumbv7LongLdrPcThunk_", "ppc64": "__long_branch_",
          "ppc64le": "__long_branch_"}


@pytest.mark.parametrize("case", ["arm64", "arm", "thumb", "ppc64", "ppc64le"])
def test_text_bigger_than_the_reach(tmp_path, case):
    arch = "arm" if case == "thumb" else case
    shift, src = GAP[case]
    text = 1 << shift                  # (ppc64: above GNU ld's headers at 0x10000000)
    if arch.startswith("ppc64"):
        text = 0x12000000
    (o,) = [assemble(arch, src, tmp_path / "p.o")]
    gnu = tmp_path / "p.gnu"
    p = gnu_ld(arch, [o], gnu, "-static", f"-Ttext={text:#x}")
    if arch.startswith("ppc64"):
        # GNU ld 2.40 puts the stub for far's call back before the gap, out of
        # its reach ("relocation truncated to fit: R_PPC64_REL24 (stub)"):
        # minild's run is checked against the expected output alone.
        assert "truncated to fit: R_PPC64_REL24 (stub) against symbol `back'" in p.stderr
    else:
        assert p.returncode == 0 and p.stderr == "", p.stderr
    (j,) = import_all([o], compact=True)
    mine, m = tmp_path / "p.minild", tmp_path / "map.txt"
    minild("link", j, "-o", mine, "-T", hex(text), "--max-align", hex(1 << shift), "-M", m)
    pm = run_output(arch, mine)
    assert (pm.stdout, pm.returncode, pm.stderr) == (b"back\nfar\n", 7, b""), pm
    if p.returncode == 0:
        pg = run_output(arch, gnu)
        assert (pg.stdout, pg.returncode) == (pm.stdout, pm.returncode)
    # The .text is bigger than the reach; each thunk is right after its caller.
    mp = m.read_text()
    size = int(re.search(r"^\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+\.text$", mp, re.M)[1], 16)
    assert size > 1 << shift, mp
    order = [ln.split()[-1].rsplit("/", 1)[-1] for ln in mp.splitlines() if "(.text" in ln]
    assert order == ["p.obj:(.text)", "<thunks>:(.text.thunk)", "p.obj:(.text.mid)",
                     "p.obj:(.text.far)", "<thunks>:(.text.thunk)"], mp
    for name in ("far", "back"):
        assert f"{PREFIX[case]}{name}\n" in mp, mp
    # The same objects link to the same bytes (deterministic).
    again = tmp_path / "again"
    minild("link", j, "-o", again, "-T", hex(text), "--max-align", hex(1 << shift))
    assert again.read_bytes() == mine.read_bytes()


# --- one walk: nothing placed moves ------------------------------------------------

# Absolute targets put branches anywhere without big objects. _start's call
# needs a thunk; a's call reaches edge, 128 MiB back, only if nothing before a
# moves: the thunk after _start's section moves a, so a's call needs one too. Passes
# that re-laid the whole .text after each set of thunks placed x's thunk, then
# moved b (placed by that pass) for a's. One walk judges a where it will stay.
EDGE = r"""	.text
	.globl _start
_start:	bl farx
	mov x8, #93
	svc #0
	.section .text.a, "ax"
a:	bl edge
	ret
	.section .text.b, "ax"
b:	bl a
	ret
	.globl farx, edge
	.set farx, 0x40000000
	.set edge, 0x10000000 + 12 - (128 << 20)
"""


def test_one_walk_moves_nothing_placed(tmp_path, monkeypatch):
    import minild
    from minild import thunks

    (j,) = import_all([assemble("arm64", EDGE, tmp_path / "e.o")])
    seen = {}
    add = thunks.add

    def spy(ctx):
        seen["before"] = ctx.sec_off.copy()
        add(ctx)
        seen["after"] = ctx.sec_off.copy()
        seen["sections"] = len(ctx.sec_name)
        add(ctx)                          # a second walk: nothing to add, nothing moves
        assert len(ctx.sec_name) == seen["sections"]
        assert (ctx.sec_off == seen["after"]).all()

    monkeypatch.setattr(thunks, "add", spy)
    ctx = minild.link_objects([j], output=tmp_path / "out", text_addr=0x10000000)
    n = len(seen["before"])
    names = ctx.sec_name
    text = ctx.outsections[0]
    assert text.name == ".text"
    order = [names[s] for s in text.inputs.tolist()]
    assert order == [".text", ".text.thunk", ".text.a", ".text.thunk", ".text.b"], order
    # Each input section moved by exactly the room the thunk sections before it
    # take (each from the end of the section before it, alignment included).
    moved, end = 0, 0
    for s in text.inputs.tolist():
        if s >= n:
            moved += int(seen["after"][s] + ctx.sec_size[s]) - end
        else:
            assert seen["after"][s] - seen["before"][s] == moved, names[s]
        end = int(seen["after"][s] + ctx.sec_size[s])
    assert moved > 0
    dis = objdump("arm64", tmp_path / "out")
    for name in ("farx", "edge"):
        assert re.search(rf"\bbl\s+[0-9a-f]+ <__AArch64AbsLongThunk_{name}>", dis), dis
    assert re.search(r"\bbl\s+[0-9a-f]+ <a>", dis), dis
