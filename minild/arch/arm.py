"""arm: 32-bit Arm, ARM and Thumb-2 state (ARM's AAELF32 psABI, EABI version 5),
ELF32 little-endian.

Relocations (REL in relocatable objects: the addend sits in the place, read by
implicit_addends below when `minild import` makes it explicit; minild objects
always carry it, so a place's old field is overwritten, never added to). T is
the target's Thumb bit: bit 0 of S (a Thumb function's value is odd, in ELF
and in minild objects alike); Pa is P & ~3, Thumb's word-aligned pc.
  R_ARM_ABS32          S + A        32-bit word: literal pools, jump tables, pointers
  R_ARM_TARGET1        S + A        as R_ARM_ABS32 (lld's and GNU ld's default, --target1-abs)
  R_ARM_REL32          S + A - P    32-bit word, pc-relative
  R_ARM_PREL31         S + A - P    X[30:0] in a word whose bit 31 is kept (exception tables)
  R_ARM_CALL           S + A - P    BL: imm24 = X[25:2], +-32 MB, 4-aligned; to a Thumb
                                    target it becomes BLX (imm24:H = X[25:1])
  R_ARM_JUMP24         S + A - P    B, BL<cond> (tail calls): as R_ARM_CALL; to a Thumb
                                    target through a veneer (arm_veneers)
  R_ARM_MOVW_ABS_NC    S + A        MOVW: imm4:imm12 = X[15:0], unchecked
  R_ARM_MOVT_ABS       S + A        MOVT: imm4:imm12 = X[31:16]
  R_ARM_MOVW_PREL_NC   S + A - P    as MOVW_ABS_NC
  R_ARM_MOVT_PREL      S + A - P    as MOVT_ABS
  R_ARM_THM_CALL       S + A - P    Thumb BL: S:I1:I2:imm10:imm11 = X[24:1], +-16 MB;
                                    to an ARM target it becomes BLX, X = S + A - Pa
  R_ARM_THM_JUMP24     S + A - P    Thumb B.W: as THM_CALL; to ARM through a veneer
  R_ARM_THM_JUMP19     S + A - P    Thumb B<cond>.W: S:J2:J1:imm6:imm11 = X[20:1], +-1 MB;
                                    farther through a thunk, as THM_JUMP24
  R_ARM_THM_JUMP11     S + A - P    Thumb B (16-bit): imm11 = X[11:1], +-2 KB
  R_ARM_THM_JUMP8      S + A - P    Thumb B<cond> (16-bit): imm8 = X[8:1], +-256 bytes
  R_ARM_THM_MOVW_ABS_NC S + A       Thumb MOVW: imm4:i:imm3:imm8 = X[15:0], unchecked
  R_ARM_THM_MOVT_ABS   S + A        Thumb MOVT: X[31:16]
  R_ARM_THM_MOVW_PREL_NC, R_ARM_THM_MOVT_PREL   S + A - P: as the two above
  R_ARM_THM_PC8        S + A - Pa   Thumb ADR/LDR literal (16-bit): imm8 = X[9:2], 0..1020
  R_ARM_THM_PC12       S + A - Pa   Thumb LDR.W literal: U:imm12 = +-X, |X| < 4096
  R_ARM_THM_ALU_PREL_11_0 S + A - Pa Thumb ADR.W (ADDW/SUBW pc): i:imm3:imm8 = |X|
  R_ARM_V4BX           none         marks a BX for ARMv4 linkers that rewrite it to
                                    MOV pc (GNU as emits it by default); left as BX
A Thumb 32-bit instruction is two little-endian halfwords: its 4-byte place,
read as one little-endian word, holds the first halfword in bits 15:0 and the
second in bits 31:16. (A branch's A includes the pc offset, -8 in ARM state and
-4 in Thumb; GNU as stores it.) The branch values keep the T bit in bit 0, as
lld's do (its error messages show them): the inserts read it to choose BL or
BLX. B/JUMP24/JUMP19 cannot switch state: arm_veneers (run before layout)
retargets those that cross states at a veneer, as lld's ARM/Thumb thunks do.
GOT, TLS and PLT types are unknown here.
"""

import numpy as np

from ..reloc import Howto, absolute, either, none, pcrel, signed, unsigned
from ..thunks import Thunk
from . import Arch, ElfArch, Plan9Arch

ELF_MACHINE = 40          # EM_ARM
ELF_CLASS = 32
ORDER = "<"
ELF_FLAGS = 0x05000000    # EF_ARM_EABI_VER5; no float-ABI claim: minild emits no FP code
PAGE_SIZE = 0x10000       # GNU ld's and Go's max page size for arm
TEXT_ADDR = 0x11000       # headers at 0x10000 (GNU ld's base), text one 4K page on
PAD = b"\xf0\x00\xf0\xe7"  # udf #0 (0xe7f000f0): a stray jump into padding traps
RELA = False

# plan 9 (Go's cmd/link/internal/arm/obj.go, archinit's Hplan9 case: HEADR = 32,
# INITTEXT = 4128, INITRND = 4096; Plan9Magic 0x647, E_MAGIC = 4*20*20+7).
PLAN9 = Plan9Arch(magic=0x647, text_addr=0x1020, round=0x1000)


def _u(v):
    return v.astype(np.uint64)


IMM24 = np.uint64(0x00FFFFFF)
IMM16 = np.uint64(0x000F0FFF)   # MOVW/MOVT: imm4 in bits 19:16, imm12 in bits 11:0


def branch(old, value):
    """branch puts X[25:2] into a B/BL's imm24, keeping the condition and opcode."""
    return (old & ~IMM24) | (_u(value >> 2) & IMM24)


def _imm16(old, v):
    v = _u(v)
    return (old & ~IMM16) | ((v & np.uint64(0xF000)) << np.uint64(4)) | (v & np.uint64(0xFFF))


def movw(old, value):
    """movw puts X[15:0] into a MOVW's imm4:imm12."""
    return _imm16(old, value)


def movt(old, value):
    """movt puts X[31:16] into a MOVT's imm4:imm12."""
    return _imm16(old, value >> 16)


U16 = np.uint64(0xFFFF)


def _halves(old):
    """_halves splits a Thumb-2 place (4 bytes read as one little-endian word)
    into its first and second halfwords."""
    return old & U16, (old >> np.uint64(16)) & U16


def _join(hw0, hw1):
    return (hw0 & U16) | ((hw1 & U16) << np.uint64(16))


def _bits(v, lo, n):
    return (v >> np.uint64(lo)) & np.uint64((1 << n) - 1)


def _thm_b25(old, value, link):
    """_thm_b25 writes X[24:1] into a Thumb BL/B.W (encoding T4: S, J1 = ~(I1 ^ S),
    J2 = ~(I2 ^ S)); with link (BL), X's bit 0 chooses BL (1, a Thumb target) or
    BLX (0, an ARM one)."""
    v = _u(value)
    hw0, hw1 = _halves(old)
    s, i1, i2 = _bits(v, 24, 1), _bits(v, 23, 1), _bits(v, 22, 1)
    one = np.uint64(1)
    j1, j2 = (i1 ^ s) ^ one, (i2 ^ s) ^ one
    hw0 = np.uint64(0xF000) | (s << np.uint64(10)) | _bits(v, 12, 10)
    keep = np.uint64(0xC000 if link else 0xD000)
    hw1 = (hw1 & keep) | (j1 << np.uint64(13)) | (j2 << np.uint64(11)) | _bits(v, 1, 11)
    if link:
        hw1 = hw1 | ((v & one) << np.uint64(12))
    return _join(hw0, hw1)


def thm_call(old, value):
    return _thm_b25(old, value, True)


def thm_jump24(old, value):
    return _thm_b25(old, value, False)


def thm_jump19(old, value):
    """thm_jump19 writes X[20:1] into a Thumb B<cond>.W (T3: S:J2:J1:imm6:imm11)."""
    v = _u(value)
    hw0, hw1 = _halves(old)
    hw0 = (hw0 & np.uint64(0xFBC0)) | (_bits(v, 20, 1) << np.uint64(10)) | _bits(v, 12, 6)
    hw1 = ((hw1 & np.uint64(0xD000)) | (_bits(v, 18, 1) << np.uint64(13))
           | (_bits(v, 19, 1) << np.uint64(11)) | _bits(v, 1, 11))
    return _join(hw0, hw1)


def thm_jump11(old, value):
    return (old & np.uint64(0xF800)) | _bits(_u(value), 1, 11)


def thm_jump8(old, value):
    return (old & np.uint64(0xFF00)) | _bits(_u(value), 1, 8)


def _thm_imm16(old, v):
    hw0, hw1 = _halves(old)
    hw0 = (hw0 & np.uint64(0xFBF0)) | _bits(v, 12, 4) | (_bits(v, 11, 1) << np.uint64(10))
    hw1 = (hw1 & np.uint64(0x8F00)) | (_bits(v, 8, 3) << np.uint64(12)) | _bits(v, 0, 8)
    return _join(hw0, hw1)


def thm_movw(old, value):
    """thm_movw puts X[15:0] into a Thumb MOVW's imm4:i:imm3:imm8."""
    return _thm_imm16(old, _u(value))


def thm_movt(old, value):
    """thm_movt puts X[31:16] into a Thumb MOVT's imm4:i:imm3:imm8."""
    return _thm_imm16(old, _u(value) >> np.uint64(16))


def thm_pc8(old, value):
    return (old & np.uint64(0xFF00)) | _bits(_u(value), 2, 8)


def thm_pc12(old, value):
    """thm_pc12: LDR.W (literal) adds (U = 1) or subtracts (U = 0) imm12."""
    neg = value < 0
    mag = _u(np.abs(value))
    hw0, hw1 = _halves(old)
    hw0 = (hw0 & np.uint64(0xFF7F)) | np.where(neg, np.uint64(0), np.uint64(0x80))
    hw1 = (hw1 & np.uint64(0xF000)) | (mag & np.uint64(0xFFF))
    return _join(hw0, hw1)


def thm_alu_prel(old, value):
    """thm_alu_prel: ADR.W is ADDW (a positive X) or SUBW (0xa0 in the first
    halfword) of pc and i:imm3:imm8 = |X|."""
    neg = value < 0
    mag = _u(np.abs(value))
    hw0, hw1 = _halves(old)
    hw0 = ((hw0 & np.uint64(0xFB0F)) | np.where(neg, np.uint64(0xA0), np.uint64(0))
           | (_bits(mag, 11, 1) << np.uint64(10)))
    hw1 = (hw1 & np.uint64(0x8F00)) | (_bits(mag, 8, 3) << np.uint64(12)) | _bits(mag, 0, 8)
    return _join(hw0, hw1)


def arm_call(old, value):
    """arm_call: a BL, or a BLX (0xfa:H:imm24) where X's bit 0 says the target is
    Thumb; a BLX in the place whose target is ARM becomes BL (lld's rule)."""
    v = _u(value)
    thumb = (v & np.uint64(1)) != 0
    blx = np.uint64(0xFA000000) | ((v & np.uint64(2)) << np.uint64(23)) | (_u(value >> 2) & IMM24)
    was_blx = (old & np.uint64(0xFE000000)) == np.uint64(0xFA000000)
    base = np.where(was_blx, np.uint64(0xEB000000) | (old & IMM24), old)
    return np.where(thumb, blx, branch(base, value))


def prel31(old, value):
    return (old & np.uint64(0x80000000)) | (_u(value) & np.uint64(0x7FFFFFFF))


def pc_aligned(S, A, P):
    """S + A - Pa: Thumb's pc-relative loads and ADR read the pc rounded down to a word."""
    return S + A - (P & ~3)


def thm_call_value(S, A, P):
    """S + A - P for a Thumb target (odd: BL); for an ARM target (S even) the
    BLX's offset from Pa, which is lld's alignTo(S + A - P, 4)."""
    v = S + A - P
    return np.where((S & 1) != 0, v, (v + 3) & ~3)


HOWTOS = [
    Howto("R_ARM_NONE", 0, 0, none),
    Howto("R_ARM_ABS32", 2, 4, absolute, either(32)),
    Howto("R_ARM_REL32", 3, 4, pcrel, either(32)),
    Howto("R_ARM_CALL", 28, 4, pcrel, signed(26), 4, arm_call, tbit=True),
    Howto("R_ARM_JUMP24", 29, 4, pcrel, signed(26), 4, branch),
    Howto("R_ARM_MOVW_ABS_NC", 43, 4, absolute, None, 1, movw),
    Howto("R_ARM_MOVT_ABS", 44, 4, absolute, None, 1, movt),
    Howto("R_ARM_V4BX", 40, 0, none),
    Howto("R_ARM_TARGET1", 38, 4, absolute, either(32)),
    Howto("R_ARM_PREL31", 42, 4, pcrel, signed(31), 1, prel31),
    Howto("R_ARM_MOVW_PREL_NC", 45, 4, pcrel, None, 1, movw),
    Howto("R_ARM_MOVT_PREL", 46, 4, pcrel, None, 1, movt),
    Howto("R_ARM_THM_CALL", 10, 4, thm_call_value, signed(25), 1, thm_call,
          addend_insert=thm_jump24),
    Howto("R_ARM_THM_JUMP24", 30, 4, pcrel, signed(25), 1, thm_jump24),
    Howto("R_ARM_THM_JUMP19", 51, 4, pcrel, signed(21), 1, thm_jump19),
    Howto("R_ARM_THM_JUMP11", 102, 2, pcrel, signed(12), 1, thm_jump11),
    Howto("R_ARM_THM_JUMP8", 103, 2, pcrel, signed(9), 1, thm_jump8),
    Howto("R_ARM_THM_MOVW_ABS_NC", 47, 4, absolute, None, 1, thm_movw),
    Howto("R_ARM_THM_MOVT_ABS", 48, 4, absolute, None, 1, thm_movt),
    Howto("R_ARM_THM_MOVW_PREL_NC", 49, 4, pcrel, None, 1, thm_movw),
    Howto("R_ARM_THM_MOVT_PREL", 50, 4, pcrel, None, 1, thm_movt),
    Howto("R_ARM_THM_PC8", 11, 2, pc_aligned, unsigned(10), 4, thm_pc8),
    Howto("R_ARM_THM_PC12", 54, 4, pc_aligned, (-4095, 4095), 1, thm_pc12),
    Howto("R_ARM_THM_ALU_PREL_11_0", 53, 4, pc_aligned, (-4095, 4095), 1, thm_alu_prel),
]

_BY_NAME = {h.name: i for i, h in enumerate(HOWTOS)}


def _sx(v, bits):
    """_sx sign-extends the low bits of v (int64)."""
    m = 1 << (bits - 1)
    return ((v & ((1 << bits) - 1)) ^ m) - m


def _ids(*names):
    return [_BY_NAME[n] for n in names]


def implicit_addends(howto_idx, offsets, data, symbols, arch):
    """implicit_addends reads the addends GNU as stores in the places (AAELF32
    "REL addends", decoded as lld's getImplicitAddend does): the word itself for
    data, the sign-extended branch offset for branches, the 16-bit immediate as
    a signed number for MOVW and MOVT (the same field for both: MOVT's A is not
    shifted), and the Thumb loads' and ADR's offsets. Places past the end of the
    data read as 0; the link's own bounds check rejects them later."""
    howto_idx = np.asarray(howto_idx)
    offsets = np.asarray(offsets, np.int64)
    buf = np.frombuffer(data, np.uint8)
    size = np.array([h.size for h in HOWTOS], np.int64)[howto_idx] if len(howto_idx) else \
        np.zeros(0, np.int64)
    inside = (offsets >= 0) & (offsets + np.maximum(size, 1) <= len(buf))
    # Four bytes (zero past the end: a 2-byte place may end the section).
    padded = np.concatenate((buf, np.zeros(4, np.uint8)))
    idx = np.where(inside, offsets, 0)[:, None] + np.arange(4)
    word = padded[idx].view("<u4").ravel().astype(np.int64) if len(offsets) else \
        np.zeros(0, np.int64)
    hw0, hw1 = word & 0xFFFF, (word >> 16) & 0xFFFF
    add = np.zeros(len(offsets), np.int64)

    def put(names, value):
        nonlocal add
        add = np.where(np.isin(howto_idx, _ids(*names)), value, add)

    put(("R_ARM_ABS32", "R_ARM_REL32", "R_ARM_TARGET1"), _sx(word, 32))
    put(("R_ARM_PREL31",), _sx(word, 31))
    put(("R_ARM_CALL", "R_ARM_JUMP24"), _sx(word & 0xFFFFFF, 24) << 2)
    imm16 = ((word >> 4) & 0xF000) | (word & 0xFFF)
    put(("R_ARM_MOVW_ABS_NC", "R_ARM_MOVT_ABS", "R_ARM_MOVW_PREL_NC", "R_ARM_MOVT_PREL"),
        _sx(imm16, 16))
    s = (hw0 >> 10) & 1
    j1, j2 = (hw1 >> 13) & 1, (hw1 >> 11) & 1
    b25 = ((s << 24) | ((1 - (j1 ^ s)) << 23) | ((1 - (j2 ^ s)) << 22)
           | ((hw0 & 0x3FF) << 12) | ((hw1 & 0x7FF) << 1))
    put(("R_ARM_THM_CALL", "R_ARM_THM_JUMP24"), _sx(b25, 25))
    b21 = (s << 20) | (j2 << 19) | (j1 << 18) | ((hw0 & 0x3F) << 12) | ((hw1 & 0x7FF) << 1)
    put(("R_ARM_THM_JUMP19",), _sx(b21, 21))
    put(("R_ARM_THM_JUMP11",), _sx((hw0 & 0x7FF) << 1, 12))
    put(("R_ARM_THM_JUMP8",), _sx((hw0 & 0xFF) << 1, 9))
    t16 = ((hw0 & 0xF) << 12) | (((hw0 >> 10) & 1) << 11) | (((hw1 >> 12) & 7) << 8) | (hw1 & 0xFF)
    put(("R_ARM_THM_MOVW_ABS_NC", "R_ARM_THM_MOVT_ABS", "R_ARM_THM_MOVW_PREL_NC",
         "R_ARM_THM_MOVT_PREL"), _sx(t16, 16))
    # ADR/LDR (16-bit): imm8:00 holds A + 4 modulo 1 KiB (GNU as stores -4 as 0xff).
    put(("R_ARM_THM_PC8",), (((hw0 & 0xFF) << 2) + 4 & 0x3FF) - 4)
    put(("R_ARM_THM_PC12",), np.where(hw0 & 0x80, hw1 & 0xFFF, -(hw1 & 0xFFF)))
    alu = ((hw0 & 0x400) << 1) | ((hw1 & 0x7000) >> 4) | (hw1 & 0xFF)
    put(("R_ARM_THM_ALU_PREL_11_0",), np.where(hw0 & 0xF0, -alu, alu))
    return np.where(inside, add, 0)

# Veneers (lld's ARM/Thumb interworking thunks): a B that must change state
# jumps to a veneer that loads the target, T bit and all, into the pc (an LDR
# to the pc interworks from ARMv5T on). ARM state: ldr pc, [pc, #-4]; .word X.
# Thumb: ldr.w pc, [pc, #0]; .word X (the word is 4-aligned: the section is).
ARM_VENEER = b"\x04\xf0\x1f\xe5"        # ldr pc, [pc, #-4]  (0xe51ff004)
THUMB_VENEER = b"\xdf\xf8\x00\xf0"      # ldr.w pc, [pc, #0] (0xf8df 0xf000)
# relocation type -> (the branch's pc offset, veneer code, its state's T bit, name prefix)
_CROSSING = {
    "R_ARM_JUMP24": (8, ARM_VENEER, 0, "__ARMv5LongLdrPcThunk_"),
    "R_ARM_THM_JUMP24": (4, THUMB_VENEER, 1, "__Thumbv7LongLdrPcThunk_"),
    "R_ARM_THM_JUMP19": (4, THUMB_VENEER, 1, "__Thumbv7LongLdrPcThunk_"),
}


def veneers(ctx) -> None:
    """veneers retargets every B (R_ARM_JUMP24, R_ARM_THM_JUMP24, R_ARM_THM_JUMP19)
    whose target is in the other state at a veneer of the branch's own state,
    one per (target, addend), in new text sections of an "<arm veneers>" object.
    Runs before layout: a target's state is its value's bit 0 (sections that
    hold code are at least 2-aligned). With --externallink the finishing
    linker builds its own."""
    if ctx.opts.externallink:
        return
    from ..vocab import Bind, Kind, SymType

    r = ctx.relocs
    ab32 = ctx.arch.index["R_ARM_ABS32"]
    plan = []   # (name, pc, code, tbit, relocation indexes)
    for name, (pc, code, tbit, prefix) in _CROSSING.items():
        k = np.flatnonzero(r.type == ctx.arch.index[name])
        if not len(k):
            continue
        d = ctx.sym_res[r.sym[k]]
        k, d = k[d >= 0], d[d >= 0]
        cross = (ctx.sym_value[d] & 1) != tbit
        if cross.any():
            plan.append((prefix, pc, code, tbit, k[cross], d[cross]))
    if not plan:
        return
    obj = ctx.add_object("<arm veneers>")
    for prefix, pc, code, tbit, k, d in plan:
        dest = r.add[k] + pc                     # the branch's target is S + dest
        keys = sorted(set(zip(d.tolist(), dest.tolist())),
                      key=lambda e: (ctx.names[e[0]], e[1], e[0]))
        slot = {key: j for j, key in enumerate(keys)}
        size = 8 * len(keys)
        (sec,) = ctx.add_sections(obj, [".text.veneer"], [Kind.TEXT], [4], [size],
                                  [code.ljust(8, b"\0") * len(keys)])
        names = [prefix + ctx.names[t] + (f"+{a:#x}" if a else "") for t, a in keys]
        syms = ctx.add_symbols(obj, names, int(sec), np.arange(len(keys)) * 8 + tbit,
                               Bind.LOCAL, SymType.FUNC)
        # Mapping symbols, for disassemblers: the code's state, then $d for the word.
        at = np.arange(len(keys)) * 8
        ctx.add_symbols(obj, ["$t" if tbit else "$a", "$d"] * len(keys), int(sec),
                        np.stack((at, at + 4), axis=1).ravel(), Bind.LOCAL, SymType.NOTYPE)
        ctx.add_relocs(np.full(len(keys), sec), np.arange(len(keys)) * 8 + 4,
                       np.full(len(keys), ab32), [t for t, _ in keys], [a for _, a in keys])
        j = np.array([slot[key] for key in zip(d.tolist(), dest.tolist())], np.int64)
        r = ctx.relocs
        r.sym[k] = syms[j]
        r.add[k] = -pc


# Range-extension thunks (minild/thunks.py): the veneers' code, which reaches
# any address and either state.
_ARM_THUNK = Thunk(ARM_VENEER + b"\0" * 4, ((4, "R_ARM_ABS32"),), 8, "__ARMv5LongLdrPcThunk_", 4, 0,
                   (("$a", 0), ("$d", 4)))
_THUMB_THUNK = Thunk(THUMB_VENEER + b"\0" * 4, ((4, "R_ARM_ABS32"),), 4, "__Thumbv7LongLdrPcThunk_", 4,
                     1, (("$t", 0), ("$d", 4)))
# B<cond>.W (THM_JUMP19) too, as lld (ARM::needsThunk) and GNU ld (__NAME_veneer)
# do: the branch keeps its condition, the thunk reaches anywhere.
THUNKS = {"R_ARM_CALL": _ARM_THUNK, "R_ARM_JUMP24": _ARM_THUNK,
          "R_ARM_THM_CALL": _THUMB_THUNK, "R_ARM_THM_JUMP24": _THUMB_THUNK,
          "R_ARM_THM_JUMP19": _THUMB_THUNK}

ARCHES = (
    Arch(name="arm", ptr_size=ELF_CLASS // 8, order=ORDER, pad=PAD, howtos=HOWTOS,
         elf=ElfArch(machine=ELF_MACHINE, cls=ELF_CLASS, flags=ELF_FLAGS, rela=RELA,
                     text_addr=TEXT_ADDR, round=PAGE_SIZE, triple="arm-linux-gnueabihf"),
         plan9=PLAN9, implicit_addends=implicit_addends, gensections=veneers, thunks=THUNKS),
)
