"""arm: 32-bit Arm, ARM state (ARM's AAELF32 psABI, EABI version 5), ELF32 little-endian.

Relocations (REL in relocatable objects: the addend sits in the place, read by
implicit_addends below when `minild import` makes it explicit; minild objects
always carry it, so a place's old field is overwritten, never added to):
  R_ARM_ABS32        S + A        32-bit word: literal pools, jump tables, pointers
  R_ARM_REL32        S + A - P    32-bit word, pc-relative
  R_ARM_CALL         S + A - P    BL: imm24 = X[25:2], +-32 MB, 4-aligned
  R_ARM_JUMP24       S + A - P    B, BL<cond> (tail calls): as R_ARM_CALL
  R_ARM_MOVW_ABS_NC  S + A        MOVW: imm4:imm12 = X[15:0], unchecked
  R_ARM_MOVT_ABS     S + A        MOVT: imm4:imm12 = X[31:16]
  R_ARM_V4BX         none         marks a BX for ARMv4 linkers that rewrite it to
                                  MOV pc (GNU as emits it by default); left as BX
(A branch's A includes the -8 of ARM's pc, which reads two instructions ahead;
GNU as stores it.) S of a Thumb function is odd (its T bit); minild links ARM
state only and builds no interworking veneers, so a BL or B to a Thumb function
fails the 4-byte alignment check instead of silently landing in the wrong
instruction set. Thumb-2 relocations (R_ARM_THM_*), GOT, TLS and PLT types are
unknown here: compile C with -marm.
"""

import numpy as np

from ..reloc import Howto, absolute, either, none, pcrel, signed
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


HOWTOS = [
    Howto("R_ARM_NONE", 0, 0, none),
    Howto("R_ARM_ABS32", 2, 4, absolute, either(32)),
    Howto("R_ARM_REL32", 3, 4, pcrel, either(32)),
    Howto("R_ARM_CALL", 28, 4, pcrel, signed(26), 4, branch),
    Howto("R_ARM_JUMP24", 29, 4, pcrel, signed(26), 4, branch),
    Howto("R_ARM_MOVW_ABS_NC", 43, 4, absolute, None, 1, movw),
    Howto("R_ARM_MOVT_ABS", 44, 4, absolute, None, 1, movt),
    Howto("R_ARM_V4BX", 40, 0, none),
]

_BY_NAME = {h.name: i for i, h in enumerate(HOWTOS)}


def implicit_addends(howto_idx, offsets, data, symbols, arch):
    """implicit_addends reads the addends GNU as stores in the places (AAELF32
    "REL addends"): the word itself for data, the sign-extended imm24 << 2 for
    branches, the imm4:imm12 field as a signed 16-bit number for MOVW and MOVT
    (the same field for both: MOVT's A is not shifted). Places past the end of
    the data read as 0; the link's own bounds check rejects them later."""
    howto_idx = np.asarray(howto_idx)
    offsets = np.asarray(offsets, np.int64)
    buf = np.frombuffer(data, np.uint8)
    inside = (offsets >= 0) & (offsets + 4 <= len(buf))
    idx = np.where(inside, offsets, 0)[:, None] + np.arange(4)
    word = buf[idx].view("<u4").ravel().astype(np.int64) if len(buf) >= 4 else \
        np.zeros(len(offsets), np.int64)
    add = np.zeros(len(offsets), np.int64)
    data_word = np.isin(howto_idx, [_BY_NAME["R_ARM_ABS32"], _BY_NAME["R_ARM_REL32"]])
    add = np.where(data_word, (word ^ 0x80000000) - 0x80000000, add)
    br = np.isin(howto_idx, [_BY_NAME["R_ARM_CALL"], _BY_NAME["R_ARM_JUMP24"]])
    imm24 = word & 0xFFFFFF
    add = np.where(br, ((imm24 ^ 0x800000) - 0x800000) << 2, add)
    mov = np.isin(howto_idx, [_BY_NAME["R_ARM_MOVW_ABS_NC"], _BY_NAME["R_ARM_MOVT_ABS"]])
    imm16 = ((word >> 4) & 0xF000) | (word & 0xFFF)
    add = np.where(mov, (imm16 ^ 0x8000) - 0x8000, add)
    return np.where(inside, add, 0)


ARCHES = (
    Arch(name="arm", ptr_size=ELF_CLASS // 8, order=ORDER, pad=PAD, howtos=HOWTOS,
         elf=ElfArch(machine=ELF_MACHINE, cls=ELF_CLASS, flags=ELF_FLAGS, rela=RELA,
                     text_addr=TEXT_ADDR, round=PAGE_SIZE, triple="arm-linux-gnueabihf"),
         plan9=PLAN9, implicit_addends=implicit_addends),
)
