"""Archives: `minild import X.a -o Y.a` (an ar archive of minild objects with a
symbol index, unlinkable members kept with their reason) and `minild link` of
archives (members loaded lazily, in any order, -L/-l), checked against GNU ld
with libgcc.a and with small archives of our own; ar and nm read the archives.
"""

import re
import subprocess

from conftest import (binutil, build, gnu_ld, import_all, link_refused, minild, run_output,
                      tool)

AMD = "amd64"
CFLAGS = ["-O2", "-fno-pic", "-ffreestanding", "-fno-asynchronous-unwind-tables",
          "-fno-stack-protector", "-fno-common", "-fomit-frame-pointer"]

START = r"""
	.globl _start
_start:	call main
	mov %eax, %edi
	mov $60, %eax
	syscall
"""


def ar(path, *objs):
    subprocess.run([tool("ar"), "rcs", str(path), *map(str, objs)], check=True)
    return path


def test_members_load_lazily_in_any_order(tmp_path):
    # libone.a's f needs libtwo.a's g, which needs libone.a's h: archives that
    # need each other, given in either order, with no --start-group; unused
    # members (unused, weakly referenced) stay out.
    objs = build(AMD, tmp_path, {
        "main.c": "int f(void); extern int w(void) __attribute__((weak));\n"
                  "int main(void) { return f() + (w ? 100 : 0); }\n",
        "f.c": "int g(void); int f(void) { return g() + 1; }\n",
        "h.c": "int h(void) { return 40; }\n",
        "unused.c": "int unused(void) { return 9; }\n",
        "w.c": "int w(void) { return 1; }\n",
        "g.c": "int h(void); int g(void) { return h() + 1; }\n",
        "start.s": START}, *CFLAGS)
    main, f, h, unused, w, g, start = objs
    one = ar(tmp_path / "libone.a", f, h, unused, w)
    two = ar(tmp_path / "libtwo.a", g)
    gnu = tmp_path / "gnu"
    p = gnu_ld(AMD, [start, main, "--start-group", one, two, "--end-group"], gnu, "-static")
    assert p.returncode == 0, p.stderr
    assert run_output(AMD, gnu).returncode == 42
    j_main, j_start = import_all([main, start])
    lib1, lib2 = tmp_path / "one.a", tmp_path / "two.a"
    minild("import", one, "-o", lib1)
    minild("import", two, "-o", lib2)
    # ar and nm read minild's archives: the members, and the index.
    names = subprocess.run([tool("ar"), "t", lib1], capture_output=True, text=True,
                           check=True).stdout.split()
    assert names == ["f.o", "h.o", "unused.o", "w.o"]
    index = subprocess.run([tool("nm"), "-s", lib1], capture_output=True, text=True).stdout
    assert re.search(r"^f in f\.o$", index, re.M) and re.search(r"^h in h\.o$", index, re.M)
    outs = []
    for order in ([j_start, j_main, lib1, lib2], [lib2, lib1, j_start, j_main]):
        out = tmp_path / f"mine{len(outs)}"
        m = tmp_path / f"map{len(outs)}.txt"
        p = minild("link", "-v", *order, "-o", out, "-M", m)
        assert run_output(AMD, out).returncode == 42
        text = m.read_text()
        for member, why in (("f.o", r"main\.obj \(f\)"), ("g.o", r"one\.a\(f\.o\) \(g\)"),
                            ("h.o", r"two\.a\(g\.o\) \(h\)")):
            assert re.search(rf"\.a\({re.escape(member)}\)\n\s+.*{why}", text), text
            assert f"({member}) for " in p.stderr, p.stderr
        assert "unused.o" not in text and "w.o" not in text, text
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    # -L and -l find the same archives.
    lib1.rename(tmp_path / "libone.a")
    lib2.rename(tmp_path / "libtwo.a")
    out = tmp_path / "minel"
    minild("link", j_start, j_main, "-L", tmp_path, "-lone", "-ltwo", "-o", out)
    assert out.read_bytes() == outs[0]
    e = link_refused(tmp_path / "x", j_start, j_main, "-L", tmp_path, "-lnone")
    assert "unable to find library -lnone" in e, e


def test_unlinkable_member_errs_only_when_loaded(tmp_path):
    # A thread-local member is kept, with the reason, and only a link that
    # needs it fails.
    objs = build(AMD, tmp_path, {
        "main.c": "int ok(void); int main(void) { return ok(); }\n",
        "main2.c": "int tls(void); int main(void) { return tls(); }\n",
        "ok.c": "int ok(void) { return 3; }\n",
        "tls.c": "__thread int t; int tls(void) { return t; }\n",
        "start.s": START}, *CFLAGS)
    main, main2, ok, tls, start = objs
    lib = tmp_path / "lib.a"
    minild("import", ar(tmp_path / "elf.a", ok, tls), "-o", lib)
    j_main, j_main2, j_start = import_all([main, main2, start])
    out = tmp_path / "out"
    minild("link", j_start, j_main, lib, "-o", out)
    assert run_output(AMD, out).returncode == 3
    e = link_refused(tmp_path / "out2", j_start, j_main2, lib)
    assert re.search(r"lib\.a\(tls\.o\): loaded to resolve tls \(referenced by .*main2\.obj\), "
                     r"but minild cannot link it: .*thread-local", e), e


def test_elf_archive_named(tmp_path):
    main, start = build(AMD, tmp_path, {"main.c": "int f(void); int main(void) { return f(); }\n",
                                        "start.s": START}, *CFLAGS)
    (f,) = build(AMD, tmp_path, {"f.c": "int f(void) { return 1; }\n"}, *CFLAGS)
    lib = ar(tmp_path / "libf.a", f)
    e = link_refused(tmp_path / "out", *import_all([main, start]), lib)
    assert "libf.a(f.o): loaded to resolve f (referenced by" in e and "minild import" in e, e


ARM_DIV = {
    "div.c": "int q(int a, int b) { return a / b; }\n"
             "int r(int a, int b) { return a % b; }\n"
             "unsigned long long uq(unsigned long long a, unsigned long long b) "
             "{ return a / b; }\n",
    "main.c": "int q(int, int); int r(int, int);\n"
              "unsigned long long uq(unsigned long long, unsigned long long);\n"
              "void write_out(const char *s, long n);\n"
              "int main(void) {\n"
              "  char b[4] = {'0' + q(1000, 7) % 10, '0' + r(1000, 7), "
              "'0' + (int)(uq(123456789012ULL, 1000) % 10), '\\n'};\n"
              "  write_out(b, 4); return q(-100, 7) + 50; }\n",
}


def test_arm_c_with_libgcc_matches_gnu_ld(tmp_path):
    # gcc's Thumb-2 code calls libgcc's __aeabi_idiv, __aeabi_idivmod and
    # __aeabi_uldivmod; GNU ld and minild load the same members of libgcc.a.
    from test_arch_arm import CFLAGS as ARM_CFLAGS, CRT
    crt = CRT + "int raise(int sig) { sys3(1, 100 + sig, 0, 0); return 0; }\n"
    objs = build("arm", tmp_path, {**ARM_DIV, "crt.c": crt}, *ARM_CFLAGS, "-O2")
    libgcc = subprocess.run([binutil("arm", "gcc"), "-print-libgcc-file-name"],
                            capture_output=True, text=True, check=True).stdout.strip()
    gnu = tmp_path / "gnu"
    p = gnu_ld("arm", [*objs, libgcc], gnu, "-static", "-M")
    assert p.returncode == 0, p.stderr
    included = p.stdout.split("Archive member included")[1].split("Memory Configuration")[0]
    gnu_members = set(re.findall(r"libgcc\.a\((\w+\.o)\)\n", included))
    d = tmp_path / "lib"
    d.mkdir()
    minild("import", libgcc, "-o", d / "libgcc.a")
    mine, m = tmp_path / "mine", tmp_path / "map.txt"
    minild("link", *import_all(objs), "-L", d, "-lgcc", "-o", mine, "-M", m)
    pg, pm = run_output("arm", gnu), run_output("arm", mine)
    assert (pm.stdout, pm.returncode) == (pg.stdout, pg.returncode) == (b"269\n", 50 - 14)
    mine_members = set(re.findall(r"libgcc\.a\((\w+\.o)\)\n", m.read_text()))
    assert mine_members == gnu_members and "_divsi3.o" in mine_members, (mine_members,
                                                                        gnu_members)
