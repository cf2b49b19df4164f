/* vec.c - arena vector growth */
#include "base/vec.h"

#include "base/err.h"

void kl__vec_grow(struct kl_arena *a, void **items, size_t *cap, size_t elem, size_t need)
{
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    kl_assert(ncap <= SIZE_MAX / elem);
    *items = kl_arena_grow(a, *items, *cap * elem, ncap * elem);
    *cap = ncap;
}
