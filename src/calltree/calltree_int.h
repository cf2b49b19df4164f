/* calltree_int.h - shared between the files of calltree/ only
 *
 * No other module includes this; the public surface is calltree/calltree.h.
 */
#ifndef KL_CALLTREE_CALLTREE_INT_H
#define KL_CALLTREE_CALLTREE_INT_H

#include <stdint.h>

#include "base/hash.h"
#include "base/str.h"

/* The function key of §6.4: (u32) FNV-1a 64 over package ":" name. */
static inline uint32_t kl__calltree_fingerprint(struct kl_str package, struct kl_str name)
{
    uint64_t h = kl_fnv1a64_update(KL_FNV64_OFFSET, package.ptr, package.len);
    h = kl_fnv1a64_update(h, ":", 1);
    h = kl_fnv1a64_update(h, name.ptr, name.len);
    return (uint32_t)h;
}

#endif
