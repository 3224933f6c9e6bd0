#ifndef CLIBXML2_SHIM_H
#define CLIBXML2_SHIM_H
/* libxml2: parsing (no network, no DTD) and exclusive C14N. */
#include <libxml/xmlversion.h>
/* Debian builds libxml2 with ICU; its headers would pull the system ICU's
   <unicode/ucnv.h>, which clashes with the ICU that Foundation bundles. We
   never touch the converter fields this guards (only pointers to them). */
#undef LIBXML_ICU_ENABLED
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/c14n.h>
#include <libxml/xmlerror.h>

/* xmlFree is a function pointer variable; give Swift a plain function. */
static inline void roster_xmlFree(void *p) { xmlFree(p); }
#endif
