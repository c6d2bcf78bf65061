"""Run plan 9 a.out executables (amd64, 386, arm) under unicorn.

The loader does what the plan 9 kernel's exec does (9front sys/src/9/port/sysproc.c,
sysexec; Go's cmd/link writes the same layout, cmd/link/internal/ld asmbPlan9 and
the per-arch obj.go):

  header    8 big-endian u32: magic, text, data, bss, syms, entry, spsz, pcsz;
            when the magic has HDR_MAGIC (0x8000, amd64's S_MAGIC 0x8a97) a
            big-endian u64 entry follows: the header is 40 bytes, else 32
  text      file bytes [0, hdrsize+text), header included, mapped at UTZERO,
            read+execute
  data      the next `data` file bytes, mapped at the first UTROUND boundary at
            or after UTZERO+hdrsize+text, read+write
  bss       `bss` zero bytes right after data
  symbols   syms + spsz + pcsz bytes after data in the file; not loaded

            magic    UTZERO    UTROUND   syscall               args at       number in
  amd64     0x8a97   0x200000  0x200000  SYSCALL               8(SP), 8 B    RBP
  386       0x01eb   0x1000    0x1000    INT $64               4(SP), 4 B    EAX
  arm       0x0647   0x1000    0x1000    SWI 0                 4(R13), 4 B   R0

The entry must lie in the text proper (after the header), as the kernel checks.
The stack is laid out as the kernel's execregs leaves it: SP -> argc, argv[],
argument strings, and the Tos structure at the top, whose address is in the
return register (AX/R0), as after exec.

System calls: pwrite (51) to fd 1 or 2 and exits (8); anything else fails the
run, naming the call. Arguments are read from the user stack one word above SP
(the kernel's `*(Sargs*)(sp+BY2WD)`), in the C/Go frame layout: on amd64 each
argument in an 8-byte slot; on 386 and arm 4-byte words, a vlong in two.
"""

from __future__ import annotations

import os
import struct

from .core import PAGE, PROT_RW, PROT_RX, EmuError, LoadError, Machine, Result, page_up

HDR_MAGIC = 0x00008000
ERRMAX = 128

SYS_EXITS = 8
SYS_PWRITE = 51

# Go's syscall/zsysnum_plan9.go, for error messages.
SYSCALL_NAMES = {
    0: "sysr1", 1: "_errstr", 2: "bind", 3: "chdir", 4: "close", 5: "dup", 6: "alarm", 7: "exec",
    8: "exits", 9: "_fsession", 10: "fauth", 11: "_fstat", 12: "segbrk", 13: "_mount", 14: "open",
    15: "_read", 16: "oseek", 17: "sleep", 18: "_stat", 19: "rfork", 20: "_write", 21: "pipe",
    22: "create", 23: "fd2path", 24: "brk_", 25: "remove", 26: "_wstat", 27: "_fwstat",
    28: "notify", 29: "noted", 30: "segattach", 31: "segdetach", 32: "segfree", 33: "segflush",
    34: "rendezvous", 35: "unmount", 36: "_wait", 37: "semacquire", 38: "semrelease", 39: "seek",
    40: "fversion", 41: "errstr", 42: "stat", 43: "fstat", 44: "wstat", 45: "fwstat", 46: "mount",
    47: "await", 50: "pread", 51: "pwrite", 52: "tsemacquire", 53: "nsec",
}


class _Plan9Arch:
    def __init__(self, arch, utzero, utround, stack_top, tos_size, tos_pid, ret_reg, nr_reg):
        self.arch = arch
        self.utzero = utzero
        self.utround = utround
        self.stack_top = stack_top
        self.tos_size = tos_size  # sizeof(Tos)
        self.tos_pid = tos_pid  # offset of Tos.pid (Go reads procid there)
        self.ret_reg = ret_reg
        self.nr_reg = nr_reg


MAGICS = {
    0x00008A97: _Plan9Arch("amd64", 0x200000, 0x200000, 0x7FFFF000, 72, 64, "rax", "rbp"),  # S_MAGIC
    0x000001EB: _Plan9Arch("x86", 0x1000, 0x1000, 0xDEFFF000, 56, 48, "eax", "eax"),  # I_MAGIC
    0x00000647: _Plan9Arch("arm", 0x1000, 0x1000, 0xDEFFF000, 56, 48, "r0", "r0"),  # E_MAGIC
}

STACK_SIZE = 1 << 20


def parse_header(data: bytes) -> dict:
    """The a.out header as a dict (magic, text, data, bss, syms, entry, spsz, pcsz,
    hdrsize); a LoadError if it is truncated, of an unknown magic, or inconsistent."""
    if len(data) < 32:
        raise LoadError(f"plan 9 a.out: truncated header: {len(data)} bytes, need 32")
    magic, text, dsize, bss, syms, entry, spsz, pcsz = struct.unpack(">8I", data[:32])
    if magic not in MAGICS:
        raise LoadError(f"plan 9 a.out: unknown magic {magic:#010x} (known: "
                        + ", ".join(f"{m:#06x} {a.arch}" for m, a in MAGICS.items()) + ")")
    hdrsize = 32
    if magic & HDR_MAGIC:
        if len(data) < 40:
            raise LoadError(f"plan 9 a.out: truncated header: {len(data)} bytes, magic {magic:#x} "
                            "has HDR_MAGIC and needs 40")
        (entry,) = struct.unpack(">Q", data[32:40])
        hdrsize = 40
    return dict(magic=magic, text=text, data=dsize, bss=bss, syms=syms, entry=entry,
                spsz=spsz, pcsz=pcsz, hdrsize=hdrsize)


def load(image: bytes, name: str = "a.out"):
    """Map the a.out into a new Machine as exec would. Returns (machine, entry, sp, header)."""
    h = parse_header(image)
    pa = MAGICS[h["magic"]]
    hdrsize, text, data, bss = h["hdrsize"], h["text"], h["data"], h["bss"]

    need = hdrsize + text + data + h["syms"] + h["spsz"] + h["pcsz"]
    if need > len(image):
        raise LoadError(f"plan 9 a.out: truncated: the header says {hdrsize} + text {text} + data {data}"
                        f" + syms {h['syms']} + spsz {h['spsz']} + pcsz {h['pcsz']} = {need} bytes,"
                        f" the file has {len(image)}")

    text_start = pa.utzero + hdrsize
    text_end = pa.utzero + hdrsize + text
    if not text_start <= h["entry"] < text_end:
        raise LoadError(f"plan 9 a.out: entry {h['entry']:#x} is outside the text "
                        f"[{text_start:#x}, {text_end:#x})")
    data_addr = page_up(text_end, pa.utround)
    stack_base = pa.stack_top - STACK_SIZE
    if data_addr + data + bss > stack_base:
        raise LoadError(f"plan 9 a.out: data+bss [{data_addr:#x}, {data_addr + data + bss:#x}) "
                        f"runs into the stack at {stack_base:#x}")

    m = Machine(pa.arch)
    m.map(pa.utzero, image[:hdrsize + text], PROT_RX, name="text")
    if data + bss:
        m.map(data_addr, image[hdrsize + text:hdrsize + text + data], PROT_RW, size=data + bss,
              name="data+bss")
    sp = _setup_stack(m, pa, name)
    m.on_trap = lambda machine, trap: _syscall(machine, trap, pa)
    return m, h["entry"], sp, h


def _setup_stack(m: Machine, pa: _Plan9Arch, name: str) -> int:
    """The initial stack of sysexec/execregs: argc at SP, then argv[] (nil-ended), the
    argument strings, and the Tos at the very top; the Tos address in AX/R0."""
    W = m.word
    top = m.setup_stack(pa.stack_top, STACK_SIZE)
    tos = top - pa.tos_size
    m.write(tos + pa.tos_pid, struct.pack("<I", 1))
    args = [os.path.basename(name).encode() or b"a.out"]
    nbytes = pa.tos_size + sum(len(a) + 1 for a in args)
    ssize = W * (len(args) + 1) + ((nbytes + W - 1) & ~(W - 1))
    if W == 4 and (ssize + 4) & 7:
        ssize += 4
    argv = top - ssize
    charp = top - nbytes
    for i, a in enumerate(args):
        m.write(argv + i * W, m.pack_word(charp))
        m.write(charp, a + b"\0")
        charp += len(a) + 1
    sp = argv - W
    m.write(sp, m.pack_word(len(args)))
    m.set_reg(pa.ret_reg, tos)
    return sp


def _syscall(m: Machine, trap, pa: _Plan9Arch) -> None:
    if pa.arch == "amd64":
        ok = trap.kind == "syscall"
        how = "SYSCALL"
    elif pa.arch == "x86":
        ok = trap.kind == "interrupt" and trap.number == 64
        how = "INT $64"
    else:
        ok = trap.kind == "interrupt" and trap.number == 2
        how = "SWI"
    if not ok:
        what = "SYSCALL" if trap.kind == "syscall" else f"interrupt {trap.number:#x}"
        raise EmuError(f"unexpected {what}: plan 9 system calls on {pa.arch} use {how}")

    nr = m.reg(pa.nr_reg) & 0xFFFFFFFF
    W = m.word
    args = m.sp + W  # *(Sargs*)(sp+BY2WD)

    if nr == SYS_PWRITE:
        # pwrite(int fd, void *buf, long n, vlong off): one slot per arg on amd64,
        # 4-byte words on 386/arm (the vlong in two)
        fd = m.read_int(args, 4)
        buf = m.read_uint(args + W, W)
        n = m.read_int(args + 2 * W, 4)
        m.read_int(args + 3 * W, 8)  # the offset: -1 (current) or any; ignored for 1 and 2
        if n < 0:
            raise EmuError(f"pwrite({fd}, {buf:#x}, {n}): negative count")
        if fd not in (1, 2):
            raise EmuError(f"pwrite to fd {fd}: only 1 (stdout) and 2 (stderr) are emulated")
        try:
            data = m.read(buf, n)
        except EmuError as e:
            raise EmuError(f"pwrite({fd}, {buf:#x}, {n}): {e.message}") from None
        m.write_output(fd, data)
        m.set_reg(pa.ret_reg, n)
    elif nr == SYS_EXITS:
        msg = m.read_uint(args, W)
        if msg == 0:
            m.exit(0, None)
            return
        try:
            s = m.read_cstring(msg, ERRMAX - 1)
        except EmuError as e:
            raise EmuError(f"exits({msg:#x}): {e.message}") from None
        if s:
            m.exit(1, s.decode("utf-8", "replace"))
        else:
            m.exit(0, None)
    else:
        name = SYSCALL_NAMES.get(nr)
        raise EmuError(f"unknown plan 9 system call {nr}" + (f" ({name})" if name else "")
                       + f": only pwrite ({SYS_PWRITE}) and exits ({SYS_EXITS}) are emulated")


def run_image(image: bytes, name: str = "a.out", timeout: float = 10,
              max_insns: int | None = None) -> Result:
    m, entry, sp, header = load(image, name)
    kw = {} if max_insns is None else {"max_insns": max_insns}
    return m.run(entry, sp, header=header, timeout=timeout, **kw)


def run(path, timeout: float = 10, max_insns: int | None = None) -> Result:
    """Run the plan 9 a.out at `path`: a Result (stdout, stderr, status, exit_message,
    header), or an EmuError (LoadError for a file the kernel would refuse)."""
    with open(path, "rb") as f:
        image = f.read()
    return run_image(image, os.fspath(path), timeout=timeout, max_insns=max_insns)
