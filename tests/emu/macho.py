"""Run Mach-O executables (MH_EXECUTE; amd64 = x86_64, arm64) under unicorn.

The loader reads the file itself, as the macOS kernel (xnu's mach_loader) and dyld
do, after Apple's <mach-o/loader.h> (the structures and the LC_/REBASE_/BIND_
constants) and dyld's documented behaviour. It does not use minild or LIEF.

  mach_header_64  magic 0xfeedfacf (a 32-bit 0xfeedface, a fat 0xcafebabe or a byte-
                  swapped file is refused), cputype x86_64 0x01000007 / arm64
                  0x0100000c, filetype MH_EXECUTE (2), ncmds, sizeofcmds, flags
  load commands   each cmdsize >= 8, a multiple of 8 and inside sizeofcmds; the
                  commands fill sizeofcmds exactly; 32 + sizeofcmds inside the file
                  and inside __TEXT's file range, before its first section

What is checked, per command (a LoadError names the command and the values):

  LC_SEGMENT_64   cmdsize = 72 + 80*nsects; fileoff+filesize inside the file;
                  vmsize >= filesize; vmaddr and fileoff page aligned (16 KiB arm64,
                  4 KiB amd64); __PAGEZERO (if any) at 0 with no file data and no
                  access; the segments' file ranges come in the order of their vm
                  ranges (dyld maps each on its own: a segment whose zero-fill
                  tail, such as __bss, runs past its file range moves the later
                  ones further in memory than in the file); __TEXT has fileoff 0;
                  each section inside its segment (vm range, and file range unless
                  zerofill), its segname the segment's; no two segments overlap
  LC_DYLD_INFO(_ONLY)  every table inside __LINKEDIT's file range; the rebase,
                  bind, lazy bind and weak bind opcodes and the export trie decoded
                  (bad opcodes, unterminated ULEBs, targets outside a writable segment
                  are refused); a non-empty weak bind table is refused (not emulated)
  LC_DYLD_CHAINED_FIXUPS / LC_DYLD_EXPORTS_TRIE  refused: this loader reads only the
                  LC_DYLD_INFO form (what ld64.lld-14 and minild write)
  LC_SYMTAB       symbols and strings inside __LINKEDIT; every n_strx < strsize
  LC_DYSYMTAB     the local/extdef/undef ranges inside nsyms; the indirect symbol
                  table inside __LINKEDIT; every S_SYMBOL_STUBS /
                  S_(NON_)LAZY_SYMBOL_POINTERS section's entries (reserved1 ..
                  + size/stride) inside it, each naming a symbol < nsyms or
                  INDIRECT_SYMBOL_LOCAL/ABS
  LC_LOAD_DYLINKER  required (with LC_MAIN); must be /usr/lib/dyld
  LC_MAIN         exactly one (LC_UNIXTHREAD programs are refused); entryoff inside a
                  (non-zerofill) section of __TEXT, which must be executable
  LC_LOAD_DYLIB and the other dylib commands: only /usr/lib/libSystem.B.dylib is
                  available here (anything else: LoadError, as dyld would fail to find
                  it); libSystem must be loaded (dyld refuses a main executable that
                  links no dylib: "missing LC_LOAD_DYLIB (must link with at least
                  libSystem.dylib)")
  LC_UUID, LC_BUILD_VERSION, LC_FUNCTION_STARTS, LC_DATA_IN_CODE, LC_CODE_SIGNATURE,
                  LC_SOURCE_VERSION ...: sizes checked, data ranges inside __LINKEDIT.
                  arm64 needs LC_CODE_SIGNATURE (the kernel kills unsigned arm64 code);
                  the signature's contents are checked by tests/codesign.py, not here
  duplicates      at most one of each of LC_MAIN, LC_SYMTAB, LC_DYSYMTAB,
                  LC_DYLD_INFO(_ONLY), LC_UUID, LC_CODE_SIGNATURE, LC_LOAD_DYLINKER
  unknown         a command with LC_REQ_DYLD (0x80000000) that this loader does not
                  know is refused (dyld refuses it too); others are listed and ignored

Mapping: every segment but __PAGEZERO at vmaddr + slide with its initprot, vmsize
bytes (page rounded), zero filled past filesize; a segment with SG_READ_ONLY (0x10, as
ld64 marks __DATA_CONST) is written by the fix-ups and then mapped without write
access, as dyld does. __PAGEZERO stays unmapped so that a
NULL (or any 32-bit) pointer dereference faults. The slide defaults to a NON-ZERO
value (0x4000000 amd64, 0x8000000 arm64: both 16 KiB aligned) so that every run proves
the rebases; slide=0 runs at the linked addresses; a non-zero slide for an image
without MH_PIE is a LoadError (slide=None gives such an image slide 0).

Fix-ups (LC_DYLD_INFO_ONLY), as dyld applies them before running any code:
  rebases   REBASE_TYPE_POINTER only: the 64-bit word at each location += slide.
  binds     non-lazy (bind_off) and lazy (lazy_bind_off, bound at load, as dyld's
            "bind at load" does; each lazy entry ends with DONE): the 64-bit word at
            each location = address of the emulated function + addend. The two-level
            library ordinal must name a dylib load command (1-based, in load command
            order); special ordinals (self, main executable, flat, weak lookup) are
            refused. A weak import (BIND_SYMBOL_FLAGS_WEAK_IMPORT) of an unknown symbol
            binds to 0, as dyld does; any other unknown symbol is a LoadError naming it.

libSystem, emulated: a page of trap instructions outside the image, 16 bytes a function
(amd64: INT 0x2e then UD2; arm64: SVC #0 then UDF), each running in Python:
  _write(fd, buf, n)   fd 1 and 2; returns n
  _exit(status)        ends the run, status & 0xff (as the parent's wait sees it)
  dyld_stub_binder     lazy binding's helper (ld64.lld binds it in __got for the stub
                       helpers): bound, but calling it is an EmuError, since every lazy
                       pointer is bound at load and the stub helpers never run
Calling conventions: amd64 SysV (args rdi, rsi, rdx; result rax; rsp must be 8 mod 16
at the call's target; return = pop the return address); arm64 AAPCS64 (args x0..x2,
result x0, sp 16-byte aligned, return to x30).

BSD system calls made by the program itself (the "unix" class):
  amd64  SYSCALL with rax = 0x2000000 | n, args rdi, rsi, rdx; result rax, CF cleared
  arm64  SVC #0x80 with x16 = n, args x0, x1, x2; result x0, the C flag cleared
  n = 4 write(fd, buf, n) and n = 1 exit(status); any other: EmuError. A SVC with
  another immediate, or INT n on amd64, is an EmuError.

Initial state (what dyld's start does before main): sp 16-byte aligned, the entry is
__TEXT.vmaddr + slide + LC_MAIN.entryoff, called as main(argc=1, argv=["prog"], envp=[],
apple=["executable_path=prog"]) in rdi, rsi, rdx, rcx (x0..x3). dyld's start calls
exit(main(...)): the return address (on amd64 pushed on the stack, so rsp is 8 mod 16
at the entry as after a call; on arm64 in x30) is one more stub that ends the run as
exit(the returned value) would (exit_message "returned from main").

Not emulated: other libSystem functions and dylibs, TLV, initializers
(S_MOD_INIT_FUNC_POINTERS sections are refused), chained fixups, threads, signals.
"""

from __future__ import annotations

import struct

from .core import PROT_RX, EmuError, LoadError, Machine, Result, page_up

MH_MAGIC_64 = 0xFEEDFACF
OTHER_MAGICS = {0xFEEDFACE: "a 32-bit Mach-O (MH_MAGIC)", 0xCEFAEDFE: "a byte-swapped 32-bit Mach-O",
                0xCFFAEDFE: "a byte-swapped 64-bit Mach-O", 0xCAFEBABE: "a fat (universal) file",
                0xBEBAFECA: "a fat (universal) file"}
CPU_TYPES = {0x01000007: "amd64", 0x0100000C: "arm64"}
CPU_NAMES = {"amd64": "x86_64", "arm64": "arm64"}
PAGE_SIZE = {"amd64": 0x1000, "arm64": 0x4000}
DEFAULT_SLIDE = {"amd64": 0x4000000, "arm64": 0x8000000}
MH_EXECUTE = 2
FILETYPES = {1: "MH_OBJECT", 2: "MH_EXECUTE", 3: "MH_FVMLIB", 4: "MH_CORE", 5: "MH_PRELOAD",
             6: "MH_DYLIB", 7: "MH_DYLINKER", 8: "MH_BUNDLE", 9: "MH_DYLIB_STUB", 10: "MH_DSYM",
             11: "MH_KEXT_BUNDLE", 12: "MH_FILESET"}

MH_FLAGS = {0x1: "MH_NOUNDEFS", 0x2: "MH_INCRLINK", 0x4: "MH_DYLDLINK", 0x8: "MH_BINDATLOAD",
            0x10: "MH_PREBOUND", 0x20: "MH_SPLIT_SEGS", 0x40: "MH_LAZY_INIT", 0x80: "MH_TWOLEVEL",
            0x100: "MH_FORCE_FLAT", 0x200: "MH_NOMULTIDEFS", 0x400: "MH_NOFIXPREBINDING",
            0x800: "MH_PREBINDABLE", 0x1000: "MH_ALLMODSBOUND", 0x2000: "MH_SUBSECTIONS_VIA_SYMBOLS",
            0x4000: "MH_CANONICAL", 0x8000: "MH_WEAK_DEFINES", 0x10000: "MH_BINDS_TO_WEAK",
            0x20000: "MH_ALLOW_STACK_EXECUTION", 0x40000: "MH_ROOT_SAFE", 0x80000: "MH_SETUID_SAFE",
            0x100000: "MH_NO_REEXPORTED_DYLIBS", 0x200000: "MH_PIE", 0x400000: "MH_DEAD_STRIPPABLE_DYLIB",
            0x800000: "MH_HAS_TLV_DESCRIPTORS", 0x1000000: "MH_NO_HEAP_EXECUTION",
            0x2000000: "MH_APP_EXTENSION_SAFE", 0x4000000: "MH_NLIST_OUTOFSYNC_WITH_DYLDINFO",
            0x8000000: "MH_SIM_SUPPORT", 0x80000000: "MH_DYLIB_IN_CACHE"}
MH_PIE = 0x200000

LC_REQ_DYLD = 0x80000000
LC_NAMES = {
    0x1: "LC_SEGMENT", 0x2: "LC_SYMTAB", 0x3: "LC_SYMSEG", 0x4: "LC_THREAD", 0x5: "LC_UNIXTHREAD",
    0x6: "LC_LOADFVMLIB", 0x7: "LC_IDFVMLIB", 0x8: "LC_IDENT", 0x9: "LC_FVMFILE", 0xA: "LC_PREPAGE",
    0xB: "LC_DYSYMTAB", 0xC: "LC_LOAD_DYLIB", 0xD: "LC_ID_DYLIB", 0xE: "LC_LOAD_DYLINKER",
    0xF: "LC_ID_DYLINKER", 0x10: "LC_PREBOUND_DYLIB", 0x11: "LC_ROUTINES", 0x12: "LC_SUB_FRAMEWORK",
    0x13: "LC_SUB_UMBRELLA", 0x14: "LC_SUB_CLIENT", 0x15: "LC_SUB_LIBRARY", 0x16: "LC_TWOLEVEL_HINTS",
    0x17: "LC_PREBIND_CKSUM", 0x80000018: "LC_LOAD_WEAK_DYLIB", 0x19: "LC_SEGMENT_64",
    0x1A: "LC_ROUTINES_64", 0x1B: "LC_UUID", 0x8000001C: "LC_RPATH", 0x1D: "LC_CODE_SIGNATURE",
    0x1E: "LC_SEGMENT_SPLIT_INFO", 0x8000001F: "LC_REEXPORT_DYLIB", 0x20: "LC_LAZY_LOAD_DYLIB",
    0x21: "LC_ENCRYPTION_INFO", 0x22: "LC_DYLD_INFO", 0x80000022: "LC_DYLD_INFO_ONLY",
    0x80000023: "LC_LOAD_UPWARD_DYLIB", 0x24: "LC_VERSION_MIN_MACOSX", 0x25: "LC_VERSION_MIN_IPHONEOS",
    0x26: "LC_FUNCTION_STARTS", 0x27: "LC_DYLD_ENVIRONMENT", 0x80000028: "LC_MAIN",
    0x29: "LC_DATA_IN_CODE", 0x2A: "LC_SOURCE_VERSION", 0x2B: "LC_DYLIB_CODE_SIGN_DRS",
    0x2C: "LC_ENCRYPTION_INFO_64", 0x2D: "LC_LINKER_OPTION", 0x2E: "LC_LINKER_OPTIMIZATION_HINT",
    0x2F: "LC_VERSION_MIN_TVOS", 0x30: "LC_VERSION_MIN_WATCHOS", 0x31: "LC_NOTE",
    0x32: "LC_BUILD_VERSION", 0x80000033: "LC_DYLD_EXPORTS_TRIE", 0x80000034: "LC_DYLD_CHAINED_FIXUPS",
    0x80000035: "LC_FILESET_ENTRY",
}
LC = {v: k for k, v in LC_NAMES.items()}
DYLIB_CMDS = {LC["LC_LOAD_DYLIB"], LC["LC_LOAD_WEAK_DYLIB"], LC["LC_REEXPORT_DYLIB"],
              LC["LC_LAZY_LOAD_DYLIB"], LC["LC_LOAD_UPWARD_DYLIB"]}
LINKEDIT_DATA_CMDS = {LC[n] for n in ("LC_CODE_SIGNATURE", "LC_SEGMENT_SPLIT_INFO", "LC_FUNCTION_STARTS",
                                     "LC_DATA_IN_CODE", "LC_DYLIB_CODE_SIGN_DRS",
                                     "LC_LINKER_OPTIMIZATION_HINT", "LC_DYLD_EXPORTS_TRIE",
                                     "LC_DYLD_CHAINED_FIXUPS")}
UNIQUE_CMDS = {"LC_MAIN", "LC_SYMTAB", "LC_DYSYMTAB", "LC_DYLD_INFO", "LC_UUID", "LC_CODE_SIGNATURE",
               "LC_LOAD_DYLINKER", "LC_FUNCTION_STARTS", "LC_BUILD_VERSION", "LC_UNIXTHREAD"}
# commands whose size is fixed (cmdsize must equal it)
FIXED_SIZE = {"LC_SYMTAB": 24, "LC_DYSYMTAB": 80, "LC_UUID": 24, "LC_DYLD_INFO": 48, "LC_MAIN": 24,
              "LC_SOURCE_VERSION": 16, "LC_ENCRYPTION_INFO_64": 24, "LC_VERSION_MIN_MACOSX": 16,
              **{LC_NAMES[c]: 16 for c in LINKEDIT_DATA_CMDS}}

# section types (flags & 0xff) and attributes
SECTION_TYPE = 0xFF
S_ZEROFILL, S_NON_LAZY_SYMBOL_POINTERS, S_LAZY_SYMBOL_POINTERS, S_SYMBOL_STUBS = 0x1, 0x6, 0x7, 0x8
S_MOD_INIT_FUNC_POINTERS, S_GB_ZEROFILL, S_THREAD_LOCAL_ZEROFILL = 0x9, 0xC, 0x12
S_INIT_FUNC_OFFSETS = 0x16
ZEROFILL = {S_ZEROFILL, S_GB_ZEROFILL, S_THREAD_LOCAL_ZEROFILL}
S_ATTR_PURE_INSTRUCTIONS, S_ATTR_SOME_INSTRUCTIONS = 0x80000000, 0x400
INDIRECT_SYMBOL_LOCAL, INDIRECT_SYMBOL_ABS = 0x80000000, 0x40000000
VM_PROT_READ, VM_PROT_WRITE, VM_PROT_EXECUTE = 1, 2, 4
SG_READ_ONLY = 0x10  # segment flag: writable for dyld's fix-ups, read-only afterwards

# rebase and bind opcodes (<mach-o/loader.h>)
REBASE_TYPE_POINTER = 1
REBASE_OPCODE_DONE = 0x00
REBASE_OPCODE_SET_TYPE_IMM = 0x10
REBASE_OPCODE_SET_SEGMENT_AND_OFFSET_ULEB = 0x20
REBASE_OPCODE_ADD_ADDR_ULEB = 0x30
REBASE_OPCODE_ADD_ADDR_IMM_SCALED = 0x40
REBASE_OPCODE_DO_REBASE_IMM_TIMES = 0x50
REBASE_OPCODE_DO_REBASE_ULEB_TIMES = 0x60
REBASE_OPCODE_DO_REBASE_ADD_ADDR_ULEB = 0x70
REBASE_OPCODE_DO_REBASE_ULEB_TIMES_SKIPPING_ULEB = 0x80
BIND_TYPE_POINTER = 1
BIND_SYMBOL_FLAGS_WEAK_IMPORT = 0x1
BIND_OPCODE_DONE = 0x00
BIND_OPCODE_SET_DYLIB_ORDINAL_IMM = 0x10
BIND_OPCODE_SET_DYLIB_ORDINAL_ULEB = 0x20
BIND_OPCODE_SET_DYLIB_SPECIAL_IMM = 0x30
BIND_OPCODE_SET_SYMBOL_TRAILING_FLAGS_IMM = 0x40
BIND_OPCODE_SET_TYPE_IMM = 0x50
BIND_OPCODE_SET_ADDEND_SLEB = 0x60
BIND_OPCODE_SET_SEGMENT_AND_OFFSET_ULEB = 0x70
BIND_OPCODE_ADD_ADDR_ULEB = 0x80
BIND_OPCODE_DO_BIND = 0x90
BIND_OPCODE_DO_BIND_ADD_ADDR_ULEB = 0xA0
BIND_OPCODE_DO_BIND_ADD_ADDR_IMM_SCALED = 0xB0
BIND_OPCODE_DO_BIND_ULEB_TIMES_SKIPPING_ULEB = 0xC0
BIND_OPCODE_THREADED = 0xD0
EXPORT_SYMBOL_FLAGS_REEXPORT, EXPORT_SYMBOL_FLAGS_STUB_AND_RESOLVER = 0x08, 0x10

DYLD = "/usr/lib/dyld"
LIBSYSTEM = "/usr/lib/libSystem.B.dylib"
LIBSYSTEM_FUNCS = ("_write", "_exit", "dyld_stub_binder")
MAIN_RETURN = "<return from main>"

STUB_ADDR = 0x7FF800000000  # the emulated libSystem (where macOS's shared cache would be)
STACK_TOP = 0x7FF7C0000000
STACK_SIZE = 1 << 20
SLOT = 16
TRAP_INT = 0x2E
STUB_CODE = {
    "amd64": bytes([0xCD, TRAP_INT]) + b"\x0f\x0b" * 7,  # int $0x2e; ud2 ...
    "arm64": struct.pack("<4I", 0xD4000001, 0, 0, 0),  # svc #0; udf #0 ...
}
SYSCALL_CLASS_UNIX = 0x2000000
SYS_EXIT, SYS_WRITE = 1, 4
MAX_IMAGE = 256 << 20


def _prot_str(p):
    return ("r" if p & VM_PROT_READ else "-") + ("w" if p & VM_PROT_WRITE else "-") + (
        "x" if p & VM_PROT_EXECUTE else "-")


def _name16(b):
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


class _Reader:
    """ULEB/SLEB/bytes from one opcode stream, with bounds checks."""

    def __init__(self, data, start, end, what):
        self.d, self.p, self.end, self.what = data, start, end, what

    def more(self):
        return self.p < self.end

    def byte(self):
        if self.p >= self.end:
            raise LoadError(f"Mach-O: {self.what}: runs past its end at {self.end:#x}")
        b = self.d[self.p]
        self.p += 1
        return b

    def uleb(self):
        at, v, shift = self.p, 0, 0
        while True:
            if self.p >= self.end:
                raise LoadError(f"Mach-O: {self.what}: ULEB128 at {at:#x} is not terminated")
            b = self.d[self.p]
            self.p += 1
            if shift >= 64 and b & 0x7F:
                raise LoadError(f"Mach-O: {self.what}: ULEB128 at {at:#x} is too big for 64 bits")
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v & 0xFFFFFFFFFFFFFFFF

    def sleb(self):
        at, v, shift = self.p, 0, 0
        while True:
            if self.p >= self.end:
                raise LoadError(f"Mach-O: {self.what}: SLEB128 at {at:#x} is not terminated")
            b = self.d[self.p]
            self.p += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if b & 0x40:
                    v -= 1 << shift
                if not -(1 << 63) <= v < 1 << 64:
                    raise LoadError(f"Mach-O: {self.what}: SLEB128 at {at:#x} is too big for 64 bits")
                return v

    def cstring(self):
        i = self.d.find(b"\0", self.p, self.end)
        if i < 0:
            raise LoadError(f"Mach-O: {self.what}: string at {self.p:#x} is not NUL-terminated")
        s = bytes(self.d[self.p:i]).decode("utf-8", "replace")
        self.p = i + 1
        return s


def _lc_string(data, off, cmdsize, name_off, what):
    if not 0 < name_off < cmdsize:
        raise LoadError(f"Mach-O: {what}: string offset {name_off} is outside the command (cmdsize {cmdsize})")
    i = data.find(b"\0", off + name_off, off + cmdsize)
    if i < 0:
        raise LoadError(f"Mach-O: {what}: the string is not NUL-terminated inside the command")
    return bytes(data[off + name_off:i]).decode("utf-8", "replace")


def _parse(data):
    data = bytes(data)
    n = len(data)
    if n < 32:
        raise LoadError(f"Mach-O: truncated header: {n} bytes, need 32 (mach_header_64)")
    (magic,) = struct.unpack_from("<I", data, 0)
    if magic != MH_MAGIC_64:
        what = OTHER_MAGICS.get(magic) or OTHER_MAGICS.get(struct.unpack_from(">I", data, 0)[0])
        raise LoadError(f"Mach-O: bad magic {magic:#x}" + (f" ({what})" if what else "")
                        + f", want {MH_MAGIC_64:#x} (MH_MAGIC_64, little-endian)")
    cputype, cpusubtype, filetype, ncmds, sizeofcmds, flags, _ = struct.unpack_from("<iiIIIII", data, 4)
    cputype &= 0xFFFFFFFF
    if cputype not in CPU_TYPES:
        raise LoadError(f"Mach-O: unsupported cputype {cputype:#x} (known: "
                        + ", ".join(f"{k:#x} {CPU_NAMES[v]}" for k, v in CPU_TYPES.items()) + ")")
    arch = CPU_TYPES[cputype]
    page = PAGE_SIZE[arch]
    if filetype != MH_EXECUTE:
        raise LoadError(f"Mach-O: filetype {filetype} ({FILETYPES.get(filetype, 'unknown')}) is not "
                        "MH_EXECUTE (2)")
    if 32 + sizeofcmds > n:
        raise LoadError(f"Mach-O: truncated or bad sizeofcmds: 32 + {sizeofcmds:#x} is past the end of "
                        f"the file ({n} bytes)")

    cmds = []  # (index, cmd, name, off, cmdsize)
    off, end = 32, 32 + sizeofcmds
    for i in range(ncmds):
        if off + 8 > end:
            raise LoadError(f"Mach-O: load command {i} at {off:#x} runs past sizeofcmds "
                            f"(the commands end at {end:#x}; ncmds {ncmds})")
        cmd, cmdsize = struct.unpack_from("<II", data, off)
        name = LC_NAMES.get(cmd, f"LC_{cmd:#x}")
        if cmdsize < 8 or cmdsize % 8:
            raise LoadError(f"Mach-O: load command {i} ({name}) at {off:#x}: cmdsize {cmdsize} is not a "
                            "multiple of 8 of at least 8")
        if off + cmdsize > end:
            raise LoadError(f"Mach-O: load command {i} ({name}) at {off:#x}: cmdsize {cmdsize} runs past "
                            f"sizeofcmds (the commands end at {end:#x})")
        want = FIXED_SIZE.get("LC_DYLD_INFO" if name == "LC_DYLD_INFO_ONLY" else name)
        if want is not None and cmdsize != want:
            raise LoadError(f"Mach-O: load command {i} ({name}): cmdsize {cmdsize}, want {want}")
        cmds.append((i, cmd, name, off, cmdsize))
        off += cmdsize
    if off != end:
        raise LoadError(f"Mach-O: the {ncmds} load commands end at {off:#x}, but sizeofcmds says "
                        f"{end:#x}")

    seen = {}
    for i, cmd, name, off, cmdsize in cmds:
        key = "LC_DYLD_INFO" if name == "LC_DYLD_INFO_ONLY" else name
        if key in UNIQUE_CMDS and key in seen:
            raise LoadError(f"Mach-O: load command {i}: a second {name} (the first is command {seen[key]})")
        seen.setdefault(key, i)
        if name in ("LC_DYLD_CHAINED_FIXUPS", "LC_DYLD_EXPORTS_TRIE"):
            raise LoadError(f"Mach-O: load command {i}: {name} is not supported by this loader (it reads "
                            "LC_DYLD_INFO_ONLY rebase/bind opcodes only)")
        if name == "LC_UNIXTHREAD":
            raise LoadError(f"Mach-O: load command {i}: LC_UNIXTHREAD is not supported (only LC_MAIN "
                            "programs started by dyld)")
        if name == "LC_SEGMENT":
            raise LoadError(f"Mach-O: load command {i}: a 32-bit LC_SEGMENT in a 64-bit file")
        if cmd not in LC_NAMES and cmd & LC_REQ_DYLD:
            raise LoadError(f"Mach-O: load command {i}: unknown command {cmd:#x} with LC_REQ_DYLD: dyld "
                            "cannot run an image it does not understand")

    # ---- segments ----------------------------------------------------------------------
    segments = []
    for i, cmd, name, off, cmdsize in cmds:
        if name != "LC_SEGMENT_64":
            continue
        if cmdsize < 72:
            raise LoadError(f"Mach-O: load command {i} (LC_SEGMENT_64): cmdsize {cmdsize} < 72")
        segname, vmaddr, vmsize, fileoff, filesize, maxprot, initprot, nsects, sflags = struct.unpack_from(
            "<16sQQQQiiII", data, off + 8)
        segname = _name16(segname)
        what = f"load command {i} (LC_SEGMENT_64 {segname})"
        if cmdsize != 72 + 80 * nsects:
            raise LoadError(f"Mach-O: {what}: cmdsize {cmdsize} does not fit nsects {nsects} "
                            f"(want 72 + 80*{nsects} = {72 + 80 * nsects})")
        if fileoff + filesize > n:
            raise LoadError(f"Mach-O: truncated: {what}: file range [{fileoff:#x}, {fileoff + filesize:#x}) "
                            f"runs past the end of the file ({n} bytes)")
        if vmsize < filesize:
            raise LoadError(f"Mach-O: {what}: vmsize {vmsize:#x} < filesize {filesize:#x}")
        if vmaddr + vmsize > 1 << 64:
            raise LoadError(f"Mach-O: {what}: [{vmaddr:#x}, +{vmsize:#x}) wraps the address space")
        sections = []
        for k in range(nsects):
            so = off + 72 + 80 * k
            (sectname, sseg, addr, size, soff, align, reloff, nreloc, secflags, r1, r2, r3) = \
                struct.unpack_from("<16s16sQQIIIIIIII", data, so)
            sectname, sseg = _name16(sectname), _name16(sseg)
            swhat = f"{what}: section {sseg},{sectname}"
            if sseg != segname:
                raise LoadError(f"Mach-O: {swhat}: its segname is not the segment's ({segname})")
            if addr < vmaddr or addr + size > vmaddr + vmsize:
                raise LoadError(f"Mach-O: {swhat}: [{addr:#x}, {addr + size:#x}) is outside the segment "
                                f"[{vmaddr:#x}, {vmaddr + vmsize:#x})")
            stype = secflags & SECTION_TYPE
            if stype not in ZEROFILL and size:
                if soff < fileoff or soff + size > fileoff + filesize:
                    raise LoadError(f"Mach-O: {swhat}: file range [{soff:#x}, {soff + size:#x}) is outside "
                                    f"the segment's [{fileoff:#x}, {fileoff + filesize:#x})")
                if soff - fileoff != addr - vmaddr:
                    raise LoadError(f"Mach-O: {swhat}: offset {soff:#x} and address {addr:#x} disagree with "
                                    f"the segment's mapping (fileoff {fileoff:#x}, vmaddr {vmaddr:#x})")
            if stype in (S_MOD_INIT_FUNC_POINTERS, S_INIT_FUNC_OFFSETS) and size:
                raise LoadError(f"Mach-O: {swhat}: initializers are not supported by this loader")
            if align > 15:
                raise LoadError(f"Mach-O: {swhat}: alignment 2^{align} is absurd")
            if addr % (1 << align):
                raise LoadError(f"Mach-O: {swhat}: address {addr:#x} is not aligned to 2^{align}")
            sections.append(dict(name=sectname, segname=sseg, addr=addr, size=size, offset=soff, align=align,
                                 reloff=reloff, nreloc=nreloc, flags=secflags, type=stype,
                                 reserved1=r1, reserved2=r2, reserved3=r3))
        segments.append(dict(name=segname, vmaddr=vmaddr, vmsize=vmsize, fileoff=fileoff, filesize=filesize,
                             maxprot=maxprot & 0xFFFFFFFF, initprot=initprot & 0xFFFFFFFF,
                             prot=_prot_str(initprot), max_prot=_prot_str(maxprot), nsects=nsects,
                             flags=sflags, sections=sections, cmd_index=i))
    if not segments:
        raise LoadError("Mach-O: no LC_SEGMENT_64")
    segs = {s["name"]: s for s in segments}
    if len(segs) != len(segments):
        raise LoadError("Mach-O: two segments have the same name")
    text = segs.get("__TEXT")
    if text is None:
        raise LoadError("Mach-O: no __TEXT segment")
    if text["fileoff"] != 0 or text["filesize"] == 0:
        raise LoadError(f"Mach-O: __TEXT must map the start of the file (fileoff {text['fileoff']:#x}, "
                        f"filesize {text['filesize']:#x})")
    if 32 + sizeofcmds > text["filesize"]:
        raise LoadError(f"Mach-O: the load commands end at {32 + sizeofcmds:#x}, past __TEXT's filesize "
                        f"{text['filesize']:#x}")
    for s in text["sections"]:
        if s["type"] not in ZEROFILL and s["size"] and s["offset"] < 32 + sizeofcmds:
            raise LoadError(f"Mach-O: section __TEXT,{s['name']} at file offset {s['offset']:#x} overlaps the "
                            f"load commands (which end at {32 + sizeofcmds:#x})")
    if not text["initprot"] & VM_PROT_EXECUTE:
        raise LoadError(f"Mach-O: __TEXT is not executable (initprot {text['prot']})")
    base = text["vmaddr"]
    for s in segments:
        what = f"segment {s['name']}"
        if s["name"] == "__PAGEZERO":
            if s["vmaddr"] != 0 or s["filesize"] or s["initprot"] or s["maxprot"]:
                raise LoadError(f"Mach-O: __PAGEZERO must be at 0 with no file data and no access (vmaddr "
                                f"{s['vmaddr']:#x}, filesize {s['filesize']:#x}, prot {s['prot']}/{s['max_prot']})")
            continue
        if s["vmaddr"] % page or s["fileoff"] % page:
            raise LoadError(f"Mach-O: {what}: vmaddr {s['vmaddr']:#x} / fileoff {s['fileoff']:#x} not aligned "
                            f"to the {arch} page size {page:#x}")
        if s["filesize"] and s["vmaddr"] - base < s["fileoff"]:
            raise LoadError(f"Mach-O: {what}: vmaddr {s['vmaddr']:#x} - __TEXT.vmaddr {base:#x} < fileoff "
                            f"{s['fileoff']:#x}: the file's layout runs ahead of memory's")
        if s["initprot"] & ~s["maxprot"] & 7:
            raise LoadError(f"Mach-O: {what}: initprot {s['prot']} exceeds maxprot {s['max_prot']}")
    ordered = sorted((s for s in segments if s["vmsize"]), key=lambda s: s["vmaddr"])
    for a, b in zip(ordered, ordered[1:]):
        if a["vmaddr"] + a["vmsize"] > b["vmaddr"]:
            raise LoadError(f"Mach-O: segments {a['name']} and {b['name']} overlap")
        if a["filesize"] and b["filesize"] and a["fileoff"] + a["filesize"] > b["fileoff"]:
            raise LoadError(f"Mach-O: segments {a['name']} and {b['name']} overlap in the file, or "
                            "their file ranges are not in the order of their vm ranges")
    image_size = sum(page_up(s["vmsize"], page) for s in segments if s["name"] != "__PAGEZERO")
    if image_size > MAX_IMAGE:
        raise LoadError(f"Mach-O: the segments need {image_size:#x} bytes, more than this loader's {MAX_IMAGE:#x}")
    linkedit = segs.get("__LINKEDIT")

    def in_linkedit(what, foff, size):
        if size == 0:
            return
        if linkedit is None:
            raise LoadError(f"Mach-O: {what} [{foff:#x}, +{size:#x}) but no __LINKEDIT segment")
        lo, hi = linkedit["fileoff"], linkedit["fileoff"] + linkedit["filesize"]
        if foff < lo or foff + size > hi:
            raise LoadError(f"Mach-O: {what} [{foff:#x}, {foff + size:#x}) is outside __LINKEDIT's file "
                            f"range [{lo:#x}, {hi:#x})")

    # ---- other commands ----------------------------------------------------------------
    h = dict(arch=arch, cputype=cputype, cpu=CPU_NAMES[arch], cpusubtype=cpusubtype & 0xFFFFFFFF,
             filetype=filetype, ncmds=ncmds, sizeofcmds=sizeofcmds, flags=flags,
             flag_names=[v for k, v in MH_FLAGS.items() if flags & k], page_size=page,
             load_commands=[c[2] for c in cmds], segments=segments, dylibs=[], dylinker=None,
             entryoff=None, stacksize=None, uuid=None, build_version=None, has_code_signature=False,
             code_signature=None, dyld_info=None, symtab=None, dysymtab=None, function_starts=None)
    dylib_cmds = []
    for i, cmd, name, off, cmdsize in cmds:
        what = f"load command {i} ({name})"
        if cmd in DYLIB_CMDS:
            if cmdsize < 24:
                raise LoadError(f"Mach-O: {what}: cmdsize {cmdsize} < 24")
            name_off, ts, cur, compat = struct.unpack_from("<IIII", data, off + 8)
            path = _lc_string(data, off, cmdsize, name_off, what)
            dylib_cmds.append(dict(kind=name, name=path, current_version=cur, compatibility_version=compat))
        elif name == "LC_LOAD_DYLINKER":
            if cmdsize < 12:
                raise LoadError(f"Mach-O: {what}: cmdsize {cmdsize} < 12")
            h["dylinker"] = _lc_string(data, off, cmdsize, struct.unpack_from("<I", data, off + 8)[0], what)
        elif name == "LC_MAIN":
            h["entryoff"], h["stacksize"] = struct.unpack_from("<QQ", data, off + 8)
        elif name == "LC_UUID":
            u = data[off + 8:off + 24].hex().upper()
            h["uuid"] = f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"
        elif name == "LC_BUILD_VERSION":
            if cmdsize < 24:
                raise LoadError(f"Mach-O: {what}: cmdsize {cmdsize} < 24")
            platform, minos, sdk, ntools = struct.unpack_from("<IIII", data, off + 8)
            if cmdsize != 24 + 8 * ntools:
                raise LoadError(f"Mach-O: {what}: cmdsize {cmdsize} does not fit ntools {ntools}")
            tools = [struct.unpack_from("<II", data, off + 24 + 8 * k) for k in range(ntools)]
            h["build_version"] = dict(platform=platform, minos=minos, sdk=sdk, tools=tools)
        elif name in ("LC_DYLD_INFO", "LC_DYLD_INFO_ONLY"):
            v = struct.unpack_from("<10I", data, off + 8)
            keys = ("rebase", "bind", "weak_bind", "lazy_bind", "export")
            di = {}
            for k, key in enumerate(keys):
                foff, size = v[2 * k], v[2 * k + 1]
                in_linkedit(f"{name} {key} table", foff, size)
                di[key] = (foff, size)
            h["dyld_info"] = di
        elif name == "LC_SYMTAB":
            symoff, nsyms, stroff, strsize = struct.unpack_from("<IIII", data, off + 8)
            in_linkedit("LC_SYMTAB symbols", symoff, 16 * nsyms)
            in_linkedit("LC_SYMTAB strings", stroff, strsize)
            h["symtab"] = dict(symoff=symoff, nsyms=nsyms, stroff=stroff, strsize=strsize)
        elif name == "LC_DYSYMTAB":
            v = struct.unpack_from("<18I", data, off + 8)
            keys = ("ilocalsym", "nlocalsym", "iextdefsym", "nextdefsym", "iundefsym", "nundefsym",
                    "tocoff", "ntoc", "modtaboff", "nmodtab", "extrefsymoff", "nextrefsyms",
                    "indirectsymoff", "nindirectsyms", "extreloff", "nextrel", "locreloff", "nlocrel")
            h["dysymtab"] = dict(zip(keys, v))
            in_linkedit("LC_DYSYMTAB indirect symbols", h["dysymtab"]["indirectsymoff"],
                        4 * h["dysymtab"]["nindirectsyms"])
            for k in ("ntoc", "nmodtab", "nextrefsyms", "nextrel", "nlocrel"):
                if h["dysymtab"][k]:
                    raise LoadError(f"Mach-O: LC_DYSYMTAB {k} = {h['dysymtab'][k]}: classic relocations and "
                                    "tables of contents are not supported in an executable here")
        elif cmd in LINKEDIT_DATA_CMDS:
            dataoff, datasize = struct.unpack_from("<II", data, off + 8)
            in_linkedit(name, dataoff, datasize)
            if name == "LC_CODE_SIGNATURE":
                h["has_code_signature"] = True
                h["code_signature"] = dict(dataoff=dataoff, datasize=datasize)
            elif name == "LC_FUNCTION_STARTS":
                h["function_starts"] = _function_starts(data, dataoff, datasize, base)
    h["dylibs"] = [d["name"] for d in dylib_cmds]
    h["dylib_commands"] = dylib_cmds

    if h["entryoff"] is None:
        raise LoadError("Mach-O: no LC_MAIN (the entry point)")
    if h["dylinker"] is None:
        raise LoadError("Mach-O: LC_MAIN without LC_LOAD_DYLINKER: the kernel starts an LC_MAIN program "
                        "through dyld")
    if h["dylinker"] != DYLD:
        raise LoadError(f"Mach-O: LC_LOAD_DYLINKER {h['dylinker']!r}, want {DYLD!r}")
    e = h["entryoff"]
    entry_sect = next((s for s in text["sections"] if s["type"] not in ZEROFILL
                       and s["offset"] <= e < s["offset"] + s["size"]), None)
    if e >= text["filesize"] or entry_sect is None:
        raise LoadError(f"Mach-O: LC_MAIN entryoff {e:#x} is not inside a section of __TEXT")
    h["entry_section"] = entry_sect["name"]
    # dyld does not look at the attributes; recorded so that tests can check them
    h["entry_section_is_code"] = bool(entry_sect["flags"] & (S_ATTR_PURE_INSTRUCTIONS | S_ATTR_SOME_INSTRUCTIONS))
    for d in dylib_cmds:
        if d["name"] != LIBSYSTEM:
            raise LoadError(f"Mach-O: {d['kind']} {d['name']!r}: only {LIBSYSTEM} is available here (dyld would "
                            "fail to load the program: library not found)")
    if not any(d["kind"] == "LC_LOAD_DYLIB" for d in dylib_cmds):
        raise LoadError(f"Mach-O: no LC_LOAD_DYLIB of {LIBSYSTEM}: dyld refuses a main executable that links "
                        "no dylib (must link with at least libSystem.dylib)")
    if arch == "arm64" and not h["has_code_signature"]:
        raise LoadError("Mach-O: arm64 executable without LC_CODE_SIGNATURE: macOS kills unsigned arm64 code")
    if h["dyld_info"] is None:
        raise LoadError("Mach-O: no LC_DYLD_INFO_ONLY (this loader needs its rebase and bind opcodes)")

    syms = _symbols(data, h)
    h["symbols"] = syms
    _indirect(data, h, syms)

    di = h["dyld_info"]
    rebases = _rebases(data, *di["rebase"], segments)
    binds = _binds(data, *di["bind"], segments, dylib_cmds, lazy=False, kind="bind")
    binds += _binds(data, *di["lazy_bind"], segments, dylib_cmds, lazy=True, kind="lazy")
    weak = _binds(data, *di["weak_bind"], segments, dylib_cmds, lazy=False, kind="weak")
    if weak:
        raise LoadError(f"Mach-O: {len(weak)} weak binds (symbol {weak[0]['symbol']!r}, ...): weak binding is "
                        "not emulated")
    h["rebases"] = len(rebases)
    h["rebase_addresses"] = [a for a, _ in rebases]
    h["binds"] = binds
    h["exports"] = _exports(data, *di["export"])
    return h, rebases


def _function_starts(data, off, size, base):
    r = _Reader(data, off, off + size, "LC_FUNCTION_STARTS")
    out, addr = [], base
    while r.more():
        d = r.uleb()
        if d == 0:
            break
        addr += d
        out.append(addr)
    return out


def _symbols(data, h):
    st = h["symtab"]
    if st is None:
        return []
    out = []
    for k in range(st["nsyms"]):
        strx, ntype, nsect, ndesc, value = struct.unpack_from("<IBBHQ", data, st["symoff"] + 16 * k)
        if strx >= max(st["strsize"], 1) and not (strx == 0 and st["strsize"] == 0):
            raise LoadError(f"Mach-O: symbol {k}: n_strx {strx} is past the string table (strsize {st['strsize']})")
        so = st["stroff"] + strx
        e = data.find(b"\0", so, st["stroff"] + st["strsize"])
        if e < 0:
            raise LoadError(f"Mach-O: symbol {k}: its name at n_strx {strx} is not NUL-terminated")
        out.append(dict(name=data[so:e].decode("utf-8", "replace"), type=ntype, sect=nsect, desc=ndesc,
                        value=value))
    ds = h["dysymtab"]
    if ds is not None:
        for a, b in (("ilocalsym", "nlocalsym"), ("iextdefsym", "nextdefsym"), ("iundefsym", "nundefsym")):
            if ds[a] + ds[b] > st["nsyms"]:
                raise LoadError(f"Mach-O: LC_DYSYMTAB {a} {ds[a]} + {b} {ds[b]} > nsyms {st['nsyms']}")
    return out


def _indirect(data, h, syms):
    ds = h["dysymtab"]
    ind = []
    if ds is not None:
        ind = [struct.unpack_from("<I", data, ds["indirectsymoff"] + 4 * k)[0] for k in range(ds["nindirectsyms"])]
    for k, v in enumerate(ind):
        if not v & (INDIRECT_SYMBOL_LOCAL | INDIRECT_SYMBOL_ABS) and v >= len(syms):
            raise LoadError(f"Mach-O: indirect symbol {k} = {v}: past the symbol table ({len(syms)} symbols)")
    for seg in h["segments"]:
        for s in seg["sections"]:
            if s["type"] not in (S_SYMBOL_STUBS, S_NON_LAZY_SYMBOL_POINTERS, S_LAZY_SYMBOL_POINTERS):
                continue
            stride = s["reserved2"] if s["type"] == S_SYMBOL_STUBS else 8
            what = f"section {s['segname']},{s['name']}"
            if stride == 0 or s["size"] % stride:
                raise LoadError(f"Mach-O: {what}: size {s['size']:#x} is not a multiple of its entry size {stride}")
            count = s["size"] // stride
            if count and (ds is None or s["reserved1"] + count > len(ind)):
                raise LoadError(f"Mach-O: {what}: indirect symbols {s['reserved1']} .. {s['reserved1'] + count} "
                                f"are past the indirect symbol table ({len(ind)} entries)")


def _seg_target(segments, segidx, off, what):
    if segidx >= len(segments):
        raise LoadError(f"Mach-O: {what}: segment index {segidx} (only {len(segments)} segments)")
    s = segments[segidx]
    if off + 8 > s["vmsize"]:
        raise LoadError(f"Mach-O: {what}: offset {off:#x} in {s['name']} is past its vmsize {s['vmsize']:#x}")
    if not s["initprot"] & VM_PROT_WRITE:
        raise LoadError(f"Mach-O: {what}: {s['name']}+{off:#x} is in a segment that is not writable "
                        f"({s['prot']}): text relocations are not allowed")
    return s


def _rebases(data, foff, size, segments):
    """[(vmaddr, segment index)] of every pointer to slide."""
    r = _Reader(data, foff, foff + size, "rebase opcodes")
    out = []
    seg, off, typ = None, 0, 0

    def do(n, step):
        nonlocal off
        for _ in range(n):
            if seg is None:
                raise LoadError(f"Mach-O: rebase opcodes: a rebase before SET_SEGMENT_AND_OFFSET (at {r.p - 1:#x})")
            if typ != REBASE_TYPE_POINTER:
                raise LoadError(f"Mach-O: rebase opcodes: type {typ} is not REBASE_TYPE_POINTER (1)")
            s = _seg_target(segments, seg, off, "rebase")
            out.append((s["vmaddr"] + off, seg))
            off += step
        if len(out) > MAX_IMAGE // 8:
            raise LoadError("Mach-O: rebase opcodes: more rebases than the image has pointers")

    while r.more():
        b = r.byte()
        op, imm = b & 0xF0, b & 0x0F
        if op == REBASE_OPCODE_DONE:
            break
        elif op == REBASE_OPCODE_SET_TYPE_IMM:
            typ = imm
        elif op == REBASE_OPCODE_SET_SEGMENT_AND_OFFSET_ULEB:
            seg, off = imm, r.uleb()
        elif op == REBASE_OPCODE_ADD_ADDR_ULEB:
            off = (off + r.uleb()) & 0xFFFFFFFFFFFFFFFF
        elif op == REBASE_OPCODE_ADD_ADDR_IMM_SCALED:
            off += imm * 8
        elif op == REBASE_OPCODE_DO_REBASE_IMM_TIMES:
            do(imm, 8)
        elif op == REBASE_OPCODE_DO_REBASE_ULEB_TIMES:
            do(r.uleb(), 8)
        elif op == REBASE_OPCODE_DO_REBASE_ADD_ADDR_ULEB:
            skip = r.uleb()
            do(1, 8 + skip)
        elif op == REBASE_OPCODE_DO_REBASE_ULEB_TIMES_SKIPPING_ULEB:
            count = r.uleb()
            skip = r.uleb()
            do(count, 8 + skip)
        else:
            raise LoadError(f"Mach-O: rebase opcodes: unknown opcode {b:#04x} at file offset {r.p - 1:#x}")
    return out


def _binds(data, foff, size, segments, dylibs, *, lazy, kind):
    """[{segment, section, address, type, addend, dylib, ordinal, symbol, flags, kind}]."""
    r = _Reader(data, foff, foff + size, f"{kind} bind opcodes")
    out = []
    seg, off, typ, ordinal, sym, flags, addend = None, 0, BIND_TYPE_POINTER, None, None, 0, 0

    def do(n, step):
        nonlocal off
        for _ in range(n):
            if seg is None:
                raise LoadError(f"Mach-O: {kind} bind opcodes: a bind before SET_SEGMENT_AND_OFFSET")
            if sym is None:
                raise LoadError(f"Mach-O: {kind} bind opcodes: a bind with no symbol name")
            if typ != BIND_TYPE_POINTER:
                raise LoadError(f"Mach-O: {kind} bind of {sym}: type {typ} is not BIND_TYPE_POINTER (1)")
            if kind != "weak":
                if ordinal is None:
                    raise LoadError(f"Mach-O: {kind} bind of {sym}: no library ordinal")
                if ordinal <= 0:
                    raise LoadError(f"Mach-O: {kind} bind of {sym}: special library ordinal {ordinal} (self, "
                                    "main executable, flat or weak lookup) is not supported: two-level "
                                    "ordinals only")
                if ordinal > len(dylibs):
                    raise LoadError(f"Mach-O: {kind} bind of {sym}: library ordinal {ordinal}, but there "
                                    f"are {len(dylibs)} dylib load commands")
            s = _seg_target(segments, seg, off, f"{kind} bind of {sym}")
            addr = s["vmaddr"] + off
            sect = next((x["name"] for x in s["sections"] if x["addr"] <= addr < x["addr"] + x["size"]), None)
            out.append(dict(segment=s["name"], section=sect, address=addr, segindex=seg, type=typ,
                            addend=addend, ordinal=ordinal,
                            dylib=dylibs[ordinal - 1]["name"] if ordinal and ordinal > 0 else None,
                            symbol=sym, flags=flags, kind=kind))
            off += step

    while r.more():
        b = r.byte()
        op, imm = b & 0xF0, b & 0x0F
        if op == BIND_OPCODE_DONE:
            if not lazy:
                break
            continue  # lazy binds: DONE ends each entry
        elif op == BIND_OPCODE_SET_DYLIB_ORDINAL_IMM:
            ordinal = imm
        elif op == BIND_OPCODE_SET_DYLIB_ORDINAL_ULEB:
            ordinal = r.uleb()
        elif op == BIND_OPCODE_SET_DYLIB_SPECIAL_IMM:
            ordinal = 0 if imm == 0 else imm - 16  # sign-extended 4 bits: 0, -1, -2, -3
        elif op == BIND_OPCODE_SET_SYMBOL_TRAILING_FLAGS_IMM:
            flags = imm
            sym = r.cstring()
        elif op == BIND_OPCODE_SET_TYPE_IMM:
            typ = imm
        elif op == BIND_OPCODE_SET_ADDEND_SLEB:
            addend = r.sleb()
        elif op == BIND_OPCODE_SET_SEGMENT_AND_OFFSET_ULEB:
            seg, off = imm, r.uleb()
        elif op == BIND_OPCODE_ADD_ADDR_ULEB:
            off = (off + r.uleb()) & 0xFFFFFFFFFFFFFFFF
        elif op == BIND_OPCODE_DO_BIND:
            do(1, 8)
        elif op == BIND_OPCODE_DO_BIND_ADD_ADDR_ULEB:
            do(1, 8 + r.uleb())
        elif op == BIND_OPCODE_DO_BIND_ADD_ADDR_IMM_SCALED:
            do(1, 8 + imm * 8)
        elif op == BIND_OPCODE_DO_BIND_ULEB_TIMES_SKIPPING_ULEB:
            count = r.uleb()
            skip = r.uleb()
            do(count, 8 + skip)
        elif op == BIND_OPCODE_THREADED:
            raise LoadError(f"Mach-O: {kind} bind opcodes: BIND_OPCODE_THREADED is not supported")
        else:
            raise LoadError(f"Mach-O: {kind} bind opcodes: unknown opcode {b:#04x} at file offset {r.p - 1:#x}")
        if len(out) > MAX_IMAGE // 8:
            raise LoadError(f"Mach-O: {kind} bind opcodes: more binds than the image has pointers")
    return out


def _exports(data, foff, size):
    """{name: (flags, address offset)} from the export trie (checked: bounds, no loops)."""
    out = {}
    if size == 0:
        return out
    end = foff + size
    seen = set()
    stack = [(0, "")]
    while stack:
        node, prefix = stack.pop()
        if node in seen:
            raise LoadError(f"Mach-O: export trie: node {node:#x} is reached twice (a loop or a shared node)")
        seen.add(node)
        if node >= size:
            raise LoadError(f"Mach-O: export trie: node offset {node:#x} is past the trie (size {size:#x})")
        r = _Reader(data, foff + node, end, "export trie")
        tsize = r.uleb()
        if tsize:
            tstart = r.p
            flags = r.uleb()
            if flags & EXPORT_SYMBOL_FLAGS_REEXPORT:
                r.uleb()
                r.cstring()
                addr = None
            else:
                addr = r.uleb()
                if flags & EXPORT_SYMBOL_FLAGS_STUB_AND_RESOLVER:
                    r.uleb()
            if r.p - tstart != tsize:
                raise LoadError(f"Mach-O: export trie: {prefix!r}: terminal size {tsize} but its info is "
                                f"{r.p - tstart} bytes")
            out[prefix] = (flags, addr)
        nchild = r.byte()
        for _ in range(nchild):
            edge = r.cstring()
            if not edge:
                raise LoadError(f"Mach-O: export trie: empty edge under {prefix!r}")
            stack.append((r.uleb(), prefix + edge))
    return out


def parse(data: bytes) -> dict:
    """The Mach-O headers as a dict (see Result.header); a LoadError if the file is not an
    executable this loader (and, as far as it checks, the kernel and dyld) would run."""
    return _parse(data)[0]


# ---- loading --------------------------------------------------------------------------------

def load(data: bytes, slide: int | None = None):
    """Map the executable into a new Machine as the kernel and dyld would. Returns
    (machine, entry, sp, header)."""
    h, rebases = _parse(data)
    arch = h["arch"]
    page = h["page_size"]
    pie = bool(h["flags"] & MH_PIE)
    if slide is None:
        slide = DEFAULT_SLIDE[arch] if pie else 0
    if slide and not pie:
        raise LoadError(f"Mach-O: cannot slide by {slide:#x}: the image is not MH_PIE (flags {h['flags']:#x})")
    if slide % page:
        raise LoadError(f"Mach-O: slide {slide:#x} is not a multiple of the {arch} page size {page:#x}")
    segments = h["segments"]
    images = []
    for s in segments:
        buf = bytearray(page_up(s["vmsize"], page)) if s["name"] != "__PAGEZERO" else bytearray()
        if buf:
            buf[:s["filesize"]] = data[s["fileoff"]:s["fileoff"] + s["filesize"]]
        images.append(buf)
        if s["name"] != "__PAGEZERO" and s["vmaddr"] + slide + len(buf) > 1 << 64:
            raise LoadError(f"Mach-O: segment {s['name']} at {s['vmaddr']:#x} + slide {slide:#x} does not fit")

    for addr, segi in rebases:
        s, buf = segments[segi], images[segi]
        o = addr - s["vmaddr"]
        (v,) = struct.unpack_from("<Q", buf, o)
        struct.pack_into("<Q", buf, o, (v + slide) & 0xFFFFFFFFFFFFFFFF)

    names = [MAIN_RETURN]
    for b in h["binds"]:
        if b["symbol"] not in LIBSYSTEM_FUNCS:
            if b["flags"] & BIND_SYMBOL_FLAGS_WEAK_IMPORT:
                continue
            raise LoadError(f"Mach-O: unknown symbol {b['symbol']!r} ({b['kind']} bind at {b['address']:#x}, from "
                            f"{b['dylib']}): the emulated libSystem has " + ", ".join(LIBSYSTEM_FUNCS))
        if b["symbol"] not in names:
            names.append(b["symbol"])
    for b in h["binds"]:
        s, buf = segments[b["segindex"]], images[b["segindex"]]
        if b["symbol"] in names:
            value = STUB_ADDR + SLOT * names.index(b["symbol"]) + b["addend"]
        else:
            value = 0  # a missing weak import
        struct.pack_into("<Q", buf, b["address"] - s["vmaddr"], value & 0xFFFFFFFFFFFFFFFF)

    m = Machine(arch)
    for s, buf in zip(segments, images):
        if s["name"] == "__PAGEZERO" or not s["vmsize"]:
            continue
        prot = s["initprot"] & 7
        if s["flags"] & SG_READ_ONLY:
            prot &= ~VM_PROT_WRITE  # dyld makes it read-only once the fix-ups are applied
        m.map(s["vmaddr"] + slide, bytes(buf), prot, name=f"segment {s['name']}")
    code = STUB_CODE[arch] * len(names)
    m.map(STUB_ADDR, code, PROT_RX, size=page_up(len(code)), name="libSystem stubs")

    top = m.setup_stack(STACK_TOP, STACK_SIZE)
    # strings and the argv/envp/apple vectors at the top of the stack
    strings = b"prog\0executable_path=prog\0"
    sp = (top - 64 - len(strings)) & ~15
    m.write(sp, strings)
    prog, apple0 = sp, sp + 5
    vec = [prog, 0, 0, apple0, 0]  # argv[0], NULL, envp NULL, apple[0], NULL
    sp = (sp - 8 * len(vec)) & ~15
    for k, v in enumerate(vec):
        m.write(sp + 8 * k, m.pack_word(v))
    argv, envp, apple = sp, sp + 16, sp + 24
    sp -= 32  # a little room; still 16-byte aligned
    if arch == "amd64":
        sp -= 8  # the return address: rsp 8 mod 16 at the entry, as after a call
        m.write(sp, m.pack_word(STUB_ADDR))
        regs = ("rdi", "rsi", "rdx", "rcx")
    else:
        m.set_reg("lr", STUB_ADDR)
        regs = ("x0", "x1", "x2", "x3")
    for reg, v in zip(regs, (1, argv, envp, apple)):
        m.set_reg(reg, v)

    text = next(s for s in segments if s["name"] == "__TEXT")
    entry = text["vmaddr"] + slide + h["entryoff"]
    header = dict(h, slide=slide, entry=entry, stubs={n: STUB_ADDR + SLOT * k for k, n in enumerate(names)})
    m.on_trap = lambda machine, trap: _trap(machine, trap, arch, names)
    return m, entry, sp, header


def _trap(m: Machine, trap, arch, names):
    insn = m.pc - m.arch.trap_len if trap.kind == "interrupt" else m.pc
    off = insn - STUB_ADDR
    in_stubs = 0 <= off < SLOT * len(names) and off % SLOT == 0
    if arch == "amd64":
        if trap.kind == "syscall":
            return _bsd_syscall(m, arch)
        if trap.kind == "interrupt" and trap.number == TRAP_INT and in_stubs:
            return _libsystem(m, arch, names[off // SLOT])
        raise EmuError(f"INT {trap.number:#x}: a macOS x86_64 program makes system calls with SYSCALL")
    # arm64
    if trap.kind == "interrupt" and trap.number == 2:
        if in_stubs and trap.imm == 0:
            return _libsystem(m, arch, names[off // SLOT])
        if trap.imm == 0x80:
            return _bsd_syscall(m, arch)
        raise EmuError(f"SVC #{trap.imm if trap.imm is not None else '?'}: macOS arm64 system calls use SVC #0x80")
    raise EmuError(f"unexpected trap {trap}")


def _bsd_syscall(m: Machine, arch):
    if arch == "amd64":
        nr = m.reg("rax")
        args = [m.reg(r) for r in ("rdi", "rsi", "rdx")]
        if nr >> 24 != SYSCALL_CLASS_UNIX >> 24:
            raise EmuError(f"system call rax={nr:#x}: not in the BSD class (0x2000000 | n); only "
                           "write (4) and exit (1) are emulated")
        nr &= 0xFFFFFF
    else:
        nr = m.reg("x16")
        args = [m.reg(f"x{i}") for i in range(3)]
    if nr == SYS_EXIT:
        m.exit(args[0] & 0xFF)
        return
    if nr == SYS_WRITE:
        fd, buf, n = args
        m.write_output(fd, m.read(buf, n))
        if arch == "amd64":
            m.set_reg("rax", n)
            m.set_reg("eflags", m.reg("eflags") & ~1)  # CF clear: success
        else:
            m.set_reg("x0", n)
            m.set_reg("nzcv", m.reg("nzcv") & ~(1 << 29))  # C clear: success
        return
    raise EmuError(f"unknown BSD system call {nr} (only write (4) and exit (1) are emulated)")


def _libsystem(m: Machine, arch, name):
    if name == MAIN_RETURN:
        rv = m.reg("rax" if arch == "amd64" else "x0")
        m.exit(rv & 0xFF, "returned from main")
        return
    sp = m.sp
    if arch == "amd64":
        if sp % 16 != 8:
            raise EmuError(f"libSystem {name} called with rsp {sp:#x} not 8 mod 16: the SysV ABI wants rsp "
                           "16-byte aligned before the call")
        args = [m.reg(r) for r in ("rdi", "rsi", "rdx")]
    else:
        if sp % 16:
            raise EmuError(f"libSystem {name} called with sp {sp:#x} not 16-byte aligned")
        args = [m.reg(f"x{i}") for i in range(3)]
    if name == "_exit":
        m.exit(args[0] & 0xFF)
        return
    if name == "_write":
        fd, buf, n = args
        try:
            m.write_output(fd, m.read(buf, n))
        except EmuError as e:
            raise EmuError(f"{e.message} (in _write)") from None
        rv = n
    else:
        raise EmuError(f"{name} called: every lazy pointer is bound at load here, so the stub helpers "
                       "should never run")
    if arch == "amd64":
        ra = m.read_word(sp)
        m.set_reg("rax", rv)
        m.set_reg("rsp", sp + 8)
        m.set_reg("rip", ra)
    else:
        m.set_reg("x0", rv)
        m.set_reg("pc", m.reg("lr"))


def run_image(data: bytes, slide: int | None = None, timeout: float = 10,
              max_insns: int | None = None) -> Result:
    m, entry, sp, header = load(data, slide)
    kw = {} if max_insns is None else {"max_insns": max_insns}
    return m.run(entry, sp, header=header, timeout=timeout, **kw)


def run(path, slide: int | None = None, timeout: float = 10, max_insns: int | None = None) -> Result:
    """Run the Mach-O executable at `path` at `slide` (default: a non-zero one for a PIE):
    a Result (stdout, stderr, status, exit_message, header), or an EmuError (LoadError for
    a file the kernel or dyld would refuse, or this loader cannot load)."""
    with open(path, "rb") as f:
        data = f.read()
    return run_image(data, slide, timeout=timeout, max_insns=max_insns)


__all__ = ["parse", "load", "run", "run_image"]
