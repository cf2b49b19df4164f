/* hash.c - table hash and string interning */
#include "base/hash.h"

#include <string.h>

struct kl_intern_slot {
    uint64_t h;
    struct kl_str s;
};

uint64_t kl_hash_bytes(const void *p, size_t n)
{
    /* FNV-1a over 8-byte words, then a final mix: fast enough for short strings */
    const unsigned char *s = p;
    uint64_t h = KL_FNV64_OFFSET ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    while (n--) {
        h = (h ^ *s++) * KL_FNV64_PRIME;
    }
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ULL;
    h ^= h >> 32;
    return h;
}

void kl_intern_init(struct kl_intern *t, struct kl_arena *a)
{
    t->arena = a;
    t->cap = 64;
    t->len = 0;
    t->slots = kl_arena_calloc(a, t->cap, sizeof *t->slots);
}

static void rehash(struct kl_intern *t)
{
    size_t ncap = t->cap * 2;
    struct kl_intern_slot *ns = kl_arena_calloc(t->arena, ncap, sizeof *ns);
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].s.ptr)
            continue;
        size_t j = t->slots[i].h & (ncap - 1);
        while (ns[j].s.ptr)
            j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
    }
    t->slots = ns;
    t->cap = ncap;
}

struct kl_str kl_intern(struct kl_intern *t, struct kl_str s)
{
    if (!s.ptr)
        return s;
    uint64_t h = kl_hash_bytes(s.ptr, s.len);
    size_t j = h & (t->cap - 1);
    while (t->slots[j].s.ptr) {
        if (t->slots[j].h == h && kl_str_eq(t->slots[j].s, s))
            return t->slots[j].s;
        j = (j + 1) & (t->cap - 1);
    }
    struct kl_str c = {kl_arena_strndup(t->arena, s.ptr, s.len), s.len};
    t->slots[j].h = h;
    t->slots[j].s = c;
    if (++t->len * 4 > t->cap * 3)
        rehash(t);
    return c;
}
