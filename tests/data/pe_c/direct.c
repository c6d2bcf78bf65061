/* direct.c: kernel32 declared without __declspec(dllimport): calls to the
 * plain names (GetStdHandle, WriteFile), which the linker's import thunks serve. */
#define DLLIMPORT
#include "win.h"

void say_direct(const char *s, unsigned n)
{
	DWORD w;
	WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), s, n, &w, 0);
}
