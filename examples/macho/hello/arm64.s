// hello for Mach-O arm64: _write and _exit from /usr/lib/libSystem.B.dylib (x0-x2), called
// through the linker's stubs. The message's address comes from a pointer in __DATA, which
// dyld rebases when it slides the image. Assembled with aarch64-linux-gnu-as and imported
// with `minild import`; the imports were then declared.
    .text
    .globl _main
_main:
    stp x29, x30, [sp, #-16]!
    mov x0, #1
    adrp x1, msgp
    ldr x1, [x1, :lo12:msgp]
    mov x2, #13
    bl _write
    mov x0, #0
    bl _exit
    brk #0
    .section .rodata
msg: .ascii "hello, world\n"
    .data
    .balign 8
msgp: .quad msg
