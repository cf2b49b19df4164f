/* str.c - slice helpers and strict number parsing */
#include "base/str.h"

bool kl_str_contains(struct kl_str a, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return true;
    if (a.len < n)
        return false;
    return memmem(a.ptr, a.len, needle, n) != NULL;
}

int kl_str_cmp(struct kl_str a, struct kl_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

bool kl_parse_u64(struct kl_str s, uint64_t *out)
{
    if (s.len == 0 || s.len > 20)
        return false;
    /* 19 digits cannot overflow, so only a 20th digit needs the (dividing) check; sample
     * timestamps and thread ids sent as strings come through here by the hundred thousand */
    uint64_t v = 0;
    size_t n = s.len < 19 ? s.len : 19;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)s.ptr[i] - '0';
        if (d > 9)
            return false;
        v = v * 10 + d;
    }
    for (size_t i = n; i < s.len; i++) {
        unsigned d = (unsigned char)s.ptr[i] - '0';
        if (d > 9)
            return false;
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool kl_parse_i64(struct kl_str s, int64_t *out)
{
    bool neg = s.len && s.ptr[0] == '-';
    uint64_t u;
    if (!kl_parse_u64(neg ? kl_str_make(s.ptr + 1, s.len - 1) : s, &u))
        return false;
    if (neg) {
        if (u > (uint64_t)INT64_MAX + 1)
            return false;
        *out = (int64_t)(0 - u);
    } else {
        if (u > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)u;
    }
    return true;
}

bool kl_parse_hex_u64(struct kl_str s, uint64_t *out)
{
    if (s.len >= 2 && s.ptr[0] == '0' && (s.ptr[1] == 'x' || s.ptr[1] == 'X'))
        s = kl_str_make(s.ptr + 2, s.len - 2);
    while (s.len > 1 && s.ptr[0] == '0')
        s = kl_str_make(s.ptr + 1, s.len - 1);
    if (s.len == 0 || s.len > 16)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        int d = kl_hex_digit(s.ptr[i]);
        if (d < 0)
            return false;
        v = (v << 4) | (unsigned)d;
    }
    *out = v;
    return true;
}
