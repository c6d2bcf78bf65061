# hello, world for Plan 9 on 386 (a.out magic I_MAGIC 0x01eb).
#
# Plan 9 system calls on 386 (Go: runtime/sys_plan9_386.s; 9front kernel:
# sys/src/9/pc/trap.c, syscall()):
#   - the system call number goes in EAX, then INT $64 (0x40, VectorSYSCALL);
#   - the kernel reads the arguments from the user stack at 4(SP) upwards
#     (0(SP) is the return-address slot: the kernel skips one word, BY2WD = 4),
#     in 8c's/Go's frame layout: 4-byte slots, a vlong takes two (low word first);
#   - the result comes back in EAX.
# System call numbers: EXITS = 8, PWRITE = 51.
#
#   pwrite(int fd, void *buf, long n, vlong offset)   offset -1: the current offset
#   exits(char *msg)                                  nil: success

	.text
	.globl	_start
	.type	_start, @function
_start:
	andl	$-16, %esp		# 16-byte align the stack
	subl	$32, %esp		# 0(SP) return-address slot + 5 words + padding

	# pwrite(1, msg, 13, -1)
	movl	$1, 4(%esp)		# fd
	movl	$msg, 8(%esp)		# buf: R_386_32 msg
	movl	$13, 12(%esp)		# n
	movl	$-1, 16(%esp)		# offset, low word
	movl	$-1, 20(%esp)		# offset, high word: -1 = current offset
	movl	$51, %eax		# PWRITE
	int	$64

	# exits(nil)
	movl	$0, 4(%esp)		# msg = nil: success
	movl	$8, %eax		# EXITS
	int	$64
	ud2				# not reached
	.size	_start, .-_start

	.section .rodata
	.type	msg, @object
msg:	.ascii	"hello, world\n"
	.size	msg, .-msg
