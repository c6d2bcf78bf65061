#include "prog.h"

static int twice(int x) { return 2 * x; }
static int thrice(int x) { return 3 * x; }

/* a local function reached through a pointer in data */
static int (*volatile hook)(int) = twice;

__attribute__((export_name("answer"))) int answer(void) { return 42; }

void _start(void) {
    int sum = 0;
    for (int i = 0; i < 4; i++) {
        int v = apply(i, 12, 5);
        put(op_names[i]);
        put(" ");
        put_int(v);
        put("\n");
        sum += v + classify(i * 3 - 2);
    }
    for (struct entry *e = first; e; e = e->next) {
        put(e->name);
        put("=");
        put_int(*e->value);
        put("\n");
        counters[*e->value & 15]++;
    }
    if (sum > 1000)
        hook = thrice;   /* a function's address in code: R_WASM_TABLE_INDEX_SLEB */
    sum += hook(counters[1] + counters[2]) + *hot;
    put(tail);
    put("\n");
    put_int(sum);
    put("\n");
    proc_exit(sum & 0x7f);
}
