"""arm64 (AArch64): the hello example, multi-object links that use every
relocation type minild.arch.arm64 knows, range and alignment errors, and C
programs linked both by GNU ld and by minild.

Every check is done by tools minild did not write: GNU as and gcc make the
objects, qemu-aarch64 runs both links (stdout and exit status must agree, and
match what the program is meant to print), readelf reads the output (stderr
empty) and the objects (which relocation types they use), objdump decodes
instructions, and ld.lld words the same errors on the same objects.
"""

import re

import pytest

from conftest import (assemble, build, compact_links_the_same, hello_golden, hello_runs,
                      import_all, link_both, link_refused, lld_refused, minild, objdump,
                      reloc_types)
from minild import arch as archreg
from minild.reloc import NO_ELF

ARCH = "arm64"
CFLAGS = ["-O2", "-fno-pic", "-static", "-nostdlib", "-ffreestanding",
          "-fno-asynchronous-unwind-tables", "-fno-stack-protector", "-fno-common"]


def test_hello_golden(tmp_path):
    hello_golden(ARCH, tmp_path)


def test_hello_runs(tmp_path):
    hello_runs(ARCH, tmp_path)


# --- every relocation type, across objects, run -------------------------------

# lib.s: the targets. `target` is the address every check rebuilds through a
# different relocation; the words in .data hold it (or other things) the ways
# data can; say/bad/finish are called or branched to from main.s.
LIB = r"""
	.text
	.globl say, bad, finish, get42, tb_taken, cb_taken, bc_taken
say:	mov x0, #1		// write(1, x1, x2)
	mov x8, #64
	svc #0
	ret
get42:	mov x0, #42
	ret
bad:	adrp x1, badmsg
	add x1, x1, :lo12:badmsg
	mov x2, #4
	bl say
	mov x0, #1
	mov x8, #93
	svc #0
tb_taken:
	adrp x1, tbmsg
	add x1, x1, :lo12:tbmsg
	mov x2, #14
	bl say
	b tb_back		// JUMP26 back into main.o
cb_taken:
	adrp x1, cbmsg
	add x1, x1, :lo12:cbmsg
	mov x2, #14
	bl say
	b cb_back
bc_taken:
	adrp x1, bcmsg
	add x1, x1, :lo12:bcmsg
	mov x2, #14
	bl say
	b bc_back
finish:	adrp x1, donemsg
	add x1, x1, :lo12:donemsg
	mov x2, #5
	bl say
	mov x0, #7
	mov x8, #93
	svc #0

	.section .rodata
badmsg:	.ascii "BAD\n"
donemsg: .ascii "done\n"
tbmsg:	.ascii "tstbr14 taken\n"
cbmsg:	.ascii "cbnz    taken\n"
bcmsg:	.ascii "b.cond  taken\n"
	.balign 8
	.globl lit, target
lit:	.quad 0x1122334455667788
target:	.ascii "target\n"

	.data
	.balign 16
	.globl vec, p_abs64, p_prel64, p_abs32, p_prel32, p_abs16, p_prel16, p_byte
vec:	.quad 0x0102030405060708, 0x1112131415161718
p_abs64: .quad target
p_prel64: .quad target - .
p_abs32: .word target
p_prel32: .word target - .
p_abs16: .hword small
p_prel16: .hword near - .
p_byte:	.byte 0x5a
"""

# abs.s: an absolute symbol, so ABS16 and MOVW_UABS_G0 have a value that fits.
ABS = r"""
	.globl small
	.set small, 0x1234
"""

MAIN = r"""
	.macro la reg, sym		// ADR_PREL_PG_HI21 + ADD_ABS_LO12_NC
	adrp \reg, \sym
	add \reg, \reg, :lo12:\sym
	.endm
	.macro ok text			// print "text\n" (section symbol + addend)
	.pushsection .rodata
1:	.ascii "\text\n"
2:
	.popsection
	la x1, 1b
	mov x2, #(2b - 1b)
	bl say				// CALL26
	.endm
	.macro same a, b		// CONDBR19 to another object
	cmp \a, \b
	b.ne bad
	.endm

	.text
	.globl _start, tb_back, cb_back, bc_back
_start:
	la x5, target
	adrp x3, p_abs64
	ldr x4, [x3, :lo12:p_abs64]
	same x4, x5
	ok "abs64 ldst64_lo12"
	la x3, p_prel64
	ldr x4, [x3]
	add x4, x4, x3
	same x4, x5
	ok "prel64"
	adrp x3, p_abs32
	ldr w4, [x3, :lo12:p_abs32]
	same x4, x5
	ok "abs32 ldst32_lo12"
	la x3, p_prel32
	ldrsw x4, [x3]
	add x4, x4, x3
	same x4, x5
	ok "prel32"
	adrp x3, p_abs16
	ldrh w4, [x3, :lo12:p_abs16]
	movz x6, #:abs_g0:small		// MOVW_UABS_G0
	same x4, x6
	mov x6, #0x1234
	same x4, x6
	ok "abs16 ldst16_lo12 movw_uabs_g0"
	la x3, p_prel16
	ldrsh x4, [x3]
	add x4, x4, x3
	la x6, near
	same x4, x6
	ok "prel16"
	adrp x3, p_byte
	ldrb w4, [x3, :lo12:p_byte]
	mov x6, #0x5a
	same x4, x6
	ok "ldst8_lo12"
	adrp x3, vec
	ldr q0, [x3, :lo12:vec]		// LDST128
	mov x4, v0.d[0]
	mov x6, v0.d[1]
	ldr x7, =0x0102030405060708
	same x4, x7
	ldr x7, =0x1112131415161718
	same x6, x7
	ok "ldst128_lo12"
	ldr x4, lit			// LD_PREL_LO19
	ldr x6, =0x1122334455667788
	same x4, x6
	ok "ld_prel_lo19"
	adr x4, target			// ADR_PREL_LO21
	same x4, x5
	ok "adr_prel_lo21"
	adrp x4, :pg_hi21_nc:target
	add x4, x4, :lo12:target
	same x4, x5
	ok "adr_prel_pg_hi21_nc"
	movz x4, #:abs_g3:target
	movk x4, #:abs_g2_nc:target
	movk x4, #:abs_g1_nc:target
	movk x4, #:abs_g0_nc:target
	same x4, x5
	movz x4, #:abs_g2:target
	movk x4, #:abs_g1_nc:target
	movk x4, #:abs_g0_nc:target
	same x4, x5
	movz x4, #:abs_g1:target
	movk x4, #:abs_g0_nc:target
	same x4, x5
	ok "movw_uabs_g3 g2 g2_nc g1 g1_nc g0_nc"
	bl get42
	cmp x0, #42
	b.eq 3f
	b bad
3:	ok "call26"
	mov x4, #2
	tbnz x4, #0, bad		// TSTBR14, not taken
	cbz x4, bad			// CONDBR19, not taken
	tbnz x4, #1, tb_taken		// taken: lib prints, branches back
	b bad
tb_back:
	cbnz x4, cb_taken
	b bad
cb_back:
	cmp x4, #2
	b.eq bc_taken
	b bad
bc_back:
	b finish			// JUMP26

	.data
	.globl near
near:	.quad 0
"""

EXPECTED = (b"abs64 ldst64_lo12\nprel64\nabs32 ldst32_lo12\nprel32\n"
            b"abs16 ldst16_lo12 movw_uabs_g0\nprel16\nldst8_lo12\nldst128_lo12\n"
            b"ld_prel_lo19\nadr_prel_lo21\nadr_prel_pg_hi21_nc\n"
            b"movw_uabs_g3 g2 g2_nc g1 g1_nc g0_nc\ncall26\n"
            b"tstbr14 taken\ncbnz    taken\nb.cond  taken\ndone\n")


@pytest.fixture(scope="module")
def relocs_objs(tmp_path_factory):
    d = tmp_path_factory.mktemp("relocs")
    return [assemble(ARCH, src, d / f"{n}.o") for n, src in
            (("main", MAIN), ("lib", LIB), ("abs", ABS))]


def test_objects_use_every_relocation_type(relocs_objs):
    supported = {h.name for h in archreg.lookup(ARCH).howtos
                 if h.code != NO_ELF} - {"R_AARCH64_NONE"}   # COFF's types: no ELF object has them
    assert reloc_types(relocs_objs) == supported


def test_every_relocation_type_runs(tmp_path, relocs_objs):
    p, mine = link_both(ARCH, tmp_path, relocs_objs)
    assert (p.stdout, p.returncode) == (EXPECTED, 7)
    compact_links_the_same(relocs_objs, mine)


# --- range and alignment errors -----------------------------------------------

# Absolute symbols place branch targets anywhere without writing 128 MB of
# code; text starts at 0x401000 in minild by default and in ld.lld with -Ttext.
FAR = r"""
	.globl far, near_edge, odd, odd_back, odd_data, back_far, back_edge, back_out
	.set far, 0x8401000		// +128 MB from the bl at 0x401000: just out
	.set near_edge, 0x8400ffc	// +128 MB - 4 from the bl at 0x401000
	.set back_far, 0x300000		// 1 MB + 4 KB back: out for b.cond
	.set back_edge, 0x401000	// -128 MB from a bl at 0x8401000 (-T): in
	.set back_out, 0x400ffc		// -128 MB - 4: out
	.set odd, 0x401006
	.set odd_back, 0x400ffa
	.set odd_data, 0x500004
"""

ERROR_CASES = [
    # (id, instruction at .text+0, expected message headline; lld: does ld.lld agree?)
    ("call26-align", "bl odd",
     "improper alignment for relocation R_AARCH64_CALL26: 0x6 is not aligned to 4 bytes",
     False),
    ("condbr19-range", "b.eq back_far",
     "relocation R_AARCH64_CONDBR19 out of range: -1052672 is not in "
     "[-1048576, 1048575]; references back_far", True),
    ("condbr19-align", "cbz x0, odd",
     "improper alignment for relocation R_AARCH64_CONDBR19: 0x6 is not aligned to 4 bytes",
     True),
    ("condbr19-align-back", "b.ne odd_back",
     "improper alignment for relocation R_AARCH64_CONDBR19: 0xFFFFFFFFFFFFFFFA is not "
     "aligned to 4 bytes", True),
    ("tstbr14-range", "tbz x0, #3, back_far",
     "relocation R_AARCH64_TSTBR14 out of range: -1052672 is not in [-32768, 32767]; "
     "references back_far", True),
    ("ldst64-align", "ldr x0, [x1, :lo12:odd_data]",
     "improper alignment for relocation R_AARCH64_LDST64_ABS_LO12_NC: 0x500004 is not "
     "aligned to 8 bytes", True),
    ("ldst128-align", "str q0, [x1, :lo12:odd_data]",
     "improper alignment for relocation R_AARCH64_LDST128_ABS_LO12_NC: 0x500004 is not "
     "aligned to 16 bytes", True),
    ("movw_g0-range", "movz x0, #:abs_g0:odd_data",
     "relocation R_AARCH64_MOVW_UABS_G0 out of range: 5242884 is not in [0, 65535]; "
     "references odd_data", True),
]


@pytest.fixture(scope="module")
def far_obj(tmp_path_factory):
    d = tmp_path_factory.mktemp("far")
    o = assemble(ARCH, FAR, d / "far.o")
    return o, import_all([o])[0]


@pytest.mark.parametrize("insn,message,lld", [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])
def test_relocation_errors(tmp_path, far_obj, insn, message, lld):
    src = f"\t.text\n\t.globl _start\n_start:\n\t{insn}\n\tret\n"
    o = assemble(ARCH, src, tmp_path / "main.o")
    (j,) = import_all([o])
    err = link_refused(tmp_path / "out", j, far_obj[1])
    assert f"{j}:(.text+0x0): {message}" in err, err
    if lld:
        # ld.lld words the same error on the same objects (it builds range
        # thunks for calls, so only the types it cannot thunk are compared).
        said = lld_refused(tmp_path, [o, far_obj[0]], "0x401000")
        assert f"{o}:(.text+0x0): {message}" in said, said


EDGES = [
    # (id, -T, branch, objdump's decoding of it at the text address)
    ("forward", "0x401000", "bl near_edge", r"401000:\s+95ffffff\s+bl\s+8400ffc"),
    ("backward", "0x8401000", "bl back_edge", r"8401000:\s+96000000\s+bl\s+401000"),
]


@pytest.mark.parametrize("text,insn,decoded", [e[1:] for e in EDGES], ids=[e[0] for e in EDGES])
def test_branch_at_the_edge_of_range(tmp_path, far_obj, text, insn, decoded):
    # +-128 MB (less 4 forward) is still in range: objdump must decode the exact target.
    src = f"\t.text\n\t.globl _start\n_start:\n\t{insn}\n"
    (j,) = import_all([assemble(ARCH, src, tmp_path / "main.o")])
    out = tmp_path / "out"
    minild("link", "-T", text, j, far_obj[1], "-o", out)
    dis = objdump(ARCH, out)
    assert re.search(decoded, dis), dis


@pytest.mark.parametrize("text,insn,thunk", [
    ("0x401000", "bl far", "__AArch64AbsLongThunk_far"),
    ("0x401000", "b far", "__AArch64AbsLongThunk_far"),
    ("0x8401000", "bl back_out", "__AArch64AbsLongThunk_back_out"),
], ids=["call26", "jump26", "call26-back"])
def test_branch_out_of_range_gets_a_thunk(tmp_path, far_obj, text, insn, thunk):
    # Just out of +-128 MB (errors before thunks; lld builds the same thunk):
    # ldr x16, #8; br x16; .xword target, right after the caller's section.
    src = "\t.text\n\t.globl _start\n_start:\n\t%s\n\tret\n" % insn
    (j,) = import_all([assemble(ARCH, src, tmp_path / "main.o")])
    out, m = tmp_path / "out", tmp_path / "map.txt"
    minild("link", "-T", text, j, far_obj[1], "-o", out, "-M", m)
    assert f"<thunks>:(.text.thunk)" in m.read_text() and thunk in m.read_text()
    dis = objdump(ARCH, out)
    assert re.search(rf"{text[2:]}:\s+[0-9a-f]+\s+bl?\s+[0-9a-f]+ <{thunk}>", dis), dis
    assert re.search(rf"<{thunk}>:\n.*ldr\s+x16, .*\n.*br\s+x16", dis), dis


# --- C programs, differential against GNU ld ------------------------------------

CRT = r"""
long sys3(long nr, long a, long b, long c) {
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
	return x0;
}
void write_out(const char *s, long n) { sys3(64, 1, (long)s, n); }
int main(void);
void _start(void) {
	sys3(93, main(), 0, 0);
	for (;;) ;
}
"""

def switch_source() -> str:
    """switch_source writes mix(c, x): 16 dense cases doing different work, which
    gcc -O2 compiles to a jump table (a .rodata table and an indirect branch);
    the even cases print a letter, so stdout shows that each case was reached."""
    ops = ["x + 1", "x * 3", "x - 7", "x << 2", "x ^ 0x55", "x / 3", "-x", "x | 0x100",
           "x & 0xff", "x + 1000", "x * 5", "x - 99", "x >> 1", "x ^ 0x3c", "x + 77", "x * 7"]
    cases = "".join(f"\tcase {i}: " + (f'put("{chr(97 + i)}"); ' if i % 2 == 0 else "")
                    + f"return {o};\n" for i, o in enumerate(ops))
    return ("void put(const char *s);\nint mix(int c, int x) {\n\tswitch (c) {\n" + cases
            + "\tdefault: return x;\n\t}\n}\n")


OPS_C = r"""
static int add(int a, int b) { return a + b; }
static int sub(int a, int b) { return a - b; }
static int mul(int a, int b) { return a * b; }
static int xr(int a, int b) { return a ^ b; }
int (*ops[])(int, int) = { add, mul, sub, xr };
const char *names[] = { "add ", "mul ", "sub ", "xor\n" };
%(mix)s
const char *classify(int c) {
	switch (c) {
	case 0: return "zero ";
	case 1: return "one ";
	case 2: return "two ";
	case 3: return "three ";
	case 4: return "four ";
	case 5: return "five ";
	case 6: return "six ";
	case 7: return "seven ";
	default: return "many\n";
	}
}""" % {"mix": switch_source()}

C_PROGRAMS = {
    # calls across files, rodata strings, bss, data initialised with addresses
    "calls": {
        "main.c": r"""
void write_out(const char *s, long n);
long strlen_(const char *s);
void put(const char *s);
extern const char *greetings[];
extern int counter;
extern int *counter_ptr;
int main(void) {
	for (int i = 0; greetings[i]; i++) put(greetings[i]);
	*counter_ptr += 40;
	return counter + 2;
}
""",
        "util.c": r"""
void write_out(const char *s, long n);
int counter;                         /* bss */
int *counter_ptr = &counter;         /* data initialised with an address */
const char *greetings[] = { "hello, ", "world", "\n", 0 };
long strlen_(const char *s) { long n = 0; while (s[n]) n++; return n; }
void put(const char *s) { write_out(s, strlen_(s)); }
""",
    },
    # tables of function pointers and switch jump tables
    "dispatch": {
        "main.c": r"""
void put(const char *s);
typedef int (*op)(int, int);
extern op ops[];
extern const char *names[];
const char *classify(int c);
int mix(int c, int x);
int main(void) {
	int acc = 0;
	for (int i = 0; i < 4; i++) {
		put(names[i]);
		acc = ops[i](acc, i + 3);
	}
	for (int c = 0; c < 9; c++) put(classify(c));
	for (int c = 0; c < 18; c++) acc = mix(c, acc + 100);
	put("\n");
	return acc & 0x7f;
}
""",
        "ops.c": OPS_C,
        "put.c": r"""
void write_out(const char *s, long n);
void put(const char *s) { long n = 0; while (s[n]) n++; write_out(s, n); }
""",
    },
    # a big bss array, a rodata table of structs with pointers, recursion
    "tables": {
        "main.c": r"""
void put(const char *s);
struct entry { const char *name; int (*fn)(int); int arg; };
extern const struct entry entries[];
extern unsigned char scratch[65536];
int main(void) {
	int sum = 0;
	for (const struct entry *e = entries; e->name; e++) {
		put(e->name);
		sum += e->fn(e->arg);
	}
	for (int i = 0; i < 65536; i += 4096) sum += scratch[i];
	scratch[100] = 9;
	return (sum + scratch[100]) & 0xff;
}
""",
        "fns.c": r"""
void put(const char *s) { long n = 0; while (s[n]) n++;
	extern void write_out(const char *, long); write_out(s, n); }
unsigned char scratch[65536];
static int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
static int sq(int n) { return n * n; }
struct entry { const char *name; int (*fn)(int); int arg; };
const struct entry entries[] = {
	{ "fib(10)\n", fib, 10 }, { "sq(7)\n", sq, 7 }, { 0, 0, 0 },
};
""",
    },
}

C_EXPECTED = {
    "calls": (b"hello, world\n", 42),
    "dispatch": (b"add mul sub xor\nzero one two three four five six seven many\nacegikmo\n",
                 None),  # the exit status is compared with GNU ld's only
    "tables": (b"fib(10)\nsq(7)\n", (55 + 49 + 9) & 0xff),
}


@pytest.mark.parametrize("prog", list(C_PROGRAMS))
def test_c_program_matches_gnu_ld(tmp_path, prog):
    objs = build(ARCH, tmp_path, {**C_PROGRAMS[prog], "crt.c": CRT}, *CFLAGS)
    p, _ = link_both(ARCH, tmp_path, objs)
    out, status = C_EXPECTED[prog]
    assert p.stdout == out and status in (None, p.returncode)
