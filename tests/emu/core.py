"""The format-neutral part of the emulation runner: a CPU under unicorn.

A loader for one executable format (plan9.py, pe.py, macho.py) does
what that format's kernel or loader does:

    m = Machine("amd64")
    m.map(0x200000, header_and_text, PROT_RX, name="text")
    m.map(0x400000, data, PROT_RW, size=len(data) + bss, name="data")
    sp = m.setup_stack(top, size)            # then push what the ABI puts there
    m.on_trap = my_syscalls                  # called for SYSCALL / INT n / SWI / SVC
    result = m.run(entry, sp, header=hdr, timeout=10)

and answers the system calls in `on_trap` with m.write_output(fd, data) and
m.exit(status, message). Everything that goes wrong in the guest -- a read, write
or fetch of unmapped or protected memory, an invalid instruction, a CPU exception,
an unknown system call, running past the instruction or time limit -- ends the
run with an EmuError that says what happened and where (pc), with whatever the
program had written so far.

Nothing here knows about minild.
"""

from __future__ import annotations

import dataclasses
import struct
import time

import unicorn
from unicorn import (
    UC_HOOK_INSN,
    UC_HOOK_INSN_INVALID,
    UC_HOOK_INTR,
    UC_HOOK_MEM_FETCH_PROT,
    UC_HOOK_MEM_FETCH_UNMAPPED,
    UC_HOOK_MEM_READ_PROT,
    UC_HOOK_MEM_READ_UNMAPPED,
    UC_HOOK_MEM_WRITE_PROT,
    UC_HOOK_MEM_WRITE_UNMAPPED,
    UC_MEM_FETCH_PROT,
    UC_MEM_FETCH_UNMAPPED,
    UC_MEM_READ_PROT,
    UC_MEM_READ_UNMAPPED,
    UC_MEM_WRITE_PROT,
    UC_MEM_WRITE_UNMAPPED,
    UC_PROT_EXEC,
    UC_PROT_READ,
    UC_PROT_WRITE,
    Uc,
    UcError,
)
from unicorn import arm64_const, arm_const, x86_const

PAGE = 0x1000

PROT_R = UC_PROT_READ
PROT_RW = UC_PROT_READ | UC_PROT_WRITE
PROT_RX = UC_PROT_READ | UC_PROT_EXEC
PROT_RWX = UC_PROT_READ | UC_PROT_WRITE | UC_PROT_EXEC

DEFAULT_MAX_INSNS = 50_000_000


class EmuError(Exception):
    """The guest program failed, or could not be loaded.

    `stdout`/`stderr` hold what it had written before it failed; `pc` the
    program counter at the failure (None when it never ran).
    """

    def __init__(self, message, *, pc=None, stdout=b"", stderr=b""):
        super().__init__(message)
        self.message = message
        self.pc = pc
        self.stdout = bytes(stdout)
        self.stderr = bytes(stderr)

    def __str__(self):
        s = self.message
        if self.stdout or self.stderr:
            s += f" (stdout so far: {self.stdout[-200:]!r}; stderr so far: {self.stderr[-200:]!r})"
        return s


class LoadError(EmuError):
    """The file is not a valid executable of the format (bad magic, truncated, ...)."""


@dataclasses.dataclass
class Result:
    stdout: bytes
    stderr: bytes
    status: int
    exit_message: str | None
    header: dict


@dataclasses.dataclass(frozen=True)
class Trap:
    """What stopped the CPU for the OS layer: a system call instruction or an interrupt.

    kind: "syscall" (amd64 SYSCALL) or "interrupt" (x86 INT n, arm SWI/SVC, arm64 SVC and
    the CPU exceptions unicorn reports the same way); number: the interrupt
    number (None for "syscall"); imm: the SWI/SVC instruction's immediate on arm and
    arm64 (None otherwise, or if the instruction could not be read).
    """

    kind: str
    number: int | None = None
    # arm SWI / arm64 SVC: the instruction's immediate (arm64 `svc #0x80` -> 0x80), read
    # from the trapping instruction; None elsewhere (x86 INT n has it in `number`).
    imm: int | None = None


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    name: str
    uc_arch: int
    uc_mode: int
    bits: int
    endian: str  # "<" or ">"
    pc: int
    sp: int
    regs: dict  # our name -> unicorn register id
    syscall_intno: int | None  # interrupt number of the system call instruction (None: SYSCALL insn)
    exceptions: dict  # interrupt number -> description, for CPU exceptions
    trap_len: int  # bytes of INT n / SWI: unicorn reports a trap with the pc after it


_X86_EXC = {
    0: "divide error (#DE)",
    1: "debug exception (#DB)",
    3: "breakpoint (#BP, int3)",
    4: "overflow (#OF)",
    5: "bound range exceeded (#BR)",
    6: "invalid instruction (#UD)",
    7: "device not available (#NM)",
    8: "double fault (#DF)",
    10: "invalid TSS (#TS)",
    11: "segment not present (#NP)",
    12: "stack-segment fault (#SS)",
    13: "general protection fault (#GP)",
    14: "page fault (#PF)",
    16: "x87 floating-point exception (#MF)",
    17: "alignment check (#AC)",
    19: "SIMD floating-point exception (#XM)",
}

# QEMU's ARM exception numbers, as unicorn passes them to UC_HOOK_INTR.
_ARM_EXC = {
    1: "invalid instruction (undefined instruction exception)",
    2: "SWI/SVC",
    3: "prefetch abort (instruction fetch fault)",
    4: "data abort (memory access fault)",
    5: "IRQ",
    6: "FIQ",
    7: "breakpoint (BKPT)",
    8: "exception exit",
    9: "kernel trap",
}

# QEMU's AArch64 exception numbers (target/arm/cpu.h): the arm ones above, and the
# hypervisor/secure monitor calls an EL0 program may not make.
_ARM64_EXC = {
    **_ARM_EXC,
    2: "SVC",
    11: "HVC (hypervisor call)",
    12: "hypervisor trap",
    13: "SMC (secure monitor call)",
    14: "virtual IRQ",
    15: "virtual FIQ",
    16: "semihosting call",
    18: "debug exception",
}


ARCHES = {
    "amd64": ArchSpec(
        "amd64", unicorn.UC_ARCH_X86, unicorn.UC_MODE_64, 64, "<",
        x86_const.UC_X86_REG_RIP, x86_const.UC_X86_REG_RSP,
        {n: getattr(x86_const, f"UC_X86_REG_{n.upper()}") for n in
         ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "rip",
          "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "eflags")},
        None, _X86_EXC, 2,
    ),
    "x86": ArchSpec(
        "x86", unicorn.UC_ARCH_X86, unicorn.UC_MODE_32, 32, "<",
        x86_const.UC_X86_REG_EIP, x86_const.UC_X86_REG_ESP,
        {n: getattr(x86_const, f"UC_X86_REG_{n.upper()}") for n in
         ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "eip", "eflags")},
        None, _X86_EXC, 2,
    ),
    "arm": ArchSpec(
        "arm", unicorn.UC_ARCH_ARM, unicorn.UC_MODE_ARM, 32, "<",
        arm_const.UC_ARM_REG_PC, arm_const.UC_ARM_REG_SP,
        {**{f"r{i}": getattr(arm_const, f"UC_ARM_REG_R{i}") for i in range(13)},
         "sp": arm_const.UC_ARM_REG_SP, "lr": arm_const.UC_ARM_REG_LR,
         "pc": arm_const.UC_ARM_REG_PC, "cpsr": arm_const.UC_ARM_REG_CPSR},
        2, _ARM_EXC, 4,
    ),
    # arm64 (for PE and Mach-O): SVC #n arrives as interrupt 2 (EXCP_SWI) like arm's,
    # with the pc after it; x29/x30 are also fp/lr.
    "arm64": ArchSpec(
        "arm64", unicorn.UC_ARCH_ARM64, unicorn.UC_MODE_ARM, 64, "<",
        arm64_const.UC_ARM64_REG_PC, arm64_const.UC_ARM64_REG_SP,
        {**{f"x{i}": getattr(arm64_const, f"UC_ARM64_REG_X{i}") for i in range(31)},
         "fp": arm64_const.UC_ARM64_REG_X29, "lr": arm64_const.UC_ARM64_REG_X30,
         "sp": arm64_const.UC_ARM64_REG_SP, "pc": arm64_const.UC_ARM64_REG_PC,
         "nzcv": arm64_const.UC_ARM64_REG_NZCV},
        2, _ARM64_EXC, 4,
    ),
}

_MEM_ACCESS = {
    UC_MEM_READ_UNMAPPED: "read of unmapped memory",
    UC_MEM_WRITE_UNMAPPED: "write to unmapped memory",
    UC_MEM_FETCH_UNMAPPED: "jump to unmapped memory (instruction fetch)",
    UC_MEM_READ_PROT: "read of memory that is not readable",
    UC_MEM_WRITE_PROT: "write to read-only memory",
    UC_MEM_FETCH_PROT: "jump to non-executable memory (instruction fetch)",
}


def _prot_str(p):
    return ("r" if p & UC_PROT_READ else "-") + ("w" if p & UC_PROT_WRITE else "-") + (
        "x" if p & UC_PROT_EXEC else "-")


def page_down(x, page=PAGE):
    return x & ~(page - 1)


def page_up(x, page=PAGE):
    return (x + page - 1) & ~(page - 1)


class Machine:
    """One CPU of an arch with its memory, run under unicorn until the program exits."""

    def __init__(self, arch: str):
        if arch not in ARCHES:
            raise ValueError(f"unknown arch {arch!r} (known: {', '.join(ARCHES)})")
        self.arch = ARCHES[arch]
        self.uc = Uc(self.arch.uc_arch, self.arch.uc_mode)
        self.word = self.arch.bits // 8
        self.regions = []  # (start, end, prot, name), page aligned
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.status = None
        self.exit_message = None
        self.exited = False
        self.on_trap = None  # callable(machine, Trap) -> None; set by the OS layer
        self._fault = None
        self._hooks()

    # ---- memory -------------------------------------------------------------------

    def map(self, addr, data=b"", prot=PROT_R, *, size=None, name="?"):
        """Map [addr, addr+size) (size defaults to len(data)) rounded out to whole pages,
        zero filled, with `data` at addr. Refuses overlaps with an earlier mapping."""
        size = len(data) if size is None else size
        if size < len(data):
            raise ValueError(f"{name}: size {size} < {len(data)} bytes of data")
        if size == 0:
            return
        start, end = page_down(addr), page_up(addr + size)
        if end > 1 << self.arch.bits:
            raise LoadError(f"{name} segment {addr:#x}+{size:#x} runs past the end of the "
                            f"{self.arch.bits}-bit address space")
        for s, e, _, n in self.regions:
            if start < e and s < end:
                raise LoadError(f"{name} segment [{start:#x}, {end:#x}) overlaps {n} [{s:#x}, {e:#x})")
        self.uc.mem_map(start, end - start, prot)
        if data:
            self.uc.mem_write(addr, bytes(data))
        self.regions.append((start, end, prot, name))

    def region_at(self, addr):
        for r in self.regions:
            if r[0] <= addr < r[1]:
                return r
        return None

    def read(self, addr, n):
        """Guest memory for the OS layer; an EmuError if it is not all mapped and readable."""
        if n == 0:
            return b""
        a = addr
        while a < addr + n:
            r = self.region_at(a)
            if r is None or not r[2] & UC_PROT_READ:
                raise EmuError(f"bad address {a:#x} (reading {n} bytes at {addr:#x})")
            a = r[1]
        return bytes(self.uc.mem_read(addr, n))

    def write(self, addr, data):
        self.uc.mem_write(addr, bytes(data))

    def read_uint(self, addr, size):
        return int.from_bytes(self.read(addr, size), "little" if self.arch.endian == "<" else "big")

    def read_int(self, addr, size):
        return int.from_bytes(self.read(addr, size), "little" if self.arch.endian == "<" else "big",
                              signed=True)

    def read_word(self, addr):
        return self.read_uint(addr, self.word)

    def read_cstring(self, addr, limit):
        """A NUL-terminated string of at most `limit` bytes (cut there, as kernels do)."""
        out = bytearray()
        while len(out) < limit:
            r = self.region_at(addr + len(out))
            if r is None or not r[2] & UC_PROT_READ:
                raise EmuError(f"bad address {addr + len(out):#x} (reading a string at {addr:#x})")
            chunk = bytes(self.uc.mem_read(addr + len(out), min(r[1] - (addr + len(out)),
                                                                 limit - len(out))))
            i = chunk.find(b"\0")
            if i >= 0:
                out += chunk[:i]
                return bytes(out)
            out += chunk
        return bytes(out)

    def pack_word(self, v):
        return struct.pack(self.arch.endian + ("Q" if self.word == 8 else "I"), v % (1 << self.arch.bits))

    # ---- stack ---------------------------------------------------------------------

    def setup_stack(self, top, size):
        """Map a read+write stack [top-size, top); return top (the caller pushes on it)."""
        self.map(top - size, b"", PROT_RW, size=size, name="stack")
        return top

    # ---- registers -----------------------------------------------------------------

    def reg(self, name):
        return self.uc.reg_read(self.arch.regs[name])

    def set_reg(self, name, value):
        self.uc.reg_write(self.arch.regs[name], value % (1 << self.arch.bits))

    @property
    def pc(self):
        return self.uc.reg_read(self.arch.pc)

    @property
    def sp(self):
        return self.uc.reg_read(self.arch.sp)

    # ---- what the OS layer calls ------------------------------------------------

    def write_output(self, fd, data):
        if fd == 1:
            self.stdout += data
        elif fd == 2:
            self.stderr += data
        else:
            raise EmuError(f"write to fd {fd}: only 1 (stdout) and 2 (stderr) are emulated")

    def exit(self, status, message=None):
        self.exited = True
        self.status = status
        self.exit_message = message
        self.uc.emu_stop()

    def fail(self, message, pc=None):
        """End the run with an EmuError (from a hook or the OS layer); `pc`: the
        instruction to blame (default: the current pc)."""
        if self._fault is None:
            self._fault = f"{message} at pc {self.pc if pc is None else pc:#x}"
        self.uc.emu_stop()

    # ---- hooks ---------------------------------------------------------------------

    def _hooks(self):
        uc = self.uc
        uc.hook_add(UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED | UC_HOOK_MEM_FETCH_UNMAPPED
                    | UC_HOOK_MEM_READ_PROT | UC_HOOK_MEM_WRITE_PROT | UC_HOOK_MEM_FETCH_PROT,
                    self._hook_mem)
        uc.hook_add(UC_HOOK_INSN_INVALID, self._hook_insn_invalid)
        uc.hook_add(UC_HOOK_INTR, self._hook_intr)
        if self.arch.uc_arch == unicorn.UC_ARCH_X86:
            # unicorn runs x86 code at CPL 0: what a user process may not do, we refuse
            if self.arch.bits == 64:
                uc.hook_add(UC_HOOK_INSN, self._hook_syscall, None, 1, 0, x86_const.UC_X86_INS_SYSCALL)
            else:
                uc.hook_add(UC_HOOK_INSN, self._hook_refuse, "syscall", 1, 0, x86_const.UC_X86_INS_SYSCALL)
            uc.hook_add(UC_HOOK_INSN, self._hook_refuse, "sysenter", 1, 0, x86_const.UC_X86_INS_SYSENTER)
            uc.hook_add(UC_HOOK_INSN, self._hook_in, None, 1, 0, x86_const.UC_X86_INS_IN)
            uc.hook_add(UC_HOOK_INSN, self._hook_out, None, 1, 0, x86_const.UC_X86_INS_OUT)

    def _hook_refuse(self, uc, what):
        self.fail(f"unsupported instruction {what}")

    def _hook_in(self, uc, port, size, user_data):
        self.fail(f"privileged instruction: in from port {port:#x}")
        return 0

    def _hook_out(self, uc, port, size, value, user_data):
        self.fail(f"privileged instruction: out to port {port:#x}")

    def _hook_mem(self, uc, access, address, size, value, user_data):
        what = _MEM_ACCESS.get(access, f"invalid memory access (type {access})")
        r = self.region_at(address)
        where = f" (in {r[3]}, {_prot_str(r[2])})" if r else ""
        if self._fault is None:
            pc = self.pc
            self._fault = f"{what} at address {address:#x}{where}, size {size}, pc {pc:#x}"
        return False

    def _hook_insn_invalid(self, uc, user_data):
        self.fail("invalid instruction")
        return False

    def _hook_intr(self, uc, intno, user_data):
        try:
            if self.arch.syscall_intno is not None:
                is_trap = intno == self.arch.syscall_intno  # arm: SWI/SVC
            else:
                is_trap = intno not in self.arch.exceptions  # x86: INT n that is no CPU exception
            if is_trap:
                insn_pc = self.pc - self.arch.trap_len
                self._trap(Trap("interrupt", intno, self._svc_imm(insn_pc)), insn_pc)
            else:
                desc = self.arch.exceptions.get(intno, "unexpected interrupt")
                self.fail(f"CPU exception: {desc} (interrupt {intno})")
        except Exception as e:  # never let an exception escape into unicorn
            self.fail(f"{type(e).__name__}: {e}")

    def _svc_imm(self, insn_pc):
        """The immediate of the arm SWI / arm64 SVC at insn_pc, or None."""
        if self.arch.uc_arch not in (unicorn.UC_ARCH_ARM, unicorn.UC_ARCH_ARM64):
            return None
        r = self.region_at(insn_pc)
        if r is None or not r[2] & UC_PROT_READ:
            return None
        (w,) = struct.unpack("<I", bytes(self.uc.mem_read(insn_pc, 4)))
        if self.arch.uc_arch == unicorn.UC_ARCH_ARM64:
            return (w >> 5) & 0xFFFF if w & 0xFFE0001F == 0xD4000001 else None  # SVC #imm16
        return w & 0xFFFFFF if (w >> 24) & 0xF == 0xF else None  # SWI/SVC #imm24 (A32)

    def _hook_syscall(self, uc, user_data):
        try:
            self._trap(Trap("syscall"), self.pc)  # unicorn: pc still at SYSCALL
        except Exception as e:
            self.fail(f"{type(e).__name__}: {e}")

    def _trap(self, trap, insn_pc):
        if self.on_trap is None:
            self.fail(f"system call ({trap.kind} {trap.number}) with no OS layer", insn_pc)
            return
        try:
            self.on_trap(self, trap)
        except EmuError as e:
            self.fail(e.message, insn_pc)

    # ---- running -------------------------------------------------------------------

    def run(self, entry, sp, *, header=None, timeout=10.0, max_insns=DEFAULT_MAX_INSNS):
        """Run from `entry` with stack pointer `sp` until the program exits; a Result,
        or an EmuError for any failure (including the instruction and time limits)."""
        self.uc.reg_write(self.arch.sp, sp)
        until = (1 << self.arch.bits) - 1  # never mapped: emulation ends by exit or fault
        t0 = time.monotonic()
        err = None
        try:
            self.uc.emu_start(entry, until, timeout=int(timeout * 1_000_000), count=max_insns)
        except UcError as e:
            err = e
        elapsed = time.monotonic() - t0
        if self._fault is not None:
            self._raise(self._fault)
        if err is not None:
            self._raise(f"emulation error: {err} at pc {self.pc:#x}")
        if not self.exited:
            pc = self.pc
            if self.arch.uc_arch == unicorn.UC_ARCH_X86 and self._byte(pc - 1) == 0xF4:
                self._raise(f"privileged instruction: hlt at pc {pc - 1:#x}")
            if elapsed >= timeout * 0.95:
                self._raise(f"time limit of {timeout} s reached without an exit, pc {pc:#x}")
            if pc == until:
                self._raise(f"jump to {pc:#x} (unmapped)")
            self._raise(f"instruction limit of {max_insns} reached without an exit, pc {pc:#x}")
        return Result(bytes(self.stdout), bytes(self.stderr), self.status, self.exit_message,
                      dict(header or {}))

    def _byte(self, addr):
        r = self.region_at(addr)
        return self.uc.mem_read(addr, 1)[0] if r and r[2] & UC_PROT_READ else None

    def _raise(self, message):
        raise EmuError(f"{self.arch.name}: {message}", pc=self.pc, stdout=self.stdout, stderr=self.stderr)
