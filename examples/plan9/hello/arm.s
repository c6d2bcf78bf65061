@ hello, world for Plan 9 on arm (a.out magic E_MAGIC 0x0647), ARM (not Thumb) code.
@
@ Plan 9 system calls on arm (Go: runtime/sys_plan9_arm.s; 9front kernel:
@ sys/src/9/kw/syscall.c and the other arm ports, syscall()):
@   - the system call number goes in R0, then SWI 0 (SVC #0);
@   - the kernel reads the arguments from the user stack at 4(R13) upwards
@     (0(R13) is the saved-link slot: the kernel skips one word, BY2WD = 4),
@     in 5c's/Go's frame layout: 4-byte slots, a vlong takes two 4-byte-aligned
@     words (low word first), so pwrite's offset is at 16(R13) and 20(R13),
@     as in Go's "pwrite(fd int32, buf unsafe.Pointer, nbytes int32,
@     offset int64) int32" with frame $0-24 and ret at 20(FP);
@   - the result comes back in R0.
@ System call numbers: EXITS = 8, PWRITE = 51.
@
@   pwrite(int fd, void *buf, long n, vlong offset)   offset -1: the current offset
@   exits(char *msg)                                  nil: success

	.arm
	.text
	.globl	_start
	.type	_start, %function
_start:
	bic	sp, sp, #7		@ 8-byte align the stack
	sub	sp, sp, #24		@ 0(R13) link slot + 5 words

	@ pwrite(1, msg, 13, -1)
	mov	r1, #1
	str	r1, [sp, #4]		@ fd
	ldr	r1, .Lmsg		@ &msg from the literal pool
	str	r1, [sp, #8]		@ buf
	mov	r1, #13
	str	r1, [sp, #12]		@ n
	mvn	r1, #0			@ -1
	str	r1, [sp, #16]		@ offset, low word
	str	r1, [sp, #20]		@ offset, high word: -1 = current offset
	mov	r0, #51			@ PWRITE
	swi	0

	@ exits(nil)
	mov	r1, #0
	str	r1, [sp, #4]		@ msg = nil: success
	mov	r0, #8			@ EXITS
	swi	0
	udf	#0			@ not reached

.Lmsg:	.word	msg			@ R_ARM_ABS32 msg
	.size	_start, .-_start

	.section .rodata
	.type	msg, %object
msg:	.ascii	"hello, world\n"
	.size	msg, .-msg
