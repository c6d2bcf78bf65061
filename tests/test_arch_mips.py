"""MIPS o32 (mips, mipsle; minild/arch/mips.py): the hello examples against golden
readelf dumps and under qemu; multi-object assembly programs that use every
relocation type the module knows, linked by minild (after `minild import`) and
by GNU ld from the same .o files, both run under qemu with the same stdout and
exit status; out-of-range and misaligned branches refused in lld's words; C
programs compiled with the cross gcc, linked both ways and run.

The helpers here serve tests/test_arch_mips64.py too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import (build, gnu_ld, hello_golden, hello_runs, import_all, link_both,
                      link_refused, minild)
from minild import arch as archreg
from minild.loader import read_object

O32 = ["mips", "mipsle"]

# Plain static code (issue 3's flags), plus what MIPS needs for it: gcc's Debian
# default is -mabicalls (GOT calls even with -fno-pic), and -G0 keeps small data
# out of $gp-relative sections that only a C runtime sets $gp up for.
CFLAGS = ["-O2", "-fno-pic", "-static", "-nostdlib", "-ffreestanding",
          "-fno-asynchronous-unwind-tables", "-mno-abicalls", "-G0"]

# An empty .note.GNU-stack keeps GNU ld from warning about an executable stack.
NOTE = '\t.section .note.GNU-stack,"",@progbits\n'

# GNU ld's default entry on MIPS is __start; the sources define _start.
GNU_LD = ["-static", "-e", "_start"]


# --- helpers (shared with test_arch_mips64.py) --------------------------------

def differential(arch: str, d: Path, sources: dict[str, str]) -> tuple[bytes, int]:
    """differential links the same objects with GNU ld and minild, runs both
    under qemu, checks they agree (conftest.link_both), and returns (stdout,
    exit status)."""
    p, _ = link_both(arch, d, build(arch, d, sources, *CFLAGS), GNU_LD)
    return p.stdout, p.returncode


def refused(arch: str, d: Path, sources: dict[str, str]) -> tuple[str, subprocess.CompletedProcess]:
    """refused links sources with minild, expecting a located error; returns
    minild's message and GNU ld's result for the same objects."""
    objs = build(arch, d, sources, *CFLAGS)
    err = link_refused(d / "out", *import_all(objs))
    return " ".join(err.split()), gnu_ld(arch, objs, d / "gnu", *GNU_LD)


def relocation_types(arch: str, d: Path, names: list[str]):
    """relocation_types returns "all" if the imported objects d/readable/NAME.obj
    (where differential's import put them) use every relocation type the arch
    module knows, else the set of those missing."""
    a = archreg.lookup(arch)
    used = set()
    for n in names:
        o = read_object(str(d / "readable" / f"{n}.obj"))
        used |= {a.howtos[t].name for t in o.rel_type.tolist()}
    missing = {h.name for h in a.howtos} - used
    return "all" if not missing else missing


def abicalls_refused(arch: str, d: Path) -> None:
    """gcc's Debian default, -mabicalls, calls through the GOT even with -fno-pic:
    `minild import` refuses such an object with a located message."""
    build(arch, d, {"pic.c": "extern int f(int);\nint g(int x) { return f(x) + 1; }\n"},
          "-O2", "-fno-pic")
    p = minild("import", "pic.o", "-o", "pic.obj", check=False, cwd=d)
    msg = " ".join(p.stderr.split())
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert "pic.o: section .rel" in msg and "R_MIPS_CALL16" in msg and "at .text+0x" in msg, msg
    assert not (d / "pic.obj").exists()


# --- C programs (issue 3), the same source for o32 and n64 -----------------------

# write(2) and exit(2) are the only system calls; syscall numbers come from the asm.
C_START = """\
\t.text
\t.set\tnoreorder
\t.globl\t_start
_start:
\tjal\tmain
\tnop
\tmove\t$a0, $v0
\tli\t$v0, {exit}
\tsyscall
\t.globl\twrite
write:
\tli\t$v0, {write}
\tsyscall
\tjr\t$ra
\tnop
""" + NOTE

C_UTIL = r"""
extern long write(int fd, const void *buf, unsigned long n);

unsigned long slen(const char *s) { unsigned long n = 0; while (s[n]) n++; return n; }
void puts1(const char *s) { write(1, s, slen(s)); write(1, "\n", 1); }

/* bss: a buffer and a counter, zero at start */
char numbuf[32];
int calls;

const char *num(long v) {
  char *p = numbuf + sizeof numbuf - 1;
  int neg = v < 0;
  unsigned long u = neg ? -(unsigned long)v : (unsigned long)v;
  calls++;
  *p = 0;
  do { *--p = '0' + u % 10; u /= 10; } while (u);
  if (neg) *--p = '-';
  return p;
}
"""

C_OPS = r"""
extern int calls;
static int add(int a, int b) { return a + b; }
static int sub(int a, int b) { return a - b; }
static int mul(int a, int b) { return a * b; }
static int shl(int a, int b) { return a << b; }

/* data initialised with addresses: a table of function pointers and names */
struct op { const char *name; int (*fn)(int, int); };
const struct op ops[] = { {"add", add}, {"sub", sub}, {"mul", mul}, {"shl", shl} };
const int nops = sizeof ops / sizeof ops[0];

/* a dense switch with different code per case: gcc -O2 makes it a jump table
   (code addresses in .rodata) */
int classify(int c, int x) {
  switch (c) {
  case 0: return x + 1; case 1: return x * 3; case 2: return x - 7; case 3: return x << 2;
  case 4: return x ^ 0x55; case 5: return -x; case 6: return x / 3; case 7: return x % 5;
  default: return 0;
  }
}
"""

C_MAIN = r"""
struct op { const char *name; int (*fn)(int, int); };
extern const struct op ops[];
extern const int nops;
extern int calls;
int classify(int c, int x);
void puts1(const char *s);
const char *num(long v);

static const char *const greetings[] = { "hello", "from", "minild" };
int *volatile where = &calls;       /* .data with the address of a bss word */
long total;                         /* bss */
long table[64];                     /* bss array */

int main(void) {
  for (unsigned i = 0; i < sizeof greetings / sizeof greetings[0]; i++) puts1(greetings[i]);
  for (int i = 0; i < nops; i++) {
    int r = ops[i].fn(12, 3);
    puts1(ops[i].name);
    puts1(num(r));
    total += r;
  }
  for (int i = 0; i < 10; i++) table[i * 6] = classify(i, 100 + i);
  for (int i = 0; i < 64; i++) total += table[i];
  puts1(num(total));
  puts1(num(*where));
  return (int)(total & 0x7f);
}
"""

C_SORT = r"""
void puts1(const char *s);
const char *num(long v);
extern const char *const words[];
extern const int nwords;

static const char *sorted[16];   /* bss */

static int cmp(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return (unsigned char)*a - (unsigned char)*b;
}

int main(void) {
  int n = nwords;
  for (int i = 0; i < n; i++) {
    const char *w = words[i];
    int j = i;
    while (j > 0 && cmp(sorted[j - 1], w) > 0) { sorted[j] = sorted[j - 1]; j--; }
    sorted[j] = w;
  }
  for (int i = 0; i < n; i++) puts1(sorted[i]);
  puts1(num(n));
  return n;
}
"""

C_WORDS = r"""
const char *const words[] = { "relocation", "segment", "symbol", "section", "addend",
                              "linker", "hi16", "lo16", "jal", "branch" };
const int nwords = sizeof words / sizeof words[0];
"""

C_PROGRAMS = {
    "ops": ({"util.c": C_UTIL, "ops.c": C_OPS, "main.c": C_MAIN},
            b"hello\nfrom\nminild\nadd\n15\nsub\n9\nmul\n36\nshl\n96\n"),
    "sort": ({"util.c": C_UTIL, "words.c": C_WORDS, "main.c": C_SORT},
             b"addend\nbranch\nhi16\njal\nlinker\nlo16\nrelocation\nsection\nsegment\n"
             b"symbol\n10\n"),
}


def c_program(arch: str, d: Path, name: str, syscalls: dict[str, int]) -> None:
    sources, head = C_PROGRAMS[name]
    srcs = {"start.s": C_START.format(**syscalls), **sources}
    out, status = differential(arch, d, srcs)
    assert out.startswith(head), out


# --- o32 tests ------------------------------------------------------------------

O32_SYSCALLS = {"write": 4004, "exit": 4001}


@pytest.mark.parametrize("arch", O32)
def test_hello_runs_and_matches_golden(tmp_path, arch):
    hello_runs(arch, tmp_path)
    hello_golden(arch, tmp_path)


# Every type in mips.py's HOWTOS: R_MIPS_26 (jal), R_MIPS_PC16 (bal, b),
# R_MIPS_HI16/LO16 (with addends whose low half is negative, with HI16s of two
# symbols interleaved, one HI16 shared by two LO16s), R_MIPS_32 (pointer
# tables, an absolute symbol), R_MIPS_PC32, R_MIPS_JALR and R_MIPS_NONE.
O32_MAIN = """\
\t.text
\t.set\tnoreorder
\t.globl\t_start
_start:
\tjal\tsay\t\t\t# R_MIPS_26 into io.o
\tnop
\tbal\tsum_table\t\t# R_MIPS_PC16 into calc.o
\tnop
\tmove\t$s0, $v0
\tjal\taddone\t\t\t# R_MIPS_26 to a local label (section symbol + addend)
\tnop
\tlui\t$t0, %hi(buf+0x18000)\t# AHL = (2 << 16) + (short)0x8000
\tlui\t$t2, %hi(val2)\t\t# another symbol's HI16 between the pair
\tlw\t$t3, %lo(val2)($t2)
\tlw\t$t1, %lo(buf+0x18000)($t0)
\taddu\t$s0, $s0, $t1
\taddu\t$s0, $s0, $t3
\tlui\t$t0, %hi(fptrs+4)
\tlw\t$t9, %lo(fptrs+4)($t0)\t# twice, from calc.o's pointer table
\t.reloc\t1f, R_MIPS_JALR, twice
1:\tjalr\t$t9
\tmove\t$a0, $s0
\tmove\t$s0, $v0
\tlui\t$t0, %hi(pcrel)\t\t# one HI16, two LO16s
\tlw\t$t1, %lo(pcrel)($t0)
\taddiu\t$t0, $t0, %lo(pcrel)
\taddu\t$a1, $t0, $t1\t\t# pcrel + (msg2 - pcrel)
\tli\t$a2, 10
\tli\t$a0, 1
\tli\t$v0, 4004
\tsyscall
\tb\tdone\t\t\t# R_MIPS_PC16 into io.o, no link
\tmove\t$a0, $s0
addone:
\tjr\t$ra
\taddiu\t$s0, $s0, 1
\t.data
pcrel:\t.word\tmsg2 - .\t\t# R_MIPS_PC32 to io.o's rodata
""" + NOTE

O32_CALC = """\
\t.text
\t.set\tnoreorder
\t.globl\tsum_table, twice
sum_table:\t\t\t\t# *table[0] + *table[1] + K; *table[2] = 7
\tlui\t$t0, %hi(table)
\taddiu\t$t0, $t0, %lo(table)
\tlw\t$t1, 0($t0)
\tlw\t$v0, 0($t1)
\tlw\t$t1, 4($t0)
\tlw\t$t2, 0($t1)
\taddu\t$v0, $v0, $t2
\tlw\t$t2, 12($t0)
\taddu\t$v0, $v0, $t2
\tlw\t$t1, 8($t0)
\tli\t$t2, 7
\tjr\t$ra
\tsw\t$t2, 0($t1)
twice:
\tjr\t$ra
\taddu\t$v0, $a0, $a0
\t.data
\t.globl\tfptrs
fptrs:\t.word\tsum_table, twice\t# R_MIPS_32 to text
table:\t.word\tval1, val2, buf+0x18000, K
val1:\t.word\t10
\t.bss
\t.globl\tbuf
buf:\t.space\t0x20000
""" + NOTE

O32_IO = """\
\t.text
\t.set\tnoreorder
\t.globl\tsay, done, val2, msg2, K
\t.set\tK, 5\t\t\t# an absolute symbol, used by calc.o
say:
\tli\t$v0, 4004
\tli\t$a0, 1
\tlui\t$a1, %hi(greeting)
\taddiu\t$a1, $a1, %lo(greeting)
\tli\t$a2, 13
\tsyscall
\t.reloc\t1f, R_MIPS_NONE, greeting
1:\tjr\t$ra
\tnop
done:\t\t\t\t\t# exit($a0)
\tli\t$v0, 4001
\tsyscall
\t.section\t.rodata
greeting:\t.ascii\t"hello, world\\n"
msg2:\t.ascii\t"relocated\\n"
\t.data
val2:\t.word\t20
""" + NOTE

# 10 + 20 + K=5 = 35; + 1 (addone) + 7 (buf+0x18000) + 20 (val2) = 63; twice = 126.
ASM_OUT = (b"hello, world\nrelocated\n", 126)


@pytest.mark.parametrize("arch", O32)
def test_multi_object_asm_every_relocation(tmp_path, arch):
    got = differential(arch, tmp_path, {"main.s": O32_MAIN, "calc.s": O32_CALC, "io.s": O32_IO})
    assert got == ASM_OUT
    assert relocation_types(arch, tmp_path, ["main", "calc", "io"]) == "all"


def _far(value):
    return f"\t.globl\tfar\n\t.set\tfar, {value:#x}\n" + NOTE


JAL_FAR = "\t.text\n\t.set\tnoreorder\n\t.globl\t_start\n_start:\n\tnop\n\tjal\tfar\n\tnop\n" + NOTE
BAL_FAR = "\t.text\n\t.set\tnoreorder\n\t.globl\t_start\n_start:\n\tnop\n\tbal\tfar\n\tnop\n" + NOTE
ODD = "\t.data\n\t.byte\t1\n\t.globl\tfar\nfar:\t.byte\t2\n" + NOTE


def error_cases(region_top: int, text_addr: int):
    """error_cases: (id, sources, minild's message, GNU ld's for the same objects).
    text_addr is where _start lands (the jal/bal sits at +4)."""
    pc16 = text_addr + 0x20000 + 8     # one past the reach of bal at text+4 (P+4 + 0x1fffc)
    return [
        ("jal-region", {"main.s": JAL_FAR, "far.s": _far(region_top)},
         # far is the first byte of the next 256 MB region: 1 << 28 past the jal's region
         "main.obj:(.text+0x4): relocation R_MIPS_26 out of range: 268435456 is not in "
         "[0, 268435455]; references far",
         "relocation truncated to fit: R_MIPS_26 against `far'"),
        ("bal-range", {"main.s": BAL_FAR, "far.s": _far(pc16)},
         f"main.obj:(.text+0x4): relocation R_MIPS_PC16 out of range: {pc16 - 4 - text_addr - 4}"
         " is not in [-131072, 131071]; references far",
         "relocation truncated to fit: R_MIPS_PC16 against `far'"),
        ("bal-misaligned", {"main.s": BAL_FAR, "odd.s": ODD},
         "main.obj:(.text+0x4): improper alignment for relocation R_MIPS_PC16: 0x",
         "branch to a non-instruction-aligned address"),
        ("jal-misaligned", {"main.s": JAL_FAR, "odd.s": ODD},
         "main.obj:(.text+0x4): improper alignment for relocation R_MIPS_26: 0x",
         "jump to a non-instruction-aligned address"),
    ]


def check_refused(arch, tmp_path, sources, want, gnu_says):
    msg, gnu = refused(arch, tmp_path, sources)
    assert want in msg and "references far" in msg, msg
    # The same objects are an error for GNU ld as well.
    assert gnu.returncode != 0 and gnu_says in gnu.stderr, gnu.stderr


@pytest.mark.parametrize("arch", O32)
@pytest.mark.parametrize("case", error_cases(0x10000000, 0x400100), ids=lambda c: c[0])
def test_out_of_range_and_misaligned(tmp_path, arch, case):
    _, sources, want, gnu_says = case
    check_refused(arch, tmp_path, sources, want, gnu_says)


@pytest.mark.parametrize("arch", O32)
@pytest.mark.parametrize("prog", sorted(C_PROGRAMS))
def test_c_programs_match_gnu_ld(tmp_path, arch, prog):
    c_program(arch, tmp_path, prog, O32_SYSCALLS)


@pytest.mark.parametrize("arch", O32)
def test_abicalls_objects_are_refused(tmp_path, arch):
    abicalls_refused(arch, tmp_path)
