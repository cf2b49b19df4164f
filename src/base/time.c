/* time.c - RFC 3339 and UUID parsing/formatting */
#include "base/time.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm) */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

bool kl_rfc3339_parse(struct kl_str s, int64_t *ns_out)
{
    const char *p = s.ptr, *e = s.ptr + s.len;
    int Y, M, D, h, mi, sec;
    if (s.len < 20)
        return false;
    if (!digits(p, 4, &Y) || p[4] != '-' || !digits(p + 5, 2, &M) || p[7] != '-' ||
        !digits(p + 8, 2, &D) || (p[10] != 'T' && p[10] != 't' && p[10] != ' ') ||
        !digits(p + 11, 2, &h) || p[13] != ':' || !digits(p + 14, 2, &mi) || p[16] != ':' ||
        !digits(p + 17, 2, &sec))
        return false;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (D > mdays[M - 1])
        return false;
    if (M == 2 && D == 29 && !((Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0))
        return false;
    p += 19;
    int64_t frac = 0;
    if (p < e && p[0] == '.') {
        p++;
        int nd = 0;
        while (p < e && *p >= '0' && *p <= '9') {
            if (nd < 9) {
                frac = frac * 10 + (*p - '0');
            }
            nd++;
            p++;
        }
        if (nd == 0)
            return false;
        for (int i = nd; i < 9; i++)
            frac *= 10;
    }
    if (p >= e)
        return false;
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (e - p < 6 || !digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) ||
            oh > 23 || om > 59)
            return false;
        off = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (p != e)
        return false;
    if (sec == 60)
        sec = 59, frac += 1000000000; /* leap second: chrono folds it into the fraction */
    int64_t days = days_from_civil(Y, (unsigned)M, (unsigned)D);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - off;
    /* ns since 1970 in an int64: years 1678 to 2261 (chrono reads wider; kiln rejects) */
    if (secs < -9223372035LL || secs > 9223372035LL)
        return false;
    *ns_out = secs * 1000000000LL + frac;
    return true;
}

static size_t format_common(int64_t ns, char *out, int frac_digits, const char *zone)
{
    int64_t secs = ns / 1000000000LL, frac = ns % 1000000000LL;
    if (frac < 0)
        frac += 1000000000LL, secs--;
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0)
        rem += 86400, days--;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(out, 41, "%04lld-%02u-%02uT%02d:%02d:%02d", (long long)y, m, d,
                     (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
    if (frac_digits < 0) {
        /* AutoSi: none, 3, 6 or 9 digits */
        if (frac == 0)
            frac_digits = 0;
        else if (frac % 1000000 == 0)
            frac_digits = 3;
        else if (frac % 1000 == 0)
            frac_digits = 6;
        else
            frac_digits = 9;
    }
    if (frac_digits == 3)
        n += snprintf(out + n, 41 - (size_t)n, ".%03lld", (long long)(frac / 1000000));
    else if (frac_digits == 6)
        n += snprintf(out + n, 41 - (size_t)n, ".%06lld", (long long)(frac / 1000));
    else if (frac_digits == 9)
        n += snprintf(out + n, 41 - (size_t)n, ".%09lld", (long long)frac);
    n += snprintf(out + n, 41 - (size_t)n, "%s", zone);
    return (size_t)n;
}

size_t kl_rfc3339_format(int64_t ns, char *out)
{
    return format_common(ns, out, -1, "Z");
}

size_t kl_rfc3339_format_nanos(int64_t ns, char *out)
{
    return format_common(ns, out, 9, "+00:00");
}

bool kl_time_arg_parse(struct kl_str s, int64_t *ns_out)
{
    uint64_t secs;
    if (kl_parse_u64(s, &secs)) {
        if (secs > 9223372035ULL)
            return false;
        *ns_out = (int64_t)secs * 1000000000LL;
        return true;
    }
    return kl_rfc3339_parse(s, ns_out);
}

bool kl_period_parse(struct kl_str p, int64_t *secs_out)
{
    uint64_t n;
    if (p.len < 2 || !kl_parse_u64(kl_str_make(p.ptr, p.len - 1), &n) || n > 100000)
        return false;
    int64_t unit;
    switch (p.ptr[p.len - 1]) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    case 'w':
        unit = 7 * 86400;
        break;
    default:
        return false;
    }
    *secs_out = (int64_t)n * unit;
    return true;
}

int64_t kl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t kl_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

bool kl_uuid_parse(struct kl_str s, struct kl_uuid *out)
{
    const char *p = s.ptr;
    size_t n = s.len;
    if (n >= 9 && memcmp(p, "urn:uuid:", 9) == 0)
        p += 9, n -= 9;
    if (n >= 2 && p[0] == '{' && p[n - 1] == '}')
        p++, n -= 2;
    if (n == 32) {
        for (int i = 0; i < 16; i++) {
            int a = kl_hex_digit(p[2 * i]), b = kl_hex_digit(p[2 * i + 1]);
            if (a < 0 || b < 0)
                return false;
            out->b[i] = (uint8_t)(a << 4 | b);
        }
        return true;
    }
    if (n == 36) {
        if (p[8] != '-' || p[13] != '-' || p[18] != '-' || p[23] != '-')
            return false;
        int k = 0;
        for (size_t i = 0; i < 36;) {
            if (p[i] == '-') {
                i++;
                continue;
            }
            int a = kl_hex_digit(p[i]), b = kl_hex_digit(p[i + 1]);
            if (a < 0 || b < 0)
                return false;
            out->b[k++] = (uint8_t)(a << 4 | b);
            i += 2;
        }
        return k == 16;
    }
    return false;
}

bool kl_uuid_is_nil(const struct kl_uuid *u)
{
    for (int i = 0; i < 16; i++)
        if (u->b[i])
            return false;
    return true;
}

void kl_uuid_hex(const struct kl_uuid *u, char out[33])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[u->b[i] >> 4];
        out[2 * i + 1] = hx[u->b[i] & 15];
    }
    out[32] = '\0';
}

void kl_uuid_dashed(const struct kl_uuid *u, char out[37])
{
    char h[33];
    kl_uuid_hex(u, h);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

void kl_uuid_v4(struct kl_uuid *out)
{
    size_t got = 0;
    while (got < 16) {
        ssize_t r = getrandom(out->b + got, 16 - got, 0);
        if (r > 0)
            got += (size_t)r;
    }
    out->b[6] = (uint8_t)((out->b[6] & 0x0f) | 0x40);
    out->b[8] = (uint8_t)((out->b[8] & 0x3f) | 0x80);
}
