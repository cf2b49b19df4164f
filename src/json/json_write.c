/* json_write.c - streaming JSON writer (ours: ~900 MB/s vs 45-200 MB/s for library dumpers,
 * ../shared/spec/dependency-bench.md §2). Output matches serde_json's compact form: no
 * spaces, '/' and non-ASCII unescaped, control characters as \n \t ... or \u00XX, doubles in
 * ryu's shortest form ("82.0", "1e-7"), NaN and infinities as null. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "json/json.h"

void kl_jw_init(struct kl_jw *w, struct kl_buf *out)
{
    w->out = out;
    w->depth = 0;
    w->first[0] = true;
    w->after_key = false;
}

static inline void sep(struct kl_jw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (!w->first[w->depth])
        kl_buf_putc(w->out, ',');
    w->first[w->depth] = false;
}

static void open_(struct kl_jw *w, char c)
{
    sep(w);
    kl_buf_putc(w->out, c);
    if (w->depth + 1 >= KL_JW_MAX_DEPTH) {
        kl_err_set(&w->out->err, KL_R_INTERNAL, "json writer nested too deep");
        return;
    }
    w->first[++w->depth] = true;
}

static void close_(struct kl_jw *w, char c)
{
    if (w->depth > 0)
        w->depth--;
    kl_buf_putc(w->out, c);
}

void kl_jw_obj_begin(struct kl_jw *w)
{
    open_(w, '{');
}
void kl_jw_obj_end(struct kl_jw *w)
{
    close_(w, '}');
}
void kl_jw_arr_begin(struct kl_jw *w)
{
    open_(w, '[');
}
void kl_jw_arr_end(struct kl_jw *w)
{
    close_(w, ']');
}

/* Length of the prefix of p[0..n) that needs no escaping, 8 bytes at a time. */
static inline size_t plain_prefix(const unsigned char *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        uint64_t m = kl__json_special8(w);
        if (m)
            return i + (size_t)__builtin_ctzll(m) / 8;
    }
    for (; i < n; i++)
        if (p[i] < 0x20 || p[i] == '"' || p[i] == '\\')
            return i;
    return n;
}

void kl_json_escape(struct kl_buf *b, struct kl_str s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s.ptr, *e = p + s.len;
    while (p < e) {
        size_t run = plain_prefix(p, (size_t)(e - p));
        kl_buf_append(b, p, run);
        p += run;
        if (p == e)
            break;
        unsigned char c = *p++;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        kl_buf_append(b, esc, n);
    }
}

/* The string in quotes; the common case (nothing to escape) is one reserve and one copy. */
static void put_string(struct kl_buf *b, struct kl_str s)
{
    if (kl_buf_reserve(b, s.len + 2) < 0)
        return;
    size_t plain = plain_prefix((const unsigned char *)s.ptr, s.len);
    char *o = b->ptr + b->len;
    o[0] = '"';
    if (plain == s.len) {
        memcpy(o + 1, s.ptr, s.len);
        o[s.len + 1] = '"';
        b->len += s.len + 2;
        b->ptr[b->len] = '\0';
        return;
    }
    b->len++;
    kl_json_escape(b, s);
    kl_buf_putc(b, '"');
}

/* Keys given as C literals are plain ASCII by contract: no escaping pass. */
void kl_jw_key_n(struct kl_jw *w, const char *key, size_t n)
{
    sep(w);
    if (kl_buf_reserve(w->out, n + 3) < 0)
        return;
    char *p = w->out->ptr + w->out->len;
    p[0] = '"';
    memcpy(p + 1, key, n);
    p[n + 1] = '"';
    p[n + 2] = ':';
    w->out->len += n + 3;
    w->out->ptr[w->out->len] = '\0';
    w->after_key = true;
}

void kl_jw_key_str(struct kl_jw *w, struct kl_str key)
{
    sep(w);
    put_string(w->out, key);
    kl_buf_putc(w->out, ':');
    w->after_key = true;
}

void kl_jw_str(struct kl_jw *w, struct kl_str s)
{
    sep(w);
    put_string(w->out, s);
}

void kl_jw_key_str_or_null(struct kl_jw *w, const char *key, struct kl_str s)
{
    kl_jw_key(w, key);
    if (s.ptr)
        kl_jw_str(w, s);
    else
        kl_jw_null(w);
}

void kl_jw_cstr(struct kl_jw *w, const char *s)
{
    kl_jw_str(w, kl_str_c(s));
}

static const char digits2[201] = "00010203040506070809101112131415161718192021222324"
                                 "25262728293031323334353637383940414243444546474849"
                                 "50515253545556575859606162636465666768697071727374"
                                 "75767778798081828384858687888990919293949596979899";

static inline size_t count_digits(uint64_t v)
{
    size_t n = 1;
    for (;;) {
        if (v < 10)
            return n;
        if (v < 100)
            return n + 1;
        if (v < 1000)
            return n + 2;
        if (v < 10000)
            return n + 3;
        v /= 10000;
        n += 4;
    }
}

/* Decimal digits of v into out (no NUL); returns the length. Written in place from the
 * end, two digits per division: no temporary and no copy (this is the stacks' hot path). */
static inline size_t fmt_u64(uint64_t v, char *out)
{
    if (v < 100) {
        if (v < 10) {
            out[0] = (char)('0' + v);
            return 1;
        }
        memcpy(out, digits2 + 2 * v, 2);
        return 2;
    }
    size_t n = count_digits(v);
    char *p = out + n;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        p[0] = digits2[2 * r];
        p[1] = digits2[2 * r + 1];
    }
    if (v >= 10) {
        p[-2] = digits2[2 * v];
        p[-1] = digits2[2 * v + 1];
    } else {
        p[-1] = (char)('0' + v);
    }
    return n;
}

size_t kl_fmt_u64(uint64_t v, char *out)
{
    return fmt_u64(v, out);
}

char *kl_jw_raw_begin(struct kl_jw *w, size_t n)
{
    sep(w);
    if (kl_buf_reserve(w->out, n) < 0)
        return NULL;
    return w->out->ptr + w->out->len;
}

void kl_jw_raw_end(struct kl_jw *w, char *end)
{
    w->out->len = (size_t)(end - w->out->ptr);
    w->out->ptr[w->out->len] = '\0';
}

void kl_jw_u64(struct kl_jw *w, uint64_t v)
{
    sep(w);
    if (kl_buf_reserve(w->out, 24) < 0)
        return;
    w->out->len += fmt_u64(v, w->out->ptr + w->out->len);
    w->out->ptr[w->out->len] = '\0';
}

/* The 8 decimal digits of v < 10^8, zero-padded, as the 8 bytes of a little-endian word
 * (first digit in the low byte): both 4-digit halves, then their 2-digit halves, then single
 * digits are split in parallel lanes with multiplications by reciprocals (exact for these
 * ranges: x * 10486 >> 20 == x / 100 for x < 10^4, x * 103 >> 10 == x / 10 for x < 100). */
static inline uint64_t digits8_word(uint32_t v)
{
    uint64_t x = (uint64_t)(v / 10000) | ((uint64_t)(v % 10000) << 32);
    uint64_t hi = ((x * 10486) >> 20) & 0x0000007F0000007Fu;
    x = hi | ((x - hi * 100) << 16);
    hi = ((x * 103) >> 10) & 0x000F000F000F000Fu;
    x = hi | ((x - hi * 10) << 8);
    return x + 0x3030303030303030u;
}

/* fmt_u64 for stack entries: values below 10^8 as one word store without a branch on their
 * length. Writes 8 bytes at out even for shorter numbers (the caller has the room). */
static inline size_t fmt_u32_wide(uint32_t v, char *out)
{
    if (v >= 100000000)
        return fmt_u64(v, out);
    static const uint32_t pow10[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};
    /* digits = floor(log10(v)) + 1 via the bit length (1233/4096 ~ log10(2)) */
    unsigned bits = 32 - (unsigned)__builtin_clz(v | 1);
    unsigned n = (bits * 1233) >> 12;
    n += v >= pow10[n < 8 ? n : 7] && n < 8;
    if (n == 0)
        n = 1;
    uint64_t word = digits8_word(v) >> (8 * (8 - n));
    memcpy(out, &word, 8);
    return n;
}

size_t kl__fmt_u32_wide(uint32_t v, char *out)
{
    return fmt_u32_wide(v, out);
}

size_t kl_fmt_u64_wide(uint64_t v, char *out)
{
    if (v < 100000000)
        return fmt_u32_wide((uint32_t)v, out);
    if (v >= 10000000000000000u)
        return fmt_u64(v, out);
    size_t n = fmt_u32_wide((uint32_t)(v / 100000000), out);
    uint64_t lo = digits8_word((uint32_t)(v % 100000000));
    memcpy(out + n, &lo, 8);
    return n + 8;
}

void kl_jw_numtab_init(struct kl_jw_numtab *t, uint32_t n)
{
    if (n > KL_JW_NUMTAB_MAX)
        n = KL_JW_NUMTAB_MAX;
    t->n = n;
    t->word = kl_xmalloc((n ? n : 1) * sizeof *t->word);
    for (uint32_t i = 0; i < n; i++) {
        char d[24] = {0};
        size_t len = fmt_u64(i, d);
        uint64_t wd;
        memcpy(&wd, d, 8);
        t->word[i] = (wd & 0x00FFFFFFFFFFFFFFu) | ((uint64_t)len << 56);
    }
}

void kl_jw_numtab_release(struct kl_jw_numtab *t)
{
    free(t->word);
    t->word = NULL;
    t->n = 0;
}

void kl_jw_u32_array_tab(struct kl_jw *w, const uint32_t *v, size_t n, const struct kl_jw_numtab *t)
{
    sep(w);
    if (kl_buf_reserve(w->out, n * 11 + 2 + 8) < 0)
        return;
    char *p = w->out->ptr + w->out->len, *start = p;
    *p++ = '[';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        uint32_t x = v[i];
        if (x < t->n) {
            uint64_t wd = t->word[x];
            memcpy(p, &wd, 8);
            p += wd >> 56;
        } else {
            p += fmt_u32_wide(x, p);
        }
    }
    *p++ = ']';
    w->out->len += (size_t)(p - start);
    w->out->ptr[w->out->len] = '\0';
}

void kl_jw_u32_array(struct kl_jw *w, const uint32_t *v, size_t n)
{
    sep(w);
    /* 10 digits and a comma per entry, 2 brackets, and 8 bytes of room for the last word
     * store of fmt_u32_wide */
    if (kl_buf_reserve(w->out, n * 11 + 2 + 8) < 0)
        return;
    char *p = w->out->ptr + w->out->len, *start = p;
    *p++ = '[';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        p += fmt_u32_wide(v[i], p);
    }
    *p++ = ']';
    w->out->len += (size_t)(p - start);
    w->out->ptr[w->out->len] = '\0';
}

void kl_jw_i64(struct kl_jw *w, int64_t v)
{
    sep(w);
    if (kl_buf_reserve(w->out, 24) < 0)
        return;
    char *p = w->out->ptr + w->out->len;
    size_t n = 0;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        p[n++] = '-';
        u = 0 - u;
    }
    n += fmt_u64(u, p + n);
    w->out->len += n;
    w->out->ptr[w->out->len] = '\0';
}

static size_t layout(char *out, bool neg, const char *digits, int nd, int kk);

static const double pow10_exact[18] = {1e0, 1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,
                                       1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17};

/* The common case without printf: |v| = m / 10^k for the smallest k (0..17) at which some
 * integer m < 2^53 reads back as v. m / 10^k with both exact is correctly rounded, which is
 * exactly what reading the decimal m e-k gives, so "reads back" is tested exactly. At the
 * smallest such k, m has the fewest digits of any decimal that reads back (for a fixed
 * magnitude, fewer decimals means fewer digits); when two k-decimal candidates both read back
 * the choice between them is ryu's nearest rule, left to the reference path. false for
 * anything else (huge, tiny, or needing 17 significant digits with no short form). */
static bool shortest_fast(double v, uint64_t *m_out, int *k_out)
{
    double a = fabs(v);
    if (!(a >= 1e-7 && a < 9007199254740992.0))
        return false;
    for (int k = 0; k <= 17; k++) {
        double t = a * pow10_exact[k];
        if (t >= 9007199254740992.0)
            return false;
        uint64_t lo = (uint64_t)t; /* floor: t >= 0 */
        bool lo_ok = (double)lo / pow10_exact[k] == a;
        bool hi_ok = (double)(lo + 1) / pow10_exact[k] == a;
        if (lo_ok && hi_ok)
            return false;
        if (lo_ok || hi_ok) {
            uint64_t m = lo_ok ? lo : lo + 1;
            if (m == 0)
                return false;
            *m_out = m;
            *k_out = k;
            return true;
        }
    }
    return false;
}

/* Shortest digits that read back as v, laid out the way ryu (serde_json) does: the exact
 * m / 10^k form when shortest_fast finds one, else (non-finite, zero, huge, tiny, ambiguous)
 * the reference path below. */
size_t kl_fmt_f64(double v, char *out)
{
    uint64_t m;
    int k;
    if (!shortest_fast(v, &m, &k))
        return kl__fmt_f64_printf(v, out);
    char digits[24];
    int nd = (int)fmt_u64(m, digits);
    int kk = nd - k; /* position of the decimal point from the left of digits */
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    return layout(out, v < 0, digits, nd, kk);
}

/* The reference (and fallback) path: the smallest precision whose %e form round-trips. */
size_t kl__fmt_f64_printf(double v, char *out)
{
    if (!isfinite(v)) {
        memcpy(out, "null", 5);
        return 4;
    }
    if (v == 0) {
        const char *z = signbit(v) ? "-0.0" : "0.0";
        size_t n = strlen(z);
        memcpy(out, z, n + 1);
        return n;
    }
    char tmp[40];
    int lo = 1, hi = 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(tmp, sizeof tmp, "%.*e", mid - 1, v);
        if (strtod(tmp, NULL) == v)
            hi = mid;
        else
            lo = mid + 1;
    }
    snprintf(tmp, sizeof tmp, "%.*e", lo - 1, v);
    /* tmp = [-]d[.ddd]e[+-]XX */
    char digits[24];
    int nd = 0;
    const char *p = tmp;
    bool neg = false;
    if (*p == '-')
        neg = true, p++;
    while (*p && *p != 'e') {
        if (*p != '.')
            digits[nd++] = *p;
        p++;
    }
    int exp10 = (int)strtol(p + 1, NULL, 10); /* value = d.ddd x 10^exp10 */
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    return layout(out, neg, digits, nd, exp10 + 1);
}

/* digits[0..nd) (no trailing zeros) with the decimal point kk digits from their left, laid
 * out the way ryu (serde_json) does; returns the length written (plus a NUL). */
static size_t layout(char *out, bool neg, const char *digits, int nd, int kk)
{
    size_t n = 0;
    if (neg)
        out[n++] = '-';
    if (nd <= kk && kk <= 16) {
        memcpy(out + n, digits, (size_t)nd);
        n += (size_t)nd;
        for (int i = nd; i < kk; i++)
            out[n++] = '0';
        out[n++] = '.';
        out[n++] = '0';
    } else if (0 < kk && kk <= 16) {
        memcpy(out + n, digits, (size_t)kk);
        n += (size_t)kk;
        out[n++] = '.';
        memcpy(out + n, digits + kk, (size_t)(nd - kk));
        n += (size_t)(nd - kk);
    } else if (-5 < kk && kk <= 0) {
        out[n++] = '0';
        out[n++] = '.';
        for (int i = kk; i < 0; i++)
            out[n++] = '0';
        memcpy(out + n, digits, (size_t)nd);
        n += (size_t)nd;
    } else {
        out[n++] = digits[0];
        if (nd > 1) {
            out[n++] = '.';
            memcpy(out + n, digits + 1, (size_t)(nd - 1));
            n += (size_t)(nd - 1);
        }
        n += (size_t)snprintf(out + n, 8, "e%d", kk - 1);
    }
    out[n] = '\0';
    return n;
}

void kl_jw_f64(struct kl_jw *w, double v)
{
    sep(w);
    char tmp[48];
    size_t n = kl_fmt_f64(v, tmp);
    kl_buf_append(w->out, tmp, n);
}

void kl_jw_bool(struct kl_jw *w, bool v)
{
    sep(w);
    kl_buf_puts(w->out, v ? "true" : "false");
}

void kl_jw_null(struct kl_jw *w)
{
    sep(w);
    kl_buf_puts(w->out, "null");
}

void kl_jw_raw(struct kl_jw *w, const char *p, size_t n)
{
    sep(w);
    kl_buf_append(w->out, p, n);
}
