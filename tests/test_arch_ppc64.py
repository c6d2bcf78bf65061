"""ppc64 and ppc64le: hello goldens and runs, relocation run tests, range and
alignment errors, and differential tests against GNU ld (asm and C).

Every output runs under qemu-ppc64 / qemu-ppc64le; multi-object programs are
linked twice, by the cross GNU ld and by minild (after `minild import`), and
must print the same bytes and exit with the same status. Both byte orders link
as ELFv2 (see minild/arch/ppc64.py): big-endian sources say `.abiversion 2`,
big-endian C is compiled with -mabi=elfv2 (and, in test_elfv1_links, gcc's default ELFv1).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import (assemble, build, compact_links_the_same, hello_golden, hello_runs,
                      import_all, link_both, link_hello, link_refused, minild, objdump, readelf,
                      reloc_types)
from minild.arch import lookup

ARCHES = ("ppc64", "ppc64le")
CFLAGS = ["-O2", "-fno-pic", "-static", "-nostdlib", "-ffreestanding",
          "-fno-asynchronous-unwind-tables"]
ABI = {"ppc64": ["-mabi=elfv2"], "ppc64le": []}
# GNU ld's TOC optimisation rejects the `ori` a TOC16_LO feeds in A_S (check j):
# off, it applies the relocations as written, which is what this test compares.
GNU_LD = ["-static", "--no-toc-optimize"]


# --- hello -------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHES)
def test_hello_golden(arch, tmp_path):
    hello_golden(arch, tmp_path)


@pytest.mark.parametrize("arch", ARCHES)
def test_hello_runs(arch, tmp_path):
    hello_runs(arch, tmp_path)


def test_elf_header(tmp_path):
    """Both byte orders are ELFv2 executables for EM_PPC64: read from minild's
    output, not from the golden dump."""
    for arch, data in (("ppc64", "big endian"), ("ppc64le", "little endian")):
        d = tmp_path / arch
        d.mkdir()
        text = readelf(link_hello(arch, d), "-h")
        assert re.search(r"Machine:\s+PowerPC64", text)
        assert re.search(r"Flags:\s+0x2, abiv2", text)
        assert data in text


# --- every relocation type, linked by both linkers ------------------------------

# Each check fetches one letter through one relocation form and stores it in buf;
# a wrong field gives a wrong letter (or a crash). Check t calls a function with a
# global entry by `bl` with r12 = 0: only a branch to its local entry survives.
A_S = r"""	.abiversion 2
	.text
	.globl _start
	.type _start,@function
_start:
	lis 2,.TOC.@highesta		# r2 = .TOC., absolute: HIGHESTA/HIGHERA/HA/LO
	ori 2,2,.TOC.@highera
	sldi 2,2,32
	oris 2,2,.TOC.@ha
	addi 2,2,.TOC.@l
	clrrdi 1,1,4
	stdu 1,-64(1)
	addis 31,2,buf@toc@ha		# r31 walks the output buffer
	addi 31,31,buf@toc@l
	.reloc ., R_PPC64_NONE, letters

	lis 3,letters@highesta		# a
	ori 3,3,letters@highera
	sldi 3,3,32
	oris 3,3,letters@ha
	addi 3,3,letters@l
	lbz 3,0(3)
	stb 3,0(31)

	lis 3,(letters+1)@highest	# b
	ori 3,3,(letters+1)@higher
	sldi 3,3,32
	oris 3,3,(letters+1)@h
	ori 3,3,(letters+1)@l
	lbz 3,0(3)
	stb 3,1(31)

	lis 3,letters@highesta		# c
	ori 3,3,letters@highera
	sldi 3,3,32
	oris 3,3,letters@higha
	addi 3,3,letters@l
	lbz 3,2(3)
	stb 3,2(31)

	lis 3,letters@highest		# d
	ori 3,3,letters@higher
	sldi 3,3,32
	oris 3,3,letters@high
	ori 3,3,letters@l
	lbz 3,3(3)
	stb 3,3(31)

	lis 4,dword_e@highesta		# e: ADDR16_LO_DS
	ori 4,4,dword_e@highera
	sldi 4,4,32
	oris 4,4,dword_e@ha
	ld 3,dword_e@l(4)
	stb 3,4(31)

	addis 3,2,letters@toc@ha	# f
	addi 3,3,letters@toc@l
	lbz 3,5(3)
	stb 3,5(31)

	addis 3,2,dword_g@toc@ha	# g: TOC16_LO_DS
	ld 3,dword_g@toc@l(3)
	stb 3,6(31)

	addi 3,2,letters@toc		# h: TOC16
	lbz 3,7(3)
	stb 3,7(31)

	ld 3,dword_i@toc(2)		# i: TOC16_DS
	stb 3,8(31)

	li 3,0				# j: TOC16_HI (above .TOC.: bss past 32 KB)
	oris 3,3,far_bss@toc@h
	ori 3,3,far_bss@toc@l
	add 3,3,2
	addis 4,2,far_bss@toc@ha
	addi 4,4,far_bss@toc@l
	subf 3,4,3
	addi 3,3,'j'
	stb 3,9(31)

	bcl 20,31,1f			# k: REL16_HA/LO
1:	mflr 4
	addis 3,4,(letters-1b)@ha
	addi 3,3,(letters-1b)@l
	lbz 3,10(3)
	stb 3,10(31)

	bcl 20,31,1f			# l: REL16_HI
1:	mflr 4
	li 3,0
	oris 3,3,(letters-1b)@h
	ori 3,3,(letters-1b)@l
	extsw 3,3
	add 3,3,4
	lbz 3,11(3)
	stb 3,11(31)

	addis 4,2,rel16@toc@ha		# m: REL16 (a halfword letters - .)
	addi 4,4,rel16@toc@l
	lha 3,0(4)
	add 3,3,4
	lbz 3,12(3)
	stb 3,12(31)

	addis 4,2,rel32@toc@ha		# n: REL32
	addi 4,4,rel32@toc@l
	lwa 3,0(4)
	add 3,3,4
	lbz 3,13(3)
	stb 3,13(31)

	addis 4,2,rel64@toc@ha		# o: REL64
	addi 4,4,rel64@toc@l
	ld 3,0(4)
	add 3,3,4
	lbz 3,14(3)
	stb 3,14(31)

	addis 4,2,addr64@toc@ha		# p: ADDR64
	ld 3,addr64@toc@l(4)
	lbz 3,0(3)
	stb 3,15(31)

	addis 4,2,addr32@toc@ha		# q: ADDR32
	lwz 3,addr32@toc@l(4)
	lbz 3,0(3)
	stb 3,16(31)

	li 3,abs_r			# r: ADDR16
	stb 3,17(31)

	li 3,'s'			# s: ADDR16_DS
	std 3,-16(1)
	li 3,0
	ld 3,abs_minus16(1)
	stb 3,18(31)

	li 12,0				# t: REL24 to a global entry: must land on the local entry
	bl get_t
	nop
	stb 3,19(31)

	addis 4,2,funcs@toc@ha		# u: call through a pointer (global entry, r12)
	ld 12,funcs@toc@l(4)
	mtctr 12
	bctrl
	stb 3,20(31)

	cmpw 3,3			# v: REL14 (beql)
	beql 0,get_v
	stb 3,21(31)

	cmpw 3,3			# w: REL14_BRTAKEN
	.reloc ., R_PPC64_REL14_BRTAKEN, get_w
	beql 0,.
	stb 3,22(31)

	cmpw 3,3			# x: REL14_BRNTAKEN
	.reloc ., R_PPC64_REL14_BRNTAKEN, get_x
	beql 0,.
	stb 3,23(31)

	addis 4,2,toc@toc@ha		# y: R_PPC64_TOC == r2
	ld 3,toc@toc@l(4)
	subf 3,2,3
	addi 3,3,'y'
	stb 3,24(31)

	li 3,'\n'
	stb 3,25(31)
	li 0,4
	li 3,1
	mr 4,31
	li 5,26
	sc
	li 0,1
	li 3,25
	sc

	.data
	.p2align 3
toc:	.reloc ., R_PPC64_TOC
	.quad 0
addr64:	.quad letters+15
addr32:	.long letters+16
rel32:	.long letters-.
rel16:	.short letters-.
	.p2align 3
rel64:	.quad letters-.
	.bss
buf:	.space 32
"""

B_S = r"""	.abiversion 2
	.data
	.globl letters, dword_e, dword_g, dword_i, funcs
letters: .ascii "abcdefghijklmnopqrstuvwxyz"
	.p2align 3
dword_e: .quad 'e'
dword_g: .quad 'g'
dword_i: .quad 'i'
funcs:	.quad get_u
	.globl abs_r, abs_minus16
	.set abs_r, 'r'
	.set abs_minus16, -16

	.bss
	.globl far_bss
	.space 0x9000
far_bss: .space 8

	.text
	.globl get_t, get_u, get_v, get_w, get_x
	.type get_t,@function
get_t:	addis 2,12,.TOC.-get_t@ha
	addi 2,2,.TOC.-get_t@l
	.localentry get_t,.-get_t
	addis 3,2,letters@toc@ha
	addi 3,3,letters@toc@l
	lbz 3,19(3)
	blr
	.type get_u,@function
get_u:	addis 2,12,.TOC.-get_u@ha
	addi 2,2,.TOC.-get_u@l
	.localentry get_u,.-get_u
	addis 3,2,letters@toc@ha
	addi 3,3,letters@toc@l
	lbz 3,20(3)
	blr
get_v:	li 3,'v'
	blr
get_w:	li 3,'w'
	blr
get_x:	li 3,'x'
	blr
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_relocations_run(arch, tmp_path):
    objs = [assemble(arch, A_S, tmp_path / "a.o"), assemble(arch, B_S, tmp_path / "b.o")]
    assert reloc_types(objs) == {h.name for h in lookup(arch).howtos}, \
        "A_S/B_S must use every type"
    # link_both: GNU ld's output and minild's print the same and exit the same.
    p, out = link_both(arch, tmp_path, objs, GNU_LD)
    assert (p.stdout, p.returncode) == (b"abcdefghijklmnopqrstuvwxy\n", 25), p.stderr
    compact_links_the_same(objs, out)


# --- range and alignment errors ------------------------------------------------

ERR_A = r"""
	.abiversion 2
	.text
	.globl _start
_start:
	nop
	{insn}
	.data
	.globl odd
	.p2align 3
	.byte 1
odd:	.quad 0
"""

ERR_B = r"""
	.abiversion 2
	.globl far_up, far_down, near_up, odd_code, past_toc
	.set far_up, {text} + 4 + 0x2000000
	.set far_down, {text} + 4 - 0x2000004
	.set near_up, {text} + 4 + 0x8000
	.set odd_code, {text} + 0x102
	.bss
	.space 0x10000
past_toc: .space 8
"""

# (instruction at .text+0x4, relocation, symbol, what lld says about the value):
# each value is one step past the end of the field's range, or 2 bytes off. (A bl or b
# just out of range gets a thunk instead: tests/test_thunks.py.)
ERRORS = [
    ("bl odd_code", "R_PPC64_REL24", "odd_code",
     "improper alignment for relocation R_PPC64_REL24: 0xFE is not aligned to 4 bytes"),
    ("beq 0,near_up", "R_PPC64_REL14", "near_up",
     "out of range: 32768 is not in [-32768, 32767]"),
    ("bne 0,odd_code", "R_PPC64_REL14", "odd_code",
     "improper alignment for relocation R_PPC64_REL14: 0xFE is not aligned to 4 bytes"),
    ("addi 3,2,past_toc@toc", "R_PPC64_TOC16", "past_toc", "out of range:"),
    ("ld 3,odd@toc(2)", "R_PPC64_TOC16_DS", "odd",
     "improper alignment for relocation R_PPC64_TOC16_DS:"),
]


@pytest.mark.parametrize("insn,rtype,sym,what", ERRORS, ids=[e[0] for e in ERRORS])
@pytest.mark.parametrize("arch", ARCHES)
def test_relocation_errors(arch, insn, rtype, sym, what, tmp_path):
    text = lookup(arch).elf.text_addr
    objs = [assemble(arch, ERR_A.format(insn=insn), tmp_path / "a.o"),
            assemble(arch, ERR_B.format(text=text), tmp_path / "b.o")]
    a, b = import_all(objs)
    err = link_refused(tmp_path / "out", a, b)
    off = 6 if arch == "ppc64" and rtype.startswith("R_PPC64_TOC16") else 4
    msg = " ".join(err.split())
    assert f"{a}:(.text+{off:#x}):" in msg
    assert re.search(rf"relocation {rtype}[ :]", msg)
    assert what in msg
    assert f"references {sym}" in msg


# --- C programs, differential against GNU ld ---------------------------------------

START_S = r"""
	.abiversion 2
	.text
	.globl _start
	.type _start,@function
_start:
	addis 2,12,.TOC.-_start@ha	# the kernel sets r12 to an ELFv2 entry
	addi 2,2,.TOC.-_start@l
	.localentry _start,.-_start
	clrrdi 1,1,4
	li 0,0
	stdu 0,-64(1)
	bl main
	nop
	li 0,1				# exit(main())
	sc
	.globl sys_write
	.type sys_write,@function
sys_write:
	li 0,4
	sc
	blr
"""

OUT_C = r"""
long sys_write(int fd, const void *buf, unsigned long n);
static char out[512];          /* bss */
static int len;
void puts_(const char *s) { while (*s) out[len++] = *s++; }
void putn(long v) {
    char t[24]; int n = 0;
    if (v < 0) { out[len++] = '-'; v = -v; }
    do { t[n++] = '0' + v % 10; v /= 10; } while (v);
    while (n) out[len++] = t[--n];
}
void flush(void) { sys_write(1, out, len); len = 0; }
"""

# Program 1: tables of function pointers, a switch (jump table), rodata
# strings, bss, data initialised with addresses, calls across files.
MAIN1_C = r"""
void puts_(const char *s); void putn(long v); void flush(void);
extern int (*const ops[])(int, int);
extern const char *const names[];
extern int nops;
int apply(int i, int a, int b);
int classify(int x);
long counter;
static const char *greeting = "differential ppc64\n";
void note(const char *s) { puts_("<"); puts_(s); puts_(">"); }
int main(void) {
    puts_(greeting);
    for (int i = 0; i < nops; i++) {
        puts_(names[i]); puts_(" ");
        putn(apply(i, 12, 5)); puts_("\n");
        counter += ops[i](counter, 3);
    }
    for (int x = -1; x < 9; x++) { putn(classify(x)); puts_(" "); }
    puts_("\ncounter "); putn(counter); puts_("\n");
    flush();
    return (int)(counter & 0x7f);
}
"""

OPS1_C = r"""
extern long counter;
void note(const char *s);
static int add(int a, int b) { return a + b; }
static int sub(int a, int b) { return a - b; }
int mul(int a, int b) { return a * b; }
static int mod(int a, int b) { return b ? a % b : 0; }
int (*const ops[])(int, int) = { add, sub, mul, mod };
const char *const names[] = { "add", "sub", "mul", "mod" };
int nops = sizeof ops / sizeof ops[0];
int apply(int i, int a, int b) { return ops[i](a, b); }
int classify(int x) {
    switch (x) {
    case 0: note("zero"); return 10;
    case 1: return mul(x, 7) + 4;
    case 2: counter += 2; return 33;
    case 3: note("three"); return -4;
    case 4: counter *= 3; return 99;
    case 5: return mul(x, x) + 1000;
    case 6: note("six"); return 6 * x;
    case 7: counter -= 1; return 123;
    default: return -1;
    }
}
"""

# Program 2: a linked list whose nodes point across objects (data and
# relro-style const data), mutual recursion across files, a bss histogram.
LIST2_C = r"""
struct node { const char *name; int value; const struct node *next; };
extern const struct node n3;
const struct node n2 = { "two", 2, &n3 };
struct node n1 = { "one", 1, &n2 };
int is_odd(int);
int is_even(int n) { return n == 0 ? 1 : is_odd(n - 1); }
"""

NODES2_C = r"""
struct node { const char *name; int value; const struct node *next; };
extern struct node n1;
const struct node n3 = { "three", 3, 0 };
struct node *head = &n1;
int hist[16];
int is_even(int);
int is_odd(int n) { return n == 0 ? 0 : is_even(n - 1); }
"""

MAIN2_C = r"""
void puts_(const char *s); void putn(long v); void flush(void);
struct node { const char *name; int value; const struct node *next; };
extern struct node *head;
extern int hist[16];
int is_even(int);
int main(void) {
    int sum = 0;
    for (const struct node *p = head; p; p = p->next) {
        puts_(p->name); puts_(is_even(p->value) ? " even\n" : " odd\n");
        sum += p->value;
        hist[p->value & 15]++;
    }
    for (int i = 0; i < 40; i++) hist[(i * 7) & 15] += i;
    for (int i = 0; i < 16; i++) { putn(hist[i]); puts_(i < 15 ? "," : "\n"); }
    flush();
    return sum + hist[5];
}
"""

PROGRAMS = {
    "tables": ([MAIN1_C, OPS1_C], "differential ppc64\nadd 17\n"),
    "list": ([MAIN2_C, LIST2_C, NODES2_C], "one odd\ntwo even\nthree odd\n"),
}


@pytest.mark.parametrize("prog", sorted(PROGRAMS))
@pytest.mark.parametrize("arch", ARCHES)
def test_c_differential(arch, prog, tmp_path):
    sources, start = PROGRAMS[prog]
    files = {"start.s": START_S, **{f"c{i}.c": src for i, src in enumerate([OUT_C, *sources])}}
    objs = build(arch, tmp_path, files, *CFLAGS, *ABI[arch])
    # link_both: GNU ld's output and minild's print the same and exit the same.
    p, _ = link_both(arch, tmp_path, objs, GNU_LD)
    assert p.stdout.decode().startswith(start), p.stdout


def test_elfv1_links(tmp_path):
    """gcc's default big-endian output is ELFv1: function symbols name .opd
    descriptors. minild's calls go to the code, the entry is _start's
    descriptor and e_flags says ELFv1 (1), as GNU ld's; both runs agree."""
    from test_c_every_arch import crt
    objs = build("ppc64", tmp_path, {"crt.c": crt("ppc64"), "out.c": OUT_C, "main.c": MAIN1_C,
                                     "ops.c": OPS1_C}, *CFLAGS)
    p, mine = link_both("ppc64", tmp_path, objs, GNU_LD)
    assert p.stdout.decode().startswith(PROGRAMS["tables"][1]), p.stdout
    hdr = readelf(mine, "-h")
    assert re.search(r"Flags:\s+0x1, abiv1", hdr), hdr
    entry = int(re.search(r"Entry point address:\s+(0x[0-9a-f]+)", hdr).group(1), 16)
    start = re.search(r"^\s*\d+: ([0-9a-f]+)\s+\d+ FUNC\s+GLOBAL\s+DEFAULT\s+(\d+) _start$",
                      readelf(mine, "-sW"), re.M)
    assert int(start.group(1), 16) == entry      # the descriptor, in .opd
    assert f"[{int(start.group(2)):2}] .data" in readelf(mine, "-SW")


@pytest.mark.parametrize("arch", ARCHES)
def test_other_local_entry_refused(arch, tmp_path):
    """A .localentry other than 8 bytes is refused at import, naming the symbol."""
    o = assemble(arch, """
	.abiversion 2
	.globl f
	.type f,@function
f:	addis 2,12,.TOC.-f@ha
	addi 2,2,.TOC.-f@l
	nop
	nop
	.localentry f,.-f
	blr
""", tmp_path / "f.o")
    p = minild("import", o, "-o", tmp_path / "f.obj", check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    msg = " ".join(p.stderr.split())
    assert f"{o}: symbol f: its local entry point (.localentry) is not 8 bytes" in msg


EDGE_A = r"""
	.abiversion 2
	.globl _start
_start:	nop
	bl edge_up
	b edge_down
	beq 0,e14_up
	bne 0,e14_down
"""

EDGE_B = r"""
	.globl edge_up, edge_down, e14_up, e14_down
	.set edge_up, {text} + 0x4 + 0x1fffffc
	.set edge_down, {text} + 0x8 - 0x2000000
	.set e14_up, {text} + 0xc + 0x7ffc
	.set e14_down, {text} + 0x10 - 0x8000
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_branch_range_edges(arch, tmp_path):
    """The last reachable targets both ways link, and objdump decodes them there."""
    text = lookup(arch).elf.text_addr
    objs = [assemble(arch, EDGE_A, tmp_path / "a.o"),
            assemble(arch, EDGE_B.format(text=text), tmp_path / "b.o")]
    out = tmp_path / "out"
    minild("link", *import_all(objs), "-o", out)
    dis = objdump(arch, out)
    got = re.findall(r"\t(bl|b|beq|bne)\s+([0-9a-f]+) <", dis)
    assert got == [("bl", f"{text + 0x4 + 0x1fffffc:x}"), ("b", f"{text + 0x8 - 0x2000000:x}"),
                   ("beq", f"{text + 0xc + 0x7ffc:x}"), ("bne", f"{text + 0x10 - 0x8000:x}")]


# At 0x10000000 the HIGHER/HIGHEST fields of addresses are all 0: this checks them
# on a constant with every 16-bit part set, where the "A" forms carry twice
# (0xffff8ef0: #ha wraps to 0 and carries into #highera). Exit status: a bit per
# sequence that came out wrong.
HIGH_A = r"""
	.abiversion 2
	.globl _start
_start:
	li 31,0
	lis 4,0x1234			# the expected value, from immediates alone
	ori 4,4,0x5678
	sldi 4,4,32
	oris 4,4,0xffff
	ori 4,4,0x8ef0

	lis 3,big@highesta		# bit 0: HIGHESTA/HIGHERA/HIGHA/LO (carries twice)
	ori 3,3,big@highera
	sldi 3,3,32
	oris 3,3,big@higha
	addi 3,3,big@l
	cmpd 3,4
	beq 0,1f
	ori 31,31,1
1:	lis 3,big@highest		# bit 1: HIGHEST/HIGHER/HIGH/LO
	ori 3,3,big@higher
	sldi 3,3,32
	oris 3,3,big@high
	ori 3,3,big@l
	cmpd 3,4
	beq 0,1f
	ori 31,31,2
1:	bcl 20,31,2f			# bit 2: ADDR64
2:	mflr 5
	ld 3,(3f-2b)(5)
	cmpd 3,4
	beq 0,1f
	ori 31,31,4
1:	li 0,1
	mr 3,31
	sc
	.p2align 3
3:	.quad big
"""

HIGH_B = r"""
	.globl big
	.set big, 0x12345678ffff8ef0
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_high_fields(arch, tmp_path):
    objs = [assemble(arch, HIGH_A, tmp_path / "a.o"), assemble(arch, HIGH_B, tmp_path / "b.o")]
    p, _ = link_both(arch, tmp_path, objs, GNU_LD)  # the same exit status as GNU ld's
    assert p.returncode == 0, p
