# hello for Mach-O amd64: _write and _exit from /usr/lib/libSystem.B.dylib (System V calling
# convention: rdi, rsi, rdx), called through the linker's stubs. The message's address comes
# from a pointer in __DATA, which dyld rebases when it slides the image. Assembled with
# x86_64-linux-gnu-as and imported with `minild import`; the imports were then declared.
    .text
    .globl _main
_main:
    pushq %rbp                   # dyld calls main: realign the stack to 16 bytes
    movl $1, %edi
    movq msgp(%rip), %rsi
    movl $13, %edx
    call _write
    xorl %edi, %edi
    call _exit
    ud2
    .section .rodata
msg: .ascii "hello, world\n"
    .data
    .balign 8
msgp: .quad msg
