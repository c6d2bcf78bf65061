"""Shared helpers for minild's tests: run the CLI, run outputs, compare golden dumps,
build objects with the GNU tools and link them both by GNU ld and by minild.

Outputs are checked by tools minild did not write: the kernel (amd64, x86),
qemu-user (every other ELF arch), readelf (whose stderr must stay empty).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("MINILD_REGEN_GOLDEN") == "1"

# arch -> (command prefix to run an output, GNU binutils prefix)
ARCHES = {
    "amd64": ([], "x86_64-linux-gnu-"),
    "x86": ([], "i686-linux-gnu-"),
    "arm": (["qemu-arm"], "arm-linux-gnueabihf-"),
    "arm64": (["qemu-aarch64"], "aarch64-linux-gnu-"),
    "mips": (["qemu-mips"], "mips-linux-gnu-"),
    "mipsle": (["qemu-mipsel"], "mipsel-linux-gnu-"),
    "mips64": (["qemu-mips64"], "mips64-linux-gnuabi64-"),
    "mips64le": (["qemu-mips64el"], "mips64el-linux-gnuabi64-"),
    "ppc64": (["qemu-ppc64"], "powerpc64-linux-gnu-"),
    "ppc64le": (["qemu-ppc64le"], "powerpc64le-linux-gnu-"),
    "riscv64": (["qemu-riscv64"], "riscv64-linux-gnu-"),
    "s390x": (["qemu-s390x"], "s390x-linux-gnu-"),
}


def minild(*args, check=True, cwd=None, env=None) -> subprocess.CompletedProcess:
    """minild runs the CLI in a subprocess, as a user would (env: variables
    added to the environment)."""
    p = subprocess.run([sys.executable, "-m", "minild.cli", *map(str, args)],
                       capture_output=True, text=True, cwd=cwd,
                       env=dict(os.environ, **env) if env else None)
    if check and p.returncode != 0:
        raise AssertionError(f"minild {' '.join(map(str, args))} failed ({p.returncode}):\n"
                             f"{p.stdout}{p.stderr}")
    return p


def tool(name: str) -> str:
    """tool returns the path of a required external tool; fails loudly if absent
    (CI installs every tool: a missing one is a broken set-up, not a skip)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"required tool {name!r} is not installed (run .ci/run or "
                    "scripts/install-test-deps.sh)")
    return path


def run_output(arch: str, path, timeout=30) -> subprocess.CompletedProcess:
    """run_output runs a linked executable natively or under qemu-user."""
    runner, _ = ARCHES[arch]
    cmd = [tool(runner[0]), *runner[1:]] if runner else []
    return subprocess.run(cmd + [str(path)], capture_output=True, timeout=timeout)


def binutil(arch: str, name: str) -> str:
    """binutil returns the (cross) GNU binutils tool for arch, e.g. as or ld."""
    return tool(ARCHES[arch][1] + name)


def readelf(path, *flags: str) -> str:
    """readelf dumps a file; readelf exits 0 even after 'Error:', so stderr must be empty."""
    p = subprocess.run([tool("readelf"), *(flags or ("-W", "-a")), str(path)],
                       capture_output=True, text=True)
    assert p.returncode == 0 and p.stderr == "", f"readelf complained:\n{p.stderr}"
    return p.stdout


def golden(name: str, text: str) -> None:
    """golden compares text with tests/golden/NAME. A missing golden file fails the
    test; MINILD_REGEN_GOLDEN=1 (and only that) writes it, and rewrites a changed
    one. .ci/run refuses to run with MINILD_REGEN_GOLDEN set (docs/testing.md)."""
    f = GOLDEN / name
    if REGEN:
        f.write_text(text)
    elif not f.exists():
        pytest.fail(f"golden file {f} is missing; if this is a new test, write it with "
                    "MINILD_REGEN_GOLDEN=1 and review it")
    assert text == f.read_text(), f"output differs from golden {f}; if intended, regenerate " \
                                  "with MINILD_REGEN_GOLDEN=1 and review the diff"


def assemble(arch: str, src: str, out: Path, *flags: str) -> Path:
    """assemble runs the arch's GNU as on source text, writing an ELF .o."""
    s = out.with_suffix(".s")
    s.write_text(src)
    subprocess.run([binutil(arch, "as"), *flags, "-o", str(out), str(s)], check=True)
    return out


def build(arch: str, d: Path, sources: dict[str, str], *cflags: str, cc=None,
          asm=None) -> list[Path]:
    """build writes each NAME.s / NAME.c of sources into d and assembles it (GNU as
    for arch, or the asm command) or compiles it (the arch's cross gcc, or the cc
    command, with cflags) into d/NAME.o; returns the objects in sources' order."""
    objs = []
    for name, text in sources.items():
        src = d / name
        src.write_text(text)
        o = src.with_suffix(".o")
        if name.endswith(".s"):
            cmd = [tool(asm[0]), *asm[1:]] if asm else [binutil(arch, "as")]
        else:
            cmd = [tool(cc[0]), *cc[1:]] if cc else [binutil(arch, "gcc")]
            cmd += [*cflags, "-c"]
        cmd += ["-o", str(o), str(src)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        assert p.returncode == 0, f"{' '.join(cmd)} failed:\n{p.stderr}"
        objs.append(o)
    return objs


def reloc_types(objs) -> set[str]:
    """reloc_types lists the relocation types readelf finds in ELF objects."""
    found = set()
    for o in objs:
        found.update(re.findall(r"^\s*[0-9a-f]+\s+[0-9a-f]+\s+(R_\w+)", readelf(o, "-rW"),
                                re.M))
    return found


def import_all(objs, compact=False) -> list[Path]:
    """import_all runs `minild import` on all objects at once, into a directory
    of its own per encoding beside the first (readable/ or compact/: the same
    file names in both, as the names reach STT_FILE symbols); returns the
    imported objects in objs' order."""
    d = objs[0].parent / ("compact" if compact else "readable")
    d.mkdir(exist_ok=True)
    outs = [d / (o.stem + ".obj") for o in objs]
    # With one input, -o names the object; with several, the directory.
    minild("import", *objs, "-o", outs[0] if len(objs) == 1 else d,
           *(["--compact"] if compact else []))
    return outs


def compact_links_the_same(objs, mine: Path) -> None:
    """The compact encoding of the same objects links to the same bytes as mine
    (minild's output of their readable encoding)."""
    compact = mine.with_suffix(".compact")
    minild("link", *import_all(objs, compact=True), "-o", compact)
    assert compact.read_bytes() == mine.read_bytes()


def gnu_ld(arch: str, objs, out: Path, *flags: str) -> subprocess.CompletedProcess:
    """gnu_ld links objs with the arch's GNU ld (flags before -o); the caller
    judges the result (some tests expect GNU ld to refuse the objects too)."""
    return subprocess.run([binutil(arch, "ld"), *flags, "-o", str(out), *map(str, objs)],
                          capture_output=True, text=True)


def link_both(arch: str, tmp_path: Path, objs, ld_flags=("-static",), name="prog",
              compact=False) -> tuple:
    """link_both links ELF objects with GNU ld (ld_flags) into NAME.gnu and, after
    `minild import` (compact: in the compact encoding), with minild into
    NAME.minild; runs both (natively or under qemu) and checks that they agree:
    GNU ld says nothing on stderr, readelf reads minild's output without a
    complaint, GNU ld's output is not killed by a signal (a crash both links
    share proves nothing), stdout and exit status are the same, and minild's
    output writes nothing on stderr. Returns minild's run and output."""
    gnu = tmp_path / f"{name}.gnu"
    p = gnu_ld(arch, objs, gnu, *ld_flags)
    assert p.returncode == 0 and p.stderr == "", f"GNU ld failed:\n{p.stderr}"
    mine = tmp_path / f"{name}.minild"
    minild("link", *import_all(objs, compact=compact), "-o", mine)
    readelf(mine)  # stderr must be empty
    pg, pm = run_output(arch, gnu), run_output(arch, mine)
    assert pg.returncode >= 0, f"GNU ld's output died: signal {-pg.returncode}"
    assert (pm.stdout, pm.returncode) == (pg.stdout, pg.returncode), \
        f"minild: {pm.stdout!r} {pm.returncode}, GNU ld: {pg.stdout!r} {pg.returncode}"
    assert pm.stderr == b"", pm.stderr
    return pm, mine


def link_refused(out: Path, *args, errors=1) -> str:
    """link_refused runs `minild link ARGS -o OUT` expecting a clean refusal:
    exit 1, no traceback, no output file, and (unless errors is None) exactly
    that many `error:` lines. Returns stderr."""
    p = minild("link", *args, "-o", out, check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stdout + p.stderr
    assert not out.exists()
    if errors is not None:
        assert len(re.findall(r"^error:", p.stderr, re.M)) == errors, p.stderr
    return p.stderr


def lld_refused(tmp_path: Path, objs, text: str) -> str:
    """lld_refused links the ELF objects with ld.lld (-Ttext=TEXT, where minild
    puts its text by default), which must refuse them (exit 1); returns its
    stderr, to compare its words with minild's."""
    p = subprocess.run([tool("ld.lld"), f"-Ttext={text}", "-o", str(tmp_path / "lld.out"),
                        *map(str, objs)], capture_output=True, text=True)
    assert p.returncode == 1, p.stderr
    return p.stderr


def objdump(arch: str, path, *flags: str) -> str:
    """objdump disassembles path with the arch's GNU objdump (-d unless flags)."""
    return subprocess.run([binutil(arch, "objdump"), *(flags or ("-d",)), str(path)],
                          capture_output=True, text=True, check=True).stdout


def link_hello(arch: str, tmp_path: Path) -> Path:
    """link_hello links examples/hello/ARCH.obj with minild."""
    out = tmp_path / "hello"
    minild("link", EXAMPLES / "hello" / f"{arch}.obj", "-o", out)
    return out


def hello_golden(arch: str, tmp_path: Path) -> None:
    """The hello example's readelf dump is the golden one."""
    golden(f"hello-{arch}.readelf", readelf(link_hello(arch, tmp_path)))


def hello_runs(arch: str, tmp_path: Path) -> None:
    """The hello example prints hello, world, nothing on stderr, and exits 0."""
    p = run_output(arch, link_hello(arch, tmp_path))
    assert (p.stdout, p.stderr, p.returncode) == (b"hello, world\n", b"", 0), p.stderr
