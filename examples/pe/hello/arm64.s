// hello for PE arm64: GetStdHandle, WriteFile and ExitProcess from kernel32.dll, with the
// AArch64 calling convention (x0-x7, the result in x0). Assembled with aarch64-linux-gnu-as
// and imported with `minild import`; the imports were then declared in the object.
    .text
    .globl _start
_start:
    stp x29, x30, [sp, #-16]!
    mov x0, #-11                 // STD_OUTPUT_HANDLE
    bl GetStdHandle              // a direct call: through the linker's thunk
    adrp x1, msgp
    ldr x1, [x1, :lo12:msgp]     // the message's address, from a pointer in .data
    mov x2, #13
    adrp x3, written
    add x3, x3, :lo12:written
    mov x4, #0
    adrp x16, __imp_WriteFile    // through the IAT slot
    ldr x16, [x16, :lo12:__imp_WriteFile]
    blr x16
    mov x0, #3
    bl ExitProcess
    brk #0
    .section .rodata
msg: .ascii "hello, world\n"
    .data
    .balign 8
msgp: .quad msg
    .bss
    .balign 4
written: .zero 4
