# hello for Mach-O amd64 by raw BSD system calls: syscall with rax = 0x2000000 | n (the BSD
# class), write = 4, exit = 1. It imports nothing; libSystem is loaded all the same, as dyld
# requires. Assembled with x86_64-linux-gnu-as and imported with `minild import`.
    .text
    .globl _main
_main:
    movl $0x2000004, %eax        # write(1, msg, 13)
    movl $1, %edi
    movq msgp(%rip), %rsi
    movl $13, %edx
    syscall
    movl $0x2000001, %eax        # exit(0)
    xorl %edi, %edi
    syscall
    ud2
    .section .rodata
msg: .ascii "hello, world\n"
    .data
    .balign 8
msgp: .quad msg
