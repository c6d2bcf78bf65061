"""wasm: WebAssembly (wasm32), the arch that is not a CPU.

There are no code addresses: a function's "address" is its index (imported
functions first), given by the wasm format's assign step (Go's
AssignAddress); data lives in linear memory, where addresses are byte
offsets. Relocations, as WebAssembly's tool conventions (Linking.md) name
them; a _LEB/_SLEB place is a 5-byte padded LEB128, written whatever bytes it
held (the object's encoder left room for any 32-bit value):

  R_WASM_FUNCTION_INDEX_LEB   S        call: the function's index (ULEB)
  R_WASM_TABLE_INDEX_SLEB     slot(S)  a function pointer: its table slot (SLEB)
  R_WASM_TABLE_INDEX_I32      slot(S)  the same in data (a 4-byte word)
  R_WASM_MEMORY_ADDR_LEB      S + A    a memory address in a load/store offset (ULEB)
  R_WASM_MEMORY_ADDR_SLEB     S + A    ... in an i32.const (SLEB)
  R_WASM_MEMORY_ADDR_I32      S + A    ... in data (a pointer)
  R_WASM_TYPE_INDEX_LEB       A        call_indirect's type: the linker's index of
                                       the object's type A (remapped when joined)
  R_WASM_GLOBAL_INDEX_LEB     S        global.get/set: the global's index (only the
                                       linker's __stack_pointer, global 0)
slot(S) is reloc.table_index: 1 + the rank of S among the functions whose
address is taken (slot 0 is the null function pointer).
"""

import numpy as np

from ..reloc import Howto, absolute, addend, signed, table_index, unsigned
from . import Arch, WasmArch

_U = np.uint64


def _leb5(v: np.ndarray) -> np.ndarray:
    """_leb5: the 5 bytes of a padded LEB128 of v's low 35 bits, as a little-endian
    integer (continuation bits on the first four)."""
    v = v.astype(np.uint64)
    out = np.zeros(len(v), np.uint64)
    for i in range(5):
        b = (v >> _U(7 * i)) & _U(0x7F)
        if i < 4:
            b |= _U(0x80)
        out |= b << _U(8 * i)
    return out


def uleb5(old, value):
    return _leb5(value)


def sleb5(old, value):
    # Two's complement in 35 bits: the sign extends into the fifth byte's top bits.
    return _leb5(value.astype(np.int64).astype(np.uint64) & _U((1 << 35) - 1))


HOWTOS = [
    Howto("R_WASM_FUNCTION_INDEX_LEB", 0, 5, absolute, unsigned(32), 1, uleb5),
    Howto("R_WASM_TABLE_INDEX_SLEB", 1, 5, table_index, signed(32), 1, sleb5),
    Howto("R_WASM_TABLE_INDEX_I32", 2, 4, table_index, unsigned(32)),
    Howto("R_WASM_MEMORY_ADDR_LEB", 3, 5, absolute, unsigned(32), 1, uleb5),
    Howto("R_WASM_MEMORY_ADDR_SLEB", 4, 5, absolute, signed(32), 1, sleb5),
    Howto("R_WASM_MEMORY_ADDR_I32", 5, 4, absolute, unsigned(32)),
    Howto("R_WASM_TYPE_INDEX_LEB", 6, 5, addend, unsigned(32), 1, uleb5),
    Howto("R_WASM_GLOBAL_INDEX_LEB", 7, 5, absolute, unsigned(32), 1, uleb5),
]

TYPE_INDEX = "R_WASM_TYPE_INDEX_LEB"

ARCHES = (
    Arch(name="wasm", ptr_size=4, order="<", pad=b"\x00", howtos=HOWTOS, wasm=WasmArch()),
)
