"""MIPS n64 (mips64, mips64le; minild/arch/mips64.py): the hello examples against
golden readelf dumps and under qemu; multi-object assembly programs that use
every relocation type the module knows, linked by minild (after `minild import`)
and by GNU ld from the same .o files, both run under qemu with the same stdout
and exit status; out-of-range and misaligned branches refused in lld's words;
C programs compiled with the cross gcc, linked both ways and run.

The helpers live in tests/test_arch_mips.py (the o32 tests) and tests/conftest.py.
"""

from __future__ import annotations

import pytest

from conftest import build, hello_golden, hello_runs, import_all, link_refused
from test_arch_mips import (ASM_OUT, C_PROGRAMS, NOTE, abicalls_refused, c_program,
                            check_refused, differential, error_cases, relocation_types)

N64 = ["mips64", "mips64le"]
N64_SYSCALLS = {"write": 5001, "exit": 5058}


@pytest.mark.parametrize("arch", N64)
def test_hello_runs_and_matches_golden(tmp_path, arch):
    hello_runs(arch, tmp_path)
    hello_golden(arch, tmp_path)


# A 64-bit address in four 16-bit parts: R_MIPS_HIGHEST, HIGHER, HI16, LO16.
LA = """\
\t.macro\tla64 reg, sym
\tlui\t\\reg, %highest(\\sym)
\tdaddiu\t\\reg, \\reg, %higher(\\sym)
\tdsll\t\\reg, \\reg, 16
\tdaddiu\t\\reg, \\reg, %hi(\\sym)
\tdsll\t\\reg, \\reg, 16
\tdaddiu\t\\reg, \\reg, %lo(\\sym)
\t.endm
"""

# Every type in mips64.py's HOWTOS: R_MIPS_26 (jal), R_MIPS_PC16 (bal, b),
# HIGHEST/HIGHER/HI16/LO16 (addends whose low parts carry into the next),
# R_MIPS_64 (pointer tables), R_MIPS_32 (an absolute symbol), R_MIPS_PC32,
# R_MIPS_JALR and R_MIPS_NONE. The same program as the o32 test.
N64_MAIN = LA + """\
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
\tla64\t$t0, buf+0x18000\t# the LO16 part 0x8000 is negative: HI16 carries
\tlw\t$t1, 0($t0)
\taddu\t$s0, $s0, $t1
\tla64\t$t2, val2
\tlw\t$t3, 0($t2)
\taddu\t$s0, $s0, $t3
\tla64\t$t0, fptrs
\tld\t$t9, 8($t0)\t\t# twice, from calc.o's pointer table
\t.reloc\t1f, R_MIPS_JALR, twice
1:\tjalr\t$t9
\tmove\t$a0, $s0
\tmove\t$s0, $v0
\tla64\t$t0, pcrel
\tlw\t$t1, 0($t0)
\tdaddu\t$a1, $t0, $t1\t\t# pcrel + (msg2 - pcrel)
\tli\t$a2, 10
\tli\t$a0, 1
\tli\t$v0, 5001
\tsyscall
\tb\tdone\t\t\t# R_MIPS_PC16 into io.o, no link
\tmove\t$a0, $s0
addone:
\tjr\t$ra
\taddiu\t$s0, $s0, 1
\t.data
pcrel:\t.word\tmsg2 - .\t\t# R_MIPS_PC32 to io.o's rodata
""" + NOTE

N64_CALC = LA + """\
\t.text
\t.set\tnoreorder
\t.globl\tsum_table, twice
sum_table:\t\t\t\t# *table[0] + *table[1] + K; *table[2] = 7
\tla64\t$t0, table
\tld\t$t1, 0($t0)
\tlw\t$v0, 0($t1)
\tld\t$t1, 8($t0)
\tlw\t$t2, 0($t1)
\taddu\t$v0, $v0, $t2
\tlw\t$t2, 24($t0)
\taddu\t$v0, $v0, $t2
\tld\t$t1, 16($t0)
\tli\t$t2, 7
\tjr\t$ra
\tsw\t$t2, 0($t1)
twice:
\tjr\t$ra
\taddu\t$v0, $a0, $a0
\t.data
\t.align\t3
\t.globl\tfptrs
fptrs:\t.dword\tsum_table, twice\t# R_MIPS_64 to text
table:\t.dword\tval1, val2, buf+0x18000
\t.word\tK\t\t\t# R_MIPS_32: K fits in 32 bits
val1:\t.word\t10
\t.bss
\t.globl\tbuf
buf:\t.space\t0x20000
""" + NOTE

N64_IO = LA + """\
\t.text
\t.set\tnoreorder
\t.globl\tsay, done, val2, msg2, K
\t.set\tK, 5\t\t\t# an absolute symbol, used by calc.o
say:
\tli\t$v0, 5001
\tli\t$a0, 1
\tla64\t$a1, greeting
\tli\t$a2, 13
\tsyscall
\t.reloc\t1f, R_MIPS_NONE, greeting
1:\tjr\t$ra
\tnop
done:\t\t\t\t\t# exit($a0)
\tli\t$v0, 5058
\tsyscall
\t.section\t.rodata
greeting:\t.ascii\t"hello, world\\n"
msg2:\t.ascii\t"relocated\\n"
\t.data
val2:\t.word\t20
""" + NOTE


@pytest.mark.parametrize("arch", N64)
def test_multi_object_asm_every_relocation(tmp_path, arch):
    got = differential(arch, tmp_path, {"main.s": N64_MAIN, "calc.s": N64_CALC, "io.s": N64_IO})
    assert got == ASM_OUT
    assert relocation_types(arch, tmp_path, ["main", "calc", "io"]) == "all"


# GNU ld's and minild's n64 text starts at 0x120000200 (_start); the region of
# the jal ends at 0x130000000.
@pytest.mark.parametrize("arch", N64)
@pytest.mark.parametrize("case", error_cases(0x130000000, 0x120000200), ids=lambda c: c[0])
def test_out_of_range_and_misaligned(tmp_path, arch, case):
    _, sources, want, gnu_says = case
    check_refused(arch, tmp_path, sources, want, gnu_says)


R32_OVERFLOW = ("\t.data\n\t.globl\t_start\n_start:\n\t.word\tval\n"
                "val:\t.word\t0\n" + NOTE)


@pytest.mark.parametrize("arch", N64)
def test_r_mips_32_address_does_not_fit(tmp_path, arch):
    # n64 addresses (0x12...) do not fit a 32-bit word; minild refuses where
    # GNU ld would silently truncate.
    objs = build(arch, tmp_path, {"main.s": R32_OVERFLOW})
    msg = " ".join(link_refused(tmp_path / "out", *import_all(objs)).split())
    assert "main.obj:(.data+0x0): relocation R_MIPS_32 out of range: " in msg, msg
    assert "is not in [-2147483648, 4294967295]; references " in msg, msg


@pytest.mark.parametrize("arch", N64)
@pytest.mark.parametrize("prog", sorted(C_PROGRAMS))
def test_c_programs_match_gnu_ld(tmp_path, arch, prog):
    c_program(arch, tmp_path, prog, N64_SYSCALLS)


@pytest.mark.parametrize("arch", N64)
def test_abicalls_objects_are_refused(tmp_path, arch):
    abicalls_refused(arch, tmp_path)
