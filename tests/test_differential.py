"""Differential tests of `minild import` + `minild link` against GNU ld (amd64, x86).

Each program is several objects (calls across files, tables of function
pointers, switch jump tables, rodata strings, bss, data initialised with
addresses), written in assembly and in C, assembled or compiled here (GNU as;
gcc natively, gcc -m32 for x86). GNU ld links the objects once, minild links
them once after `minild import`; the kernel runs both (amd64 and i386 run
natively here), and stdout and the exit status must be the same. With -g, the
DWARF must come through relocated: readelf reads minild's output without a
complaint, DW_AT_low_pc values are the symbols' addresses, and each function's
line table is the one GNU ld's output has.

C is compiled by gcc and by clang (--target), assembly by GNU as and by
LLVM's integrated assembler (llvm-mc): the importer must take all of them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import conftest
from conftest import link_both, objdump, readelf

CFLAGS = ["-O2", "-fno-pic", "-static", "-nostdlib", "-ffreestanding",
          "-fno-asynchronous-unwind-tables", "-fno-stack-protector"]

# arch -> (C compiler command, GNU ld flags)
TOOLCHAINS = {
    "amd64": (["gcc", "-m64"], []),
    "x86": (["gcc", "-m32"], ["-m", "elf_i386"]),
}
GNU_LD = {a: [*ld, "-static"] for a, (_, ld) in TOOLCHAINS.items()}
# compiler -> arch -> command replacing TOOLCHAINS' C compiler
COMPILERS = {
    "gcc": {a: cc for a, (cc, _) in TOOLCHAINS.items()},
    "clang": {"amd64": ["clang-14", "--target=x86_64-linux-gnu"],
              "x86": ["clang-14", "--target=i686-linux-gnu"]},
}
# assembler -> arch -> command (None: GNU as for the arch)
ASSEMBLERS = {
    "gas": {"amd64": None, "x86": None},
    "llvm-mc": {"amd64": ["llvm-mc", "-triple=x86_64-linux-gnu", "-filetype=obj"],
                "x86": ["llvm-mc", "-triple=i686-linux-gnu", "-filetype=obj"]},
}

# --- C sources: the same for every arch; start.s is per arch ----------------

FMT_C = r"""
/* fmt.c: buffered output through the arch's sys_write (start.s). */
long sys_write(int fd, const char *buf, long n);
static char buf[128];            /* bss */
static int len;                  /* bss */
void flush(void) { if (len) sys_write(1, buf, len); len = 0; }
void put_char(char c) { if (len == (int)sizeof buf) flush(); buf[len++] = c; }
void put_str(const char *s) { while (*s) put_char(*s++); }
void put_int(long v) {
    char tmp[24]; int n = 0; unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
    if (v < 0) put_char('-');
    do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    while (n) put_char(tmp[--n]);
}
void put_line(const char *label, long v) { put_str(label); put_str(" = "); put_int(v); put_char('\n'); }
"""

FMT_H = """
void flush(void); void put_char(char c); void put_str(const char *s);
void put_int(long v); void put_line(const char *label, long v);
"""

CALC_OPS_C = FMT_H + r"""
/* ops.c: functions reached through tables of pointers. */
static int add(int a, int b) { return a + b; }
static int sub(int a, int b) { return a - b; }
static int mul(int a, int b) { return a * b; }
static int quo(int a, int b) { return b ? a / b : 0; }
static int rem(int a, int b) { return b ? a % b : 0; }
int (*const op_table[])(int, int) = {add, sub, mul, quo, rem};     /* rodata + relocs */
const char *const op_names[] = {"add", "sub", "mul", "quo", "rem"};
int (*hooks[4])(int, int);                                          /* bss, set at run time */
int op_count = sizeof op_table / sizeof op_table[0];                /* data */
void install(void) { for (int i = 0; i < 4; i++) hooks[i] = op_table[(i + 1) % op_count]; }
"""

CALC_MAIN_C = FMT_H + r"""
/* main.c: a switch with a jump table, data initialised with addresses. */
extern int (*const op_table[])(int, int);
extern const char *const op_names[];
extern int (*hooks[4])(int, int);
extern int op_count;
void install(void);
int hist[8];                                  /* bss */
int seed = 12345;                             /* data */
int *cells[] = {&hist[1], &hist[5], &seed};   /* data: addresses */
const char *greeting = "calc\n";              /* data: address of a rodata string */
static int step(int v) {
    switch (v & 7) {                          /* dense cases: a jump table at -O2 */
    case 0: put_str("zero "); return v + 3;
    case 1: put_str("one "); return v * 5;
    case 2: put_str("two "); return v - 7;
    case 3: put_str("three "); hist[3]++; return v ^ 0x55;
    case 4: put_str("four "); return v / 3;
    case 5: put_str("five "); return v + 11;
    case 6: put_str("six "); *cells[0] += 1; return v * 7;
    default: put_str("seven "); return v - 1;
    }
}
int main(void) {
    put_str(greeting);
    install();
    int acc = 0;
    for (int i = 0; i < op_count; i++) {
        int r = op_table[i](seed % 1000, 7 + i);
        put_line(op_names[i], r);
        acc += r;
    }
    for (int i = 0; i < 4; i++) acc += hooks[i](acc & 0xff, 3);
    int v = seed;
    for (int i = 0; i < 12; i++) { v = step(v) & 0xffff; hist[v & 7]++; }
    put_char('\n');
    for (int i = 0; i < 8; i++) put_int(hist[i]), put_char(i < 7 ? ' ' : '\n');
    put_line("acc", acc);
    put_line("cell", *cells[2] - *cells[1]);
    flush();
    return (acc + v) & 0x7f;
}
"""

SORT_REC_C = r"""
/* records.c: records holding pointers to strings and to functions. */
struct rec { const char *name; int key; int (*score)(int); };
static int twice(int k) { return 2 * k; }
static int square(int k) { return k * k; }
static int neg(int k) { return -k; }
struct rec recs[] = {                        /* data: addresses of strings and code */
    {"pear", 7, twice}, {"apple", 3, square}, {"fig", 9, neg}, {"kiwi", 1, twice},
    {"plum", 5, square}, {"date", 4, neg}, {"lime", 8, twice},
};
const int nrecs = sizeof recs / sizeof recs[0];
struct rec *scratch[16];                     /* bss */
"""

SORT_MAIN_C = FMT_H + r"""
/* sort.c: an insertion sort driven by a comparator passed across files. */
struct rec { const char *name; int key; int (*score)(int); };
extern struct rec recs[]; extern const int nrecs; extern struct rec *scratch[16];
static int by_key(const struct rec *a, const struct rec *b) { return a->key - b->key; }
static int by_name(const struct rec *a, const struct rec *b) {
    const char *x = a->name, *y = b->name;
    while (*x && *x == *y) x++, y++;
    return (unsigned char)*x - (unsigned char)*y;
}
static int (*const cmps[])(const struct rec *, const struct rec *) = {by_key, by_name};
static const char *const titles[] = {"by key:", "by name:"};
static void sort(struct rec **v, int n, int (*cmp)(const struct rec *, const struct rec *)) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && cmp(v[j - 1], v[j]) > 0; j--) {
            struct rec *t = v[j]; v[j] = v[j - 1]; v[j - 1] = t;
        }
}
int main(void) {
    int sum = 0;
    for (int c = 0; c < 2; c++) {
        for (int i = 0; i < nrecs; i++) scratch[i] = &recs[i];
        sort(scratch, nrecs, cmps[c]);
        put_str(titles[c]);
        for (int i = 0; i < nrecs; i++) {
            put_char(' '); put_str(scratch[i]->name);
            sum += scratch[i]->score(scratch[i]->key) * (i + 1);
        }
        put_char('\n');
    }
    put_line("sum", sum);
    flush();
    return sum & 0x7f;
}
"""

VM_CODE_C = r"""
/* code.c: a bytecode program and its constant strings (rodata). */
const unsigned char program[] = {
    1, 10,  /* push 10 */  3,      /* 2, loop: dup */  7, 0,   /* print "n" */
    1, 1,   /* push 1 */   5,      /* sub */        3, 6, 2, /* dup, jnz loop */
    2,      /* pop */      1, 6, 1, 7, 4, /* push 6 7 mul */ 7, 1, /* print "product" */
    8, 2,   /* say 2 */    9, 3,   /* say 3 */      0,        /* halt */
};
const char *const labels[] = {"n", "product", "strings in rodata", "switch"};
"""

VM_MAIN_C = FMT_H + r"""
/* vm.c: the interpreter's switch over opcodes compiles to a jump table. */
extern const unsigned char program[]; extern const char *const labels[];
static long stack[32];                       /* bss */
static int sp;
static long traced;                          /* bss */
static long *const trace = &traced;          /* rodata: an address */
int main(void) {
    int pc = 0;
    for (;;) {
        unsigned char op = program[pc++];
        ++*trace;
        switch (op) {
        case 0: flush(); return (int)(traced & 0x7f);
        case 1: stack[sp++] = program[pc++]; break;
        case 2: sp--; break;
        case 3: stack[sp] = stack[sp - 1]; sp++; break;
        case 4: sp--; stack[sp - 1] *= stack[sp]; break;
        case 5: sp--; stack[sp - 1] -= stack[sp]; break;
        case 6: { int t = program[pc++]; if (stack[--sp]) pc = t; break; }
        case 7: put_line(labels[program[pc++]], stack[--sp]); break;
        case 8: put_str(labels[program[pc++]]); put_char('\n'); break;
        case 9: put_str("say: "); put_str(labels[program[pc++]]); put_char('\n'); break;
        default: put_str("bad opcode\n"); flush(); return 99;
        }
    }
}
"""

# Strings that two objects share: SHF_MERGE sections come through unmerged.
MERGE_A_C = FMT_H + r"""
const char *first(void) { return "shared string"; }
int main(void) {
    const char *second(void);
    put_str(first()); put_char('\n'); put_str(second()); put_char('\n');
    /* Not first() == second(): C leaves it open, and GNU ld merges the strings
       where minild does not (docs/import.md). */
    const char *x = first(), *y = second();
    while (*x && *x == *y) x++, y++;
    put_line("same", *x == *y);
    flush();
    return 3;
}
"""
MERGE_B_C = r"""
const char *second(void) { return "shared string"; }
"""

START_S = {
    "amd64": r"""
        .text
        .globl _start
_start: xorl %ebp, %ebp
        andq $-16, %rsp
        call main
        movl %eax, %edi
        movl $60, %eax
        syscall
        .globl sys_write
sys_write:
        movl $1, %eax
        syscall
        ret
        .section .note.GNU-stack,"",@progbits
""",
    "x86": r"""
        .text
        .globl _start
_start: xorl %ebp, %ebp
        andl $-16, %esp
        call main
        movl %eax, %ebx
        movl $1, %eax
        int $0x80
        .globl sys_write
sys_write:
        pushl %ebx
        movl 8(%esp), %ebx
        movl 12(%esp), %ecx
        movl 16(%esp), %edx
        movl $4, %eax
        int $0x80
        popl %ebx
        ret
        .section .note.GNU-stack,"",@progbits
""",
}

C_PROGRAMS = {
    "calc": {"main.c": CALC_MAIN_C, "ops.c": CALC_OPS_C, "fmt.c": FMT_C},
    "sort": {"sort.c": SORT_MAIN_C, "records.c": SORT_REC_C, "fmt.c": FMT_C},
    "vm": {"vm.c": VM_MAIN_C, "code.c": VM_CODE_C, "fmt.c": FMT_C},
    "merge": {"a.c": MERGE_A_C, "b.c": MERGE_B_C, "fmt.c": FMT_C},
}

# --- assembly programs, per arch ------------------------------------------

AMD64_MAIN_S = r"""
        # main.s: a jump table of local labels (.text section-symbol relocations),
        # absolute and pc-relative references of every width minild applies.
        .text
        .globl _start
_start: xorl %ebx, %ebx                 # rbx: case number
1:      cmpq $5, %rbx
        jae 9f
        jmp *.Ltable(,%rbx,8)           # R_X86_64_32S to .rodata
.Lc0:   leaq msg0(%rip), %rdi           # R_X86_64_PC32
        jmp 8f
.Lc1:   movl $msg1, %edi                # R_X86_64_32
        jmp 8f
.Lc2:   movabsq $msg2, %rdi             # R_X86_64_64 in code
        jmp 8f
.Lc3:   movq ptrs+8(%rip), %rdi         # data holding an address
        jmp 8f
.Lc4:   movslq rel32(%rip), %rdi        # a pc-relative word in data
        leaq rel32(%rip), %rax
        addq %rax, %rdi
8:      call puts                       # R_X86_64_PLT32 across files
        incq %rbx
        jmp 1b
9:      movq handlers(%rip), %rax       # a table of function pointers in data
        call *%rax
        movq handlers+8(%rip), %rax
        call *%rax
        movl count(%rip), %edi          # bss, written by the handlers
        movl $60, %eax
        syscall

        .section .rodata
        .balign 8
.Ltable: .quad .Lc0, .Lc1, .Lc2, .Lc3, .Lc4
msg0:   .asciz "case zero"
msg1:   .asciz "case one"
msg2:   .asciz "case two"
        .data
        .balign 8
ptrs:   .quad msg0, msg3 + 6            # an address with an addend
rel32:  .long msg4 - .                  # R_X86_64_PC32 in data
        .section .rodata.str, "aMS", @progbits, 1
msg3:   .asciz "skip: case three"
msg4:   .asciz "case four"
        .section .note.GNU-stack,"",@progbits
"""

AMD64_IO_S = r"""
        # io.s: puts(rdi) writes a string and a newline; counts calls in bss.
        .text
        .globl puts
        .type puts, @function
puts:   movq %rdi, %rsi
        xorl %edx, %edx
1:      cmpb $0, (%rsi,%rdx)
        je 2f
        incq %rdx
        jmp 1b
2:      movl $1, %eax
        movl $1, %edi
        syscall
        movl $1, %eax
        movl $1, %edi
        leaq nl(%rip), %rsi
        movl $1, %edx
        syscall
        incl count(%rip)
        ret
        .size puts, . - puts
        .section .rodata
nl:     .byte 10
        .bss
        .globl count
        .balign 4
count:  .zero 4
        .section .note.GNU-stack,"",@progbits
"""

AMD64_HANDLERS_S = r"""
        # handlers.s: a table of function pointers (data) naming code in two files.
        .data
        .globl handlers
        .balign 8
handlers: .quad hello, bye
        .text
hello:  leaq hi(%rip), %rdi
        jmp puts
bye:    movl $bye_msg, %edi
        call puts
        addl $40, count(%rip)
        ret
        .section .rodata
hi:     .asciz "hello from a pointer"
bye_msg: .asciz "bye from a pointer"
        .section .note.GNU-stack,"",@progbits
"""

X86_MAIN_S = r"""
        # main.s: REL relocations whose addends sit in the places (made explicit
        # by the importer): a jump table of local labels, addresses plus offsets.
        .text
        .globl _start
_start: xorl %ebx, %ebx
1:      cmpl $5, %ebx
        jae 9f
        jmp *.Ltable(,%ebx,4)           # R_386_32 to .rodata (section symbol + addend)
.Lc0:   movl $msg0, %eax                # R_386_32
        jmp 8f
.Lc1:   movl $msg1 + 5, %eax            # implicit addend 5
        jmp 8f
.Lc2:   movl ptrs, %eax                 # data holding an address
        jmp 8f
.Lc3:   movl ptrs + 4, %eax
        jmp 8f
.Lc4:   call 2f                         # pc-relative data word: rel32 - . + target
2:      popl %eax
        addl $(rel32 - 2b), %eax
        addl rel32, %eax
8:      pushl %eax
        call puts                       # R_386_PC32 across files
        addl $4, %esp
        incl %ebx
        jmp 1b
9:      call *handlers
        call *handlers + 4
        movl count, %ebx
        movl $1, %eax
        int $0x80

        .section .rodata
        .balign 4
.Ltable: .long .Lc0, .Lc1, .Lc2, .Lc3, .Lc4
msg0:   .asciz "case zero"
msg1:   .asciz "skip case one"
        .data
        .balign 4
ptrs:   .long msg2, msg3 + 6
rel32:  .long msg4 - .                  # R_386_PC32 in data
        .section .rodata.str, "aMS", @progbits, 1
msg2:   .asciz "case two"
msg3:   .asciz "skip: case three"
msg4:   .asciz "case four"
        .section .note.GNU-stack,"",@progbits
"""

X86_IO_S = r"""
        # io.s: puts(char *) writes a string and a newline; counts calls in bss.
        .text
        .globl puts
        .type puts, @function
puts:   pushl %ebx
        movl 8(%esp), %ecx
        xorl %edx, %edx
1:      cmpb $0, (%ecx,%edx)
        je 2f
        incl %edx
        jmp 1b
2:      movl $4, %eax
        movl $1, %ebx
        int $0x80
        movl $4, %eax
        movl $1, %ebx
        movl $nl, %ecx
        movl $1, %edx
        int $0x80
        incl count
        popl %ebx
        ret
        .size puts, . - puts
        .section .rodata
nl:     .byte 10
        .bss
        .globl count
        .balign 4
count:  .zero 4
        .section .note.GNU-stack,"",@progbits
"""

X86_HANDLERS_S = r"""
        # handlers.s: a table of function pointers (data) naming code in two files.
        .data
        .globl handlers
        .balign 4
handlers: .long hello, bye
        .text
hello:  pushl $hi
        call puts
        addl $4, %esp
        ret
bye:    pushl $bye_msg
        call puts
        addl $4, %esp
        addl $40, count
        ret
        .section .rodata
hi:     .asciz "hello from a pointer"
bye_msg: .asciz "bye from a pointer"
        .section .note.GNU-stack,"",@progbits
"""

ASM_PROGRAMS = {
    "amd64": {"main.s": AMD64_MAIN_S, "io.s": AMD64_IO_S, "handlers.s": AMD64_HANDLERS_S},
    "x86": {"main.s": X86_MAIN_S, "io.s": X86_IO_S, "handlers.s": X86_HANDLERS_S},
}


# --- helpers ---------------------------------------------------------------

def build(arch: str, files: dict[str, str], d: Path, *cflags: str, compiler: str = "gcc",
          assembler: str = "gas") -> list[Path]:
    """build assembles (.s) or compiles (.c) each file with the named assembler
    and compiler; returns the objects."""
    return conftest.build(arch, d, files, *CFLAGS, *cflags, cc=COMPILERS[compiler][arch],
                          asm=ASSEMBLERS[assembler][arch])


# --- the tests -------------------------------------------------------------

C_CASES = [(arch, cc, prog, opt) for arch in TOOLCHAINS for cc in COMPILERS
           for prog in C_PROGRAMS
           for opt in (("-O2", "-O0", "-Os") if prog == "calc" and cc == "gcc" else ("-O2",))]


@pytest.mark.parametrize("arch,cc,prog,opt", C_CASES, ids=["-".join(c) for c in C_CASES])
def test_c_program(arch, cc, prog, opt, tmp_path):
    files = {"start.s": START_S[arch], **C_PROGRAMS[prog]}
    objs = build(arch, files, tmp_path, opt, compiler=cc)
    r, _ = link_both(arch, tmp_path, objs, GNU_LD[arch], compact=opt == "-Os")
    assert r.stdout, "the program printed nothing: the test proves little"


JUMP_TABLE_CASES = [(arch, cc) for arch in TOOLCHAINS for cc in COMPILERS]


@pytest.mark.parametrize("arch,cc", JUMP_TABLE_CASES, ids=["-".join(c) for c in JUMP_TABLE_CASES])
def test_c_switch_has_jump_table(arch, cc, tmp_path):
    """The C programs really contain jump tables: an indirect jump through a
    table in .rodata, found by relocation (so the tests cover them)."""
    objs = build(arch, {"main.c": CALC_MAIN_C}, tmp_path, "-O2", compiler=cc)
    dis = objdump(arch, objs[0], "-dr")
    assert re.search(r"jmpq?\s+\*0x0\(,%[er]?\w+,[48]\)\n\s*\w+: R_(X86_64_32S|386_32)\s+"
                     r"\.(rodata|LJTI)", dis), dis


ASM_CASES = [(arch, asm) for arch in ASM_PROGRAMS for asm in ASSEMBLERS]


@pytest.mark.parametrize("arch,asm", ASM_CASES, ids=["-".join(c) for c in ASM_CASES])
def test_asm_program(arch, asm, tmp_path):
    objs = build(arch, ASM_PROGRAMS[arch], tmp_path, assembler=asm)
    r, _ = link_both(arch, tmp_path, objs, GNU_LD[arch])
    assert r.stdout.decode().splitlines() == [
        "case zero", "case one", "case two", "case three", "case four",
        "hello from a pointer", "bye from a pointer"]
    assert r.returncode == 47


# The linker-defined symbols, referenced from assembly: the program writes
# their values (as its relocated .data holds them) to stdout, which
# link_both compares with GNU ld's output of the same objects. (.data starts
# a page: GNU ld pads the file to put it there, minild's congruent rule may
# put it mid-page otherwise, both valid layouts. The .bss size is a multiple of
# 8: GNU ld's script aligns _end to 8 on 64-bit targets, minild does not.)
LINKER_SYMS = ("__executable_start", "_etext", "etext", "_edata", "edata", "__bss_start",
               "_end", "end")
LINKER_SYMS_S = {
    "amd64": f"""	.globl _start
	.text
_start:	mov $1, %edi
	lea vals(%rip), %rsi
	mov ${8 * len(LINKER_SYMS)}, %edx
	mov $1, %eax
	syscall
	mov $60, %eax
	xor %edi, %edi
	syscall
	.data
	.balign 4096
	.byte 1, 2, 3
	.balign 8
vals:	.quad {", ".join(LINKER_SYMS)}
	.bss
	.space 104
""",
    "x86": f"""	.globl _start
	.text
_start:	mov $1, %ebx
	mov $vals, %ecx
	mov ${4 * len(LINKER_SYMS)}, %edx
	mov $4, %eax
	int $0x80
	mov $1, %eax
	xor %ebx, %ebx
	int $0x80
	.data
	.balign 4096
	.byte 1, 2, 3
	.balign 4
vals:	.long {", ".join(LINKER_SYMS)}
	.bss
	.space 104
""",
}


@pytest.mark.parametrize("arch", sorted(LINKER_SYMS_S))
def test_linker_defined_symbols_match_gnu_ld(arch, tmp_path):
    """__executable_start, _etext/etext, _edata/edata, __bss_start and _end/end
    have GNU ld's values for the same objects."""
    objs = build(arch, {"syms.s": LINKER_SYMS_S[arch]}, tmp_path)
    r, _ = link_both(arch, tmp_path, objs, GNU_LD[arch])
    width = 8 if arch == "amd64" else 4
    vals = [int.from_bytes(r.stdout[k:k + width], "little")
            for k in range(0, len(r.stdout), width)]
    assert len(vals) == len(LINKER_SYMS) and len(set(vals)) == 4, vals
    assert vals[0] < vals[1] < vals[3] < vals[6]


# --- DWARF -------------------------------------------------------------------

def symbols(path: Path) -> dict[str, int]:
    """symbols: name -> address of the FUNC and OBJECT symbols, from readelf -s."""
    out = {}
    for line in readelf(path, "-W", "-s").splitlines():
        f = line.split()
        if len(f) == 8 and f[3] in ("FUNC", "OBJECT"):
            out[f[7]] = int(f[1], 16)
    return out


def dwarf_dump(path: Path, what: str) -> str:
    out = readelf(path, "-W", f"--debug-dump={what}")  # stderr must be empty
    bad = [ln for ln in out.splitlines() if re.search(r"warning|error", ln, re.I)]
    assert not bad, "readelf --debug-dump complained:\n" + "\n".join(bad)
    return out


def _value(line: str) -> str:
    """_value: an attribute's value in readelf -W's dump, without the form
    ("(strp) (offset: 0x9): main" -> "main")."""
    v = line.split(":", 1)[1].strip()
    v = re.sub(r"^\(\w+\)\s*", "", v)
    return re.sub(r"^\((indirect (line )?string, )?(offset|index): \w+\):\s*", "", v)


def subprogram_low_pcs(info: str) -> dict[str, int]:
    """subprogram_low_pcs: DW_TAG_subprogram name -> DW_AT_low_pc, from readelf's dump."""
    out, cur, name, low = {}, None, None, None
    for line in info.splitlines():
        if "Abbrev Number" in line:
            if cur == "DW_TAG_subprogram" and name and low is not None:
                out[name] = low
            m = re.search(r"\((DW_TAG_\w+)\)", line)
            cur, name, low = (m.group(1) if m else None), None, None
        elif "DW_AT_name" in line:
            name = _value(line)
        elif "DW_AT_low_pc" in line:
            low = int(_value(line), 16)
    if cur == "DW_TAG_subprogram" and name and low is not None:
        out[name] = low
    return out


def line_rows(path: Path) -> dict[str, list[tuple[str, int, int]]]:
    """line_rows: function -> its line-table rows (file, line, offset in the
    function), from readelf --debug-dump=decodedline and the symbol table."""
    funcs = {}
    for line in readelf(path, "-W", "-s").splitlines():
        f = line.split()
        if len(f) == 8 and f[3] == "FUNC" and int(f[2]):
            funcs[f[7]] = (int(f[1], 16), int(f[2]))
    rows = []
    for line in dwarf_dump(path, "decodedline").splitlines():
        f = line.split()
        if len(f) >= 3 and f[0].endswith(".c") and f[1].isdigit() and f[2].startswith("0x"):
            rows.append((f[0], int(f[1]), int(f[2], 16)))
    return {fn: sorted((file, ln, a - lo) for file, ln, a in rows if lo <= a < lo + size)
            for fn, (lo, size) in funcs.items()}


# (arch, compiler, flags): -gz compresses the DWARF sections (SHF_COMPRESSED, zlib)
DWARF_CASES = [(arch, cc, "-g") for arch in TOOLCHAINS for cc in COMPILERS] + \
    [(arch, "gcc", "-gz") for arch in TOOLCHAINS]


@pytest.mark.parametrize("arch,cc,flag", DWARF_CASES, ids=["".join(c) for c in DWARF_CASES])
def test_dwarf(arch, cc, flag, tmp_path):
    files = {"start.s": START_S[arch], **C_PROGRAMS["calc"]}
    # gcc puts main in .text.startup, which GNU ld's script places first: kept
    # in .text, both linkers lay the code out alike and their DWARF compares.
    same = ["-fno-reorder-functions"] if cc == "gcc" else []
    objs = build(arch, files, tmp_path, "-g", flag, *same, compiler=cc)
    if flag == "-gz":
        assert " C " in readelf(objs[1], "-W", "-S").split(".debug_info", 1)[1].split("\n")[0]
    _, mine = link_both(arch, tmp_path, objs, GNU_LD[arch])
    ref = mine.with_suffix(".gnu")  # GNU ld's output of the same objects
    info = dwarf_dump(mine, "info,line")
    for sec in (".debug_info", ".debug_line", ".debug_str", ".debug_abbrev"):
        assert sec in readelf(mine, "-W", "-S"), f"{sec} missing from minild's output"
    # .debug_info's addresses (and its names, read through relocated
    # .debug_str offsets) are GNU ld's, for the same objects at the same -Ttext.
    lows, ref_lows = subprogram_low_pcs(info), subprogram_low_pcs(dwarf_dump(ref, "info"))
    assert len(lows) >= 6 and "main" in lows, f"too few subprograms with low_pc: {lows}"
    assert lows == ref_lows, f"DW_AT_low_pc: minild {lows}, GNU ld {ref_lows}"
    # ... and each is the function's address in minild's own symbol table.
    syms = symbols(mine)
    assert all(syms.get(n) == low for n, low in lows.items())
    # Every function's line rows (file, line, offset) match GNU ld's output.
    want, got = line_rows(ref), line_rows(mine)
    assert sum(map(len, want.values())) > 20
    for fn, rows in want.items():
        assert got.get(fn) == rows, f"line table of {fn} differs from GNU ld's"
