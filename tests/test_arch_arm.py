"""arm (32-bit, ARM and Thumb-2 state, EABI5): the hello example, multi-object
links that use every relocation type minild.arch.arm knows (REL: the addends
come from the places, read by the module's implicit_addends hook at `minild
import`), interworking (BL/BLX, veneers, the T bit in data and in the entry
point), range and alignment errors, and C programs (Thumb-2, gcc's default,
and -marm) linked both by GNU ld and by minild.

Checked by tools minild did not write: GNU as and gcc make the objects,
qemu-arm runs both links (stdout and exit status must agree, and match what the
program is meant to print), readelf reads outputs (stderr empty) and objects,
objdump decodes instructions.
"""

import json
import re

import pytest

from conftest import (assemble, build, compact_links_the_same, hello_golden, hello_runs,
                      import_all, link_both, link_refused, minild, objdump, readelf, reloc_types,
                      run_output)
from minild import arch as archreg
# The C programs are arch-neutral; the arm64 tests hold them, with their expected output.
from test_arch_arm64 import C_EXPECTED, C_PROGRAMS

ARCH = "arm"
# Debian's armhf gcc emits Thumb-2 by default; -marm asks for ARM state. -O0
# Thumb code keeps r7 as the frame pointer, which the crt's syscall needs.
CFLAGS = ["-fno-pic", "-static", "-nostdlib", "-ffreestanding", "-fomit-frame-pointer",
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


def test_objects_use_every_relocation_type(relocs_objs, thumb_objs):
    supported = {h.name for h in archreg.lookup(ARCH).howtos} - {"R_ARM_NONE"}
    assert reloc_types(relocs_objs) | reloc_types(thumb_objs) == supported


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


def test_thumb_implicit_addends_read_from_the_places(tmp_path):
    # Thumb-2 places are two halfwords; the branch fields are split (S, J1, J2).
    src = ("\t.syntax unified\n\t.thumb\n\t.text\n"
           "\tbl f\n\tb.w f+0x123456\n\tbeq.w f-0x1000\n\tb.n f+0x100\n\tbeq.n f-0x40\n"
           "\tmovw r0, #:lower16:d+0x7ff0\n\tmovt r0, #:upper16:d-0x8000\n"
           "\tmovw r0, #:lower16:d-.\n\tmovt r0, #:upper16:d-.\n"
           "\t.reloc ., R_ARM_THM_PC8, d\n\t.inst.n 0xa1ff\n"
           "\t.reloc ., R_ARM_THM_PC12, d\n\tldr.w r0, [pc, #-4]\n"
           "\t.reloc ., R_ARM_THM_ALU_PREL_11_0, d\n\taddw r0, pc, #0x123\n"
           "\t.word d(target1)\n\t.reloc ., R_ARM_PREL31, d\n\t.word 0x7ffffff0\n")
    (j,) = import_all([assemble(ARCH, src, tmp_path / "a.o")])
    relocs = json.loads(j.read_text())["sections"][0]["relocs"]
    assert [(r["type"], r.get("addend", 0)) for r in relocs] == [
        ("R_ARM_THM_CALL", -4), ("R_ARM_THM_JUMP24", 0x123456 - 4),
        ("R_ARM_THM_JUMP19", -0x1004), ("R_ARM_THM_JUMP11", 0xfc),
        ("R_ARM_THM_JUMP8", -0x44), ("R_ARM_THM_MOVW_ABS_NC", 0x7ff0),
        ("R_ARM_THM_MOVT_ABS", -0x8000), ("R_ARM_THM_MOVW_PREL_NC", 0),
        ("R_ARM_THM_MOVT_PREL", 0), ("R_ARM_THM_PC8", -4), ("R_ARM_THM_PC12", -4),
        ("R_ARM_THM_ALU_PREL_11_0", 0x123), ("R_ARM_TARGET1", 0), ("R_ARM_PREL31", -16)]


# --- Thumb-2 and interworking ---------------------------------------------------

# _start is Thumb (the entry point's T bit); thumb_main.s calls Thumb and ARM
# functions with BL (an ARM target makes it BLX), calls a Thumb function through
# a pointer in data (ABS32 keeps the T bit), and branches with B.W to ARM code,
# which needs a veneer; thumb_lib.s (ARM) calls Thumb with BL (BLX) and
# branches back with B (a veneer). thumb_say.s reaches every other Thumb type;
# .reloc writes the types GNU as only emits for symbols it cannot resolve
# (PC8, PC12, ALU_PREL_11_0: with A = -4, Thumb's pc offset) and PREL31.
THUMB_MAIN = r"""	.syntax unified
	.thumb
	.text
	.globl _start, tfn, tjump_back
	.type _start, %function
	.thumb_func
_start:
	movw r0, #:lower16:m1		@ R_ARM_THM_MOVW_ABS_NC
	movt r0, #:upper16:m1		@ R_ARM_THM_MOVT_ABS
	bl say				@ R_ARM_THM_CALL, Thumb -> Thumb
	bl armfn			@ R_ARM_THM_CALL, Thumb -> ARM: BLX
	ldr r3, =afn_ptr
	ldr r3, [r3]			@ a Thumb function's address from data (ABS32)
	blx r3
	b.w armjump			@ R_ARM_THM_JUMP24 to ARM: a veneer
	.globl tback
	.thumb_func
tback:
	movs r0, #0
	cmp r0, #0
	beq.w tj19			@ R_ARM_THM_JUMP19
	b bad
	.thumb_func
done:
	.globl done
1:	movw r0, #:lower16:m9-(1b+12)	@ R_ARM_THM_MOVW_PREL_NC (pc-relative string)
	movt r0, #:upper16:m9-(1b+12)	@ R_ARM_THM_MOVT_PREL
	add r0, pc			@ pc: 1b + 12
	bl say
	movs r0, #7
	movs r7, #1
	svc #0
	.thumb_func
bad:	udf #0
	.ltorg

	.thumb_func
tfn:	push {r4, lr}
	movw r0, #:lower16:m3
	movt r0, #:upper16:m3
	bl say
	pop {r4, pc}
"""

THUMB_LIB = r"""	.syntax unified
	.arm
	.text
	.globl armfn, armjump, afn_ptr
	.type armfn, %function
armfn:	push {r4, lr}
1:	movw r0, #:lower16:m2-(1b+16)	@ R_ARM_MOVW_PREL_NC
	movt r0, #:upper16:m2-(1b+16)	@ R_ARM_MOVT_PREL
	add r0, pc			@ pc: 1b + 16
	bl say				@ R_ARM_CALL, ARM -> Thumb: BLX
	pop {r4, pc}
	.type armjump, %function
armjump:
	ldr r0, t1			@ R_ARM_TARGET1: an absolute address
	bl say
	b tback				@ R_ARM_JUMP24 to Thumb: a veneer
t1:	.word m4(target1)
	.thumb
	.globl tj19, tj11
	.thumb_func
tj19:	ldr r0, =p31
	ldr r1, [r0]
	lsls r1, #1			@ R_ARM_PREL31: X[30:0], sign-extended
	asrs r1, #1
	add r0, r1
	bl say
	b.n tj11_far			@ R_ARM_THM_JUMP11
	.ltorg
	.data
	.align 2
p31:	.reloc ., R_ARM_PREL31, m5
	.word 0x80000000		@ bit 31 is kept
afn_ptr: .word tfn			@ R_ARM_ABS32 of a Thumb function: odd
"""

THUMB_SAY = r"""	.syntax unified
	.thumb
	.text
	.globl say, tj11_far
	.thumb_func
say:	push {r4, r7, lr}		@ say(r0 = nul-terminated string)
	mov r1, r0
	movs r2, #0
1:	ldrb r3, [r1, r2]
	cbz r3, 2f
	adds r2, #1
	b 1b
2:	movs r0, #1
	movs r7, #4
	svc #0
	pop {r4, r7, pc}
	.thumb_func
tj11_far:
	movw r0, #:lower16:m6
	movt r0, #:upper16:m6
	bl say
	movs r0, #1
	cmp r0, #1
	beq.n j8				@ R_ARM_THM_JUMP8
	udf #1
	.globl j8
	.thumb_func
j8:	movw r0, #:lower16:m7
	movt r0, #:upper16:m7
	bl say
	.reloc ., R_ARM_THM_PC12, lit	@ ldr.w r0, lit
	ldr.w r0, [pc, #-4]	@ A = -4: Thumb's pc is Pa + 4
	.reloc ., R_ARM_THM_ALU_PREL_11_0, m8p	@ adr.w r1, m8p
	subw r1, pc, #4
	ldr r1, [r1]
	cmp r0, r1
	bne 3f
	.reloc ., R_ARM_THM_PC8, lit8	@ adr r1, lit8 (16-bit)
		.inst.n 0xa1ff			@ adr r1, with imm8 = 0xff: A = -4
	ldr r0, [r1]
	bl say
	movw r0, #:lower16:rel
	movt r0, #:upper16:rel
	ldr r1, [r0]
	add r0, r1			@ R_ARM_REL32: &rel + rel = m10
	bl say
	ldr r3, =done
	bx r3
3:	udf #2
	.ltorg
	.align 2
lit8:	.word m8
	.align 2
lit:	.word 0x1234			@ in text: PC12 and ALU_PREL reach +-4 KiB
m8p:	.word 0x1234
	.section .rodata
	.globl m1, m2, m3, m4, m5, m6, m7, m8, m9, m10
rel:	.word m10 - .
m1:	.asciz "thumb start, movw/movt\n"
m2:	.asciz "arm movw/movt prel, bl -> blx\n"
m3:	.asciz "thumb fn via pointer\n"
m4:	.asciz "thumb b.w -> veneer -> arm, target1\n"
m5:	.asciz "arm b -> veneer -> thumb, jump19, prel31\n"
m6:	.asciz "jump11\n"
m7:	.asciz "jump8\n"
m8:	.asciz "pc8 pc12 alu_prel\n"
m10:	.asciz "rel32\n"
m9:	.asciz "thumb movw/movt prel\n"
"""

THUMB_EXPECTED = (b"thumb start, movw/movt\narm movw/movt prel, bl -> blx\nthumb fn via pointer\n"
                  b"thumb b.w -> veneer -> arm, target1\n"
                  b"arm b -> veneer -> thumb, jump19, prel31\njump11\njump8\n"
                  b"pc8 pc12 alu_prel\nrel32\nthumb movw/movt prel\n")


@pytest.fixture(scope="module")
def thumb_objs(tmp_path_factory):
    d = tmp_path_factory.mktemp("thumb")
    return [assemble(ARCH, src, d / f"{n}.o")
            for n, src in (("main", THUMB_MAIN), ("lib", THUMB_LIB), ("say", THUMB_SAY))]


def test_thumb_and_interworking_run(tmp_path, thumb_objs):
    p, mine = link_both(ARCH, tmp_path, thumb_objs)
    assert (p.stdout, p.returncode) == (THUMB_EXPECTED, 7)
    compact_links_the_same(thumb_objs, mine)
    # The entry point is _start with its T bit; a BL to the other state is a BLX.
    hdr = readelf(mine, "-h")
    sym = re.search(r"^\s*\d+: ([0-9a-f]+)\s+\d+ FUNC\s+GLOBAL\s+DEFAULT\s+\d+ _start$",
                    readelf(mine, "-sW"), re.M)
    assert sym and int(sym.group(1), 16) & 1, readelf(mine, "-sW")
    assert re.search(rf"Entry point address:\s+0x{sym.group(1).lstrip('0')}\b", hdr), hdr
    dis = objdump(ARCH, mine)
    assert re.search(r"\bblx\s+[0-9a-f]+ <armfn>", dis), dis
    assert re.search(r"\bblx\s+[0-9a-f]+ <say>", dis), dis


def test_veneers_in_the_map(tmp_path, thumb_objs):
    # B across states goes through a veneer of the branch's state (lld's names),
    # with mapping symbols, shown in the -M map; the same input, the same bytes.
    objs = import_all(thumb_objs)
    out, m = tmp_path / "out", tmp_path / "map.txt"
    minild("link", *objs, "-o", out, "-M", m)
    text = m.read_text()
    assert "<arm veneers>:(.text.veneer)" in text, text
    assert "__ARMv5LongLdrPcThunk_tback" in text and "__Thumbv7LongLdrPcThunk_armjump" in text
    dis = objdump(ARCH, out)
    assert re.search(r"<__ARMv5LongLdrPcThunk_tback>:\n\s+[0-9a-f]+:\s+e51ff004\s+ldr\s+pc, "
                     r"\[pc, #-4\]", dis), dis
    assert re.search(r"<__Thumbv7LongLdrPcThunk_armjump>:\n\s+[0-9a-f]+:\s+f8df f000\s+ldr.w\s+pc",
                     dis), dis
    again = tmp_path / "again"
    minild("link", *objs, "-o", again)
    assert again.read_bytes() == out.read_bytes()


# Thumb branches to absolute symbols (odd: Thumb targets) just out of reach of a
# branch at 0x11000, whose pc reads 4 bytes ahead; lld's words and values (the
# T bit included, as lld shows it; an unsigned field's value as uint64, as lld does).
THUMB_FAR = r"""
	.globl far_t, far19, far11, far8, odd8, back8, far12
	.set far_t, 0x1011005		@ 0x11004 + 16 MiB, T bit: 16777217
	.set far19, 0x111005		@ 0x11004 + 1 MiB, T bit
	.set far11, 0x11805		@ 0x11004 + 2 KiB, T bit
	.set far8, 0x11105		@ 0x11004 + 256, T bit
	.set odd8, 0x1100a
	.set back8, 0x10ff8
	.set far12, 0x12004
"""

THUMB_ERROR_CASES = [
    ("thm-jump11-range", "b.n far11",
     "relocation R_ARM_THM_JUMP11 out of range: 2049 is not in [-2048, 2047]"),
    ("thm-jump8-range", "beq.n far8",
     "relocation R_ARM_THM_JUMP8 out of range: 257 is not in [-256, 255]"),
    ("thm-pc8-align", ".reloc ., R_ARM_THM_PC8, odd8\n\t.inst.n 0xa1ff",
     "improper alignment for relocation R_ARM_THM_PC8: 0x6 is not aligned to 4 bytes"),
    ("thm-pc8-back", ".reloc ., R_ARM_THM_PC8, back8\n\t.inst.n 0xa1ff",
     "relocation R_ARM_THM_PC8 out of range: 18446744073709551604 is not in [0, 1023]"),
    ("thm-pc12-range", ".reloc ., R_ARM_THM_PC12, far12\n\tldr.w r0, [pc, #-4]",
     "relocation R_ARM_THM_PC12 out of range: 4096 is not in [-4095, 4095]"),
]


@pytest.fixture(scope="module")
def thumb_far_obj(tmp_path_factory):
    d = tmp_path_factory.mktemp("thumbfar")
    return import_all([assemble(ARCH, THUMB_FAR, d / "far.o")])[0]


def test_thumb_jump19_out_of_range_gets_a_thunk(tmp_path, thumb_far_obj):
    # B<cond>.W just out of +-1 MiB (an error before): lld and GNU ld build a
    # thunk for it (lld's ARM::needsThunk, GNU ld's __far19_veneer), so does
    # minild; the branch keeps its condition.
    src = "\t.syntax unified\n\t.thumb\n\t.text\n\t.globl _start\n\t.thumb_func\n" \
          "_start:\n\tbeq.w far19\n\tbx lr\n"
    j = import_all([assemble(ARCH, src, tmp_path / "j.o")])[0]
    out = tmp_path / "out"
    minild("link", j, thumb_far_obj, "-o", out)
    dis = objdump(ARCH, out)
    assert re.search(r"11000:\s+f000 80[0-9a-f]{2}\s+beq\.w\s+[0-9a-f]+ "
                     r"<__Thumbv7LongLdrPcThunk_far19>", dis), dis
    assert re.search(r"<__Thumbv7LongLdrPcThunk_far19>:\n.*ldr\.w\s+pc.*\n.*00111005", dis), dis


@pytest.mark.parametrize("insn,message", [c[1:] for c in THUMB_ERROR_CASES],
                         ids=[c[0] for c in THUMB_ERROR_CASES])
def test_thumb_relocation_errors(tmp_path, thumb_far_obj, insn, message):
    src = (f"\t.syntax unified\n\t.thumb\n\t.text\n\t.globl _start\n\t.thumb_func\n"
           f"_start:\n\t{insn}\n\tbx lr\n")
    (j,) = import_all([assemble(ARCH, src, tmp_path / "main.o")])
    err = link_refused(tmp_path / "out", j, thumb_far_obj)
    assert f"{j}:(.text+0x0): {message}" in err, err


def test_arm_bl_to_thumb_is_blx(tmp_path, far_obj):
    # An ARM BL to a Thumb function becomes BLX, H set from the target's bit 1.
    src = "\t.text\n\t.globl _start\n_start:\n\tbl thumbfn\n"
    (j,) = import_all([assemble(ARCH, src, tmp_path / "main.o")])
    out = tmp_path / "out"
    minild("link", j, far_obj, "-o", out)
    assert re.search(r"11000:\s+fa[0-9a-f]{6}\s+blx\s+[0-9a-f]+ <thumbfn>", objdump(ARCH, out))


# --- range-extension thunks -------------------------------------------------------

# 17 MiB of filler puts far_t, tail (Thumb) and far_a (ARM) out of a Thumb BL's
# +-16 MiB: each call and the B.W go through a Thumb thunk (ldr.w pc, which
# also switches to ARM for far_a) placed right after _start's section.
THUNK_S = r"""	.syntax unified
	.thumb
	.text
	.globl _start
	.thumb_func
_start:	bl far_t			@ Thumb -> Thumb, 17 MiB away: a thunk
	bl far_a			@ Thumb -> ARM, 17 MiB away: a thunk (not BLX)
	b.w tail			@ R_ARM_THM_JUMP24, 17 MiB away: a thunk
	.section .text.filler, "ax"
	.space 17*1024*1024
	.section .text.far, "ax"
	.thumb
	.globl far_t, tail
	.thumb_func
far_t:	push {r7, lr}
	adr r1, m1
	movs r2, #6
	movs r0, #1
	movs r7, #4
	svc #0
	pop {r7, pc}
	.thumb_func
tail:	movs r0, #9
	movs r7, #1
	svc #0
	.align 2
m1:	.ascii "thumb\n"
	.arm
	.align 2
	.globl far_a
	.type far_a, %function
far_a:	push {r7, lr}
	adr r1, m2
	mov r2, #4
	mov r0, #1
	mov r7, #4
	svc #0
	pop {r7, pc}
m2:	.ascii "arm\n"
"""


def test_thunks_for_calls_out_of_range(tmp_path):
    (o,) = [assemble(ARCH, THUNK_S, tmp_path / "t.o")]
    p, mine = link_both(ARCH, tmp_path, [o], compact=True)
    assert (p.stdout, p.returncode) == (b"thumb\narm\n", 9)
    (j,) = import_all([o], compact=True)
    m = tmp_path / "map.txt"
    again = tmp_path / "again"
    minild("link", j, "-o", again, "-M", m)
    assert again.read_bytes() == mine.read_bytes()   # deterministic
    text = m.read_text()
    assert re.search(r"<thunks>:\(\.text\.thunk\)\n(.*\n)*.*__Thumbv7LongLdrPcThunk_far_t\n", text)
    for name in ("far_a", "far_t", "tail"):
        assert f"__Thumbv7LongLdrPcThunk_{name}" in text, text
    # The thunk section comes right after the callers' section, before the filler.
    assert text.index("<thunks>:(.text.thunk)") < text.index("(.text.filler)")
    dis = objdump(ARCH, mine, "-d", "--start-address=0x11000", "--stop-address=0x11024")
    assert re.search(r"bl\s+[0-9a-f]+ <__Thumbv7LongLdrPcThunk_far_t>", dis), dis
    assert re.search(r"b\.w\s+[0-9a-f]+ <__Thumbv7LongLdrPcThunk_tail>", dis), dis


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
    ("call-align", "bl odd",
     "improper alignment for relocation R_ARM_CALL: 0x2 is not aligned to 4 bytes"),
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


@pytest.mark.parametrize("text,insn,thunk,word", [
    ("0x11000", "bl far", "__ARMv5LongLdrPcThunk_far", "02011008"),
    ("0x11000", "b far", "__ARMv5LongLdrPcThunk_far", "02011008"),
    ("0x11000", "bleq far", "__ARMv5LongLdrPcThunk_far", "02011008"),
    ("0x2011000", "bl back_out", "__ARMv5LongLdrPcThunk_back_out", "00011004"),
], ids=["call", "jump24", "jump24-cond", "call-back"])
def test_branch_out_of_range_gets_a_thunk(tmp_path, far_obj, text, insn, thunk, word):
    # Just out of +-32 MB (these were errors before thunks; lld builds the same):
    # the branch goes to a thunk that loads the target's address into the pc.
    src = f"\t.text\n\t.globl _start\n_start:\n\t{insn}\n\tbx lr\n"
    (j,) = import_all([assemble(ARCH, src, tmp_path / "main.o")])
    out = tmp_path / "out"
    minild("link", "-T", text, j, far_obj, "-o", out)
    dis = objdump(ARCH, out)
    assert re.search(rf"{text[2:]}:\s+[0-9a-f]+\s+b\w*\s+[0-9a-f]+ <{thunk}>", dis), dis
    assert re.search(rf"<{thunk}>:\n.*ldr\s+pc, \[pc, #-4\].*\n\s+[0-9a-f]+:\s+{word}\s", dis), dis


def test_pic_objects_are_refused_with_a_location(tmp_path):
    # -fpic code reaches data through the GOT: the import names the relocation,
    # where it is, and the flag that avoids it, and stops.
    (o,) = build(ARCH, tmp_path, {"t.c": "extern int g; int f(void) { return g + 1; }\n"},
                 "-O2", "-fpic")
    p = minild("import", o, "-o", tmp_path / "t.obj", check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert re.search(r"t\.o: section \.rel\.text: relocation R_ARM_GOT\w* .* at \.text\+0x.*"
                     r"-fno-pic", p.stderr), p.stderr


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


@pytest.mark.parametrize("opt", ["-O2", "-O0", "-Os"])
@pytest.mark.parametrize("mode", ["-mthumb", "-marm"])
@pytest.mark.parametrize("prog", list(C_PROGRAMS))
def test_c_program_matches_gnu_ld(tmp_path, prog, mode, opt):
    objs = build(ARCH, tmp_path, {**C_PROGRAMS[prog], "crt.c": CRT}, *CFLAGS, mode, opt)
    p, _ = link_both(ARCH, tmp_path, objs)
    out, status = C_EXPECTED[prog]
    assert p.stdout == out and status in (None, p.returncode)


def test_thumb_externallink(tmp_path, thumb_objs):
    # --externallink writes the addends back into the places (REL): a Thumb BL
    # stays BL there (GNU ld chooses BL or BLX), and GNU ld builds its own veneers.
    out = tmp_path / "ext"
    minild("link", "--externallink", *import_all(thumb_objs), "-o", out)
    p = run_output(ARCH, out)
    assert (p.stdout, p.returncode) == (THUMB_EXPECTED, 7), p


@pytest.mark.parametrize("opt", ["-O2", "-O0", "-Os"])
@pytest.mark.parametrize("prog", list(C_PROGRAMS))
def test_clang_thumb_program_matches_gnu_ld(tmp_path, prog, opt):
    objs = build(ARCH, tmp_path, {**C_PROGRAMS[prog], "crt.c": CRT}, *CFLAGS, "-mthumb", opt,
                 cc=["clang-14", "--target=armv7a-linux-gnueabihf"])
    p, _ = link_both(ARCH, tmp_path, objs)
    out, status = C_EXPECTED[prog]
    assert p.stdout == out and status in (None, p.returncode)
