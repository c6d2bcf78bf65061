/* lib.c: what main.c uses from another object: a function, a function pointer, a global
 * counter, and a pointer to a string. */
static const char world[] = "world";
const char *greeting = world;
int calls = 40;

static int twice(int x) { calls++; return 2 * x; }
int (*op)(int) = twice;

int greet(char *out, const char *who)
{
	static const char hello[] = "hello, ";
	int n = 0;
	calls++;
	for (const char *p = hello; *p; p++)
		out[n++] = *p;
	for (const char *p = who; *p; p++)
		out[n++] = *p;
	out[n++] = ' ';
	return n;
}
