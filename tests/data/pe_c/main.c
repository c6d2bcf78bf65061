/* main.c: the entry point (start), calls across objects, a loop over the
 * function-pointer table of ops.c, and the switch of classify. */
#include "win.h"

static const char banner[] = "pe_c: freestanding mingw program\n";

static long total;   /* bss */

static long fold(long acc, int k)
{
	return classify(k, acc) % 1000003;
}

void start(void)
{
	out_str(banner);
	for (int i = 0; i < op_count; i++) {
		out_str(op_names[i]);
		out_str(" 7 3 = ");
		out_num(op_table[i](7, 3));
		out_str("\n");
	}
	for (int k = 0; k < 12; k++)
		total = fold(total, k);
	out_str("fold = ");
	out_num(total);
	out_str("\ncalls = ");
	out_num(calls);
	out_str("\n");
	out_flush();
	say_direct("bye\n", 4);
	ExitProcess((unsigned)(total & 0x3f));
}
