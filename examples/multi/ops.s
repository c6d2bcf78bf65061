	.text
	.globl add1, add2, add3
add1:	addl	%edi, total(%rip)
	ret
add2:	leal	(%rdi,%rdi), %eax
	addl	%eax, total(%rip)
	ret
add3:	leal	(%rdi,%rdi,2), %eax
	addl	%eax, total(%rip)
	ret
	.data
	.globl ops
	.balign 8
ops:	.quad	add1, add2, add3, 0
	.bss
	.globl total
	.balign 4
total:	.zero	4
