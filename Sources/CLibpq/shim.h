#ifndef CLIBPQ_SHIM_H
#define CLIBPQ_SHIM_H
/* Debian puts the header in /usr/include/postgresql; pkg-config adds that path,
   but without pkg-config only the second form is found. */
#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h>
#endif
#endif
