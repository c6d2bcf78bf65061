// hello for Mach-O arm64 by raw BSD system calls: svc #0x80 with x16 = n, write = 4,
// exit = 1. It imports nothing; libSystem is loaded all the same, as dyld requires.
// Assembled with aarch64-linux-gnu-as and imported with `minild import`.
    .text
    .globl _main
_main:
    mov x16, #4                  // write(1, msg, 13)
    mov x0, #1
    adrp x1, msgp
    ldr x1, [x1, :lo12:msgp]
    mov x2, #13
    svc #0x80
    mov x16, #1                  // exit(0)
    mov x0, #0
    svc #0x80
    brk #0
    .section .rodata
msg: .ascii "hello, world\n"
    .data
    .balign 8
msgp: .quad msg
