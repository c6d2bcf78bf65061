"""mutate.py: does the suite bite? Put small deliberate bugs (mutants) into a
copy of minild, one at a time, run the tests that should catch each, and
print caught or survived.

    python3 benchmarks/mutate.py            # every mutant
    python3 benchmarks/mutate.py pc8 cap    # the mutants whose names contain these

The copy holds the tracked files of the working tree (git ls-files), under a
temporary directory; the tests run there, with PYTHONPATH pointing at it, so
the CLI the tests start is the mutated one. Each mutant is one edit of one
file: its text must occur exactly once (a mutant whose text has gone away
is reported as stale, which fails the run). Not part of CI (a few minutes);
docs/testing.md records the last result. Exit status: 0 when every mutant
was caught.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name, file, text, replacement, tests (pytest arguments: the ones meant to
# catch it, never the unit tests of the edited function alone).
MUTANTS = [
    ("executable-start+0x1000", "minild/format/rules.py",
     "return next((s.vaddr for s in ctx.segments if s.loaded), 0)",
     "return next((s.vaddr for s in ctx.segments if s.loaded), 0) + 0x1000",
     ["tests/test_differential.py", "-k", "linker_defined"]),
    ("bss-start-is-end", "minild/format/elf.py",
     '"__bss_start": rules.edata', '"__bss_start": rules.end',
     ["tests/test_differential.py", "-k", "linker_defined"]),
    ("pc8-value+1", "minild/arch/amd64.py",
     'Howto("R_X86_64_PC8", 15, 1, pcrel, signed(8))',
     'Howto("R_X86_64_PC8", 15, 1, lambda S, A, P: S + A - P + 1, signed(8))',
     ["tests/test_reloc.py"]),
    # Off by 4 (the classic slip of a pc-relative place): the big imported
    # program runs every one of its 144k relocations and prints a checksum.
    ("plt32-off-by-4", "minild/arch/amd64.py",
     'Howto("R_X86_64_PLT32", 4, 4, pcrel, signed(32))',
     'Howto("R_X86_64_PLT32", 4, 4, lambda S, A, P: S + A - P + 4, signed(32))',
     ["tests/test_import.py", "-k", "many_large"]),
    ("plt32-off-by-4-past-2MiB", "minild/arch/amd64.py",
     'Howto("R_X86_64_PLT32", 4, 4, pcrel, signed(32))',
     'Howto("R_X86_64_PLT32", 4, 4, lambda S, A, P: S + A - P + 4 * (P > 0x600000), '
     'signed(32))',
     ["tests/test_import.py", "-k", "many_large"]),
    ("pc32-off-by-4", "minild/arch/amd64.py",
     'Howto("R_X86_64_PC32", 2, 4, pcrel, signed(32))',
     'Howto("R_X86_64_PC32", 2, 4, lambda S, A, P: S + A - P + 4, signed(32))',
     ["tests/test_import.py", "-k", "many_large"]),
    ("abs32-off-by-4", "minild/arch/amd64.py",
     'Howto("R_X86_64_32", 10, 4, absolute, unsigned(32))',
     'Howto("R_X86_64_32", 10, 4, lambda S, A, P: S + A + 4, unsigned(32))',
     ["tests/test_import.py", "-k", "many_large"]),
    ("abs64-off-by-4", "minild/arch/amd64.py",
     'Howto("R_X86_64_64", 1, 8, absolute)',
     'Howto("R_X86_64_64", 1, 8, lambda S, A, P: S + A + 4)',
     ["tests/test_import.py", "-k", "many_large"]),
    ("condbr19-range-doubled", "minild/arch/arm64.py",
     'Howto("R_AARCH64_CONDBR19", 280, 4, pcrel, signed(21), 4, imm19)',
     'Howto("R_AARCH64_CONDBR19", 280, 4, pcrel, signed(22), 4, imm19)',
     ["tests/test_reloc.py"]),
    ("text-map-address+16", "minild/mapfile.py",
     "lines.append(f\"{i['address']:16x} {i['size']:10x}",
     "lines.append(f\"{i['address'] + 16:16x} {i['size']:10x}",
     ["tests/test_link.py", "-k", "map"]),
    ("undefined-cap-1", "minild/resolve.py", "UNDEF_REFS = 50", "UNDEF_REFS = 1",
     ["tests/test_errors.py", "-k", "undefined"]),
    ("address-space-check-removed", "minild/layout.py",
     "if seg.loaded and seg.vaddr + seg.length > 1 << bits:", "if False:",
     ["tests/test_errors.py", "-k", "address_space"]),
    ("cli-traceback", "minild/cli.py",
     'if os.environ.get("MINILD_TRACEBACK"):', "if True:",
     ["tests/test_errors.py", "-k", "internal"]),
    ("cross-libc-driver", "minild/extld.py",
     'f"{a.elf.triple}-gcc"', 'f"{a.elf.triple}-cc"',
     ["tests/test_externallink.py", "-k", "libc"]),
    ("forked-share-skips-last-block", "minild/asmb.py",
     "        for i in range(lo, hi):\n            results[i] = write(i)",
     "        for i in range(lo, hi - (lo > 0)):\n            results[i] = write(i)",
     ["tests/test_link.py", "-k", "really_fork or determin"]),
    ("forked-writer-hides-problems", "minild/asmb.py",
     "ok = ok and not results[i]", "ok = True",
     ["tests/test_errors.py", "-k", "forked"]),
    ("forked-reader-reverses-its-share", "minild/loader.py",
     "        objs = [read(i) for i in range(lo, hi)]\n        for o in objs:",
     "        objs = [read(i) for i in range(lo, hi)][::1 if os.getpid() == parent else -1]\n"
     "        for o in objs:",
     ["tests/test_link.py", "-k", "really_fork"]),
    ("heap-spill-drops-a-byte", "minild/outbuf.py",
     "self.buf[old:old + len(self.heap)] = self.heap",
     "self.buf[old:old + len(self.heap) - 1] = self.heap[1:]",
     ["tests/test_link.py", "-k", "hello or multi or elf_header"]),
    ("release-reaches-section-bytes", "minild/loader.py",
     "spent.append((shared, lo, min(bytes_from)))",
     "spent.append((shared, lo, min(bytes_from) + (1 << 16)))",
     ["tests/test_load.py", "-k", "joined_columns"]),
    ("read-ahead-release-reaches-section-bytes", "minild/readahead.py",
     "spent.append((shared, at, place[secs[4][1]]))",
     "spent.append((shared, at, place[secs[4][1]] + (1 << 16)))",
     ["tests/test_readahead.py", "-k", "released_after_columns"]),
    ("section-bytes-kept-after-asmb", "minild/link.py",
     "                ctx.sec_data = None", "                pass",
     ["tests/test_load.py", "-k", "unmapped"]),
    ("give-back-does-nothing", "minild/heap.py",
     "        ctypes.CDLL(None).malloc_trim(0)", "        pass",
     ["tests/test_heap.py", "-k", "give_back"]),
    ("strtab-chunks-overlap", "minild/names.py",
     "                at = int(offs[lo])", "                at = int(offs[lo]) - (lo > 0)",
     ["tests/test_resolve.py", "-k", "strtab"]),
    ("reserve-grows-one-byte-short", "minild/outbuf.py",
     "            return\n        self._grow(end)", "            return\n        self._grow(end - 1)",
     ["tests/test_outbuf.py", "-k", "reserve"]),
    ("gnu-stack-rwx", "minild/format/elf.py",
     "pack_phdr(PT_GNU_STACK, PF_R | PF_W,", "pack_phdr(PT_GNU_STACK, PF_R | PF_W | PF_X,",
     ["tests/test_link.py", "-k", "elf_header"]),
    ("riscv64-e_flags", "minild/arch/riscv64.py", "ELF_FLAGS = 0x5 ", "ELF_FLAGS = 0x4 ",
     ["tests/test_link.py", "-k", "elf_header"]),
    ("failed-output-renamed-into-place", "minild/outfile.py",
     "        try:\n            os.unlink(self.tmp)\n        except FileNotFoundError:",
     "        try:\n            os.replace(self.tmp, self.path)\n        except FileNotFoundError:",
     ["tests/test_errors.py", "-k", "asmb2 or forked_writers or cannot_map or map_write"]),
    ("failed-output-left-beside", "minild/outfile.py",
     "        try:\n            os.unlink(self.tmp)\n        except FileNotFoundError:",
     "        try:\n            pass\n        except FileNotFoundError:",
     ["tests/test_errors.py", "-k", "asmb2 or forked_writers or cannot_map or map_write"]),
    ("cannot-map-unreported", "minild/link.py",
     'raise fail(f"cannot map output file {path}: {e.strerror}")', "raise",
     ["tests/test_errors.py", "-k", "cannot_map"]),
]


def copy_tree(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for f in files:
        if f and (ROOT / f).is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dst / f)


def run_tests(copy: Path, tests: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    env.pop("MINILD_REGEN_GOLDEN", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           *tests], cwd=copy, env=env, capture_output=True, text=True)


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTANTS if not argv or any(a in m[0] for a in argv)]
    bad = 0
    with tempfile.TemporaryDirectory(prefix="minild-mutate-") as d:
        copy = Path(d)
        copy_tree(copy)
        # The copy, not the installed minild, is what the tests import and run.
        env = dict(os.environ, PYTHONPATH=str(copy))
        where = subprocess.run([sys.executable, "-c", "import minild; print(minild.__file__)"],
                               cwd=copy, env=env, capture_output=True, text=True).stdout
        assert where.startswith(str(copy)), f"the tests would import {where}"
        # Without a mutant, every set of tests passes: a failure that is
        # there anyway catches nothing.
        for tests in sorted({tuple(m[4]) for m in chosen}):
            p = run_tests(copy, list(tests))
            if p.returncode != 0:
                print(f"BASELINE FAILS: {' '.join(tests)}\n{p.stdout[-3000:]}{p.stderr[-2000:]}")
                return 2
        for name, path, old, new, tests in chosen:
            f = copy / path
            text = f.read_text()
            if text.count(old) != 1:
                print(f"STALE     {name}: {path} holds its text {text.count(old)} times",
                      flush=True)
                bad += 1
                continue
            f.write_text(text.replace(old, new))
            t = time.monotonic()
            try:
                p = run_tests(copy, tests)
            finally:
                f.write_text(text)
            # pytest: 0 all passed, 1 some failed; anything else (no tests
            # collected, an error) is no verdict.
            verdict = {0: "SURVIVED", 1: "caught"}.get(p.returncode, f"ERROR({p.returncode})")
            bad += verdict != "caught"
            print(f"{verdict:9} {name} ({time.monotonic() - t:.0f} s: {' '.join(tests)})",
                  flush=True)
            if verdict.startswith("ERROR"):
                print(p.stdout[-2000:] + p.stderr[-2000:])
    print(f"{len(chosen) - bad} of {len(chosen)} mutants caught")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
