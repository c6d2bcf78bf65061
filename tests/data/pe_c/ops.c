/* ops.c: a function-pointer table (in .rdata, relocated with absolute
 * pointers), rodata strings, a bss counter and a switch large enough for gcc
 * to emit a jump table. */
#include "win.h"

long calls;   /* bss, global */

static long add(long a, long b) { calls++; return a + b; }
static long sub(long a, long b) { calls++; return a - b; }
static long mul(long a, long b) { calls++; return a * b; }
long mod(long a, long b) { calls++; return a % b; }

op_fn const op_table[] = { add, sub, mul, mod };
const char *const op_names[] = { "add", "sub", "mul", "mod" };
const int op_count = sizeof op_table / sizeof op_table[0];

long classify(int k, long a)
{
	switch (k) {
	case 0: return a + 17;
	case 1: return a * 4 - 1;
	case 2: return a ^ 91;
	case 3: return (a << 3) + k;
	case 4: return mod(a, 33);
	case 5: return a / 2;
	case 6: return add(a, 60);
	case 7: return a - 11;
	case 8: return mul(a, 45);
	case 9: return a | 29;
	default: return -a;
	}
}
