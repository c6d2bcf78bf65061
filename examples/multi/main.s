	.text
	.globl _start
_start:
	call	greet
	xorl	%ebx, %ebx
1:	leaq	ops(%rip), %rax
	movq	(%rax,%rbx,8), %rax
	testq	%rax, %rax
	jz	2f
	movl	$5, %edi
	call	*%rax
	incl	%ebx
	jmp	1b
2:	movl	$1, %eax
	movl	$1, %edi
	leaq	done(%rip), %rsi
	movl	$5, %edx
	syscall
	movl	$60, %eax
	movl	total(%rip), %edi
	syscall
	.section .rodata
done:	.ascii	"done\n"
