/* test_base.c - arena, slices, bounded buffers, hashing/interning, time and uuid helpers */
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/hash.h"
#include "base/str.h"
#include "base/time.h"
#include "base/vec.h"
#include "kl_test.h"

static void test_arena(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    char *p = kl_arena_alloc(&a, 10);
    ASSERT_TRUE(((uintptr_t)p & 15) == 0);
    char *big = kl_arena_alloc(&a, 1 << 20); /* own block */
    memset(big, 1, 1 << 20);
    char *q = kl_arena_alloc(&a, 10); /* still from the head block */
    ASSERT_TRUE(q == p + 16);
    int *z = kl_arena_calloc(&a, 100, sizeof(int));
    for (int i = 0; i < 100; i++)
        ASSERT_EQ_INT(z[i], 0);
    /* grow in place when last */
    char *g = kl_arena_alloc(&a, 32);
    char *g2 = kl_arena_grow(&a, g, 32, 64);
    ASSERT_TRUE(g == g2);
    KL_VEC(int) v = {0};
    for (int i = 0; i < 10000; i++)
        kl_vec_push(&a, &v, i);
    ASSERT_EQ_INT(v.len, 10000);
    ASSERT_EQ_INT(v.items[9999], 9999);
    ASSERT_EQ_STR(kl_arena_strndup(&a, "hello", 3), "hel");
    kl_arena_release(&a);
}

static int released;
static void on_release(void *arg)
{
    released += *(int *)arg;
}

static void test_arena_cleanup(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    int one = 1, two = 2;
    kl_arena_on_release(&a, on_release, &one);
    kl_arena_on_release(&a, on_release, &two);
    kl_arena_release(&a);
    ASSERT_EQ_INT(released, 3);
}

static void test_numbers(void)
{
    uint64_t u;
    int64_t i;
    ASSERT_TRUE(kl_parse_u64(KL_STR("18446744073709551615"), &u) && u == UINT64_MAX);
    ASSERT_TRUE(!kl_parse_u64(KL_STR("18446744073709551616"), &u));
    ASSERT_TRUE(!kl_parse_u64(KL_STR(""), &u));
    ASSERT_TRUE(!kl_parse_u64(KL_STR("12a"), &u));
    ASSERT_TRUE(!kl_parse_u64(KL_STR("-1"), &u));
    ASSERT_TRUE(kl_parse_i64(KL_STR("-9223372036854775808"), &i) && i == INT64_MIN);
    ASSERT_TRUE(!kl_parse_i64(KL_STR("9223372036854775808"), &i));
    ASSERT_TRUE(kl_parse_hex_u64(KL_STR("0xA722447ffffffffc"), &u) && u == 0xa722447ffffffffcULL);
    ASSERT_TRUE(kl_parse_hex_u64(KL_STR("0x000000010258c000"), &u) && u == 0x10258c000ULL);
    ASSERT_TRUE(!kl_parse_hex_u64(KL_STR("0x1ffffffffffffffff"), &u));
    ASSERT_TRUE(!kl_parse_hex_u64(KL_STR("0x"), &u));
    ASSERT_TRUE(!kl_parse_hex_u64(KL_STR("0xg"), &u));
}

static void test_buf(void)
{
    struct kl_buf b;
    kl_buf_init(&b, 8);
    ASSERT_EQ_INT(kl_buf_puts(&b, "12345678"), 0);
    ASSERT_EQ_INT(kl_buf_putc(&b, '9'), -1);
    ASSERT_EQ_INT(b.err.reason, KL_R_BUF_TOO_BIG);
    ASSERT_EQ_STR(b.ptr, "12345678");
    kl_buf_release(&b);
    kl_buf_init(&b, 1024);
    kl_buf_printf(&b, "%d-%s", 42, "x");
    ASSERT_EQ_STR(b.ptr, "42-x");
    size_t n;
    char *p = kl_buf_detach(&b, &n);
    ASSERT_EQ_INT(n, 4);
    free(p);
}

static void test_intern(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_intern t;
    kl_intern_init(&t, &a);
    char tmp[32];
    struct kl_str first[500];
    for (int i = 0; i < 500; i++) {
        int n = snprintf(tmp, sizeof tmp, "s%d", i);
        first[i] = kl_intern(&t, kl_str_make(tmp, (size_t)n));
    }
    for (int i = 0; i < 500; i++) {
        int n = snprintf(tmp, sizeof tmp, "s%d", i);
        struct kl_str s = kl_intern(&t, kl_str_make(tmp, (size_t)n));
        ASSERT_TRUE(s.ptr == first[i].ptr);
    }
    ASSERT_TRUE(kl_intern(&t, KL_STR_NULL).ptr == NULL);
    ASSERT_TRUE(kl_intern(&t, KL_STR("")).ptr != NULL);
    kl_arena_release(&a);
    /* FNV-1a 64 of "foo:foo" cut to 32 bits is vroomrs's 2655321105; FNV-1 is 313808793 */
    ASSERT_EQ_U64((uint32_t)kl_fnv1a64("foo:foo", 7), 2655321105u);
    ASSERT_EQ_U64((uint32_t)kl_fnv1_64_update(KL_FNV64_OFFSET, "foo:foo", 7), 313808793u);
}

static void test_time(void)
{
    int64_t ns;
    char out[48];
    ASSERT_TRUE(kl_rfc3339_parse(KL_STR("2022-09-01T09:45:00.000Z"), &ns));
    ASSERT_EQ_INT(ns, 1662025500LL * 1000000000LL);
    kl_rfc3339_format(ns, out);
    ASSERT_EQ_STR(out, "2022-09-01T09:45:00Z");
    ASSERT_TRUE(kl_rfc3339_parse(KL_STR("2025-05-20T06:36:46.395Z"), &ns));
    kl_rfc3339_format(ns, out);
    ASSERT_EQ_STR(out, "2025-05-20T06:36:46.395Z");
    ASSERT_TRUE(kl_rfc3339_parse(KL_STR("2025-05-22T04:29:46.163000106+02:00"), &ns));
    kl_rfc3339_format_nanos(ns, out);
    ASSERT_EQ_STR(out, "2025-05-22T02:29:46.163000106+00:00");
    kl_rfc3339_format(ns, out);
    ASSERT_EQ_STR(out, "2025-05-22T02:29:46.163000106Z");
    ASSERT_TRUE(kl_rfc3339_parse(KL_STR("1969-12-31T23:59:59.5Z"), &ns));
    ASSERT_EQ_INT(ns, -500000000);
    ASSERT_TRUE(!kl_rfc3339_parse(KL_STR("2022-02-30T00:00:00Z"), &ns));
    ASSERT_TRUE(!kl_rfc3339_parse(KL_STR("2022-09-01 09:45"), &ns));
    ASSERT_TRUE(!kl_rfc3339_parse(KL_STR("2022-09-01T09:45:00"), &ns));
    ASSERT_TRUE(!kl_rfc3339_parse(KL_STR("2022-09-01T09:45:00Zjunk"), &ns));
}

static void test_uuid(void)
{
    struct kl_uuid u;
    char h[33], d[37];
    ASSERT_TRUE(kl_uuid_parse(KL_STR("9bd24eb4-fd81-4a00-8dde-fd035d363570"), &u));
    kl_uuid_hex(&u, h);
    ASSERT_EQ_STR(h, "9bd24eb4fd814a008ddefd035d363570");
    ASSERT_TRUE(kl_uuid_parse(KL_STR("9BD24EB4FD814A008DDEFD035D363570"), &u));
    kl_uuid_dashed(&u, d);
    ASSERT_EQ_STR(d, "9bd24eb4-fd81-4a00-8dde-fd035d363570");
    ASSERT_TRUE(!kl_uuid_parse(KL_STR("9bd24eb4-fd81-4a00-8dde-fd035d36357"), &u));
    ASSERT_TRUE(!kl_uuid_parse(KL_STR("9bd24eb4xfd81-4a00-8dde-fd035d363570"), &u));
    ASSERT_TRUE(kl_uuid_parse(KL_STR("00000000000000000000000000000000"), &u) &&
                kl_uuid_is_nil(&u));
    kl_uuid_v4(&u);
    ASSERT_EQ_INT(u.b[6] >> 4, 4);
}

int main(void)
{
    KL_RUN(test_arena);
    KL_RUN(test_arena_cleanup);
    KL_RUN(test_numbers);
    KL_RUN(test_buf);
    KL_RUN(test_intern);
    KL_RUN(test_time);
    KL_RUN(test_uuid);
    KL_TEST_DONE();
}
