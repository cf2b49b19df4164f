/* test_fmt_f64.c - kl_fmt_f64 against a slow reference over many doubles
 *
 * kl_fmt_f64 takes shortcuts (integers formatted directly; 15 significant digits tried
 * first). The reference here is the definition: the fewest significant digits (1..17) whose
 * correctly rounded %e form reads back as the same double, trailing zeros dropped. Both must
 * give the same digits and decimal exponent for every input, so the test parses
 * kl_fmt_f64's output back and compares digits, exponent and value.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "kl_test.h"

/* digits (no dot, no trailing zeros) and exponent of the shortest round-trip form */
static void reference(double v, char *digits, int *exp10)
{
    char tmp[48];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
    const char *p = tmp + (v < 0 ? 1 : 0);
    int nd = 0;
    while (*p != 'e') {
        if (*p != '.')
            digits[nd++] = *p;
        p++;
    }
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    *exp10 = (int)strtol(p + 1, NULL, 10);
}

/* the same two things read off kl_fmt_f64's output ("123.45", "0.001", "1.5e-7", "1e16") */
static void parse_output(const char *s, char *digits, int *exp10)
{
    const char *p = s + (*s == '-' ? 1 : 0);
    int nd = 0, point = -1, lead = 0;
    bool seen_nonzero = false;
    for (; *p && *p != 'e'; p++) {
        if (*p == '.') {
            point = nd + lead;
            continue;
        }
        if (!seen_nonzero && *p == '0') {
            lead++;
            continue;
        }
        seen_nonzero = true;
        digits[nd++] = *p;
    }
    int intdigits = point < 0 ? nd + lead : point;
    int e = *p == 'e' ? (int)strtol(p + 1, NULL, 10) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    *exp10 = intdigits - lead - 1 + e;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t next_u64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void check(double v)
{
    char out[64], d1[32], d2[32];
    int e1, e2;
    kl_fmt_f64(v, out);
    reference(v, d1, &e1);
    parse_output(out, d2, &e2);
    if (strcmp(d1, d2) != 0 || e1 != e2 || strtod(out, NULL) != v) {
        char msg[160];
        snprintf(msg, sizeof msg, "%.17g -> \"%s\", reference digits %s exp %d", v, out, d1, e1);
        ASSERT_EQ_STR(msg, "");
    }
}

static void test_random_bits(void)
{
    for (int i = 0; i < 200000; i++) {
        uint64_t bits = next_u64();
        double v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v) || v == 0)
            continue;
        check(v);
    }
}

/* what SDKs send: short decimals, integers, values near powers of ten and of two */
static void test_typical_values(void)
{
    for (int i = 0; i < 200000; i++) {
        uint64_t r = next_u64();
        int decimals = (int)(r % 8);
        double mant = (double)((r >> 8) % 100000000u);
        double v = mant / pow(10, decimals);
        check(v);
        check(-v == 0 ? 1 : -v);
        check((double)(r >> 11)); /* integers up to 2^53 */
    }
    for (int e = -320; e <= 308; e++) {
        check(pow(10, e));
        check(nextafter(pow(10, e), INFINITY));
        check(nextafter(pow(10, e), 0));
    }
    for (int e = -1070; e <= 1023; e++)
        check(ldexp(1, e));
    check(1e15 - 1);
    check(1e15);
    check(999999999999999.9);
    check(5e-324);
    check(1.7976931348623157e308);
}

int main(void)
{
    KL_RUN(test_random_bits);
    KL_RUN(test_typical_values);
    KL_TEST_DONE();
}
