/* hash.h - FNV hashes and a string interning table
 *
 * What: FNV-1a 64 (what vroomrs uses for call-tree and function fingerprints, spec §6.3-6.4)
 * and FNV-1 64 (vroom Go, kept for comparisons), incremental so a fingerprint can run along a
 * stack; and struct kl_intern, an open-addressing table that maps equal byte strings to one
 * stable copy in an arena, so interned strings compare by pointer.
 *
 * Ownership: interned bytes live in the arena given at init; the table's slots too.
 * Errors: none. Threads: one at a time. Limits: the caller bounds what it interns.
 * Tests: tests/unit/test_base.c.
 */
#ifndef KL_BASE_HASH_H
#define KL_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/str.h"

#define KL_FNV64_OFFSET 0xcbf29ce484222325ULL
#define KL_FNV64_PRIME 0x100000001b3ULL

static inline uint64_t kl_fnv1a64_update(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= KL_FNV64_PRIME;
    }
    return h;
}
static inline uint64_t kl_fnv1a64(const void *p, size_t n)
{
    return kl_fnv1a64_update(KL_FNV64_OFFSET, p, n);
}
static inline uint64_t kl_fnv1_64_update(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h *= KL_FNV64_PRIME;
        h ^= s[i];
    }
    return h;
}

/* A fast 64-bit hash for table lookups (not a stable fingerprint). */
uint64_t kl_hash_bytes(const void *p, size_t n);

struct kl_intern_slot;

struct kl_intern {
    struct kl_arena *arena;
    struct kl_intern_slot *slots;
    size_t cap, len; /* cap is a power of two */
};

void kl_intern_init(struct kl_intern *t, struct kl_arena *a);
/* The stable copy of s (ptr != NULL even for ""). An absent s (ptr NULL) stays absent. */
struct kl_str kl_intern(struct kl_intern *t, struct kl_str s);

#endif
