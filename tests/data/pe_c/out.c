/* out.c: buffered output through kernel32, called via __imp_ pointers
 * (__declspec(dllimport), from win.h). */
#include "win.h"

static char buf[512];   /* bss */
static unsigned used;
static const char digits[] = "0123456789";

void out_flush(void)
{
	DWORD n;
	if (used)
		WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), buf, used, &n, 0);
	used = 0;
}

static void put(char c)
{
	if (used == sizeof buf)
		out_flush();
	buf[used++] = c;
}

void out_str(const char *s)
{
	while (*s)
		put(*s++);
}

void out_num(long v)
{
	char tmp[24];
	int n = 0;
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
	if (v < 0)
		put('-');
	do {
		tmp[n++] = digits[u % 10];
		u /= 10;
	} while (u);
	while (n)
		put(tmp[--n]);
}
