/* test_json.c - the JSON reader (simdjson On-Demand behind json.h) and the writer */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "kl_test.h"

struct doc {
    struct kl_arena a;
    char *buf;
    struct kl_err err;
    struct kl_json_doc *d;
    struct kl_json_val root;
};

static int open_doc(struct doc *x, const char *json)
{
    size_t n = strlen(json);
    kl_arena_init(&x->a);
    x->buf = kl_arena_alloc(&x->a, n + KL_PADDING);
    memcpy(x->buf, json, n);
    memset(x->buf + n, 0, KL_PADDING);
    kl_err_clear(&x->err);
    x->d = kl_json_open(&x->a, x->buf, n, KL_R_PROFILING_INVALID_JSON, &x->err);
    if (!x->d)
        return -1;
    return kl_json_root(x->d, &x->root);
}

/* Walk every value; returns 0 when the whole document reads without error. */
static int walk(struct kl_json_val *v)
{
    struct kl_json_iter it;
    struct kl_json_val x;
    struct kl_str k;
    int n;
    switch (kl_json_type(v)) {
    case KL_JSON_OBJECT:
        if (kl_json_obj_begin(v, &it) < 0)
            return -1;
        while ((n = kl_json_obj_next(&it, &k, &x)) > 0)
            if (walk(&x) < 0)
                return -1;
        return n;
    case KL_JSON_ARRAY:
        if (kl_json_arr_begin(v, &it) < 0)
            return -1;
        while ((n = kl_json_arr_next(&it, &x)) > 0)
            if (walk(&x) < 0)
                return -1;
        return n;
    case KL_JSON_STRING:
        return kl_json_get_str(v, &k);
    case KL_JSON_NUMBER: {
        double d;
        return kl_json_get_f64(v, &d);
    }
    case KL_JSON_BOOL: {
        bool b;
        return kl_json_get_bool(v, &b);
    }
    case KL_JSON_NULL:
        return kl_json_is_null(v) == 1 ? 0 : -1;
    default:
        return -1;
    }
}

static int read_all(const char *json)
{
    struct doc x;
    int rc = open_doc(&x, json);
    if (rc == 0)
        rc = walk(&x.root);
    if (rc == 0)
        rc = kl_json_finish(x.d);
    kl_arena_release(&x.a);
    return rc;
}

/* Read only key "k" of the root object and skip the rest: unread values are checked. */
static int read_k_only(const char *json)
{
    struct doc x;
    int rc = open_doc(&x, json);
    if (rc == 0) {
        struct kl_json_iter it;
        struct kl_json_val v;
        struct kl_str k;
        int n;
        rc = kl_json_obj_begin(&x.root, &it);
        while (rc == 0 && (n = kl_json_obj_next(&it, &k, &v)) != 0) {
            if (n < 0) {
                rc = -1;
                break;
            }
            if (kl_str_eq_c(k, "k")) {
                uint64_t u;
                rc = kl_json_get_u64(&v, &u);
            }
        }
        if (rc == 0)
            rc = kl_json_finish(x.d);
    }
    kl_arena_release(&x.a);
    return rc;
}

static void test_accepts(void)
{
    static const char *ok[] = {
        "{}",
        "[]",
        "{\"a\":[1,2.5,-3,1e10,true,false,null,\"x\\n\\u00e9\\ud83d\\ude00\"]}",
        "[18446744073709551615]",
        " {\"a\" : { \"b\" : [ ] } } ",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (read_all(ok[i]) != 0)
            KL_FAIL_("rejected valid json %zu: %s", i, ok[i]);
}

static void test_rejects(void)
{
    static const char *bad[] = {
        "",          "{",     "{\"a\":}",    "[1,]",          "{\"a\":1,}",
        "[1 2]",     "{} x",  "\"\\ud800\"", "[\"\\udc00\"]", "[\"\\ud800\\u0041\"]",
        "[\"\\x\"]", "[tru]", "[01]",        "[1.]",          "{\"a\" 1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (read_all(bad[i]) == 0)
            KL_FAIL_("accepted invalid json %zu: %s", i, bad[i]);
}

static void test_unread_values_are_checked(void)
{
    ASSERT_EQ_INT(read_k_only("{\"x\":[1,{\"y\":null}],\"k\":1}"), 0);
    /* a big integer in an unread value is fine (serde reads it as f64) */
    ASSERT_EQ_INT(read_k_only("{\"x\":184467440737095516160,\"k\":1}"), 0);
    /* but malformed values are not, even unread */
    ASSERT_EQ_INT(read_k_only("{\"x\":[1,,2],\"k\":1}"), -1);
    ASSERT_EQ_INT(read_k_only("{\"x\":\"\\ud800\",\"k\":1}"), -1);
    ASSERT_EQ_INT(read_k_only("{\"k\":1,\"x\":[tru]}"), -1);
    /* depth: 127 nested arrays under the root object are fine, 128 are not */
    char deep[600];
    size_t o = 0;
    o += (size_t)snprintf(deep, sizeof deep, "{\"x\":");
    for (int i = 0; i < 127; i++)
        deep[o++] = '[';
    for (int i = 0; i < 127; i++)
        deep[o++] = ']';
    memcpy(deep + o, ",\"k\":1}", 8);
    ASSERT_EQ_INT(read_k_only(deep), 0);
    o = (size_t)snprintf(deep, sizeof deep, "{\"x\":");
    for (int i = 0; i < 128; i++)
        deep[o++] = '[';
    for (int i = 0; i < 128; i++)
        deep[o++] = ']';
    memcpy(deep + o, ",\"k\":1}", 8);
    ASSERT_EQ_INT(read_k_only(deep), -1);
}

static void test_numbers(void)
{
    struct doc x;
    ASSERT_EQ_INT(open_doc(&x, "[\"123\",456,\"+7\",\"-1\",18446744073709551615,-5,1.5]"), 0);
    struct kl_json_iter it;
    struct kl_json_val v;
    uint64_t u;
    int64_t i;
    double d;
    ASSERT_EQ_INT(kl_json_arr_begin(&x.root, &it), 0);
    kl_json_arr_next(&it, &v);
    ASSERT_EQ_INT(kl_json_get_u64_lenient(&v, &u), 0);
    ASSERT_EQ_U64(u, 123);
    kl_json_arr_next(&it, &v);
    ASSERT_EQ_INT(kl_json_get_u64_lenient(&v, &u), 0);
    ASSERT_EQ_U64(u, 456);
    kl_json_arr_next(&it, &v);
    ASSERT_EQ_INT(kl_json_get_u64_lenient(&v, &u), 0);
    ASSERT_EQ_U64(u, 7);
    kl_json_arr_next(&it, &v);
    ASSERT_EQ_INT(kl_json_get_u64_lenient(&v, &u), -1);
    ASSERT_EQ_INT(x.err.reason, KL_R_PROFILING_INVALID_JSON);
    kl_arena_release(&x.a);

    ASSERT_EQ_INT(open_doc(&x, "[18446744073709551615,-5,1.5]"), 0);
    kl_json_arr_begin(&x.root, &it);
    kl_json_arr_next(&it, &v);
    ASSERT_EQ_INT(kl_json_get_u64(&v, &u), 0);
    ASSERT_EQ_U64(u, UINT64_MAX);
    kl_json_arr_next(&it, &v);
    ASSERT_EQ_INT(kl_json_get_i64(&v, &i), 0);
    ASSERT_EQ_INT(i, -5);
    kl_json_arr_next(&it, &v);
    ASSERT_EQ_INT(kl_json_get_f64(&v, &d), 0);
    ASSERT_TRUE(d == 1.5);
    kl_arena_release(&x.a);
}

static void test_u32_arrays(void)
{
    struct doc x;
    ASSERT_EQ_INT(open_doc(&x, "[[0,1,4294967295,4294967296],[5]]"), 0);
    struct kl_json_iter it;
    struct kl_json_val v;
    kl_vec_u32 out = {0};
    size_t n;
    kl_json_arr_begin(&x.root, &it);
    kl_json_arr_next(&it, &v);
    ASSERT_EQ_INT(kl_json_arr_append_u32(&v, &x.a, &out, 100, KL_R_PROFILE_STACK_TOO_DEEP, &n), 0);
    ASSERT_EQ_INT(n, 4);
    ASSERT_EQ_U64(out.items[2], 4294967295u);
    ASSERT_EQ_U64(out.items[3], 4294967295u); /* clamped: out of any range */
    kl_json_arr_next(&it, &v);
    ASSERT_EQ_INT(kl_json_arr_append_u32(&v, &x.a, &out, 4, KL_R_PROFILE_STACK_TOO_DEEP, &n), -1);
    ASSERT_EQ_INT(x.err.reason, KL_R_PROFILE_STACK_TOO_DEEP);
    kl_arena_release(&x.a);
}

static void test_f64_format(void)
{
    static const struct {
        double v;
        const char *s;
    } rows[] = {
        {0.0, "0.0"},
        {-0.0, "-0.0"},
        {1.0, "1.0"},
        {82.0, "82.0"},
        {0.1, "0.1"},
        {1.5, "1.5"},
        {1710805788.237, "1710805788.237"},
        {1710805788.5, "1710805788.5"},
        {226.66665649414065, "226.66665649414065"},
        {1e15, "1000000000000000.0"},
        {1e16, "1e16"},
        {1.5e300, "1.5e300"},
        {1e-5, "0.00001"},
        {1e-7, "1e-7"},
        {1.25e-7, "1.25e-7"},
        {-123.456, "-123.456"},
        {9007199254740993.0, "9007199254740992.0"},
    };
    char buf[64];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        kl_fmt_f64(rows[i].v, buf);
        ASSERT_EQ_STR(buf, rows[i].s);
    }
    kl_fmt_f64(NAN, buf);
    ASSERT_EQ_STR(buf, "null");
}

static void test_writer(void)
{
    struct kl_buf b;
    kl_buf_init(&b, 1 << 20);
    struct kl_jw w;
    kl_jw_init(&w, &b);
    kl_jw_obj_begin(&w);
    kl_jw_key(&w, "s");
    kl_jw_str(&w, KL_STR("a\"b\\c\n\x01/é"));
    kl_jw_key(&w, "n");
    kl_jw_arr_begin(&w);
    kl_jw_u64(&w, 18446744073709551615u);
    kl_jw_i64(&w, INT64_MIN);
    kl_jw_f64(&w, 2.5);
    kl_jw_bool(&w, true);
    kl_jw_null(&w);
    kl_jw_arr_end(&w);
    kl_jw_key(&w, "e");
    kl_jw_obj_begin(&w);
    kl_jw_obj_end(&w);
    kl_jw_obj_end(&w);
    ASSERT_EQ_STR(b.ptr, "{\"s\":\"a\\\"b\\\\c\\n\\u0001/é\",\"n\":[18446744073709551615,"
                         "-9223372036854775808,2.5,true,null],\"e\":{}}");
    /* it reads back */
    ASSERT_EQ_INT(read_all(b.ptr), 0);
    kl_buf_release(&b);

    /* the bound: a 16-byte buffer cannot take a 40-byte string */
    kl_buf_init(&b, 16);
    kl_jw_init(&w, &b);
    kl_jw_str(&w, KL_STR("0123456789012345678901234567890123456789"));
    ASSERT_EQ_INT(b.err.reason, KL_R_BUF_TOO_BIG);
    kl_buf_release(&b);
}

int main(void)
{
    KL_RUN(test_accepts);
    KL_RUN(test_rejects);
    KL_RUN(test_unread_values_are_checked);
    KL_RUN(test_numbers);
    KL_RUN(test_u32_arrays);
    KL_RUN(test_f64_format);
    KL_RUN(test_writer);
    KL_TEST_DONE();
}
