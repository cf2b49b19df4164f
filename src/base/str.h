/* str.h - non-owning string slices and small helpers on them
 *
 * What: struct kl_str {ptr, len} points into someone else's bytes (a JSON parser's string
 * buffer, a request body, an arena). It is never NUL-terminated by contract.
 * Ownership: a slice borrows; whoever produced it says how long the bytes live.
 * Tests: tests/unit/test_base.c.
 */
#ifndef KL_BASE_STR_H
#define KL_BASE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct kl_str {
    const char *ptr;
    size_t len;
};

#define KL_STR(lit) ((struct kl_str){(lit), sizeof(lit) - 1})
#define KL_STR_NULL ((struct kl_str){NULL, 0})

static inline struct kl_str kl_str_make(const char *p, size_t n)
{
    return (struct kl_str){p, n};
}
static inline struct kl_str kl_str_c(const char *s)
{
    return (struct kl_str){s, s ? strlen(s) : 0};
}
/* A slice that was never set (absent field) has ptr == NULL; "" present has ptr != NULL. */
static inline bool kl_str_is_set(struct kl_str s)
{
    return s.ptr != NULL;
}
static inline bool kl_str_empty(struct kl_str s)
{
    return s.len == 0;
}
static inline bool kl_str_eq(struct kl_str a, struct kl_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}
static inline bool kl_str_eq_c(struct kl_str a, const char *lit)
{
    size_t n = __builtin_strlen(lit);
    if (a.len != n)
        return false;
    /* short literals (JSON keys): a byte loop the compiler unrolls, no memcmp call */
    for (size_t i = 0; i < n; i++)
        if (a.ptr[i] != lit[i])
            return false;
    return true;
}
static inline bool kl_str_starts(struct kl_str a, const char *pre)
{
    size_t n = strlen(pre);
    return a.len >= n && memcmp(a.ptr, pre, n) == 0;
}
static inline bool kl_str_ends(struct kl_str a, const char *suf)
{
    size_t n = strlen(suf);
    return a.len >= n && memcmp(a.ptr + a.len - n, suf, n) == 0;
}
/* Whether needle occurs in a. */
bool kl_str_contains(struct kl_str a, const char *needle);
int kl_str_cmp(struct kl_str a, struct kl_str b);

/* Parse a decimal u64 (digits only, no sign, no spaces). false on empty, junk or overflow. */
bool kl_parse_u64(struct kl_str s, uint64_t *out);
/* Parse a decimal i64 with optional '-'. */
bool kl_parse_i64(struct kl_str s, int64_t *out);
/* The value of one hex digit (either case), or -1. */
static inline int kl_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
/* Parse "0x..." (or bare) hex into u64; false on junk or more than 64 bits. */
bool kl_parse_hex_u64(struct kl_str s, uint64_t *out);

#endif
