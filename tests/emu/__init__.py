"""Run executables that this machine cannot run natively, under the unicorn CPU emulator.

core.py   the format-neutral part: Machine (one CPU of an arch, its memory, hooks that
          turn faults, invalid instructions, unknown system calls and the instruction
          or time limit into an EmuError), Result, EmuError/LoadError
plan9.py  plan 9 a.out (amd64, 386, arm): the loader and the pwrite/exits system calls;
          plan9.run(path, timeout=10) -> Result

Later formats (pe.py, macho.py) are sibling modules on top of core.Machine.
Needs the `unicorn` package (pip install unicorn).
"""

from .core import ARCHES, EmuError, LoadError, Machine, Result, Trap

__all__ = ["ARCHES", "EmuError", "LoadError", "Machine", "Result", "Trap"]
