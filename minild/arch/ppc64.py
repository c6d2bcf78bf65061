"""ppc64: 64-bit PowerPC, ELFv2 ABI (OpenPOWER psABI), both byte orders.

ppc64le and ppc64 (big-endian) link as ELFv2 (e_flags 2): the entry is a plain
code address. qemu-ppc64 and the Linux kernel run ELFv2 big-endian files (they
set r12 to the entry, as for an indirect call); such objects come from `as`
with `.abiversion 2` or `gcc -mabi=elfv2`. ELFv1 objects (gcc's default for
big-endian), whose function symbols name .opd descriptors, link as ELFv1
(e_flags 1, the entry a descriptor): see elfv1 below.

Relocations (RELA). 16-bit fields are named by the offset of the halfword itself
(instruction + 2 on big-endian, + 0 on little-endian), so they are plain 2-byte
places in either byte order. #lo(x) = x & 0xffff, #hi(x) = x >> 16,
#ha(x) = (x + 0x8000) >> 16 (the high part for an addi/ld that sign-extends the
low part), #higher(a) = x >> 32, #highest(a) = x >> 48 (+ 0x8000 first):
  R_PPC64_ADDR64, ADDR32, ADDR16   S + A    data words; 32 and 16 fit signed or unsigned
  R_PPC64_ADDR16_LO/HI/HA          S + A    half16 #lo/#hi/#ha; HI and HA fit 32 bits signed
  R_PPC64_ADDR16_HIGH/HIGHA        S + A    #hi/#ha, unchecked
  R_PPC64_ADDR16_HIGHER(A)/HIGHEST(A)  S + A   bits 32-47 / 48-63 (lis;ori;sldi;oris;ori)
  R_PPC64_ADDR16_DS, ADDR16_LO_DS  S + A    DS-form (ld/std): low 2 bits of the
                                   instruction kept, the value must be 4-aligned; DS fits signed 16
  R_PPC64_REL24                    S + A - P  b/bl: bits 6-29, +-32 MB, 4-aligned
  R_PPC64_REL14(_BRTAKEN/_BRNTAKEN) S + A - P  bc: bits 16-29, +-32 KB, 4-aligned; the
                                   hint bits are left as the assembler wrote them (as lld does)
  R_PPC64_REL64, REL32, REL16      S + A - P  data words (switch tables); 32/16 signed
  R_PPC64_REL16_LO/HI/HA           S + A - P  half16; the ELFv2 global entry's
                                   addis r2,r12,.TOC.-f@ha / addi r2,r2,.TOC.-f@l
  R_PPC64_TOC16(_LO/_HI/_HA/_DS/_LO_DS)  S + A - .TOC.  TOC-relative data access
  R_PPC64_TOC                      .TOC. + A   doubleword
.TOC. (the TOC base r2 holds) is the start of the data segment + 0x8000, so
TOC16 and TOC16_DS (+-32 KB) reach the first 64 KB of data and the @ha/@l pairs
gcc emits (medium code model) reach +-2 GB.

Local entry points: an ELFv2 function that sets up r2 starts with that two-
instruction global entry, and direct calls (REL24, REL14) must skip it: their
caller already has r2, and r12 (which the global entry reads) is not set. ELF
says so in st_other (.localentry); minild objects have no st_other, so the
linker recognises the global entry by its relocations: a REL16_HA against
.TOC. at the function's first word and a REL16_LO against .TOC. at the second.
A branch to such a word goes 8 bytes on (the offset gcc and GNU as use); `minild
import` refuses a function whose st_other gives another offset.
GOT-, PLT- and TLS-relative types need tables a static minild link does not
build: they are unknown types here and rejected at load time.
"""

import numpy as np

from ..errors import Diagnostics
from ..reloc import Howto, absolute, call_local, either, none, pcrel, signed, toc, tocbase
from ..thunks import Thunk
from . import Arch, ElfArch

ELF_MACHINE = 21          # EM_PPC64
ELF_CLASS = 64
ORDER = ">"
ELF_FLAGS = 2             # EF_PPC64_ABI = 2: ELFv2 (qemu treats 0 and 1 as ELFv1)
PAGE_SIZE = 0x10000       # GNU ld's max page size: runs on 4K and 64K-page kernels
TEXT_ADDR = 0x10001000    # headers at 0x10000000 (GNU ld's base), text one 4K page on
PAD = b"\x7f\xe0\x00\x08"  # trap (tw 31,0,0): a stray jump into padding traps
RELA = True

TOC_BIAS = 0x8000         # .TOC. sits this far past the start of the TOC area
LOCAL_ENTRY = 8           # the two-instruction global entry that direct calls skip


def _u(v):
    return v.astype(np.uint64)


def _half(shift: int, adjust: bool):
    """_half returns an insert for a half16 field: (value [+ 0x8000]) >> shift."""
    bias = 0x8000 if adjust else 0

    def insert(old, value):
        return _u((value + bias) >> shift) & np.uint64(0xFFFF)
    return insert


def _keep(mask: int):
    """_keep returns an insert that puts the value's bits under mask into the
    place and keeps the instruction's other bits (opcode, registers, hints)."""
    m = np.uint64(mask)

    def insert(old, value):
        return (old & ~m) | (_u(value) & m)
    return insert


lo, hi, ha = _half(0, False), _half(16, False), _half(16, True)
higher, highera = _half(32, False), _half(32, True)
highest, highesta = _half(48, False), _half(48, True)
ds = _keep(0xFFFC)          # DS-form: the low 2 bits belong to the opcode
b24 = _keep(0x03FFFFFC)     # I-form (b, bl): LI field; AA and LK kept
b14 = _keep(0x0000FFFC)     # B-form (bc): BD field; AA and LK kept
S32 = signed(32)
HA32 = (S32[0] - 0x8000, S32[1] - 0x8000)   # #ha fits 16 bits signed: x + 0x8000 fits 32

HOWTOS = [
    Howto("R_PPC64_NONE", 0, 0, none),
    Howto("R_PPC64_ADDR32", 1, 4, absolute, either(32)),
    Howto("R_PPC64_ADDR16", 3, 2, absolute, either(16)),
    Howto("R_PPC64_ADDR16_LO", 4, 2, absolute, None, 1, lo),
    Howto("R_PPC64_ADDR16_HI", 5, 2, absolute, S32, 1, hi),
    Howto("R_PPC64_ADDR16_HA", 6, 2, absolute, HA32, 1, ha),
    Howto("R_PPC64_REL24", 10, 4, call_local, signed(26), 4, b24),
    Howto("R_PPC64_REL14", 11, 4, call_local, signed(16), 4, b14),
    Howto("R_PPC64_REL14_BRTAKEN", 12, 4, call_local, signed(16), 4, b14),
    Howto("R_PPC64_REL14_BRNTAKEN", 13, 4, call_local, signed(16), 4, b14),
    Howto("R_PPC64_REL32", 26, 4, pcrel, S32),
    Howto("R_PPC64_ADDR64", 38, 8, absolute),
    Howto("R_PPC64_ADDR16_HIGHER", 39, 2, absolute, None, 1, higher),
    Howto("R_PPC64_ADDR16_HIGHERA", 40, 2, absolute, None, 1, highera),
    Howto("R_PPC64_ADDR16_HIGHEST", 41, 2, absolute, None, 1, highest),
    Howto("R_PPC64_ADDR16_HIGHESTA", 42, 2, absolute, None, 1, highesta),
    Howto("R_PPC64_REL64", 44, 8, pcrel),
    Howto("R_PPC64_TOC16", 47, 2, toc, signed(16)),
    Howto("R_PPC64_TOC16_LO", 48, 2, toc, None, 1, lo),
    Howto("R_PPC64_TOC16_HI", 49, 2, toc, S32, 1, hi),
    Howto("R_PPC64_TOC16_HA", 50, 2, toc, HA32, 1, ha),
    Howto("R_PPC64_TOC", 51, 8, tocbase),
    Howto("R_PPC64_ADDR16_DS", 56, 2, absolute, signed(16), 4, ds),
    Howto("R_PPC64_ADDR16_LO_DS", 57, 2, absolute, None, 4, ds),
    Howto("R_PPC64_TOC16_DS", 63, 2, toc, signed(16), 4, ds),
    Howto("R_PPC64_TOC16_LO_DS", 64, 2, toc, None, 4, ds),
    Howto("R_PPC64_ADDR16_HIGH", 110, 2, absolute, None, 1, hi),
    Howto("R_PPC64_ADDR16_HIGHA", 111, 2, absolute, None, 1, ha),
    Howto("R_PPC64_REL16", 249, 2, pcrel, signed(16)),
    Howto("R_PPC64_REL16_LO", 250, 2, pcrel, None, 1, lo),
    Howto("R_PPC64_REL16_HI", 251, 2, pcrel, S32, 1, hi),
    Howto("R_PPC64_REL16_HA", 252, 2, pcrel, HA32, 1, ha),
]

def toc_base(ctx) -> int:
    """toc_base is .TOC.: 0x8000 past the start of the data segment (where .toc
    sections land), or past the end of the image when there is no data."""
    start = next((seg.sections[0].addr for seg in ctx.segments
                  if seg.name == "data" and seg.sections), None)
    if start is None:
        start = max((s.vaddr + s.length for s in ctx.segments if s.loaded), default=0)
    # 8-aligned, so that DS-form (ld/std) offsets from r2 to aligned data are 4-aligned.
    return ((start + 7) & -8) + TOC_BIAS


def linker_symbols() -> dict:
    return {".TOC.": toc_base}


def refuse_symbols(other, stype) -> list:
    """refuse_symbols (for `minild import`) refuses functions whose st_other
    puts the local entry anywhere but 8 bytes on: minild objects do not carry
    st_other, and reloc.call_local knows only the 8-byte global entry."""
    # st_other bits 5-7 = k: 0, 1 no separate local entry; 2..6 one (1 << k) >> 2
    # instructions on (k = 3: 8 bytes); 7 reserved.
    k = (other.astype(np.int64) >> 5) & 7
    return [((k >= 2) & (k != 3), "its local entry point (.localentry) is not 8 bytes past "
             "its global entry; minild knows only the two-instruction ELFv2 global entry "
             "(addis r2,r12 / addi r2,r2)")]


# Register save and restore functions (ELFv2 ABI §2.3.3; gcc -Os calls them
# rather than inline the stores): GNU ld and lld synthesize them when a link
# refers to them and nothing defines them; so does minild, with lld's code.
# _savegpr0_N: std rN..r31 below r1, std r0 at 16(r1), blr; _restgpr0_N: ld
# rN..r31, ld r0 from 16(r1), mtlr r0, blr; the *gpr1_N variants address from
# r12 and leave r0 and lr alone. _xxx_N enters one sequence (N - 14) words on.
SAVEREST = {"_savegpr0_": (0xF8000000, 1, True), "_restgpr0_": (0xE8000000, 1, True),
            "_savegpr1_": (0xF8000000, 12, False), "_restgpr1_": (0xE8000000, 12, False)}
_SAVEREST_NAMES = {f"{p}{n}": (p, n) for p in SAVEREST for n in range(14, 32)}


def _saverest_code(prefix: str, first: int) -> list[int]:
    op, base, lr = SAVEREST[prefix]
    words = [op | (r << 21) | (base << 16) | ((-(32 - r) * 8) & 0xFFFF) for r in range(first, 32)]
    if lr and op == 0xF8000000:
        words.append(0xF8010010)                # std r0, 16(r1)
    elif lr:
        words += [0xE8010010, 0x7C0803A6]       # ld r0, 16(r1); mtlr r0
    return words + [0x4E800020]                 # blr


def saverest(ctx) -> None:
    """saverest (the arch's gensections) gives the save and restore functions
    the link refers to and does not define their code, in one text section of
    an "<ppc64 save/restore>" object: for each family, the sequence from the
    lowest register referred to."""
    from ..vocab import Kind, SymType

    want = {n: i for n, i in ctx.linker_defined.items() if n in _SAVEREST_NAMES}
    if not want:
        return
    first: dict[str, int] = {}
    for n in want:
        p, r = _SAVEREST_NAMES[n]
        first[p] = min(first.get(p, 32), r)
    code, at = [], {}
    for p in SAVEREST:
        if p in first:
            at[p] = 4 * len(code)
            code += _saverest_code(p, first[p])
    data = np.array(code, ctx.arch.order + "u4").tobytes()
    obj = ctx.add_object("<ppc64 save/restore>")
    (sec,) = ctx.add_sections(obj, [".text.saverest"], [Kind.TEXT], [4], [len(data)], [data])
    for n, i in want.items():
        p, r = _SAVEREST_NAMES[n]
        ctx.sym_sec[i], ctx.sym_value[i] = int(sec), at[p] + 4 * (r - first[p])
        ctx.sym_type[i] = SymType.FUNC
        del ctx.linker_defined[n]


LINKER_SYMBOLS = {".TOC.": toc_base, **{n: (lambda ctx: 0) for n in _SAVEREST_NAMES}}



def _is_opd(name: str) -> bool:
    return name == ".opd" or name.startswith(".opd#")


def elfv1(ctx) -> None:
    """elfv1 links ELFv1 code (gcc's default for big-endian): a function's
    symbol names its descriptor in .opd (code address, TOC base, environment),
    so a direct call (REL24, REL14) to a symbol defined in .opd is retargeted at
    what the descriptor's first doubleword's R_PPC64_ADDR64 names (the code), as
    GNU ld and lld do. Function pointers, data and the entry point keep the
    descriptor: the kernel and qemu read the entry's descriptor for pc and r2
    when e_flags says ELFv1 (ctx.elf_flags = 1). One TOC (one r2) serves the
    whole static link, so a call needs no r2 save or restore."""
    opd = np.array([_is_opd(n) for n in ctx.sec_name], bool)
    if not opd.any():
        return
    ctx.elf_flags = 1
    a, r = ctx.arch, ctx.relocs
    words = np.flatnonzero(opd[r.sec] & (r.type == a.index["R_PPC64_ADDR64"]))
    key = r.sec[words].astype(np.int64) << 40 | r.off[words].astype(np.int64)
    order = np.argsort(key, kind="stable")
    key, words = key[order], words[order]
    calls = np.flatnonzero(np.isin(r.type, [a.index[n] for n in (
        "R_PPC64_REL24", "R_PPC64_REL14", "R_PPC64_REL14_BRTAKEN", "R_PPC64_REL14_BRNTAKEN")]))
    d = ctx.sym_res[r.sym[calls]]
    sec = np.where(d >= 0, ctx.sym_sec[np.maximum(d, 0)], -1)
    via = (sec >= 0) & opd[np.maximum(sec, 0)]
    calls, d, sec = calls[via], d[via], sec[via]
    if not len(calls):
        return
    want = sec.astype(np.int64) << 40 | (ctx.sym_value[d] + r.add[calls]).astype(np.int64)
    at = np.minimum(np.searchsorted(key, want), max(len(key) - 1, 0))
    found = (key[at] == want) if len(key) else np.zeros(len(calls), bool)
    if not found.all():
        dg = Diagnostics()
        for j in np.flatnonzero(~found)[:20].tolist():
            k = int(calls[j])
            dg.error(f"{ctx.reloc_site(k)}: call to {ctx.reloc_target(k)}, a symbol in .opd "
                     "with no R_PPC64_ADDR64 at its descriptor (not an ELFv1 function)")
        dg.check()
    w = words[at]
    r.sym[calls] = r.sym[w]
    r.add[calls] = r.add[w]


def gensections(ctx) -> None:
    """gensections (the arch's): ELFv1 calls through .opd, then the save and
    restore functions."""
    elfv1(ctx)
    saverest(ctx)

# Range-extension thunk (minild/thunks.py) for a bl/b out of +-32 MiB: the
# target's 64-bit address into r12 (the global entry's own address, which ELFv2
# expects there), then bctr.
_THUNK_CODE = (0x3D800000, 0x618C0000, 0x798C07C6, 0x658C0000, 0x618C0000,   # lis, ori,
               0x7D8903A6, 0x4E800420, 0x60000000)     # sldi 32, oris, ori; mtctr; bctr; nop
_THUNK_RELOCS = ((0, "R_PPC64_ADDR16_HIGHEST"), (4, "R_PPC64_ADDR16_HIGHER"),
                 (12, "R_PPC64_ADDR16_HIGH"), (16, "R_PPC64_ADDR16_LO"))


def _thunks(order: str) -> dict:
    half = 2 if order == ">" else 0       # the immediate: the instruction's low halfword
    th = Thunk(np.array(_THUNK_CODE, order + "u4").tobytes(),
               tuple((o + half, n) for o, n in _THUNK_RELOCS), 0, "__long_branch_", 4)
    return {"R_PPC64_REL24": th}

ARCHES = (
    Arch(name="ppc64", ptr_size=ELF_CLASS // 8, order=ORDER, pad=PAD, howtos=HOWTOS,
         elf=ElfArch(machine=ELF_MACHINE, cls=ELF_CLASS, flags=ELF_FLAGS, rela=RELA,
                     text_addr=TEXT_ADDR, round=PAGE_SIZE, triple="powerpc64-linux-gnu"),
         thunks=_thunks(ORDER),
         linker_symbols=LINKER_SYMBOLS, toc_base=toc_base,
         gensections=gensections,
         local_entry=("R_PPC64_REL16_HA", "R_PPC64_REL16_LO", LOCAL_ENTRY, ".TOC."),
         refuse_symbols=refuse_symbols),
    Arch(name="ppc64le", ptr_size=ELF_CLASS // 8, order="<", pad=PAD[::-1], howtos=HOWTOS,
         elf=ElfArch(machine=ELF_MACHINE, cls=ELF_CLASS, flags=ELF_FLAGS, rela=RELA,
                     text_addr=TEXT_ADDR, round=PAGE_SIZE, triple="powerpc64le-linux-gnu"),
         thunks=_thunks("<"),
         linker_symbols=LINKER_SYMBOLS, toc_base=toc_base,
         gensections=gensections,
         local_entry=("R_PPC64_REL16_HA", "R_PPC64_REL16_LO", LOCAL_ENTRY, ".TOC."),
         refuse_symbols=refuse_symbols),
)
