# hello for PE x86: GetStdHandle, WriteFile and ExitProcess from kernel32.dll, stdcall (the
# arguments pushed right to left; the callee pops them). Assembled with i686-linux-gnu-as and
# imported with `minild import`; the imports were then declared in the object.
    .text
    .globl _start
_start:
    pushl $-11                   # STD_OUTPUT_HANDLE
    call GetStdHandle            # a direct call: through the linker's thunk
    pushl $0                     # lpOverlapped
    pushl $written               # lpNumberOfBytesWritten (R_386_32: a base relocation)
    pushl $13
    pushl msgp                   # the message's address, from a pointer in .data
    pushl %eax                   # the handle
    call *__imp_WriteFile        # through the IAT slot
    pushl $3
    call ExitProcess
    ud2
    .section .rodata
msg: .ascii "hello, world\n"
    .data
    .balign 4
msgp: .long msg
    .bss
written: .zero 4
