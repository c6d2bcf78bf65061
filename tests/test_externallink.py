"""--externallink: minild writes an ELF relocatable object and GNU ld (or cc)
finishes the link. The intermediate object is pinned by golden readelf dumps
(readelf must not complain), and every arch's hello, linked externally, runs
under qemu and prints exactly what the internal link prints."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ARCHES, EXAMPLES, binutil, golden, minild, readelf, run_output, tool

HELLOS = sorted(p.stem for p in (EXAMPLES / "hello").glob("*.obj"))


def test_every_arch_has_a_hello():
    assert HELLOS == sorted(ARCHES)


@pytest.mark.parametrize("archname", HELLOS)
def test_hello_external_matches_internal(tmp_path, archname):
    binutil(archname, "ld")  # fail loudly if the cross linker is missing
    src = EXAMPLES / "hello" / f"{archname}.obj"
    minild("link", src, "-o", tmp_path / "int")
    minild("link", "--externallink", src, "-o", tmp_path / "ext", "--tmpdir", tmp_path / "t")
    internal = run_output(archname, tmp_path / "int")
    external = run_output(archname, tmp_path / "ext")
    assert (external.stdout, external.returncode) == (internal.stdout, internal.returncode)
    assert external.stdout == b"hello, world\n" and external.returncode == 0
    golden(f"ext-{archname}.readelf", readelf(tmp_path / "t" / "minild.o"))


def test_multi_object_external(tmp_path):
    objs = [EXAMPLES / "multi" / f"{n}.obj" for n in ("main", "greet", "ops")]
    minild("link", "--externallink", *objs, "-o", tmp_path / "m")
    p = run_output("amd64", tmp_path / "m")
    assert (p.stdout, p.returncode) == (b"hello from greet\ndone\n", 30)


def test_libc_puts_with_cc(tmp_path):
    """An undefined symbol (puts) is allowed; cc links against libc dynamically."""
    tool("cc")
    out = tmp_path / "puts"
    p = minild("link", "--externallink", "--libc", EXAMPLES / "libc" / "amd64.obj", "-o", out,
               "-v", "--tmpdir", tmp_path / "t")
    assert p.stderr.startswith("cc -no-pie -o ")     # -v shows the exact command line
    # The object cc finished: puts stays an undefined global for libc to define.
    golden("ext-libc-amd64.readelf", readelf(tmp_path / "t" / "minild.o"))
    r = run_output("amd64", out)
    assert (r.stdout, r.returncode) == (b"hello, world\n", 0)
    assert "NEEDED" in readelf(out, "-d") and "libc.so" in readelf(out, "-d")


# --libc for a cross target: arch -> the target's triple. Its gcc driver links
# against the cross C library (libc6-dev-*-cross in scripts/deps/ARCH.apt), and
# qemu runs the program with -L at that library's root: /usr/TRIPLE holds its
# dynamic loader and libc.so.6.
LIBC_CROSS = {"arm": "arm-linux-gnueabihf", "arm64": "aarch64-linux-gnu",
              "riscv64": "riscv64-linux-gnu", "s390x": "s390x-linux-gnu"}


@pytest.mark.parametrize("archname", sorted(LIBC_CROSS))
def test_libc_cross_target_links_the_cross_libc(tmp_path, archname):
    """--libc for a cross target runs the target's gcc driver, <triple>-gcc
    -no-pie, which links examples/libc/ARCH.obj (main calls puts, then exit(3))
    against the target's C library; under qemu the program prints its line and
    exits 3. stdout is a pipe, so the line gets out only through libc's exit
    flushing it: both calls went to the real libc."""
    triple = LIBC_CROSS[archname]
    assert ARCHES[archname][1] == f"{triple}-"
    tool(f"{triple}-gcc")
    sysroot = Path("/usr") / triple
    if not (sysroot / "lib" / "crt1.o").exists():
        pytest.fail(f"{triple}'s C library is not installed: install the libc6-dev-*-cross "
                    f"package in scripts/deps/{archname}.apt (.ci/run does)")
    out = tmp_path / "puts"
    p = minild("link", "--externallink", "--libc", "-v", EXAMPLES / "libc" / f"{archname}.obj",
               "-o", out, "--tmpdir", tmp_path / "t")
    assert p.stderr.startswith(f"{triple}-gcc -no-pie -o "), p.stderr   # -v: the command line
    assert "EXEC (Executable file)" in readelf(out, "-h")       # -no-pie took: not a PIE
    dynamic = readelf(out, "-d")
    assert "(NEEDED)" in dynamic and "[libc.so.6]" in dynamic
    qemu = ARCHES[archname][0][0]
    r = subprocess.run([tool(qemu), "-L", str(sysroot), str(out)], capture_output=True,
                       timeout=30)
    assert (r.stdout, r.stderr, r.returncode) == (b"hello, world\n", b"", 3)


def test_verbose_shows_ld_command_and_tmpdir_is_removed(tmp_path):
    env_tmp = tmp_path / "tmp"
    env_tmp.mkdir()
    out = tmp_path / "h"
    import subprocess
    import sys
    p = subprocess.run([sys.executable, "-m", "minild.cli", "link", "--externallink", "-v",
                        str(EXAMPLES / "hello" / "amd64.obj"), "-o", str(out)],
                       capture_output=True, text=True, env={**os.environ, "TMPDIR": str(env_tmp)})
    assert p.returncode == 0, p.stderr
    first = p.stderr.splitlines()[0]
    assert first.startswith("x86_64-linux-gnu-ld -static -e _start -o ") and "minild.o" in first
    assert os.listdir(env_tmp) == []   # the private temporary directory is gone


def test_tmpdir_is_kept(tmp_path):
    minild("link", "--externallink", EXAMPLES / "hello" / "amd64.obj", "-o", tmp_path / "h",
           "--tmpdir", tmp_path / "keep")
    assert (tmp_path / "keep" / "minild.o").exists()


def test_failing_external_linker(tmp_path):
    out = tmp_path / "h"
    out.write_bytes(b"old")
    env_tmp = tmp_path / "tmp"
    env_tmp.mkdir()
    import subprocess
    import sys
    p = subprocess.run([sys.executable, "-m", "minild.cli", "link", "--externallink",
                        str(EXAMPLES / "hello" / "amd64.obj"), "-o", str(out),
                        "--extldflags", "--no-such-flag"],
                       capture_output=True, text=True, env={**os.environ, "TMPDIR": str(env_tmp)})
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "error: external linker failed with exit status 1" in p.stderr
    assert ">>> command: x86_64-linux-gnu-ld -static" in p.stderr and "--no-such-flag" in p.stderr
    assert "unrecognized option" in p.stderr            # the linker's own output
    assert out.read_bytes() == b"old"                     # no new output
    assert os.listdir(env_tmp) == []                      # no temporary left
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


def test_external_linker_that_writes_nothing(tmp_path):
    out = tmp_path / "h"
    out.write_bytes(b"old")
    p = minild("link", "--externallink", EXAMPLES / "hello" / "amd64.obj", "-o", out,
               "--extld", "true", check=False)
    assert p.returncode == 1 and "external linker succeeded but wrote no output" in p.stderr
    assert out.read_bytes() == b"old"
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


def test_missing_external_linker(tmp_path):
    p = minild("link", "--externallink", EXAMPLES / "hello" / "amd64.obj", "-o", tmp_path / "h",
               "--extld", "no-such-ld-here", check=False)
    assert p.returncode == 1 and "external linker 'no-such-ld-here' not found" in p.stderr


def test_externallink_flags_need_externallink(tmp_path):
    p = minild("link", EXAMPLES / "hello" / "amd64.obj", "-o", tmp_path / "h", "--libc",
               check=False)
    assert p.returncode == 2 and "need --externallink" in p.stderr


def test_record_size_check_fails_cleanly(tmp_path, monkeypatch):
    """If fewer records are written than layout reserved, the link stops with an
    internal error and writes no output (seed 003's final size check)."""
    from minild.errors import InternalError
    from minild.format import elfrel
    from minild.link import Options, link

    real = elfrel.records
    monkeypatch.setattr(elfrel, "records", lambda ctx, idx: real(ctx, idx)[:-1])
    out = tmp_path / "h"
    with pytest.raises(InternalError, match="relocation records"):
        link(Options(objects=[str(EXAMPLES / "hello" / "amd64.obj")], output=str(out),
                     externallink=True, tmpdir=str(tmp_path / "t")))
    assert not out.exists()
    assert not (tmp_path / "t" / "minild.o").exists()


def test_relocation_records_counted_and_sized(tmp_path):
    """RELA64 records are 24 bytes, REL32 8: the .rel(a) section sizes agree
    with GNU readelf's own count of entries."""
    for archname, kind, size in (("amd64", ".rela.text", 24), ("x86", ".rel.text", 8)):
        minild("link", "--externallink", EXAMPLES / "hello" / f"{archname}.obj", "-o",
               tmp_path / archname, "--tmpdir", tmp_path / f"t{archname}")
        text = readelf(tmp_path / f"t{archname}" / "minild.o", "-S", "-r", "-W")
        line = [ln for ln in text.splitlines() if f" {kind} " in ln][0]
        assert int(line.split(kind)[1].split()[3], 16) == size * int(
            text.split(f"Relocation section '{kind}'")[1].split("contains ")[1].split()[0])


def test_parallel_records_are_identical(tmp_path):
    objs = [EXAMPLES / "multi" / f"{n}.obj" for n in ("main", "greet", "ops")]
    for j in ("1", "4"):
        minild("link", "--externallink", *objs, "-o", tmp_path / f"m{j}", "-j", j,
               "--tmpdir", tmp_path / f"t{j}")
    assert (tmp_path / "t1" / "minild.o").read_bytes() == (tmp_path / "t4" / "minild.o").read_bytes()
    shutil.rmtree(tmp_path / "t1")
