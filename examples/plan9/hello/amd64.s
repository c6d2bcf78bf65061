# hello, world for Plan 9 on amd64 (a.out magic S_MAGIC 0x8a97).
#
# Plan 9 system calls on amd64 (Go: runtime/sys_plan9_amd64.s; 9front kernel:
# sys/src/9/pc64/trap.c, syscall()):
#   - the system call number goes in RBP ("RARG"), then the SYSCALL instruction;
#   - the kernel reads the arguments from the user stack at 8(SP) upwards, one
#     8-byte slot per argument (0(SP) is where a CALL would have left the return
#     address: the kernel skips one word, BY2WD = 8);
#   - the result comes back in RAX.  SYSCALL itself clobbers RCX and R11.
# System call numbers (Go: syscall/zsysnum_plan9.go; 9front: sys/src/libc/9syscall/sys.h):
#   EXITS = 8, PWRITE = 51.
#
#   pwrite(int fd, void *buf, long n, vlong offset)   offset -1: the current offset
#   exits(char *msg)                                  nil: success
#
# At entry the kernel leaves SP pointing at argc (execregs); nothing useful is
# in the registers.

	.text
	.globl	_start
	.type	_start, @function
_start:
	andq	$-16, %rsp		# 16-byte align the stack
	subq	$48, %rsp		# 0(SP) return-address slot + 4 args + padding

	# pwrite(1, msg, 13, -1)
	movq	$1, 8(%rsp)		# fd
	leaq	msg(%rip), %rax		# R_X86_64_PC32 msg-4
	movq	%rax, 16(%rsp)		# buf
	movq	$13, 24(%rsp)		# n
	movq	$-1, 32(%rsp)		# offset: -1 = current offset
	movl	$51, %ebp		# PWRITE
	syscall

	# exits(nil)
	movq	$0, 8(%rsp)		# msg = nil: success
	movl	$8, %ebp		# EXITS
	syscall
	ud2				# not reached
	.size	_start, .-_start

	.section .rodata
	.type	msg, @object
msg:	.ascii	"hello, world\n"
	.size	msg, .-msg
