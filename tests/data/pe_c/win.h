/* win.h: the few kernel32 declarations the pe_c program needs (no Windows headers:
 * the program is freestanding). DLLIMPORT is __declspec(dllimport) in the files that
 * call kernel32 through __imp_ pointers and empty in the others, which call the
 * plain names (the linker's import thunks). */
#ifndef WIN_H
#define WIN_H

typedef void *HANDLE;
typedef unsigned long DWORD;
typedef int BOOL;

#define WINAPI __attribute__((stdcall))
#define STD_OUTPUT_HANDLE ((DWORD)-11)

#ifndef DLLIMPORT
#define DLLIMPORT __declspec(dllimport)
#endif

DLLIMPORT HANDLE WINAPI GetStdHandle(DWORD which);
DLLIMPORT BOOL WINAPI WriteFile(HANDLE h, const void *buf, DWORD n, DWORD *written, void *ov);
DLLIMPORT void WINAPI ExitProcess(unsigned code) __attribute__((noreturn));

/* out.c */
void out_str(const char *s);
void out_num(long v);
void out_flush(void);
/* direct.c */
void say_direct(const char *s, unsigned n);
/* ops.c */
typedef long (*op_fn)(long, long);
extern op_fn const op_table[];
extern const char *const op_names[];
extern const int op_count;
long classify(int k, long a);
long mod(long a, long b);
/* the counter in bss, defined in ops.c */
extern long calls;

#endif
