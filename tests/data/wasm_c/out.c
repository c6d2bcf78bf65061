#include "prog.h"

char line[64];          /* bss */
u32 line_len;           /* bss */
static u32 flushes;     /* bss, local */

static void flush(void) {
    struct ciovec iov = {line, line_len};
    u32 n;
    if (line_len && fd_write(1, &iov, 1, &n) != 0)
        proc_exit(70);
    line_len = 0;
    flushes++;
}

void put(const char *s) {
    for (; *s; s++) {
        if (line_len == sizeof line)
            flush();
        line[line_len++] = *s;
        if (*s == '\n')
            flush();
    }
}

void put_int(int v) {
    char buf[12];
    int i = sizeof buf;
    unsigned u = v < 0 ? -(unsigned)v : (unsigned)v;
    buf[--i] = 0;
    do {
        buf[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[--i] = '-';
    put(&buf[i]);
}
