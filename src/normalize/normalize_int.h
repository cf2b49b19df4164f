/* normalize_int.h - shared between the files of normalize/ only (and its unit test)
 *
 * No other module includes this; the public surface is normalize/normalize.h.
 */
#ifndef KL_NORMALIZE_NORMALIZE_INT_H
#define KL_NORMALIZE_NORMALIZE_INT_H

#include <stdbool.h>

#include "base/str.h"

/* Whether name is a top-level module of the Python standard library (exact match). */
bool kl__normalize_is_python_stdlib(struct kl_str name);
/* Self-check for the test: the table is strictly increasing in byte order. */
bool kl__normalize_python_stdlib_sorted(void);

#endif
