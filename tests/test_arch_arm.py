"""arm (32-bit, ARM state, EABI5): the hello example, multi-object links that
use every relocation type minild.arch.arm knows (REL: the addends come from the
places, read by the module's implicit_addends hook at `minild import`), range
and alignment errors, and C programs linked both by GNU ld and by minild.

Checked by tools minild did not write: GNU as and gcc make the objects,
qemu-arm runs both links (stdout and exit status must agree, and match what the
program is meant to print), readelf reads outputs (stderr empty) and objects,
objdump decodes instructions.
"""

import json
import re

import pytest

from conftest import (assemble, build, compact_links_the_same, hello_golden, hello_runs,
                      import_all, link_both, link_refused, minild, objdump, reloc_types)
from minild import arch as archreg
# The C programs are arch-neutral; the arm64 tests hold them, with their expected output.
from test_arch_arm64 import C_EXPECTED, C_PROGRAMS

ARCH = "arm"
# -marm: Debian's armhf gcc emits Thumb-2 by default; minild links ARM state only.
CFLAGS = ["-marm", "-O2", "-fno-pic", "-static", "-nostdlib", "-ffreestanding",
          "-fno-asynchronous-unwind-tables", "-fno-stack-protector", "-fno-common"]


def test_hello_golden(tmp_path):
    hello_golden(ARCH, tmp_path)


def test_hello_runs(tmp_path):
    hello_runs(ARCH, tmp_path)


# --- every relocation type, across objects, run -------------------------------

# lib.s: `target` is the address main.s rebuilds through each relocation; the
# words in .data hold it the ways data can. Local labels in other sections
# (badmsg, ...) are reached through the section symbol plus the addend as
# stores in the place, which is what implicit_addends must read back.
LIB = r"""
	.syntax unified
	.arm
	.text
	.globl say, bad, finish, get42, jtaken, calltaken
say:	push {r7, lr}		@ write(1, r1, r2)
	mov r0, #1
	mov r7, #4
	svc #0
	pop {r7, pc}
get42:	mov r0, #42
	bx lr
bad:	ldr r1, =badmsg
	mov r2, #4
	bl say
	mov r0, #1
	mov r7, #1
	svc #0
jtaken:	movw r1, #:lower16:jmsg
	movt r1, #:upper16:jmsg
	mov r2, #13
	bl say
	b jback			@ JUMP24 back into main.o
calltaken:
	push {r4, lr}
	ldr r1, =cmsg
	mov r2, #13
	bl say
	pop {r4, pc}
finish:	ldr r1, =donemsg
	mov r2, #5
	bl say
	mov r0, #7
	mov r7, #1
	svc #0
	.ltorg

	.section .rodata
badmsg:	.ascii "BAD\n"
donemsg: .ascii "done\n"
jmsg:	.ascii "jump24 taken\n"
cmsg:	.ascii "bleq   taken\n"
	.balign 4
	.globl target
target:	.ascii "target\n"

	.data
	.globl p_abs32, p_abs32_add, p_rel32, p_rel32_add
p_abs32: .word target
p_abs32_add: .word target + 12
p_rel32: .word target - .
p_rel32_add: .word target - . + 100
"""

MAIN = r"""
	.syntax unified
	.arm
	.macro ok text			@ print "text\n" (section symbol + addend)
	.pushsection .rodata
1:	.ascii "\text\n"
2:
	.popsection
	movw r1, #:lower16:1b
	movt r1, #:upper16:1b
	mov r2, #(2b - 1b)
	bl say				@ R_ARM_CALL
	.endm
	.macro same a, b		@ bne to another object: R_ARM_JUMP24
	cmp \a, \b
	bne bad
	.endm

	.text
	.globl _start, jback
_start:
	movw r5, #:lower16:target
	movt r5, #:upper16:target
	ldr r4, =target			@ literal pool word: R_ARM_ABS32
	same r4, r5
	ok "abs32 movw_abs_nc movt_abs"
	ldr r3, =p_abs32
	ldr r4, [r3]
	same r4, r5
	ldr r3, =p_abs32_add
	ldr r4, [r3]
	add r6, r5, #12
	same r4, r6
	ok "abs32 data"
	ldr r3, =p_rel32
	ldr r4, [r3]
	add r4, r4, r3
	same r4, r5
	ldr r3, =p_rel32_add
	ldr r4, [r3]
	add r4, r4, r3
	add r6, r5, #100
	same r4, r6
	ok "rel32"
	movw r4, #:lower16:target+0x7ff0
	movt r4, #:upper16:target+0x7ff0
	add r6, r5, #0x7f00
	add r6, r6, #0xf0
	same r4, r6
	movw r4, #:lower16:target-0x8000
	movt r4, #:upper16:target-0x8000
	sub r6, r5, #0x8000
	same r4, r6
	ok "movw/movt addends"
	bl get42
	cmp r0, #42
	bne bad
	ok "call"
	bl get42
	cmp r0, #42
	bleq calltaken			@ conditional BL: R_ARM_JUMP24
	bl get42
	cmp r0, #42
	beq jtaken			@ taken: lib prints, branches back
	b bad
jback:
	b finish			@ R_ARM_JUMP24
	.ltorg
"""

EXPECTED = (b"abs32 movw_abs_nc movt_abs\nabs32 data\nrel32\nmovw/movt addends\ncall\n"
            b"bleq   taken\njump24 taken\ndone\n")


@pytest.fixture(scope="module")
def relocs_objs(tmp_path_factory):
    d = tmp_path_factory.mktemp("relocs")
    return [assemble(ARCH, src, d / f"{n}.o") for n, src in (("main", MAIN), ("lib", LIB))]


def test_objects_use_every_relocation_type(relocs_objs):
    supported = {h.name for h in archreg.lookup(ARCH).howtos} - {"R_ARM_NONE"}
    assert reloc_types(relocs_objs) == supported


def test_every_relocation_type_runs(tmp_path, relocs_objs):
    p, mine = link_both(ARCH, tmp_path, relocs_objs)
    assert (p.stdout, p.returncode) == (EXPECTED, 7)
    compact_links_the_same(relocs_objs, mine)


def test_implicit_addends_read_from_the_places(tmp_path):
    # What GNU as stores (readelf shows REL records without addends): the imported
    # object must carry them explicitly, as a RELA reader would see them.
    src = ("\t.text\n\tbl f\n\tb f\n\tmovw r0, #:lower16:d+0x7ff0\n"
           "\tmovt r0, #:upper16:d-0x8000\n\t.word d+12\n\t.word d-.+100\n")
    (j,) = import_all([assemble(ARCH, src, tmp_path / "a.o")])
    relocs = json.loads(j.read_text())["sections"][0]["relocs"]
    assert [(r["type"], r.get("addend", 0)) for r in relocs] == [
        ("R_ARM_CALL", -8), ("R_ARM_JUMP24", -8), ("R_ARM_MOVW_ABS_NC", 0x7ff0),
        ("R_ARM_MOVT_ABS", -0x8000), ("R_ARM_ABS32", 12), ("R_ARM_REL32", 100)]


# --- range and alignment errors -----------------------------------------------

# Absolute symbols place branch targets anywhere without writing 32 MB of code;
# text starts at 0x11000, and ARM's pc reads 8 bytes ahead of the branch.
FAR = r"""
	.syntax unified
	.globl far, near_edge, odd, back, back_edge, back_out
	.set far, 0x2011008		@ +32 MB from the pc of a branch at 0x11000: just out
	.set near_edge, 0x2011004	@ +32 MB - 4: the farthest forward branch
	.set odd, 0x1100a
	.set back_edge, 0x11008		@ -32 MB from the pc of a branch at 0x2011000 (-T)
	.set back_out, 0x11004		@ -32 MB - 4: out
	.set back, 0x10ffe		@ 10 bytes back from the pc: misaligned
	.text
	.thumb
	.globl thumbfn
	.thumb_func
thumbfn: bx lr
"""

ERROR_CASES = [
    ("call-range", "bl far",
     "relocation R_ARM_CALL out of range: 33554432 is not in [-33554432, 33554431]; "
     "references far"),
    ("jump24-range", "b far",
     "relocation R_ARM_JUMP24 out of range: 33554432 is not in [-33554432, 33554431]; "
     "references far"),
    ("jump24-cond-range", "bleq far",
     "relocation R_ARM_JUMP24 out of range: 33554432 is not in [-33554432, 33554431]; "
     "references far"),
    ("call-align", "bl odd",
     "improper alignment for relocation R_ARM_CALL: 0x2 is not aligned to 4 bytes"),
    # A Thumb function (odd address): minild builds no BLX interworking.
    ("call-thumb", "bl thumbfn",
     "improper alignment for relocation R_ARM_CALL: 0x1 is not aligned to 4 bytes"),
    ("jump24-align-back", "b back",
     "improper alignment for relocation R_ARM_JUMP24: 0xFFFFFFFFFFFFFFF6 is not aligned "
     "to 4 bytes"),
]


@pytest.fixture(scope="module")
def far_obj(tmp_path_factory):
    d = tmp_path_factory.mktemp("far")
    return import_all([assemble(ARCH, FAR, d / "far.o")])[0]


@pytest.mark.parametrize("insn,message", [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])
def test_relocation_errors(tmp_path, far_obj, insn, message):
    src = f"\t.text\n\t.globl _start\n_start:\n\t{insn}\n\tbx lr\n"
    (j,) = import_all([assemble(ARCH, src, tmp_path / "main.o")])
    err = link_refused(tmp_path / "out", j, far_obj)
    assert f"{j}:(.text+0x0): {message}" in err, err


EDGES = [
    # (id, -T, branch, objdump's decoding of it at the text address)
    ("forward", "0x11000", "bl near_edge", r"11000:\s+eb7fffff\s+bl\s+(0x)?2011004"),
    ("backward", "0x2011000", "bl back_edge", r"2011000:\s+eb800000\s+bl\s+(0x)?11008"),
]


@pytest.mark.parametrize("text,insn,decoded", [e[1:] for e in EDGES], ids=[e[0] for e in EDGES])
def test_branch_at_the_edge_of_range(tmp_path, far_obj, text, insn, decoded):
    # +-32 MB (less 4 forward) from the pc is still in range: objdump must decode
    # the exact target.
    src = f"\t.text\n\t.globl _start\n_start:\n\t{insn}\n"
    (j,) = import_all([assemble(ARCH, src, tmp_path / "main.o")])
    out = tmp_path / "out"
    minild("link", "-T", text, j, far_obj, "-o", out)
    dis = objdump(ARCH, out)
    assert re.search(decoded, dis), dis


def test_branch_back_out_of_range(tmp_path, far_obj):
    src = "\t.text\n\t.globl _start\n_start:\n\tbl back_out\n"
    (j,) = import_all([assemble(ARCH, src, tmp_path / "main.o")])
    err = link_refused(tmp_path / "out", "-T", "0x2011000", j, far_obj)
    assert (f"{j}:(.text+0x0): relocation R_ARM_CALL out of range: -33554436 is not "
            "in [-33554432, 33554431]; references back_out") in err, err


def test_thumb_objects_are_refused_with_a_location(tmp_path):
    # Debian's armhf gcc emits Thumb-2 unless told -marm: the import names the
    # Thumb relocation and where it is, and stops.
    (o,) = build(ARCH, tmp_path, {"t.c": "int g(int); int f(int x) { return g(x) + 1; }\n"},
                 "-mthumb", "-O2", "-fno-pic")
    p = minild("import", o, "-o", tmp_path / "t.obj", check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert re.search(r"t\.o: section \.rel\.text: relocation R_ARM_THM_\w+ .* at \.text\+0x",
                     p.stderr), p.stderr


# --- C programs, differential against GNU ld ------------------------------------

CRT = r"""
long sys3(long nr, long a, long b, long c) {
	register long r7 __asm__("r7") = nr;
	register long r0 __asm__("r0") = a;
	register long r1 __asm__("r1") = b;
	register long r2 __asm__("r2") = c;
	__asm__ volatile("svc #0" : "+r"(r0) : "r"(r7), "r"(r1), "r"(r2) : "memory");
	return r0;
}
void write_out(const char *s, long n) { sys3(4, 1, (long)s, n); }
int main(void);
void _start(void) {
	sys3(1, main(), 0, 0);
	for (;;) ;
}
"""


@pytest.mark.parametrize("prog", list(C_PROGRAMS))
def test_c_program_matches_gnu_ld(tmp_path, prog):
    objs = build(ARCH, tmp_path, {**C_PROGRAMS[prog], "crt.c": CRT}, *CFLAGS)
    p, _ = link_both(ARCH, tmp_path, objs)
    out, status = C_EXPECTED[prog]
    assert p.stdout == out and status in (None, p.returncode)
