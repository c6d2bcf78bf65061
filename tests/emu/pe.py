"""Run PE/COFF console executables (amd64, x86, arm64) under unicorn.

The loader reads the file itself, as the Windows image loader does (ntdll's Ldr*
and the kernel's section mapping), after the PE/COFF specification ("PE Format",
Microsoft Learn):

  DOS header   "MZ"; e_lfanew (u32 at 0x3c) -> "PE\\0\\0"
  COFF header  Machine (0x8664 amd64, 0x14c x86, 0xaa64 arm64), NumberOfSections,
               SizeOfOptionalHeader, Characteristics (EXECUTABLE_IMAGE needed, DLL refused)
  optional     magic 0x10b (PE32, x86) or 0x20b (PE32+, amd64 and arm64): entry RVA,
  header       ImageBase (a multiple of 64 KiB), SectionAlignment, FileAlignment,
               SizeOfImage, SizeOfHeaders, Subsystem, DllCharacteristics, the data
               directories (RVA, size)
  sections     40 bytes each: name, VirtualSize, VirtualAddress (RVA), SizeOfRawData,
               PointerToRawData, ..., Characteristics (MEM_EXECUTE/READ/WRITE)

What is checked (a LoadError names the field and the values): the magics; the
machine and the optional header's magic agree; SectionAlignment a power of two of
at least the page size (0x1000; smaller alignments, where Windows maps the image as
one RWX block, are not supported here); FileAlignment a power of two in
[0x200, 0x10000] and at most SectionAlignment; SizeOfHeaders a multiple of
FileAlignment, covering the DOS header, PE headers and the section table, within
the file; each section's RVA aligned to SectionAlignment, the first one right after
the headers and each following one right after the previous (Windows wants the
sections contiguous and in order); raw data aligned to FileAlignment and within the
file; SizeOfImage equal to the SectionAlignment-aligned end of the last section; the
entry inside a section with MEM_EXECUTE; the data directories inside the image; no
TLS (its callbacks would run before the entry), delay-load or CLR directories.

Mapping: the headers (read only) at base and each section at base + RVA with its
permissions, VirtualSize bytes rounded up to SectionAlignment, zero-filled past
SizeOfRawData (a VirtualSize of 0 means SizeOfRawData, as Windows reads it). `base`
defaults to ImageBase; another base applies the base relocations (.reloc: blocks of
page RVA u32, block size u32, then u16 entries type<<12 | offset: 0 ABSOLUTE
(padding), 3 HIGHLOW (32-bit), 10 DIR64 (64-bit); other types are refused), and is
refused when the image cannot move: DllCharacteristics without DYNAMIC_BASE (0x40)
or Characteristics with RELOCS_STRIPPED (0x1).

Imports: the import directory's descriptors (OriginalFirstThunk = the import
lookup table, Name, FirstThunk = the import address table), each ILT entry a
hint/name RVA (imports by ordinal are refused). Each IAT slot is pointed at a stub
for one of the kernel32.dll functions below; the DLL name compares case-
insensitively; any other import is a LoadError naming dll!function.

  GetStdHandle(n)                         -11 -> the stdout handle, -12 -> stderr
  WriteFile(h, buf, n, &written, ovl)     appends to the Result's stdout/stderr,
                                          stores n (u32) at `written` if non-null,
                                          returns TRUE (1); ovl must be NULL
  ExitProcess(code)                       ends the run with status = code (u32)

The stubs are a page of trap instructions outside the image, one 16-byte slot per
function (x86 and amd64: INT 0x2e then UD2; arm64: SVC #0 then UDF); when the CPU
traps in a slot, the function runs in Python with the arch's calling convention:

  amd64  Microsoft x64: args in rcx, rdx, r8, r9, the 5th at [rsp+0x28] at the
         callee's entry (above the return address and the caller's 32-byte shadow
         space); rsp must be 16-byte aligned before the call, so 8 mod 16 at the
         callee's entry (checked); result in rax; return = pop the return address.
         The shadow space belongs to the callee: the stubs scribble over it, as a
         real callee may.
  x86    stdcall: args on the stack above the return address ([esp+4], [esp+8],
         ...); the callee pops them (ret 4*n); result in eax.
  arm64  AAPCS64 (Windows uses it unchanged for these): args in x0..x7, result in
         x0, return to x30; sp 16-byte aligned (checked).

The initial state is the one Windows gives a process's first thread at the entry
(base + AddressOfEntryPoint): on amd64 rsp is 8 mod 16 with a return address on
top, as after a call; on x86 esp points at a return address; on arm64 x30 holds
it. That return address is one more stub: returning from the entry point ends the
run as ExitProcess(the returned value) would -- Windows does that, the thread
start routine (kernel32!BaseThreadInitThunk) calls ExitThread with the entry's
return value, and the last thread's exit code is the process's.

Not emulated: the TEB/PEB (gs:/fs:/x18), SEH, TLS, other DLLs and functions.
"""

from __future__ import annotations

import struct

from unicorn import UC_PROT_EXEC, UC_PROT_NONE, UC_PROT_READ, UC_PROT_WRITE

from .core import PAGE, PROT_R, PROT_RX, EmuError, LoadError, Machine, Result, page_up

MACHINES = {0x8664: "amd64", 0x14C: "x86", 0xAA64: "arm64"}
PE32, PE32PLUS = 0x10B, 0x20B
MAGIC_FOR = {"amd64": PE32PLUS, "x86": PE32, "arm64": PE32PLUS}

# COFF header Characteristics
IMAGE_FILE_RELOCS_STRIPPED = 0x0001
IMAGE_FILE_EXECUTABLE_IMAGE = 0x0002
IMAGE_FILE_DLL = 0x2000
# DllCharacteristics
IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE = 0x0040
# section Characteristics
IMAGE_SCN_MEM_EXECUTE = 0x20000000
IMAGE_SCN_MEM_READ = 0x40000000
IMAGE_SCN_MEM_WRITE = 0x80000000
# data directory indices
DIR_NAMES = ["export", "import", "resource", "exception", "certificate", "basereloc", "debug",
             "architecture", "globalptr", "tls", "load_config", "bound_import", "iat",
             "delay_import", "clr", "reserved"]
DIR_IMPORT, DIR_CERTIFICATE, DIR_BASERELOC, DIR_TLS, DIR_DELAY_IMPORT, DIR_CLR = 1, 4, 5, 9, 13, 14
# base relocation types
IMAGE_REL_BASED_ABSOLUTE = 0
IMAGE_REL_BASED_HIGHLOW = 3
IMAGE_REL_BASED_DIR64 = 10
RELOC_TYPE_NAMES = {0: "ABSOLUTE", 1: "HIGH", 2: "LOW", 3: "HIGHLOW", 4: "HIGHADJ",
                    5: "MIPS_JMPADDR/ARM_MOV32/RISCV_HIGH20", 7: "THUMB_MOV32/RISCV_LOW12I",
                    8: "RISCV_LOW12S", 9: "MIPS_JMPADDR16", 10: "DIR64"}

STD_OUTPUT_HANDLE = -11
STD_ERROR_HANDLE = -12
# The handle values GetStdHandle returns (opaque to the program; console handles are
# small multiples of 4 on Windows).
HANDLES = {STD_OUTPUT_HANDLE: (0x74, 1), STD_ERROR_HANDLE: (0x78, 2)}

MAX_IMAGE = 256 << 20  # refuse absurd SizeOfImage values rather than allocate them

# Where the stub page and the stack go (outside any image the tests load; a clash
# is a LoadError from Machine.map naming both).
STUB_ADDR = {"amd64": 0x7FFE0000_0000, "arm64": 0x7FFE0000_0000, "x86": 0x7FFD0000}
STACK_TOP = 0x00300000
STACK_MIN, STACK_MAX = 64 << 10, 2 << 20
SLOT = 16

TRAP_INT = 0x2E  # x86/amd64 stubs: INT 0x2e (no CPU exception vector)
STUB_CODE = {  # one SLOT each
    "amd64": bytes([0xCD, TRAP_INT]) + b"\x0f\x0b" * 7,  # int $0x2e; ud2 ...
    "x86": bytes([0xCD, TRAP_INT]) + b"\x0f\x0b" * 7,
    "arm64": struct.pack("<4I", 0xD4000001, 0, 0, 0),  # svc #0; udf #0 ...
}

# kernel32.dll functions: name -> number of arguments
KERNEL32 = {"GetStdHandle": 1, "WriteFile": 5, "ExitProcess": 1}
ENTRY_RETURN = "<return from the entry point>"


def _align_up(x, a):
    return (x + a - 1) & ~(a - 1)


def _pow2(x):
    return x > 0 and x & (x - 1) == 0


def _cstring(image, rva, what, limit=4096):
    if not 0 <= rva < len(image):
        raise LoadError(f"PE: {what} at RVA {rva:#x} is outside the image (SizeOfImage {len(image):#x})")
    end = image.find(b"\0", rva, min(len(image), rva + limit))
    if end < 0:
        raise LoadError(f"PE: {what} at RVA {rva:#x} is not NUL-terminated within the image")
    return bytes(image[rva:end]).decode("ascii", "replace")


def _parse(data: bytes):
    """The header dict and the image as mapped at its preferred base (SizeOfImage
    bytes: headers and sections copied in, relocations not applied)."""
    n = len(data)
    if n < 0x40:
        raise LoadError(f"PE: truncated DOS header: {n} bytes, need 64")
    if data[:2] != b"MZ":
        raise LoadError(f"PE: bad DOS magic {data[:2]!r}, want b'MZ'")
    (lfanew,) = struct.unpack_from("<I", data, 0x3C)
    if lfanew + 24 > n:
        raise LoadError(f"PE: truncated: e_lfanew {lfanew:#x} + PE signature and COFF header (24 bytes) "
                        f"is past the end of the file ({n} bytes)")
    if data[lfanew:lfanew + 4] != b"PE\0\0":
        raise LoadError(f"PE: bad PE signature {data[lfanew:lfanew + 4]!r} at e_lfanew {lfanew:#x}, "
                        "want b'PE\\x00\\x00'")
    (machine, nsec, timestamp, symptr, nsyms, opt_size, characteristics) = struct.unpack_from(
        "<HHIIIHH", data, lfanew + 4)
    if machine not in MACHINES:
        raise LoadError(f"PE: unknown machine {machine:#x} (known: "
                        + ", ".join(f"{k:#x} {v}" for k, v in MACHINES.items()) + ")")
    arch = MACHINES[machine]
    if not characteristics & IMAGE_FILE_EXECUTABLE_IMAGE:
        raise LoadError(f"PE: Characteristics {characteristics:#x} lacks IMAGE_FILE_EXECUTABLE_IMAGE (0x2)")
    if characteristics & IMAGE_FILE_DLL:
        raise LoadError(f"PE: Characteristics {characteristics:#x} has IMAGE_FILE_DLL (0x2000): "
                        "a DLL, not an executable")
    if nsec == 0:
        raise LoadError("PE: NumberOfSections is 0")
    opt = lfanew + 24
    if opt + 2 > n or opt + opt_size > n:
        raise LoadError(f"PE: truncated: the optional header [{opt:#x}, {opt + opt_size:#x}) "
                        f"runs past the end of the file ({n} bytes)")
    (magic,) = struct.unpack_from("<H", data, opt)
    if magic not in (PE32, PE32PLUS):
        raise LoadError(f"PE: bad optional header magic {magic:#x} (0x10b PE32, 0x20b PE32+)")
    if magic != MAGIC_FOR[arch]:
        raise LoadError(f"PE: optional header magic {magic:#x} does not fit machine {machine:#x} "
                        f"({arch} needs {MAGIC_FOR[arch]:#x})")
    if magic == PE32:
        fixed = 96
        fmt = "<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII"
    else:
        fixed = 112
        fmt = "<HBBIIIIIQIIHHHHHHIIIIHHQQQQII"
    if opt_size < fixed:
        raise LoadError(f"PE: SizeOfOptionalHeader {opt_size} is less than the {fixed} bytes "
                        f"of a {'PE32' if magic == PE32 else 'PE32+'} optional header")
    f = list(struct.unpack_from(fmt, data, opt))
    if magic == PE32:
        del f[7]  # BaseOfData
    (_, _, _, size_code, size_idata, size_udata, entry, base_code, image_base, sect_align,
     file_align, _, _, _, _, _, _, _, size_image, size_headers, checksum, subsystem,
     dll_chars, stack_reserve, stack_commit, heap_reserve, heap_commit, _, ndirs) = f
    if ndirs > 16:
        raise LoadError(f"PE: NumberOfRvaAndSizes {ndirs} is more than 16")
    if fixed + 8 * ndirs > opt_size:
        raise LoadError(f"PE: SizeOfOptionalHeader {opt_size} has no room for {ndirs} data directories "
                        f"({fixed} + 8*{ndirs} bytes)")
    dirs = [struct.unpack_from("<II", data, opt + fixed + 8 * i) for i in range(ndirs)]
    dirs += [(0, 0)] * (16 - ndirs)

    if image_base % 0x10000:
        raise LoadError(f"PE: ImageBase {image_base:#x} is not a multiple of 64 KiB")
    if not _pow2(sect_align) or sect_align < PAGE:
        raise LoadError(f"PE: SectionAlignment {sect_align:#x} is not a power of two of at least the "
                        f"page size {PAGE:#x} (smaller alignments are not supported by this loader)")
    if not _pow2(file_align) or not 0x200 <= file_align <= 0x10000:
        raise LoadError(f"PE: FileAlignment {file_align:#x} is not a power of two in [0x200, 0x10000]")
    if file_align > sect_align:
        raise LoadError(f"PE: FileAlignment {file_align:#x} is larger than SectionAlignment {sect_align:#x}")

    sec_table = opt + opt_size
    headers_end = sec_table + 40 * nsec
    if headers_end > n:
        raise LoadError(f"PE: truncated: the section table [{sec_table:#x}, {headers_end:#x}) runs past "
                        f"the end of the file ({n} bytes)")
    if size_headers < headers_end:
        raise LoadError(f"PE: SizeOfHeaders {size_headers:#x} does not cover the headers and section "
                        f"table, which end at {headers_end:#x}")
    if size_headers % file_align:
        raise LoadError(f"PE: SizeOfHeaders {size_headers:#x} is not a multiple of FileAlignment "
                        f"{file_align:#x}")
    if size_headers > n:
        raise LoadError(f"PE: truncated: SizeOfHeaders {size_headers:#x} is past the end of the file "
                        f"({n} bytes)")

    sections = []
    expect = _align_up(size_headers, sect_align)
    for i in range(nsec):
        (name, vsize, rva, raw_size, raw_ptr, _, _, _, _, chars) = struct.unpack_from(
            "<8sIIIIIIHHI", data, sec_table + 40 * i)
        name = name.rstrip(b"\0").decode("utf-8", "replace")
        what = f"section {i + 1} {name!r}"
        if vsize == 0:
            vsize = raw_size  # as Windows reads it
        if rva % sect_align:
            raise LoadError(f"PE: {what}: RVA {rva:#x} is not aligned to SectionAlignment {sect_align:#x}")
        if rva != expect:
            prev = "the headers" if i == 0 else f"section {i} {sections[-1]['name']!r}"
            raise LoadError(f"PE: {what}: RVA {rva:#x}, but {prev} end at {expect:#x}: sections must "
                            "follow each other in order, without gaps or overlaps")
        if raw_size:
            if raw_ptr % file_align or raw_size % file_align:
                raise LoadError(f"PE: {what}: raw data at {raw_ptr:#x} size {raw_size:#x} is not "
                                f"aligned to FileAlignment {file_align:#x}")
            if raw_ptr < size_headers:
                raise LoadError(f"PE: {what}: raw data at {raw_ptr:#x} overlaps the headers "
                                f"(SizeOfHeaders {size_headers:#x})")
            if raw_ptr + raw_size > n:
                raise LoadError(f"PE: truncated: {what}: raw data [{raw_ptr:#x}, {raw_ptr + raw_size:#x}) "
                                f"runs past the end of the file ({n} bytes)")
        if vsize == 0:
            raise LoadError(f"PE: {what} is empty (VirtualSize and SizeOfRawData are 0)")
        expect = rva + _align_up(vsize, sect_align)
        sections.append(dict(name=name, rva=rva, vsize=vsize, raw_size=raw_size, raw_ptr=raw_ptr,
                             characteristics=chars))
    if size_image != expect:
        raise LoadError(f"PE: SizeOfImage {size_image:#x} is not the SectionAlignment-aligned end of the "
                        f"last section, {expect:#x}")
    if size_image > MAX_IMAGE:
        raise LoadError(f"PE: SizeOfImage {size_image:#x} is more than this loader's {MAX_IMAGE:#x}")

    for s in sections:
        if s["rva"] <= entry < s["rva"] + s["vsize"]:
            if not s["characteristics"] & IMAGE_SCN_MEM_EXECUTE:
                raise LoadError(f"PE: entry RVA {entry:#x} is in section {s['name']!r}, which is not "
                                f"executable (Characteristics {s['characteristics']:#x})")
            break
    else:
        raise LoadError(f"PE: entry RVA {entry:#x} is not inside any section")

    for i, (drva, dsize) in enumerate(dirs):
        if dsize == 0 or i == DIR_CERTIFICATE:  # the certificate table's "RVA" is a file offset
            continue
        if drva == 0 or drva + dsize > size_image:
            raise LoadError(f"PE: the {DIR_NAMES[i]} directory [{drva:#x}, {drva + dsize:#x}) is not "
                            f"inside the image (SizeOfImage {size_image:#x})")
        if i in (DIR_TLS, DIR_DELAY_IMPORT, DIR_CLR):
            raise LoadError(f"PE: the {DIR_NAMES[i]} directory is not supported by this loader")

    image = bytearray(size_image)
    image[:size_headers] = data[:size_headers]
    for s in sections:
        k = min(s["raw_size"], s["vsize"])
        image[s["rva"]:s["rva"] + k] = data[s["raw_ptr"]:s["raw_ptr"] + k]

    word = 4 if magic == PE32 else 8
    imports = _imports(image, dirs[DIR_IMPORT], word)
    relocs = _relocs(image, dirs[DIR_BASERELOC])

    header = dict(
        machine=arch, machine_id=machine, characteristics=characteristics, magic=magic,
        image_base=image_base, entry_rva=entry, section_alignment=sect_align,
        file_alignment=file_align, size_of_image=size_image, size_of_headers=size_headers,
        dll_characteristics=dll_chars, subsystem=subsystem, stack_reserve=stack_reserve,
        stack_commit=stack_commit, timestamp=timestamp, checksum=checksum,
        data_directories={DIR_NAMES[i]: d for i, d in enumerate(dirs) if d != (0, 0)},
        sections=sections,
        imports={dll: [name for name, _ in funcs] for dll, funcs in imports.items()},
        has_reloc=dirs[DIR_BASERELOC][1] != 0, reloc_count=len(relocs),
    )
    return header, image, imports, relocs


def _imports(image, directory, word):
    """{dll: [(function, IAT slot RVA)]} from the import directory."""
    drva, dsize = directory
    out = {}
    if dsize == 0:
        return out
    ordinal_flag = 1 << (8 * word - 1)
    fmt = "<I" if word == 4 else "<Q"
    d = drva
    while True:
        if d + 20 > len(image):
            raise LoadError(f"PE: import descriptor at RVA {d:#x} runs past the image "
                            "(no all-zero descriptor ends the list)")
        ilt, _, _, name_rva, iat = struct.unpack_from("<IIIII", image, d)
        if not any(image[d:d + 20]):
            break
        dll = _cstring(image, name_rva, f"import descriptor at RVA {d:#x}: DLL name")
        if iat == 0:
            raise LoadError(f"PE: import descriptor for {dll}: FirstThunk (IAT) is 0")
        lookup = ilt or iat  # no ILT: the names are read from the IAT itself
        funcs = out.setdefault(dll, [])
        i = 0
        while True:
            at = lookup + word * i
            if at + word > len(image) or iat + word * i + word > len(image):
                raise LoadError(f"PE: {dll}: import lookup table at RVA {lookup:#x} runs past the image")
            (e,) = struct.unpack_from(fmt, image, at)
            if e == 0:
                break
            if e & ordinal_flag:
                raise LoadError(f"PE: {dll}: import by ordinal {e & 0xFFFF} is not supported "
                                "(only imports by name)")
            if e >> 31:
                raise LoadError(f"PE: {dll}: import lookup entry {e:#x} at RVA {at:#x} has reserved bits set")
            fname = _cstring(image, e + 2, f"{dll}: hint/name entry")
            funcs.append((fname, iat + word * i))
            i += 1
        d += 20
    return out


def _relocs(image, directory):
    """[(type, RVA)] from the base relocation directory, ABSOLUTE padding left out."""
    drva, dsize = directory
    out = []
    p, end = drva, drva + dsize
    while p < end:
        if p + 8 > end:
            raise LoadError(f"PE: base relocation block at RVA {p:#x} is truncated (the directory ends "
                            f"at {end:#x})")
        page, bsize = struct.unpack_from("<II", image, p)
        if bsize < 8 or bsize % 2 or p + bsize > end:
            raise LoadError(f"PE: base relocation block at RVA {p:#x}: bad size {bsize:#x} "
                            f"(the directory ends at {end:#x})")
        for k in range((bsize - 8) // 2):
            (e,) = struct.unpack_from("<H", image, p + 8 + 2 * k)
            typ, rva = e >> 12, page + (e & 0xFFF)
            if typ == IMAGE_REL_BASED_ABSOLUTE:
                continue
            if typ not in (IMAGE_REL_BASED_HIGHLOW, IMAGE_REL_BASED_DIR64):
                raise LoadError(f"PE: base relocation at RVA {rva:#x}: type {typ} "
                                f"({RELOC_TYPE_NAMES.get(typ, 'unknown')}) is not supported "
                                "(only ABSOLUTE 0, HIGHLOW 3, DIR64 10)")
            size = 4 if typ == IMAGE_REL_BASED_HIGHLOW else 8
            if rva + size > len(image):
                raise LoadError(f"PE: base relocation at RVA {rva:#x} ({size} bytes) is past the end of "
                                f"the image ({len(image):#x})")
            out.append((typ, rva))
        p += bsize
    return out


def parse(data: bytes) -> dict:
    """The PE headers as a dict (see Result.header); a LoadError if the file is not a
    PE executable this loader (and, as far as it checks, Windows) would load."""
    return _parse(data)[0]


def _prot(chars):
    p = UC_PROT_NONE
    if chars & IMAGE_SCN_MEM_READ:
        p |= UC_PROT_READ
    if chars & IMAGE_SCN_MEM_WRITE:
        p |= UC_PROT_WRITE
    if chars & IMAGE_SCN_MEM_EXECUTE:
        p |= UC_PROT_EXEC
    return p


def load(data: bytes, base: int | None = None):
    """Map the PE into a new Machine as the Windows loader would. Returns
    (machine, entry, sp, header)."""
    header, image, imports, relocs = _parse(data)
    arch = header["machine"]
    pref = header["image_base"]
    base = pref if base is None else base
    if base % 0x10000:
        raise LoadError(f"PE: load base {base:#x} is not a multiple of 64 KiB")
    if base != pref:
        if header["characteristics"] & IMAGE_FILE_RELOCS_STRIPPED:
            raise LoadError(f"PE: cannot load at {base:#x} instead of ImageBase {pref:#x}: "
                            "Characteristics has IMAGE_FILE_RELOCS_STRIPPED (0x1)")
        if not header["dll_characteristics"] & IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE:
            raise LoadError(f"PE: cannot load at {base:#x} instead of ImageBase {pref:#x}: "
                            f"DllCharacteristics {header['dll_characteristics']:#x} lacks "
                            "DYNAMIC_BASE (0x40)")
        delta = base - pref
        for typ, rva in relocs:
            if typ == IMAGE_REL_BASED_HIGHLOW:
                (v,) = struct.unpack_from("<I", image, rva)
                struct.pack_into("<I", image, rva, (v + delta) & 0xFFFFFFFF)
            else:
                (v,) = struct.unpack_from("<Q", image, rva)
                struct.pack_into("<Q", image, rva, (v + delta) & 0xFFFFFFFFFFFFFFFF)
    bits = 32 if arch == "x86" else 64
    if base + header["size_of_image"] > 1 << bits:
        raise LoadError(f"PE: the image [{base:#x}, {base + header['size_of_image']:#x}) does not fit "
                        f"the {bits}-bit address space")

    # the stubs: the functions the imports bind to, and where the entry returns to
    names = [ENTRY_RETURN]
    for dll, funcs in imports.items():
        for fname, _ in funcs:
            if dll.lower() != "kernel32.dll" or fname not in KERNEL32:
                raise LoadError(f"PE: unsupported import {dll}!{fname} (the emulator provides "
                                + ", ".join(f"kernel32.dll!{k}" for k in KERNEL32) + ")")
            if fname not in names:
                names.append(fname)
    stub = STUB_ADDR[arch]
    fmt = "<I" if bits == 32 else "<Q"
    for dll, funcs in imports.items():
        for fname, slot in funcs:
            struct.pack_into(fmt, image, slot, stub + SLOT * names.index(fname))

    m = Machine(arch)
    m.map(base, image[:header["size_of_headers"]], PROT_R, name="headers")
    for s in header["sections"]:
        size = _align_up(s["vsize"], header["section_alignment"])
        m.map(base + s["rva"], image[s["rva"]:s["rva"] + s["vsize"]], _prot(s["characteristics"]),
              size=size, name=f"section {s['name']}")
    page = STUB_CODE[arch] * len(names)
    m.map(stub, page, PROT_RX, size=page_up(len(page)), name="kernel32 stubs")

    stack_size = min(max(page_up(header["stack_reserve"]), STACK_MIN), STACK_MAX)
    top = m.setup_stack(STACK_TOP, stack_size)
    ret = stub  # slot 0: the entry point's return address
    if arch == "amd64":
        sp = top - 0x30  # 16-byte aligned, then the return address: 8 mod 16 as after a call
        sp -= 8
        m.write(sp, m.pack_word(ret))
    elif arch == "x86":
        sp = top - 0x10
        m.write(sp + 4, m.pack_word(0))  # the thread start routine's parameter (the PEB on Windows)
        m.write(sp, m.pack_word(ret))
    else:
        sp = top - 0x20
        m.set_reg("lr", ret)

    header = dict(header, base=base)
    m.on_trap = lambda machine, trap: _call(machine, trap, arch, stub, names)
    return m, base + header["entry_rva"], sp, header


# ---- the kernel32 functions ------------------------------------------------------

class _Conv:
    """Arguments and return for one call of a stub under the arch's calling convention."""

    def __init__(self, m: Machine, arch: str, name: str):
        self.m, self.arch, self.name = m, arch, name
        sp = m.sp
        if arch == "amd64":
            if sp % 16 != 8:
                raise EmuError(f"kernel32!{name} called with rsp {sp:#x} not 8 mod 16: the x64 "
                               "calling convention wants rsp 16-byte aligned before the call")
        elif arch == "arm64":
            if sp % 16:
                raise EmuError(f"kernel32!{name} called with sp {sp:#x} not 16-byte aligned")

    def arg(self, i):
        m = self.m
        if self.arch == "amd64":
            if i < 4:
                return m.reg(("rcx", "rdx", "r8", "r9")[i])
            return m.read_word(m.sp + 8 + 8 * i)  # return address, 32-byte shadow space, args 5..
        if self.arch == "x86":
            return m.read_word(m.sp + 4 + 4 * i)
        return m.reg(f"x{i}")

    def ret(self, value, nargs):
        m = self.m
        if self.arch == "amd64":
            sp = m.sp
            ra = m.read_word(sp)
            m.write(sp + 8, b"\xcc" * 32)  # the callee owns the shadow space
            m.set_reg("rax", value)
            m.set_reg("rsp", sp + 8)
            m.set_reg("rip", ra)
        elif self.arch == "x86":
            sp = m.sp
            ra = m.read_word(sp)
            m.set_reg("eax", value)
            m.set_reg("esp", sp + 4 + 4 * nargs)  # stdcall: the callee pops its arguments
            m.set_reg("eip", ra)
        else:
            m.set_reg("x0", value)
            m.set_reg("pc", m.reg("lr"))


def _call(m: Machine, trap, arch, stub, names):
    trap_len = m.arch.trap_len
    want = ("interrupt", 2) if arch == "arm64" else ("interrupt", TRAP_INT)
    insn = m.pc - trap_len if trap.kind == "interrupt" else m.pc
    off = insn - stub
    if (trap.kind, trap.number) != want or not 0 <= off < SLOT * len(names) or off % SLOT:
        what = "SYSCALL" if trap.kind == "syscall" else f"interrupt {trap.number:#x}"
        raise EmuError(f"{what} outside the kernel32 stubs: a Windows program calls DLL functions "
                       "through its import address table, it makes no system calls")
    name = names[off // SLOT]
    if name == ENTRY_RETURN:
        # Windows: BaseThreadInitThunk calls ExitThread(the entry's return value), and the
        # last thread's exit code becomes the process's: as ExitProcess(return value).
        rv = m.reg({"amd64": "rax", "x86": "eax", "arm64": "x0"}[arch]) & 0xFFFFFFFF
        m.exit(rv, "returned from the entry point")
        return
    try:
        _kernel32(m, arch, name)
    except EmuError as e:
        raise EmuError(f"{e.message} (in kernel32!{name}, called from {_caller(m, arch):#x})") from None


def _caller(m: Machine, arch):
    """The return address of a stub call (best effort, for messages)."""
    try:
        return m.reg("lr") if arch == "arm64" else m.read_word(m.sp)
    except EmuError:
        return 0


def _kernel32(m: Machine, arch, name):
    c = _Conv(m, arch, name)
    if name == "ExitProcess":
        m.exit(c.arg(0) & 0xFFFFFFFF, None)
        return
    if name == "GetStdHandle":
        n = c.arg(0) & 0xFFFFFFFF
        n = n - (1 << 32) if n >> 31 else n
        if n not in HANDLES:
            raise EmuError(f"GetStdHandle({n}): only {STD_OUTPUT_HANDLE} (stdout) and "
                           f"{STD_ERROR_HANDLE} (stderr) are emulated")
        c.ret(HANDLES[n][0], 1)
        return
    if name == "WriteFile":
        h, buf, n, written, ovl = (c.arg(i) for i in range(5))
        n &= 0xFFFFFFFF
        fds = {v[0]: v[1] for v in HANDLES.values()}
        if h not in fds:
            raise EmuError(f"WriteFile({h:#x}, {buf:#x}, {n}): unknown handle {h:#x} (only the "
                           "GetStdHandle stdout and stderr handles are emulated)")
        if ovl:
            raise EmuError(f"WriteFile({h:#x}, {buf:#x}, {n}): overlapped I/O ({ovl:#x}) is not emulated")
        try:
            data = m.read(buf, n)
        except EmuError as e:
            raise EmuError(f"WriteFile({h:#x}, {buf:#x}, {n}): {e.message}") from None
        m.write_output(fds[h], data)
        if written:
            if not _writable(m, written, 4):
                raise EmuError(f"WriteFile({h:#x}, {buf:#x}, {n}): lpNumberOfBytesWritten {written:#x} "
                               "is not writable memory")
            m.write(written, struct.pack("<I", n))
        c.ret(1, 5)
        return
    raise EmuError(f"kernel32!{name} is not emulated")  # not reached: load() refuses it


def _writable(m: Machine, addr, n):
    for a in (addr, addr + n - 1):
        r = m.region_at(a)
        if r is None or not r[2] & UC_PROT_WRITE:
            return False
    return True


def run_image(data: bytes, base: int | None = None, timeout: float = 10,
              max_insns: int | None = None) -> Result:
    m, entry, sp, header = load(data, base)
    kw = {} if max_insns is None else {"max_insns": max_insns}
    return m.run(entry, sp, header=header, timeout=timeout, **kw)


def run(path, base: int | None = None, timeout: float = 10, max_insns: int | None = None) -> Result:
    """Run the PE executable at `path` (at `base`, default its ImageBase): a Result
    (stdout, stderr, status, exit_message, header), or an EmuError (LoadError for a
    file the Windows loader would refuse, or this one cannot load)."""
    with open(path, "rb") as f:
        data = f.read()
    return run_image(data, base, timeout=timeout, max_insns=max_insns)


__all__ = ["parse", "load", "run", "run_image"]
