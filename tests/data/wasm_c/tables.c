#include "prog.h"

/* data with pointers to other data (rodata strings, ints, other entries) */
static const int one = 1, two = 2;
int three = 3;
static struct entry e3 = {"three", &three, 0};
static struct entry e2 = {"two", &two, &e3};
static struct entry e1 = {"one", &one, &e2};
struct entry *first = &e1;
int counters[16];       /* bss */
int *const hot = &counters[3];   /* rodata: a pointer with an addend */
const char *const tail = &"the tail"[4];
__attribute__((weak)) int tunable = 7;
