// glibc's malloc tuning (mallopt), which Glibc's module map leaves out.
#include <malloc.h>
