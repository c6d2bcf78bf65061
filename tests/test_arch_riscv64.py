"""riscv64: the hello example, a multi-object program that uses every
relocation type minild.arch.riscv64 knows, range and alignment errors, and C
programs (medlow and medany code models) linked both by GNU ld and by minild.

Every check is done by tools minild did not write: GNU as and gcc make the
objects, qemu-riscv64 runs both links (stdout and exit status must agree, and
match what the program is meant to print), readelf reads the outputs (stderr
empty) and the objects (which relocation types they use), objdump decodes
instructions, and ld.lld words the alignment errors on the same objects.
GNU ld links with --no-relax: relaxed to gp-relative code, a program without
a C runtime would use gp without setting it (oracles README, riscv64).
"""

import re
import subprocess

import pytest

from conftest import (assemble, binutil, build, compact_links_the_same, hello_golden, hello_runs,
                      import_all, link_both, link_refused, lld_refused, minild, objdump, readelf,
                      reloc_types)
from minild import arch as archreg
from test_differential import C_PROGRAMS

ARCH = "riscv64"
CFLAGS = ["-O2", "-fno-pic", "-static", "-nostdlib", "-ffreestanding",
          "-fno-asynchronous-unwind-tables", "-fno-stack-protector"]
GNU_LD = ["-static", "--no-relax"]


def test_hello_golden(tmp_path):
    hello_golden(ARCH, tmp_path)


def test_hello_runs(tmp_path):
    hello_runs(ARCH, tmp_path)


# --- every relocation type, across objects, run -------------------------------

# main.s makes one check per relocation form and sets a bit in s1 for each that
# fails; it exits with 7 + s1. Relaxation stays on in GNU as, so R_RISCV_RELAX
# and R_RISCV_ALIGN appear and local branches keep their relocations.
MAIN = r"""
	.option	rvc
	.text
	.globl	_start
_start:
	li	s1, 0
	call	say_hello		# R_RISCV_CALL_PLT (+ RELAX), to lib.o
	.reloc	., R_RISCV_CALL, say_world
	auipc	ra, 0
	jalr	ra, 0(ra)		# R_RISCV_CALL
	jal	say_bang		# R_RISCV_JAL
	lui	s0, %hi(fptrs)		# R_RISCV_HI20, to data.o
	addi	s0, s0, %lo(fptrs)	# R_RISCV_LO12_I
	ld	a5, 8(s0)		# fptrs[1]: say_nl, an R_RISCV_64 word
	jalr	a5
	# 1: store pc-relative (PCREL_LO12_S), load back absolute (LO12_I)
	li	t1, 42
.Lp1:	auipc	t2, %pcrel_hi(counter)	# R_RISCV_PCREL_HI20
	sw	t1, %pcrel_lo(.Lp1)(t2)	# R_RISCV_PCREL_LO12_S, naming .Lp1
	lui	t0, %hi(counter)
	lw	a0, %lo(counter)(t0)
	beq	a0, t1, 1f		# R_RISCV_BRANCH
	ori	s1, s1, 1
1:	# 2: store absolute (LO12_S), load back pc-relative (PCREL_LO12_I)
	lui	t0, %hi(slot)
	sd	s0, %lo(slot)(t0)	# R_RISCV_LO12_S
.Lp2:	auipc	t3, %pcrel_hi(slot)
	ld	a1, %pcrel_lo(.Lp2)(t3)	# R_RISCV_PCREL_LO12_I
	beq	a1, s0, 2f
	ori	s1, s1, 2
2:	# 4: an R_RISCV_32 word holds say_bang's address
	lla	a2, say_bang
	lla	a3, abs32
	lwu	a3, 0(a3)
	beq	a2, a3, 3f
	ori	s1, s1, 4
3:	# 8: R_RISCV_32_PCREL: say_bang - .
	lla	a3, pc32
	lw	a4, 0(a3)
	add	a3, a3, a4
	beq	a2, a3, 4f
	ori	s1, s1, 8
4:	# 16: compressed branch and jump
	c.li	a4, 0
	c.beqz	a4, 5f			# R_RISCV_RVC_BRANCH
	ori	s1, s1, 16
5:	c.j	6f			# R_RISCV_RVC_JUMP
	ori	s1, s1, 16
6:	# 32: label differences in data: ADD/SUB 8, 16, 32, 64, SET/SUB
	lla	a2, region
	lla	a3, region_end
	sub	a2, a3, a2
	lla	a3, dist
	lbu	a4, 0(a3)
	bne	a2, a4, 7f
	lhu	a4, 2(a3)
	bne	a2, a4, 7f
	lwu	a4, 4(a3)
	bne	a2, a4, 7f
	ld	a4, 8(a3)
	bne	a2, a4, 7f
	lla	a3, sets		# and SET6/SUB6, SET8, SET16, SET32
	lbu	a4, 1(a3)
	bne	a2, a4, 7f
	lhu	a4, 2(a3)
	bne	a2, a4, 7f
	lwu	a4, 4(a3)
	bne	a2, a4, 7f
	lbu	a4, 0(a3)
	ori	a2, a2, 0xc0		# SET6/SUB6 keep the byte's top two bits
	beq	a2, a4, 8f
7:	ori	s1, s1, 32
8:	# 64: a pc-relative pair with an addend, into a table in another object
	lla	a3, fptrs + 16
	ld	a3, -16(a3)		# fptrs[0]: say_hello
	lla	a2, say_hello
	beq	a2, a3, 9f
	ori	s1, s1, 64
9:	# 128: backward branches and jumps (negative offsets set the sign bits)
	li	t4, 3
	li	t5, 0
10:	addi	t5, t5, 5
	addi	t4, t4, -1
	bnez	t4, 10b			# R_RISCV_BRANCH, backward
	c.li	a4, 3
11:	addi	t5, t5, 7
	c.addi	a4, -1
	c.bnez	a4, 11b			# R_RISCV_RVC_BRANCH, backward
	c.li	a4, 2
12:	c.addi	a4, -1
	c.beqz	a4, 13f
	addi	t5, t5, 11
	c.j	12b			# R_RISCV_RVC_JUMP, backward
13:	li	t4, 47			# 3*5 + 3*7 + 11
	beq	t4, t5, 14f
	ori	s1, s1, 128
14:	addi	a0, s1, 7
	li	a7, 93			# exit(7 + failed checks)
	ecall
region:	call	say_nl			# a region relaxation could shrink: GNU as
	tail	say_nl			# leaves its size to the linker
region_end:

	.data
	.balign	8
dist:	.byte	region_end - region		# R_RISCV_ADD8 / SUB8
	.byte	0
	.half	region_end - region		# R_RISCV_ADD16 / SUB16
	.word	region_end - region		# R_RISCV_ADD32 / SUB32
	.dword	region_end - region		# R_RISCV_ADD64 / SUB64
abs32:	.word	say_bang		# R_RISCV_32
	# SETn then SUBn at one place, as GNU as writes DWARF call frame advances.
	# The labels are plain local symbols: .L ones would become .text + addend,
	# and GNU ld 2.40 applies a SUBn's addend with the wrong sign (ld.lld and
	# minild agree on V - S - A).
sets:	.reloc	., R_RISCV_SET6, region_end
	.reloc	., R_RISCV_SUB6, region
	.byte	0xc0
	.reloc	., R_RISCV_SET8, region_end
	.reloc	., R_RISCV_SUB8, region
	.byte	0
	.reloc	., R_RISCV_SET16, region_end
	.reloc	., R_RISCV_SUB16, region
	.half	0
	.reloc	., R_RISCV_SET32, region_end
	.reloc	., R_RISCV_SUB32, region
	.word	0
	.reloc	., R_RISCV_32_PCREL, say_bang	# GNU as writes ADD32/SUB32 for `x - .`
pc32:	.word	0
"""

LIB = r"""
	.text
	.globl	say_hello, say_world, say_bang, say_nl
emit:	# write(1, a0, a1)
	mv	a2, a1
	mv	a1, a0
	li	a0, 1
	li	a7, 64
	ecall
	ret
say_hello:
	lla	a0, hello		# PCREL_HI20 / PCREL_LO12_I to a local
	li	a1, 5
	tail	emit			# R_RISCV_CALL_PLT
say_world:
	lui	a0, %hi(world)		# HI20 / LO12_I to a local
	addi	a0, a0, %lo(world)
	li	a1, 7
	j	emit			# R_RISCV_JAL
say_bang:
	lla	a0, bang
	li	a1, 1
	tail	emit
	.balign	16			# R_RISCV_ALIGN: GNU ld deletes nops, minild keeps them
say_nl:
	lla	a0, nl
	li	a1, 1
	tail	emit

	.section .rodata
hello:	.ascii	"hello"
world:	.ascii	", world"
bang:	.ascii	"!"
nl:	.ascii	"\n"
"""

DATA = r"""
	.data
	.balign	8
	.globl	fptrs, counter, slot
fptrs:	.dword	say_hello, say_nl	# R_RISCV_64
counter: .word	0
	.bss
	.balign	8
slot:	.zero	8
"""


@pytest.fixture(scope="module")
def relocs_objs(tmp_path_factory):
    d = tmp_path_factory.mktemp("relocs")
    return [assemble(ARCH, src, d / f"{n}.o") for n, src in
            (("main", MAIN), ("lib", LIB), ("data", DATA))]


def test_objects_use_every_relocation_type(relocs_objs):
    supported = {h.name for h in archreg.lookup(ARCH).howtos} - {"R_RISCV_NONE"}
    assert reloc_types(relocs_objs) == supported


def test_every_relocation_type_runs(tmp_path, relocs_objs):
    p, mine = link_both(ARCH, tmp_path, relocs_objs, GNU_LD)
    assert (p.stdout, p.returncode) == (b"hello, world!\n", 7)
    compact_links_the_same(relocs_objs, mine)


def test_pcrel_lo12_completes_its_own_hi20(tmp_path, relocs_objs):
    # objdump computes each auipc + load/store pair's target itself: the LO12
    # took the low bits of its own HI20's distance, not of the label it names.
    _, mine = link_both(ARCH, tmp_path, relocs_objs, GNU_LD)
    nm = subprocess.run([binutil(ARCH, "nm"), mine], capture_output=True, text=True,
                        check=True).stdout
    addr = {n: int(v, 16) for v, _, n in (line.split() for line in nm.splitlines())}
    dis = objdump(ARCH, mine)
    assert re.search(rf"ld\s+a1,\S+ # {addr['slot']:x} <slot>", dis), dis
    assert re.search(rf"sw\s+t1,\S+ # {addr['counter']:x} <counter>", dis), dis


# --- range and alignment errors -----------------------------------------------

# Absolute symbols put targets anywhere without writing megabytes of code;
# _start is at 0x11000 (minild's default -T; ld.lld gets -Ttext).
FAR = r"""
	.globl far, near_edge, odd, far2g, high
	.set far, 0x111000		# +1 MiB from 0x11000: just out for jal
	.set near_edge, 0x110ffe	# +1 MiB - 2: in
	.set odd, 0x11005
	.set far2g, 0x80010800		# +2 GiB - 0x800 from 0x11000: out for auipc
	.set high, 0x7ffff800		# lui reaches [-2 GiB - 0x800, 2 GiB - 0x800)
"""

ERROR_CASES = [
    # (id, code at .text+0, expected message after "main.obj:(.text+0x0): "; ld.lld agrees?)
    ("jal-range", "jal far",
     "relocation R_RISCV_JAL out of range: 1048576 is not in [-1048576, 1048575]; "
     "references far", False),
    ("jal-align", "jal odd",
     "improper alignment for relocation R_RISCV_JAL: 0x5 is not aligned to 2 bytes", True),
    ("branch-range", ".reloc ., R_RISCV_BRANCH, far\n\tbeq a0, a1, .",
     "relocation R_RISCV_BRANCH out of range: 1048576 is not in [-4096, 4095]; "
     "references far", False),
    ("branch-align", ".reloc ., R_RISCV_BRANCH, odd\n\tbeq a0, a1, .",
     "improper alignment for relocation R_RISCV_BRANCH: 0x5 is not aligned to 2 bytes", True),
    ("rvc-jump-range", ".reloc ., R_RISCV_RVC_JUMP, far\n\tc.j .",
     "relocation R_RISCV_RVC_JUMP out of range: 1048576 is not in [-2048, 2047]; "
     "references far", False),
    ("rvc-branch-range", ".reloc ., R_RISCV_RVC_BRANCH, near_edge\n\tc.beqz a0, .",
     "relocation R_RISCV_RVC_BRANCH out of range: 1048574 is not in [-256, 255]; "
     "references near_edge", False),
    ("call-range", "call far2g",
     "relocation R_RISCV_CALL_PLT out of range: 2147481600 is not in "
     "[-2147485696, 2147481599]; references far2g", False),
    ("pcrel-hi20-range", "auipc a0, %pcrel_hi(far2g)",
     "relocation R_RISCV_PCREL_HI20 out of range: 2147481600 is not in "
     "[-2147485696, 2147481599]; references far2g", False),
    ("hi20-range", "lui a0, %hi(high)",
     "relocation R_RISCV_HI20 out of range: 2147481600 is not in "
     "[-2147485696, 2147481599]; references high", False),
    ("pcrel-lo12-unpaired", ".Lx: addi a0, a0, %pcrel_lo(.Lx)",
     "relocation R_RISCV_PCREL_LO12_I points to {obj}:(.text+0x0) without an associated "
     "R_RISCV_PCREL_HI20 relocation; references .Lx", False),
]


@pytest.fixture(scope="module")
def far_obj(tmp_path_factory):
    d = tmp_path_factory.mktemp("far")
    o = assemble(ARCH, FAR, d / "far.o")
    return o, import_all([o])[0]


@pytest.mark.parametrize("code,message,lld", [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])
def test_relocation_errors(tmp_path, far_obj, code, message, lld):
    src = f"\t.option rvc\n\t.text\n\t.globl _start\n_start:\n\t{code}\n\tret\n"
    o = assemble(ARCH, src, tmp_path / "main.o")
    (j,) = import_all([o])
    err = link_refused(tmp_path / "out", j, far_obj[1])
    assert f"error: {j}:(.text+0x0): {message.format(obj=j)}" in err, err
    if "alignment" in message:  # lld's line names no symbol: a note does
        assert "\n>>> references odd\n" in err, err
    if lld:
        # ld.lld words the same alignment error on the same objects (its range
        # messages for RISC-V print a shifted value, so only these are compared).
        said = lld_refused(tmp_path, [o, far_obj[0]], "0x11000")
        assert f"{o}:(.text+0x0): {message.split('; references')[0]}" in said, said


def test_jal_at_the_edge_of_range(tmp_path, far_obj):
    # +1 MiB - 2 is still in range: objdump must decode the jal to exactly there.
    src = "\t.text\n\t.globl _start\n_start:\n\tjal near_edge\n"
    (j,) = import_all([assemble(ARCH, src, tmp_path / "main.o")])
    out = tmp_path / "out"
    minild("link", j, far_obj[1], "-o", out)
    dis = objdump(ARCH, out)
    assert re.search(r"11000:\s+7ffff0ef\s+jal\s+110ffe", dis), dis


# --- C programs, differential against GNU ld ------------------------------------

START_S = r"""
	.text
	.globl	_start, sys_write
_start:
	call	main
	li	a7, 93			# exit(main())
	ecall
sys_write:				# sys_write(fd, buf, n)
	li	a7, 64
	ecall
	ret
"""


def build_c(d, files: dict[str, str], *cflags: str) -> list:
    """build_c assembles start.s and compiles the C files into d."""
    return build(ARCH, d, {"start.s": START_S, **files}, *CFLAGS, *cflags)


# medlow: lui/addi (HI20/LO12) and absolute jump tables (R_RISCV_32);
# medany: auipc pairs (PCREL_HI20/LO12) and pc-relative tables (ADD32/SUB32).
PROGRAMS = list(C_PROGRAMS)
C_CASES = [(prog, model) for prog in PROGRAMS for model in ("medlow", "medany")]


@pytest.mark.parametrize("prog,model", C_CASES, ids=[f"{p}-{m}" for p, m in C_CASES])
def test_c_program_matches_gnu_ld(tmp_path, prog, model):
    objs = build_c(tmp_path, C_PROGRAMS[prog], f"-mcmodel={model}")
    p, _ = link_both(ARCH, tmp_path, objs, GNU_LD)
    assert p.stdout, "the program printed nothing: the test proves little"


@pytest.mark.parametrize("model,table", [("medlow", {"R_RISCV_32"}),
                                         ("medany", {"R_RISCV_ADD32", "R_RISCV_SUB32"})])
def test_c_programs_have_jump_tables(tmp_path, model, table):
    """The C programs really contain jump tables, of the kind each code model makes."""
    objs = build_c(tmp_path, C_PROGRAMS["calc"], f"-mcmodel={model}")
    rodata_relocs = set()
    for o in objs:
        text = readelf(o, "-rW")
        for sec in re.split(r"\n(?=Relocation section)", text):
            if re.match(r"Relocation section '\.rela\.s?rodata", sec.strip()):
                rodata_relocs |= set(re.findall(r"(R_RISCV_\w+)\s+[0-9a-f]+\s+\.L", sec))
    assert table <= rodata_relocs, rodata_relocs


def test_c_program_with_debug_info(tmp_path):
    """gcc -g: DWARF call frames use SET6/SUB6 and SET16/SUB16 pairs; readelf
    decodes minild's frames to the same instructions as GNU ld's."""
    objs = build_c(tmp_path, C_PROGRAMS["calc"], "-g", "-mcmodel=medany")
    assert {"R_RISCV_SET6", "R_RISCV_SUB6"} <= reloc_types(objs)
    _, mine = link_both(ARCH, tmp_path, objs, GNU_LD)

    def frames(path):
        # Addresses differ between the two links (text starts elsewhere); the
        # advances between them, and every other instruction, must not.
        text = readelf(path, "--debug-dump=frames")
        return [re.sub(r" to [0-9a-f]+$|pc=.*", "", line) for line in text.splitlines()[1:]]

    gnu = tmp_path / "prog.gnu"
    assert frames(mine) == frames(gnu)
    assert any("DW_CFA_advance_loc" in line for line in frames(mine))
