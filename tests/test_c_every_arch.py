"""C across objects on every arch variant with a cross gcc: the differential
C programs (calls across files, function-pointer tables, switch jump tables,
rodata strings, data holding addresses, bss) at -O2, -O0 and -Os, compiled by
the cross gcc (and at -O2 by clang), linked with that gcc's libgcc.a by GNU ld and, after `minild
import` (the archive imported as an archive of minild objects), by minild; both
run under qemu with the same stdout and exit status.

The start-up code is C with the arch's syscall in inline asm (crt.c below).
amd64 and x86 are tests/test_differential.py's. What minild cannot link yet
is marked xfail with the reason (docs/import.md lists it).
"""

from __future__ import annotations

import re
import subprocess

import pytest

from conftest import binutil, build, gnu_ld, import_all, minild, readelf, run_output
from test_differential import C_PROGRAMS

BASE = ["-fno-pic", "-static", "-nostdlib", "-ffreestanding", "-fno-asynchronous-unwind-tables",
        "-fno-stack-protector", "-fno-common", "-fomit-frame-pointer"]

# arch -> ((write, exit) syscall numbers, the number's register, the arguments', the
# instruction, extra cflags, GNU ld flags: mips's default entry is __start; GNU ld's
# RWX warning for a small riscv64 -O0 program is about its layout, not the test's)
SYSCALL = {
    "arm": ((4, 1), "r7", ["r0", "r1", "r2"], "svc #0", [], []),
    "arm64": ((64, 93), "x8", ["x0", "x1", "x2"], "svc #0", [], []),
    "mips": ((4004, 4001), "$2", ["$4", "$5", "$6"], "syscall", ["-mno-abicalls", "-G0"], ["-e", "_start"]),
    "mipsle": ((4004, 4001), "$2", ["$4", "$5", "$6"], "syscall", ["-mno-abicalls", "-G0"], ["-e", "_start"]),
    "mips64": ((5001, 5058), "$2", ["$4", "$5", "$6"], "syscall", ["-mno-abicalls", "-G0"], ["-e", "_start"]),
    "mips64le": ((5001, 5058), "$2", ["$4", "$5", "$6"], "syscall",
                 ["-mno-abicalls", "-G0"], ["-e", "_start"]),
    "ppc64": ((4, 1), "r0", ["r3", "r4", "r5"], "sc", [], ["--no-toc-optimize"]),   # ELFv1
    "ppc64le": ((4, 1), "r0", ["r3", "r4", "r5"], "sc", [], ["--no-toc-optimize"]),
    "riscv64": ((64, 93), "a7", ["a0", "a1", "a2"], "ecall", [], ["--no-relax", "--no-warn-rwx-segments"]),
    "s390x": ((4, 1), "r1", ["r2", "r3", "r4"], "svc 0", [], []),
}
CLOBBERS = {
    "mips": '"$1", "$3", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15", "$24", '
            '"$25", "hi", "lo", "memory"',
    "ppc64": '"r6", "r7", "r8", "r9", "r10", "r11", "r12", "cr0", "ctr", "memory"',
}
CLOBBERS.update(mipsle=CLOBBERS["mips"], mips64=CLOBBERS["mips"], mips64le=CLOBBERS["mips"],
                ppc64le=CLOBBERS["ppc64"])


def crt(arch: str) -> str:
    (nr_write, nr_exit), nr, args, insn, _, _ = SYSCALL[arch]
    regs = "".join(f'\tregister long a{i} __asm__("{r}") = x{i};\n' for i, r in enumerate(args))
    return f"""
static long sys3(long n, long x0, long x1, long x2) {{
	register long nr __asm__("{nr}") = n;
{regs}	__asm__ volatile("{insn}" : "+r"(a0) : "r"(nr), "r"(a1), "r"(a2)
	                 : {CLOBBERS.get(arch, '"memory"')});
	return a0;
}}
long sys_write(int fd, const char *buf, long n) {{ return sys3({nr_write}, fd, (long)buf, n); }}
int raise(int sig) {{ sys3({nr_exit}, 100 + sig, 0, 0); return 0; }}   /* libgcc's div0 */
int main(void);
void _start(void) {{
	sys3({nr_exit}, main(), 0, 0);
	for (;;) ;
}}
"""


# What minild cannot link yet: (arch, opt) -> reason (none today).
XFAIL: dict[tuple[str, str], str] = {}

# clang's target for each arch (clang-14 knows them all).
CLANG = {"arm": "armv7a-linux-gnueabihf", "arm64": "aarch64-linux-gnu",
         "mips": "mips-linux-gnu", "mipsle": "mipsel-linux-gnu",
         "mips64": "mips64-linux-gnuabi64", "mips64le": "mips64el-linux-gnuabi64",
         "ppc64": "powerpc64-linux-gnu", "ppc64le": "powerpc64le-linux-gnu",
         "riscv64": "riscv64-linux-gnu", "s390x": "s390x-linux-gnu"}

# gcc: every program at -O2, calc (the one with every feature) at -O0 and -Os too;
# clang: every program at -O2.
CASES = [(arch, cc, prog, opt) for arch in SYSCALL for cc in ("gcc", "clang")
         for prog in C_PROGRAMS
         for opt in (("-O2", "-O0", "-Os") if prog == "calc" and cc == "gcc" else ("-O2",))]


@pytest.fixture(scope="module")
def libgcc(tmp_path_factory):
    """libgcc(arch) -> (GNU's libgcc.a, minild's import of it), imported once per arch."""
    cache = {}

    def get(arch):
        if arch not in cache:
            path = subprocess.run([binutil(arch, "gcc"), *SYSCALL[arch][4],
                                   "-print-libgcc-file-name"], capture_output=True, text=True,
                                  check=True).stdout.strip()
            out = tmp_path_factory.mktemp(f"libgcc-{arch}") / "libgcc.a"
            minild("import", "--compact", path, "-o", out)
            cache[arch] = (path, out)
        return cache[arch]
    return get


@pytest.mark.parametrize("arch,cc,prog,opt", CASES, ids=["-".join(c) for c in CASES])
def test_c_program_with_libgcc(arch, cc, prog, opt, tmp_path, libgcc):
    if (arch, opt) in XFAIL:
        pytest.xfail(XFAIL[(arch, opt)])
    _, _, _, _, cflags, ldflags = SYSCALL[arch]
    compiler = ["clang-14", f"--target={CLANG[arch]}"] if cc == "clang" else None
    objs = build(arch, tmp_path, {**C_PROGRAMS[prog], "crt.c": crt(arch)}, *BASE, *cflags, opt,
                 cc=compiler)
    gnu_lib, mine_lib = libgcc(arch)
    gnu = tmp_path / "prog.gnu"
    p = gnu_ld(arch, [*objs, gnu_lib], gnu, "-static", *ldflags)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    mine = tmp_path / "prog.minild"
    minild("link", *import_all(objs), mine_lib, "-o", mine)
    readelf(mine)
    pg, pm = run_output(arch, gnu), run_output(arch, mine)
    assert pg.returncode >= 0, f"GNU ld's output died: signal {-pg.returncode}"
    assert (pm.stdout, pm.returncode) == (pg.stdout, pg.returncode), \
        f"minild: {pm.stdout!r} {pm.returncode}, GNU ld: {pg.stdout!r} {pg.returncode}"
    assert pm.stdout, "the program printed nothing: the test proves little"


def test_ppc64_save_restore_functions_are_synthesized(tmp_path):
    # gcc -Os calls _savegpr0_N/_restgpr0_N; minild writes lld's sequences for
    # the families referred to, from the lowest register referred to.
    arch = "ppc64le"
    objs = build(arch, tmp_path, {**C_PROGRAMS["calc"], "crt.c": crt(arch)}, *BASE, "-Os")
    out = tmp_path / "out"
    minild("link", *import_all(objs), "-o", out)
    dis = subprocess.run([binutil(arch, "objdump"), "-d", str(out)], capture_output=True,
                         text=True, check=True).stdout
    assert re.search(r"^[0-9a-f]+ <_savegpr0_\d+>:$", dis, re.M), dis
    tail = dis[re.search(r"^[0-9a-f]+ <_restgpr0_\d+>:$", dis, re.M).start():]
    assert tail.index("ld      r31,-8(r1)") < tail.index("mtlr    r0") < tail.index("blr")
