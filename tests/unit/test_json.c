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

/* The raw scanning helpers on exact input ends (the bytes after end are digits, so reading
 * past end would show). */
static void test_scan_helpers(void)
{
    static const struct {
        const char *in;
        bool ok;
        uint64_t v;
        size_t used;
    } nums[] = {
        {"0,", true, 0, 1},
        {"7]", true, 7, 1},
        {"123 ", true, 123, 3},
        {"12345678,", true, 12345678, 8},
        {"123456789}", true, 123456789, 9},
        {"9999999999999999999,", true, 9999999999999999999u, 19},
        {"12345678901234567890,", false, 0, 0}, /* 20 digits: the general path decides */
        {"0123,", false, 0, 0},                 /* leading zero */
        {"00,", false, 0, 0},
        {"-1,", false, 0, 0},
        {"-0,", false, 0, 0},
        {"1.5,", false, 0, 0},
        {"1e3,", false, 0, 0},
        {"1E3,", false, 0, 0},
        {"\"1\",", false, 0, 0},
        {" 1,", false, 0, 0},
        {"123", false, 0, 0},       /* digits up to the end: truncated */
        {"12345678", false, 0, 0},  /* the same at the SWAR width */
        {"123456789", false, 0, 0}, /* and past it */
        {"", false, 0, 0},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        char buf[64];
        size_t n = strlen(nums[i].in);
        memcpy(buf, nums[i].in, n);
        memset(buf + n, '7', sizeof buf - n);
        const char *p = buf;
        uint64_t v = 42;
        bool ok = kl_json_scan_u64(&p, buf + n, &v);
        if (ok != nums[i].ok)
            KL_FAIL_("scan_u64 '%s': %d", nums[i].in, ok);
        if (ok) {
            ASSERT_EQ_U64(v, nums[i].v);
            ASSERT_EQ_U64((uint64_t)(p - buf), nums[i].used);
        } else {
            ASSERT_TRUE(p == buf && v == 42);
        }
    }
    static const struct {
        const char *in;
        bool ok;
        const char *body;
    } strs[] = {
        {"\"abc\",", true, "abc"},
        {"\"\"", true, ""},
        {"\"0x000000016d953300\"}", true, "0x000000016d953300"},
        {"\"a\\\"b\"", false, NULL}, /* escape */
        {"\"a\\u0041\"", false, NULL},
        {"\"a\x01b\"", false, NULL}, /* control character */
        {"\"abc", false, NULL},      /* truncated */
        {"\"", false, NULL},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        char buf[64];
        size_t n = strlen(strs[i].in);
        memcpy(buf, strs[i].in, n);
        memset(buf + n, '"', sizeof buf - n);
        const char *p = buf;
        struct kl_str out = KL_STR_NULL;
        bool ok = kl_json_scan_str(&p, buf + n, &out);
        if (ok != strs[i].ok)
            KL_FAIL_("scan_str '%s': %d", strs[i].in, ok);
        if (ok) {
            ASSERT_TRUE(kl_str_eq_c(out, strs[i].body));
            ASSERT_TRUE(p == out.ptr + out.len + 1);
        } else {
            ASSERT_TRUE(p == buf && out.ptr == NULL);
        }
    }
    const char *ws = " \t\r\n x";
    ASSERT_TRUE(kl_json_scan_ws(ws, ws + strlen(ws)) == ws + 5);
    ASSERT_TRUE(kl_json_scan_ws(ws, ws + 2) == ws + 2);
}

/* One stack array read with the fast paths on or off: the array is the first element of a
 * document "[ARRAY,7]", and the element after it must still read as 7 (the raw scan and
 * On-Demand's own position agree). Returns the text of the outcome. */
static void u32_case(const char *arr, size_t limit, bool fast, char *res, size_t cap)
{
    char json[512];
    snprintf(json, sizeof json, "[%s,7]", arr);
    struct doc x;
    struct kl_json_iter it;
    struct kl_json_val v;
    kl_vec_u32 out = {0};
    size_t n = 0;
    kl_json_set_fast_paths(fast);
    if (open_doc(&x, json) < 0) {
        snprintf(res, cap, "open failed: %s", kl_reason_str(x.err.reason));
        kl_arena_release(&x.a);
        kl_json_set_fast_paths(true);
        return;
    }
    kl_json_arr_begin(&x.root, &it);
    kl_json_arr_next(&it, &v);
    int rc = kl_json_arr_append_u32(&v, &x.a, &out, limit, KL_R_PROFILE_STACK_TOO_DEEP, &n);
    size_t k = (size_t)snprintf(res, cap, "rc=%d reason=%s n=%zu:", rc, kl_reason_str(x.err.reason),
                                rc == 0 ? n : 0);
    for (size_t i = 0; rc == 0 && i < out.len && k < cap; i++)
        k += (size_t)snprintf(res + k, cap - k, " %u", out.items[i]);
    if (rc == 0 && k < cap) {
        uint64_t seven = 0;
        int m = kl_json_arr_next(&it, &v);
        int g = m > 0 ? kl_json_get_u64(&v, &seven) : -1;
        snprintf(res + k, cap - k, " next=%d/%d/%llu", m, g, (unsigned long long)seven);
    }
    kl_arena_release(&x.a);
    kl_json_set_fast_paths(true);
}

static void test_u32_array_fast_path(void)
{
    static const char *arrays[] = {
        "[]",
        "[ ]",
        "[0]",
        "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]",
        "[ 0 , 1\n,\t2 ]",
        "[\n  1,\n  2\n]",
        "[12345678,123456789,4294967295]",
        "[4294967296,18446744073709551615]",
        "[18446744073709551616]",
        "[99999999999999999999999]",
        "[01]",
        "[-0]",
        "[-1]",
        "[1e2]",
        "[1E2]",
        "[1.0]",
        "[1,]",
        "[,1]",
        "[1 2]",
        "[\"1\"]",
        "[null]",
        "[true]",
        "[[1]]",
        "[{}]",
        "{}",
        "7",
        "[1,2,3,4,5]",
    };
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        for (size_t limit = 3; limit <= 100; limit += 97) {
            char fast[512], slow[512];
            u32_case(arrays[i], limit, true, fast, sizeof fast);
            u32_case(arrays[i], limit, false, slow, sizeof slow);
            if (strcmp(fast, slow) != 0)
                KL_FAIL_("%s (limit %zu): fast '%s' vs general '%s'", arrays[i], limit, fast, slow);
        }
    }
    /* the fast path really reads: values, clamping, the limit, the next element */
    char res[512];
    u32_case("[ 0 , 1\n,\t2 ]", 100, true, res, sizeof res);
    ASSERT_EQ_STR(res, "rc=0 reason= n=3: 0 1 2 next=1/0/7");
    u32_case("[4294967296,5]", 100, true, res, sizeof res);
    ASSERT_EQ_STR(res, "rc=0 reason= n=2: 4294967295 5 next=1/0/7");
    u32_case("[1,2,3,4,5]", 3, true, res, sizeof res);
    ASSERT_EQ_STR(res, "rc=-1 reason=profile.stack_too_deep n=0:");
}

/* The common-case shortest formatting against the printf reference on many doubles: short
 * decimals (the fast path), random bit patterns and values near the fast path's limits. */
static void test_f64_fast_path(void)
{
    uint64_t st = 0x9E3779B97F4A7C15u;
    size_t fast_like = 0;
    for (int i = 0; i < 300000; i++) {
        st ^= st << 13, st ^= st >> 7, st ^= st << 17;
        double v;
        switch (i % 5) {
        case 0:
            memcpy(&v, &st, 8);
            break;
        case 1:
            v = (double)(st % 100000000) / pow(10, (double)((st >> 50) % 12));
            break;
        case 2:
            v = (double)(st % 1000) * pow(10, (double)((int)((st >> 20) % 40) - 20));
            break;
        case 3:
            v = ldexp((double)(st >> 11), (int)((st >> 3) % 120) - 100);
            break;
        default:
            v = 9007199254740992.0 - (double)(st % 4096) + (double)(st % 7) / 8;
        }
        if (st & 1)
            v = -v;
        char a[48], b[48];
        size_t na = kl_fmt_f64(v, a), nb = kl__fmt_f64_printf(v, b);
        if (na != nb || strcmp(a, b) != 0)
            KL_FAIL_("%.17g: '%s' vs reference '%s'", v, a, b);
        fast_like += strchr(a, 'e') == NULL;
    }
    ASSERT_TRUE(fast_like > 100000);
}

/* Integer text for stacks: the branch-free formatter against printf (every value below
 * 2*10^6, the boundaries, a sweep of the rest), and the table writer against the plain one
 * for values below, at and above the table size. */
static void test_u32_text(void)
{
    char a[32], b[32];
    for (uint64_t v = 0; v <= UINT32_MAX; v += v < 2000000 ? 1 : 65521) {
        size_t n = kl__fmt_u32_wide((uint32_t)v, a);
        int m = snprintf(b, sizeof b, "%u", (unsigned)v);
        if ((int)n != m || memcmp(a, b, n) != 0)
            KL_FAIL_("%u: '%.*s'", (unsigned)v, (int)n, a);
    }
    uint64_t pw = 1;
    for (int k = 0; k <= 19; k++, pw *= 10) {
        uint64_t around[] = {pw - 1, pw, pw + 1, pw * 3 + 7};
        for (int j = 0; j < 4; j++) {
            char c[40];
            memset(c, 'x', sizeof c);
            size_t n = kl_fmt_u64_wide(around[j], c);
            int m = snprintf(b, sizeof b, "%llu", (unsigned long long)around[j]);
            if ((int)n != m || memcmp(c, b, n) != 0)
                KL_FAIL_("wide %llu: '%.*s'", (unsigned long long)around[j], (int)n, c);
            ASSERT_TRUE(c[16] == 'x' || n > 16);
        }
    }
    for (uint64_t v = 1, st2 = 7; v < 2000000; v++) {
        st2 = st2 * 6364136223846793005u + 1;
        uint64_t x = st2 >> (v % 64);
        char c[40];
        size_t n = kl_fmt_u64_wide(x, c);
        int m = snprintf(b, sizeof b, "%llu", (unsigned long long)x);
        if ((int)n != m || memcmp(c, b, n) != 0)
            KL_FAIL_("wide %llu: '%.*s'", (unsigned long long)x, (int)n, c);
    }
    ASSERT_TRUE(kl_fmt_u64_wide(UINT64_MAX, a) == 20 && memcmp(a, "18446744073709551615", 20) == 0);
    static const uint32_t edges[] = {
        9,        10,        99,        100,        9999999,        10000000,
        99999999, 100000000, 999999999, 1000000000, UINT32_MAX - 1, UINT32_MAX};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        size_t n = kl__fmt_u32_wide(edges[i], a);
        snprintf(b, sizeof b, "%u", edges[i]);
        ASSERT_TRUE(n == strlen(b) && memcmp(a, b, n) == 0);
    }
    uint32_t vals[300];
    uint64_t st = 12345;
    for (size_t i = 0; i < 300; i++) {
        st = st * 6364136223846793005u + 1442695040888963407u;
        vals[i] = (uint32_t)(st >> 33) % (i < 100 ? 1000u : i < 200 ? 70000u : UINT32_MAX);
    }
    static const uint32_t sizes[] = {0, 1, 10, 999, 1000, 65536, 100000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        struct kl_jw_numtab t;
        kl_jw_numtab_init(&t, sizes[k]);
        ASSERT_TRUE(t.n == (sizes[k] < KL_JW_NUMTAB_MAX ? sizes[k] : KL_JW_NUMTAB_MAX));
        for (size_t len = 0; len <= 300; len += 30) {
            struct kl_buf x, y;
            struct kl_jw wx, wy;
            kl_buf_init(&x, 1 << 20);
            kl_buf_init(&y, 1 << 20);
            kl_jw_init(&wx, &x);
            kl_jw_init(&wy, &y);
            kl_jw_arr_begin(&wx);
            kl_jw_arr_begin(&wy);
            kl_jw_u32_array_tab(&wx, vals, len, &t);
            kl_jw_u32_array_tab(&wx, vals + 300 - len, len, &t);
            kl_jw_u32_array(&wy, vals, len);
            kl_jw_u32_array(&wy, vals + 300 - len, len);
            kl_jw_arr_end(&wx);
            kl_jw_arr_end(&wy);
            if (x.len != y.len || strcmp(x.ptr, y.ptr) != 0)
                KL_FAIL_("table %u, %zu values: '%.80s' vs '%.80s'", sizes[k], len, x.ptr, y.ptr);
            kl_buf_release(&x);
            kl_buf_release(&y);
        }
        kl_jw_numtab_release(&t);
    }
}

static void reference_escape(struct kl_buf *b, struct kl_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"')
            kl_buf_puts(b, "\\\"");
        else if (c == '\\')
            kl_buf_puts(b, "\\\\");
        else if (c == '\n')
            kl_buf_puts(b, "\\n");
        else if (c == '\r')
            kl_buf_puts(b, "\\r");
        else if (c == '\t')
            kl_buf_puts(b, "\\t");
        else if (c == '\b')
            kl_buf_puts(b, "\\b");
        else if (c == '\f')
            kl_buf_puts(b, "\\f");
        else if (c < 0x20)
            kl_buf_printf(b, "\\u%04x", c);
        else
            kl_buf_putc(b, (char)c);
    }
}

/* Escaping 8 bytes at a time: every special byte at every position of a word, and bytes
 * with the high bit set (UTF-8) next to them, against a byte-by-byte reference. */
static void test_escape_words(void)
{
    static const unsigned char special[] = {'"',  '\\', '\n', 0x01, 0x1f, 0x00, 0x7f, 0x80,
                                            0xa2, 0xdc, 0xff, ' ',  '/',  0x20, 0x21, 0x5b};
    for (size_t len = 0; len <= 19; len++) {
        for (size_t pos = 0; pos < len || (len == 0 && pos == 0); pos++) {
            for (size_t k = 0; k < sizeof special; k++) {
                char in[32];
                for (size_t i = 0; i < len; i++)
                    in[i] = (char)('a' + i % 26);
                if (len)
                    in[pos] = (char)special[k];
                if (len > 1 && pos + 1 < len)
                    in[pos + 1] = (char)0xc3; /* a high byte right after */
                struct kl_buf x, y;
                kl_buf_init(&x, 1024);
                kl_buf_init(&y, 1024);
                kl_json_escape(&x, kl_str_make(in, len));
                reference_escape(&y, kl_str_make(in, len));
                if (x.len != y.len || memcmp(x.ptr, y.ptr, x.len) != 0)
                    KL_FAIL_("len %zu pos %zu byte 0x%02x: '%s' vs '%s'", len, pos, special[k],
                             x.ptr, y.ptr);
                struct kl_jw w;
                kl_buf_reset(&x);
                kl_jw_init(&w, &x);
                kl_jw_str(&w, kl_str_make(in, len));
                ASSERT_TRUE(x.len == y.len + 2 && x.ptr[0] == '"' && x.ptr[x.len - 1] == '"' &&
                            memcmp(x.ptr + 1, y.ptr, y.len) == 0);
                kl_buf_release(&x);
                kl_buf_release(&y);
            }
            if (len == 0)
                break;
        }
    }
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
    KL_RUN(test_scan_helpers);
    KL_RUN(test_u32_array_fast_path);
    KL_RUN(test_f64_format);
    KL_RUN(test_f64_fast_path);
    KL_RUN(test_escape_words);
    KL_RUN(test_u32_text);
    KL_RUN(test_writer);
    KL_TEST_DONE();
}
