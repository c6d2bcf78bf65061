/* The wasm test program (tests/test_import_wasm.py): several objects,
   freestanding, WASI for output and exit. */
#ifndef PROG_H
#define PROG_H

typedef unsigned int u32;
typedef int (*binop)(int, int);

struct ciovec { const char *buf; u32 len; };

/* WASI, declared as wasi-libc declares it: the module and the field by attribute. */
int fd_write(int fd, const struct ciovec *iovs, u32 n, u32 *written)
    __attribute__((import_module("wasi_snapshot_preview1"), import_name("fd_write")));
_Noreturn void proc_exit(int code)
    __attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_exit")));

/* ops.c */
extern const binop ops[4];
extern const char *const op_names[4];
int apply(int op, int a, int b);
int classify(int x);

/* out.c */
void put(const char *s);
void put_int(int v);
extern char line[64];
extern u32 line_len;

/* tables.c */
struct entry { const char *name; const int *value; struct entry *next; };
extern struct entry *first;
extern int counters[16];
extern int *const hot;
extern const char *const tail;

#endif
