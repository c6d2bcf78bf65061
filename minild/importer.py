"""importer: `minild import`, ELF relocatable objects (.o) to minild objects.

Not part of the link pipeline: it feeds it. pyelftools reads the ELF header and
section headers (a few dozen records); the symbol table and the relocation
sections, which can hold millions of records, are read with numpy structured
dtypes straight from their bytes, so a large object imports without a Python
object per relocation. REL objects (x86, arm, mips) keep their addends in the
places; they are made explicit here: plain data words are read generically,
instruction fields by the arch module's `implicit_addends` hook.

What minild cannot link is refused here, naming the section and relocation:
COMDAT groups, TLS, common symbols, relocation types the arch module does not
know (GOT, PLT and TLS types in a static link among them).
"""

from __future__ import annotations

import os

import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.descriptions import describe_reloc_type
from elftools.elf.elffile import ELFFile

from . import arch as archreg
from .errors import Diagnostics, fail
from .loader import ABS, KIND_ID, UNDEF, Object

SHT_PROGBITS, SHT_SYMTAB, SHT_RELA, SHT_NOBITS, SHT_REL, SHT_GROUP = 1, 2, 4, 8, 9, 17
SHT_INIT_ARRAY, SHT_FINI_ARRAY = 14, 15
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHF_GROUP, SHF_TLS = 0x1, 0x2, 0x4, 0x200, 0x400
SHN_UNDEF, SHN_ABS, SHN_COMMON, SHN_XINDEX = 0, 0xFFF1, 0xFFF2, 0xFFFF
STT_SECTION, STT_FILE, STT_TLS = 3, 4, 6
EM_MIPS = 8

# Sections with no meaning in a static minild link (attributes, notes, unwind
# tables no runtime here reads): left out, with no effect on the program.
DROPPED = (".note", ".comment", ".eh_frame", ".ARM.attributes", ".ARM.exidx", ".ARM.extab",
           ".riscv.attributes", ".MIPS.abiflags", ".reginfo", ".pdr", ".gnu.attributes",
           ".mdebug", ".llvm_addrsig", ".gnu_debuglink", ".MIPS.options")


def _dropped(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in DROPPED)


def find_arch(machine: int, elf_class: int, order: str) -> archreg.Arch:
    for n in archreg.available():
        a = archreg.lookup(n)
        if (a.elf_machine, a.elf_class, a.order) == (machine, elf_class, order):
            return a
    raise KeyError(machine)


def _dtypes(elf_class: int, order: str, rela: bool) -> tuple[np.dtype, np.dtype]:
    o = order
    if elf_class == 64:
        sym = np.dtype([("name", o + "u4"), ("info", "u1"), ("other", "u1"),
                        ("shndx", o + "u2"), ("value", o + "u8"), ("size", o + "u8")])
        fields = [("offset", o + "u8"), ("info", o + "u8")]
        if rela:
            fields.append(("addend", o + "i8"))
    else:
        sym = np.dtype([("name", o + "u4"), ("value", o + "u4"), ("size", o + "u4"),
                        ("info", "u1"), ("other", "u1"), ("shndx", o + "u2")])
        fields = [("offset", o + "u4"), ("info", o + "u4")]
        if rela:
            fields.append(("addend", o + "i4"))
    return sym, np.dtype(fields)


def _strings(blob: bytes, offs: np.ndarray) -> list[str]:
    out = []
    for o in offs.tolist():
        end = blob.find(b"\0", o)
        out.append(blob[o:end if end >= 0 else len(blob)].decode("utf-8", "replace"))
    return out


def import_elf(path: str) -> Object:
    """import_elf reads an ELF relocatable object; raises LinkError on what it refuses."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise fail(f"cannot open {path}: {e.strerror}")
    with f:
        try:
            return _import(path, ELFFile(f))
        except ELFError as e:
            raise fail(f"{path}: not an ELF object: {e}")


def _import(path: str, elf: ELFFile) -> Object:
    d = Diagnostics()
    h = elf.header
    if h["e_type"] != "ET_REL":
        raise fail(f"{path}: expected an ELF relocatable object (ET_REL), got {h['e_type']}")
    order = "<" if elf.little_endian else ">"
    try:
        a = find_arch(_machine_number(elf), elf.elfclass, order)
    except KeyError:
        raise fail(f"{path}: no minild arch for machine {h['e_machine']}, ELF{elf.elfclass} "
                   f"{'little' if order == '<' else 'big'}-endian")
    sections = list(elf.iter_sections())
    shdrs = [s.header for s in sections]
    names = [s.name for s in sections]

    # Which sections come through, and as what.
    kept: dict[int, int] = {}          # ELF section index -> minild section index
    sec_name, sec_kind, sec_align, sec_size, sec_data = [], [], [], [], []
    for i, (s, name) in enumerate(zip(shdrs, names)):
        t, fl = s["sh_type"], s["sh_flags"]
        t = t if isinstance(t, int) else _SHT.get(t, -1)
        if t == SHT_GROUP:
            d.error(f"{path}: section [{i}] {name}: COMDAT/section groups are not supported")
            continue
        if t not in (SHT_PROGBITS, SHT_NOBITS, SHT_INIT_ARRAY, SHT_FINI_ARRAY):
            continue
        if _dropped(name):
            continue
        if fl & SHF_TLS:
            d.error(f"{path}: section [{i}] {name}: thread-local storage (SHF_TLS) is not "
                    "supported")
            continue
        if fl & SHF_GROUP:
            d.error(f"{path}: section [{i}] {name}: member of a COMDAT/section group, "
                    "which is not supported")
            continue
        if fl & SHF_ALLOC:
            if t == SHT_NOBITS:
                kind = "bss"
            elif fl & SHF_EXECINSTR:
                kind = "text"
            elif fl & SHF_WRITE:
                kind = "data"
            else:
                kind = "rodata"
        elif name.startswith(".debug_"):
            kind = "dwarf"
        else:
            continue  # other non-allocated sections: nothing a program or debugger uses
        if t in (SHT_INIT_ARRAY, SHT_FINI_ARRAY):
            d.error(f"{path}: section [{i}] {name}: init/fini arrays need a C runtime; "
                    "minild links programs without one")
            continue
        kept[i] = len(sec_name)
        sec_name.append(name)
        sec_kind.append(KIND_ID[kind])
        sec_align.append(max(int(s["sh_addralign"]), 1))
        sec_size.append(int(s["sh_size"]))
        if kind == "bss":
            sec_data.append(None)
        else:
            f = elf.stream
            f.seek(s["sh_offset"])
            sec_data.append(f.read(s["sh_size"]))
    # Duplicate names (same name, different flags) would be ambiguous in the readable form.
    seen: dict[str, int] = {}
    for k, n in enumerate(sec_name):
        c = seen.get(n, 0)
        seen[n] = c + 1
        if c:
            sec_name[k] = f"{n}#{c}"

    # Symbols.
    symsec = next((i for i, s in enumerate(shdrs) if s["sh_type"] in ("SHT_SYMTAB", SHT_SYMTAB)),
                  None)
    symdt, _ = _dtypes(elf.elfclass, order, True)
    if symsec is None:
        syms = np.zeros(1, symdt)
        symnames = [""]
    else:
        s = shdrs[symsec]
        elf.stream.seek(s["sh_offset"])
        syms = np.frombuffer(elf.stream.read(s["sh_size"]), symdt)
        st = shdrs[s["sh_link"]]
        elf.stream.seek(st["sh_offset"])
        symnames = _strings(elf.stream.read(st["sh_size"]), syms["name"])
    stype = syms["info"] & 0xF
    sbind = syms["info"] >> 4
    shndx = syms["shndx"].astype(np.int64)
    # ELF symbol index -> minild symbol index (-1: not imported)
    smap = np.full(len(syms), -1, np.int64)
    out_names, out_sec, out_val, out_size, out_bind, out_type = [], [], [], [], [], []
    for i in range(1, len(syms)):
        t, b, x = int(stype[i]), int(sbind[i]), int(shndx[i])
        if t == STT_FILE:
            continue
        name = symnames[i]
        if t == STT_SECTION:
            if x not in kept:
                continue
            name = sec_name[kept[x]]
        if t == STT_TLS:
            d.error(f"{path}: symbol {name}: thread-local symbols are not supported")
            continue
        if x == SHN_COMMON:
            d.error(f"{path}: symbol {name}: common symbols are not supported "
                    "(compile with -fno-common)")
            continue
        if x == SHN_UNDEF:
            sec = UNDEF
        elif x == SHN_ABS:
            sec = ABS
        elif x in kept:
            sec = kept[x]
        elif x >= SHN_XINDEX - 0xFF:
            d.error(f"{path}: symbol {name}: special section index {x:#x} is not supported")
            continue
        else:
            continue  # defined in a section left out; an error only if a relocation uses it
        if b > 2:
            d.error(f"{path}: symbol {name}: binding {b} (e.g. STB_GNU_UNIQUE) not supported")
            continue
        smap[i] = len(out_names)
        out_names.append(name)
        out_sec.append(sec)
        out_val.append(int(syms["value"][i]))
        out_size.append(int(syms["size"][i]))
        out_bind.append(b)
        out_type.append(t if t <= 3 else 0)
    # Readable objects name symbols: make duplicate local names unique.
    seen = {}
    for k, n in enumerate(out_names):
        c = seen.get(n, 0)
        seen[n] = c + 1
        if c:
            out_names[k] = f"{n}#{c}"

    # Relocations.
    codes = {hw.code: k for k, hw in enumerate(a.howtos)}
    rs, ro, rt, ry, ra = [], [], [], [], []
    for i, s in enumerate(shdrs):
        t = s["sh_type"]
        t = t if isinstance(t, int) else _SHT.get(t, -1)
        if t not in (SHT_REL, SHT_RELA):
            continue
        target = s["sh_info"]
        if target not in kept:
            continue
        rela = t == SHT_RELA
        _, reldt = _dtypes(elf.elfclass, order, rela)
        elf.stream.seek(s["sh_offset"])
        recs = np.frombuffer(elf.stream.read(s["sh_size"]), reldt)
        sym, typ = _split_info(recs["info"], elf, order)
        tsec = kept[target]
        where = f"{path}: section {names[i]}"
        for bad in np.unique(typ[~np.isin(typ, list(codes))]).tolist():
            k = int(np.flatnonzero(typ == bad)[0])
            d.error(f"{where}: relocation type {_reloc_name(bad, elf)} at "
                    f"{names[target]}+{int(recs['offset'][k]):#x} is not supported by minild "
                    f"for {a.name}")
        idx = np.array([codes.get(int(c), 0) for c in range(int(typ.max()) + 1)] if len(typ) else [],
                       np.int64)
        htype = idx[typ] if len(typ) else np.zeros(0, np.int64)
        msym = smap[sym]
        lost = msym < 0
        lost &= sym != 0
        if lost.any():
            k = int(np.flatnonzero(lost)[0])
            d.error(f"{where}: relocation at {names[target]}+{int(recs['offset'][k]):#x} refers "
                    f"to symbol {symnames[sym[k]] or '#' + str(sym[k])} in a section minild "
                    "does not import")
        if (sym == 0).any():
            # r_sym 0 means "no symbol" (S = 0): an absolute symbol of value 0 stands in.
            if "#zero" not in out_names:
                out_names.append("#zero")
                out_sec.append(ABS)
                out_val.append(0)
                out_size.append(0)
                out_bind.append(0)
                out_type.append(0)
            msym = np.where(sym == 0, out_names.index("#zero"), msym)
        off = recs["offset"].astype(np.int64)
        if rela:
            add = recs["addend"].astype(np.int64)
        else:
            add = implicit_addends(a, htype, off, sec_data[tsec] or b"", where, d)
        rs.append(np.full(len(recs), tsec, np.int32))
        ro.append(off)
        rt.append(htype.astype(np.int16))
        ry.append(msym.astype(np.int32))
        ra.append(add)
    d.check()
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    return Object(
        path=path, arch=a.name, sec_name=sec_name, sec_kind=np.array(sec_kind, np.uint8),
        sec_align=np.array(sec_align, np.int64), sec_size=np.array(sec_size, np.int64),
        sec_data=sec_data, sym_name=out_names, sym_sec=np.array(out_sec, np.int32),
        sym_value=np.array(out_val, np.uint64).astype(np.int64),
        sym_size=np.array(out_size, np.int64), sym_bind=np.array(out_bind, np.uint8),
        sym_type=np.array(out_type, np.uint8), rel_sec=cat(rs, np.int32),
        rel_off=cat(ro, np.int64), rel_type=cat(rt, np.int16), rel_sym=cat(ry, np.int32),
        rel_add=cat(ra, np.int64))


_SHT = {"SHT_PROGBITS": SHT_PROGBITS, "SHT_SYMTAB": SHT_SYMTAB, "SHT_RELA": SHT_RELA,
        "SHT_NOBITS": SHT_NOBITS, "SHT_REL": SHT_REL, "SHT_GROUP": SHT_GROUP,
        "SHT_INIT_ARRAY": SHT_INIT_ARRAY, "SHT_FINI_ARRAY": SHT_FINI_ARRAY}


def _machine_number(elf: ELFFile) -> int:
    # pyelftools decodes e_machine to a name; read the raw number instead.
    elf.stream.seek(18)
    raw = elf.stream.read(2)
    return int.from_bytes(raw, "little" if elf.little_endian else "big")


def _split_info(info: np.ndarray, elf: ELFFile, order: str) -> tuple[np.ndarray, np.ndarray]:
    """_split_info splits r_info into symbol and type columns.

    mips64 (n64) packs r_sym (u32), r_ssym, r_type3, r_type2, r_type (u8 each)
    in file byte order, which is not a u64 (sym << 32 | type) on little-endian.
    """
    if elf.elfclass == 32:
        return (info >> 8).astype(np.int64), (info & 0xFF).astype(np.int64)
    if _machine_number(elf) == EM_MIPS:
        raw = info.astype(order + "u8").view(np.uint8).reshape(-1, 8)
        sym = raw[:, :4].copy().view(order + "u4").ravel().astype(np.int64)
        t3, t2, t1 = raw[:, 5], raw[:, 6], raw[:, 7]
        typ = t1.astype(np.int64)
        # A composite (t2/t3 not NONE) has no single meaning minild applies.
        typ = np.where((t2 != 0) | (t3 != 0), 1 << 20, typ)
        return sym, typ
    return (info >> 32).astype(np.int64), (info & 0xFFFFFFFF).astype(np.int64)


def _reloc_name(code: int, elf: ELFFile) -> str:
    if code == 1 << 20:
        return "(mips64 composite type2/type3)"
    try:
        name = describe_reloc_type(code, elf)
    except Exception:  # pyelftools raises various errors for codes it lacks
        name = None
    return f"{name} ({code})" if name and not str(name).startswith("<") else f"#{code}"


def implicit_addends(a: archreg.Arch, htype: np.ndarray, off: np.ndarray, data: bytes,
                     where: str, d: Diagnostics) -> np.ndarray:
    """implicit_addends reads REL addends from the places: plain data words here,
    instruction fields through the arch's hook."""
    hook = a.hook("implicit_addends")
    if hook is not None:
        return np.asarray(hook(htype, off, data), np.int64)
    add = np.zeros(len(off), np.int64)
    buf = np.frombuffer(data, np.uint8)
    for t in np.unique(htype).tolist():
        h = a.howtos[t]
        sel = np.flatnonzero(htype == t)
        if h.size == 0:
            continue
        if h.insert is not None:
            d.error(f"{where}: cannot read the implicit addend of {h.name}: the arch module "
                    "has no implicit_addends hook")
            continue
        if (off[sel] + h.size > len(buf)).any():
            d.error(f"{where}: relocation {h.name} past the end of its section")
            continue
        idx = off[sel][:, None] + np.arange(h.size)
        raw = buf[idx].copy().view(np.dtype(a.order + "i" + str(h.size))).ravel()
        add[sel] = raw
    return add


def write(obj: Object, out: str, compact: bool) -> None:
    """write encodes obj and writes it atomically to out."""
    from .loader import encode_compact, encode_readable

    a = archreg.lookup(obj.arch)
    data = encode_compact(obj, a) if compact else encode_readable(obj, a)
    tmp = f"{out}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if not compact:
                f.write(b"\n")
        os.replace(tmp, out)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise fail(f"cannot write {out}: {e.strerror}")
