"""Range-extension thunks on ppc64 (a bl out of +-32 MiB; arm's and arm64's are in
their arch tests): 33 MiB of filler between _start and far, assembled by GNU as,
linked by GNU ld and, after `minild import --compact`, by minild; both run
under qemu; the thunk is in the -M map and loads far's global entry into r12.
"""

import re

import pytest

from conftest import assemble, import_all, link_both, minild, objdump
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
