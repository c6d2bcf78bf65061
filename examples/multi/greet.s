	.text
	.globl greet
greet:
	movl	$1, %eax
	movl	$1, %edi
	leaq	msg(%rip), %rsi
	movl	$17, %edx
	syscall
	ret
	.section .rodata
msg:	.ascii	"hello from greet\n"
