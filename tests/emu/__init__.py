"""Run executables that this machine cannot run natively, under the unicorn CPU emulator.

core.py   the format-neutral part: Machine (one CPU of amd64, x86, arm or arm64, its
          memory, hooks that turn faults, invalid instructions, unknown system calls
          and the instruction or time limit into an EmuError), Result, EmuError/LoadError
plan9.py  plan 9 a.out (amd64, 386, arm): the loader and the pwrite/exits system calls;
          plan9.run(path, timeout=10) -> Result

pe.py     PE/COFF (amd64, x86, arm64): the loader (headers checked, sections mapped,
          .reloc applied at another base, imports bound to kernel32 stubs) and
          GetStdHandle/WriteFile/ExitProcess; pe.run(path, base=None, timeout=10) -> Result

macho.py  Mach-O (amd64, arm64): the loader (segments mapped, the image slid, rebases
          applied, binds to _write/_exit stubs) and the BSD write/exit system calls;
          macho.run(path, slide=None, timeout=10) -> Result

Each is a sibling module on top of core.Machine.
Needs the `unicorn` package (pip install unicorn).
"""

from .core import ARCHES, EmuError, LoadError, Machine, Result, Trap

__all__ = ["ARCHES", "EmuError", "LoadError", "Machine", "Result", "Trap"]
