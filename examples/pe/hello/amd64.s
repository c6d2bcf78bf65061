# hello for PE amd64: GetStdHandle, WriteFile and ExitProcess from kernel32.dll, with the
# Microsoft x64 calling convention (rcx, rdx, r8, r9, then the stack past 32 bytes of shadow
# space). Assembled with x86_64-linux-gnu-as and imported with `minild import`; the imports
# were then declared in the object ("import": {"module": "kernel32.dll"}).
    .text
    .globl _start
_start:
    subq $56, %rsp               # shadow space (32) + 5th argument + alignment
    movl $-11, %ecx              # STD_OUTPUT_HANDLE
    call GetStdHandle            # a direct call: through the linker's thunk
    movq %rax, %rcx
    movq msgp(%rip), %rdx        # the message's address, from a pointer in .data (a base relocation)
    movl $13, %r8d
    leaq written(%rip), %r9
    movq $0, 32(%rsp)
    call *__imp_WriteFile(%rip)  # through the IAT slot
    movl $3, %ecx
    call ExitProcess
    ud2
    .section .rodata
msg: .ascii "hello, world\n"
    .data
    .balign 8
msgp: .quad msg
    .bss
written: .zero 4
