/* vec.h - typed growable arrays in an arena
 *
 * KL_VEC(T) is {items, len, cap}. kl_vec_push grows from the arena by doubling (the old
 * storage stays in the arena until it is released; growth is in place when the vector is the
 * arena's last allocation). Callers check their count limits before pushing.
 */
#ifndef KL_BASE_VEC_H
#define KL_BASE_VEC_H

#include "base/arena.h"

#define KL_VEC(T)                                                                                  \
    struct {                                                                                       \
        T *items;                                                                                  \
        size_t len, cap;                                                                           \
    }

#include <stdint.h>

typedef KL_VEC(uint32_t) kl_vec_u32;

void kl__vec_grow(struct kl_arena *a, void **items, size_t *cap, size_t elem, size_t need);

/* Make room for n more elements. */
#define kl_vec_reserve(a, v, n)                                                                    \
    do {                                                                                           \
        if ((v)->len + (n) > (v)->cap)                                                             \
            kl__vec_grow((a), (void **)&(v)->items, &(v)->cap, sizeof(*(v)->items),                \
                         (v)->len + (n));                                                          \
    } while (0)

#define kl_vec_push(a, v, x)                                                                       \
    do {                                                                                           \
        kl_vec_reserve(a, v, 1);                                                                   \
        (v)->items[(v)->len++] = (x);                                                              \
    } while (0)

#endif
