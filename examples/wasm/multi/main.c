/* main.c: the entry point. Calls greet (lib.c) across objects, calls through a function
 * pointer (lib.c's `op`, a table slot), bumps `calls`, a global variable of lib.c, and
 * copies the greeting that lib.c's `greeting` points at (data with the address of other
 * data) into `line`, a bss buffer. Built with clang-14 --target=wasm32 -O1 -c, imported
 * with `minild import`. */
#define WASI(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(name)))

struct iovec { const char *buf; unsigned long len; };
WASI("fd_write") int fd_write(int fd, const struct iovec *iov, int n, unsigned long *written);
WASI("proc_exit") _Noreturn void proc_exit(int code);

extern const char *greeting;
extern int (*op)(int);
extern int calls;
int greet(char *out, const char *who);

static char line[64];

void _start(void)
{
	int n = greet(line, greeting);
	line[n++] = (char)('0' + op(3));
	line[n++] = '\n';
	struct iovec iov = {line, (unsigned long)n};
	unsigned long written;
	fd_write(1, &iov, 1, &written);
	proc_exit(calls);
}
