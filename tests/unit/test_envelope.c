/* test_envelope.c - envelope parser/writer and bounded decompression */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <zlib.h>
#include <zstd.h>

#include "kl_test.h"

#include "base/arena.h"
#include "base/buf.h"
#include "base/decompress.h"
#include "base/err.h"
#include "ingest/envelope.h"
#include "json/json.h"

/* ------------------------------------------------------------------------------------ */
/* Fixtures: envelopes shaped like what the SDKs send                                     */

#define EVENT_ID "9ec79c33ec9942ab8353589fcb2e04dc"

#define TX_PAYLOAD                                                                                 \
    "{\"contexts\":{\"trace\":{\"trace_id\":\"4b25bc58f14243d8b208d1e22a054164\",\"span_id\":"     \
    "\"a1e13f3f06239d69\",\"op\":\"http.server\"},\"runtime\":{\"name\":\"node\",\"version\":"     \
    "\"v20.11.0\"}},\"spans\":[],\"start_timestamp\":1714557600.0,\"timestamp\":1714557600.5,"     \
    "\"transaction\":\"GET /users\",\"type\":\"transaction\",\"platform\":\"node\","               \
    "\"event_id\":\"" EVENT_ID "\",\"environment\":\"production\"}"

#define PROFILE_PAYLOAD                                                                            \
    "{\"event_id\":\"41fed0925670468bb0457f61a74688ec\",\"timestamp\":\"2024-05-01T10:00:00."      \
    "000Z\",\"platform\":\"node\",\"version\":\"1\",\"release\":\"app@1.0.0\",\"environment\":"    \
    "\"production\",\"runtime\":{\"name\":\"node\",\"version\":\"v20.11.0\"},\"os\":{\"name\":"    \
    "\"linux\",\"version\":\"6.1\"},\"device\":{\"architecture\":\"x64\"},\"profile\":{"           \
    "\"samples\":[{\"stack_id\":0,\"thread_id\":\"0\",\"elapsed_since_start_ns\":\"0\"},{"         \
    "\"stack_id\":0,\"thread_id\":\"0\",\"elapsed_since_start_ns\":\"10000000\"}],\"frames\":[{"   \
    "\"function\":\"handler\",\"abs_path\":\"/app/index.js\",\"lineno\":12}],\"stacks\":[[0]],"    \
    "\"thread_metadata\":{\"0\":{\"name\":\"main\"}}},\"transaction\":{\"name\":\"GET /users\","   \
    "\"id\":\"" EVENT_ID "\",\"trace_id\":\"4b25bc58f14243d8b208d1e22a054164\","                   \
    "\"active_thread_id\":\"0\"}}"

#define CHUNK_PAYLOAD                                                                              \
    "{\"chunk_id\":\"0432a0a4c25f4697bf9f0a2fcbe6a814\",\"profiler_id\":"                          \
    "\"4d229f1d3807421ba62a5f8bc295d836\",\"platform\":\"node\",\"version\":\"2\",\"release\":"    \
    "\"app@1.0.0\",\"client_sdk\":{\"name\":\"sentry.javascript.node\",\"version\":\"8.9.2\"},"    \
    "\"profile\":{\"samples\":[{\"stack_id\":0,\"thread_id\":\"0\",\"timestamp\":1714557600.0}"    \
    "],\"frames\":[{\"function\":\"tick\"}],\"stacks\":[[0]],\"thread_metadata\":{\"0\":{"         \
    "\"name\":\"main\"}}}}"

/* @sentry/node: JSON items without "length", trailing newline. */
static const char NODE_ENVELOPE[] =
    "{\"event_id\":\"" EVENT_ID "\",\"sent_at\":\"2024-05-01T10:00:00.612Z\",\"sdk\":{\"name\":"
    "\"sentry.javascript.node\",\"version\":\"8.9.2\"},\"trace\":{\"environment\":\"production\","
    "\"public_key\":\"e12d836b15bb49d7bbf99e64295d995b\",\"trace_id\":"
    "\"4b25bc58f14243d8b208d1e22a054164\",\"sample_rate\":\"1\",\"sampled\":\"true\"}}\n"
    "{\"type\":\"transaction\"}\n" TX_PAYLOAD "\n"
    "{\"type\":\"profile\"}\n" PROFILE_PAYLOAD "\n";

/* @sentry/browser: dsn in the header, the profile item with a length, no trailing newline. */
static const char BROWSER_HEAD[] =
    "{\"event_id\":\"" EVENT_ID "\",\"sent_at\":\"2024-05-01T10:00:00.612Z\",\"dsn\":"
    "\"https://e12d836b15bb49d7bbf99e64295d995b@o1.ingest.sentry.io/42\",\"sdk\":{\"name\":"
    "\"sentry.javascript.browser\",\"version\":\"8.9.2\"}}\n"
    "{\"type\":\"transaction\"}\n" TX_PAYLOAD "\n";

/* Node continuous profiling: a profile_chunk with its platform header. */
static const char CHUNK_ENVELOPE[] =
    "{\"event_id\":\"0432a0a4c25f4697bf9f0a2fcbe6a814\",\"sdk\":{\"name\":"
    "\"sentry.javascript.node\",\"version\":\"8.9.2\"}}\n"
    "{\"type\":\"profile_chunk\",\"platform\":\"node\"}\n" CHUNK_PAYLOAD "\n";

static struct kl_arena A;

static struct kl_envelope *parse_n(const char *s, size_t n, const struct kl_envelope_limits *lim,
                                   struct kl_err *err)
{
    kl_err_clear(err);
    return kl_envelope_parse(&A, s, n, lim, err);
}

static bool padded(const struct kl_envelope_item *it)
{
    for (int i = 0; i < KL_PADDING; i++)
        if (it->payload[it->payload_len + i] != 0)
            return false;
    return true;
}

/* The payload goes straight to the JSON reader (padding included). */
static bool payload_is_json(const struct kl_envelope_item *it)
{
    struct kl_err err = KL_ERR_INIT;
    return kl_json_validate(it->payload, it->payload_len, KL_R_PROFILING_INVALID_JSON, &err) == 0;
}

/* ------------------------------------------------------------------------------------ */
/* SDK-shaped envelopes                                                                   */

static void test_node_sdk(void)
{
    struct kl_err err;
    struct kl_envelope *e = parse_n(NODE_ENVELOPE, sizeof NODE_ENVELOPE - 1, NULL, &err);
    ASSERT_TRUE(e != NULL);
    if (!e)
        return;
    ASSERT_EQ_SLICE(e->event_id, EVENT_ID);
    ASSERT_EQ_SLICE(e->sent_at, "2024-05-01T10:00:00.612Z");
    ASSERT_EQ_SLICE(e->sdk_name, "sentry.javascript.node");
    ASSERT_EQ_SLICE(e->sdk_version, "8.9.2");
    ASSERT_TRUE(!kl_str_is_set(e->dsn));
    ASSERT_EQ_U64(e->n_items, 2);
    ASSERT_EQ_SLICE(e->items[0].type, "transaction");
    ASSERT_EQ_U64(e->items[0].payload_len, strlen(TX_PAYLOAD));
    ASSERT_TRUE(memcmp(e->items[0].payload, TX_PAYLOAD, strlen(TX_PAYLOAD)) == 0);
    ASSERT_EQ_SLICE(e->items[1].type, "profile");
    ASSERT_TRUE(!e->items[1].has_length);
    ASSERT_EQ_INT(e->items[1].sampled, KL_OPT_ABSENT);
    ASSERT_EQ_U64(e->items[1].payload_len, strlen(PROFILE_PAYLOAD));
    ASSERT_TRUE(padded(&e->items[0]) && padded(&e->items[1]));
    ASSERT_TRUE(payload_is_json(&e->items[0]));
    ASSERT_TRUE(payload_is_json(&e->items[1]));
    ASSERT_TRUE(kl_envelope_find_item(e, "profile") == &e->items[1]);
    ASSERT_TRUE(kl_envelope_find_item(e, "profile_chunk") == NULL);
}

static void test_browser_sdk_with_length(void)
{
    struct kl_buf b;
    kl_buf_init(&b, 1 << 20);
    kl_buf_puts(&b, BROWSER_HEAD);
    kl_buf_printf(&b, "{\"type\":\"profile\",\"length\":%zu,\"sampled\":false}\n%s",
                  strlen(PROFILE_PAYLOAD), PROFILE_PAYLOAD); /* no trailing newline */
    struct kl_err err;
    struct kl_envelope *e = parse_n(b.ptr, b.len, NULL, &err);
    ASSERT_TRUE(e != NULL);
    if (e) {
        ASSERT_EQ_SLICE(e->dsn, "https://e12d836b15bb49d7bbf99e64295d995b@o1.ingest.sentry.io/42");
        ASSERT_EQ_SLICE(e->sdk_name, "sentry.javascript.browser");
        ASSERT_EQ_U64(e->n_items, 2);
        ASSERT_TRUE(e->items[1].has_length);
        ASSERT_EQ_U64(e->items[1].length, strlen(PROFILE_PAYLOAD));
        ASSERT_EQ_U64(e->items[1].payload_len, strlen(PROFILE_PAYLOAD));
        ASSERT_EQ_INT(e->items[1].sampled, KL_OPT_FALSE);
        ASSERT_TRUE(padded(&e->items[1]) && payload_is_json(&e->items[1]));
    }
    kl_buf_release(&b);
}

static void test_profile_chunk(void)
{
    struct kl_err err;
    struct kl_envelope *e = parse_n(CHUNK_ENVELOPE, sizeof CHUNK_ENVELOPE - 1, NULL, &err);
    ASSERT_TRUE(e != NULL);
    if (!e)
        return;
    ASSERT_EQ_U64(e->n_items, 1);
    ASSERT_EQ_SLICE(e->items[0].type, "profile_chunk");
    ASSERT_EQ_SLICE(e->items[0].platform, "node");
    ASSERT_TRUE(!kl_str_is_set(e->items[0].profile_type));
    ASSERT_TRUE(payload_is_json(&e->items[0]));

    static const char perfetto[] =
        "{}\n{\"type\":\"profile_chunk\",\"platform\":\"android\",\"profile_type\":\"ui\","
        "\"content_type\":\"application/x-perfetto\",\"meta_length\":2,\"length\":6,"
        "\"filename\":\"t.pftrace\",\"sampled\":true}\n{}\x0a\x01\x02\x03\n";
    e = parse_n(perfetto, sizeof perfetto - 1, NULL, &err);
    ASSERT_TRUE(e != NULL);
    if (!e)
        return;
    ASSERT_EQ_U64(e->n_items, 1);
    ASSERT_TRUE(e->items[0].has_meta_length);
    ASSERT_EQ_U64(e->items[0].meta_length, 2);
    ASSERT_EQ_SLICE(e->items[0].profile_type, "ui");
    ASSERT_EQ_SLICE(e->items[0].content_type, "application/x-perfetto");
    ASSERT_EQ_SLICE(e->items[0].filename, "t.pftrace");
    ASSERT_EQ_INT(e->items[0].sampled, KL_OPT_TRUE);
    ASSERT_EQ_U64(e->items[0].payload_len, 6); /* binary payload containing '\n' */
    ASSERT_TRUE(memcmp(e->items[0].payload, "{}\n\x01\x02\x03", 6) == 0);
}

/* ------------------------------------------------------------------------------------ */
/* Framing: accepted and rejected shapes, mostly Relay's own test cases                   */

struct frame_case {
    const char *name;
    const char *in;
    size_t len; /* 0: strlen(in) */
    enum kl_reason want;
    size_t n_items;
    size_t len0; /* payload length of item 0, when there is one */
};

static const struct frame_case FRAME_CASES[] = {
    {"empty body", "", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"only whitespace", " \n\r\n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"empty header, no newline", "{}", 0, KL_R_NONE, 0, 0},
    {"empty header, newline", "{}\n", 0, KL_R_NONE, 0, 0},
    {"blank lines before header", "\n\n{}\n", 0, KL_R_NONE, 0, 0},
    {"header then blank line", "{}\n\n", 0, KL_R_NONE, 0, 0},
    {"header without event_id", "{\"dsn\":\"https://k@h/1\"}\n", 0, KL_R_NONE, 0, 0},
    {"null event_id", "{\"event_id\":null}\n", 0, KL_R_NONE, 0, 0},
    {"dashed event_id", "{\"event_id\":\"9ec79c33-ec99-42ab-8353-589fcb2e04dc\"}", 0, KL_R_NONE, 0,
     0},
    {"bad event_id", "{\"event_id\":\"nope\"}\n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"numeric event_id", "{\"event_id\":12}\n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"bad sent_at", "{\"sent_at\":\"yesterday\"}\n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"sdk not an object", "{\"sdk\":\"x\"}\n", 0, KL_R_NONE, 0, 0},
    {"header CRLF", "{}\r\n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"header trailing space", "{} \n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"header trailing junk", "{}x\n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"two objects on a line", "{} {}\n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"header is an array", "[]\n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"header split over lines", "{\n}\n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"header not json", "hello\n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"item without type", "{}\n{}\n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"item type not a string", "{}\n{\"type\":1}\n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"item header at EOF", "{}\n{\"type\":\"attachment\"}", 0, KL_R_NONE, 1, 0},
    {"implicit length", "{}\n{\"type\":\"attachment\"}\nhelloworld\n", 0, KL_R_NONE, 1, 10},
    {"implicit length EOF", "{}\n{\"type\":\"attachment\"}\nhelloworld", 0, KL_R_NONE, 1, 10},
    {"null length is implicit", "{}\n{\"type\":\"a\",\"length\":null}\nhello\n", 0, KL_R_NONE, 1,
     5},
    {"zero lengths + blank line",
     "{}\n{\"type\":\"a\",\"length\":0}\n\n{\"type\":\"a\",\"length\":0}\n", 0, KL_R_NONE, 2, 0},
    {"zero lengths at EOF", "{}\n{\"type\":\"a\",\"length\":0}\n\n{\"type\":\"a\",\"length\":0}", 0,
     KL_R_NONE, 2, 0},
    {"length keeps CRLF", "{}\n{\"type\":\"a\",\"length\":7}\nHello\r\n\n", 0, KL_R_NONE, 1, 7},
    {"length past the end", "{}\n{\"type\":\"a\",\"length\":5}\nabc", 0, KL_R_ENVELOPE_MALFORMED, 0,
     0},
    {"length past the end by one", "{}\n{\"type\":\"a\",\"length\":4}\nabc", 0,
     KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"length header at EOF", "{}\n{\"type\":\"a\",\"length\":1}", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"no newline after payload", "{}\n{\"type\":\"a\",\"length\":2}\nabc\n", 0,
     KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"CR after length payload", "{}\n{\"type\":\"a\",\"length\":2}\nab\r\n", 0,
     KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"negative length", "{}\n{\"type\":\"a\",\"length\":-1}\n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"fractional length", "{}\n{\"type\":\"a\",\"length\":1.5}\nab\n", 0, KL_R_ENVELOPE_MALFORMED,
     0, 0},
    {"string length", "{}\n{\"type\":\"a\",\"length\":\"1\"}\na\n", 0, KL_R_ENVELOPE_MALFORMED, 0,
     0},
    {"length over u32", "{}\n{\"type\":\"a\",\"length\":4294967296}\n", 0, KL_R_ENVELOPE_MALFORMED,
     0, 0},
    {"duplicate length", "{}\n{\"type\":\"a\",\"length\":1,\"length\":2}\nab\n", 0,
     KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"sampled null", "{}\n{\"type\":\"profile\",\"sampled\":null}\n{}\n", 0,
     KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"sampled string", "{}\n{\"type\":\"profile\",\"sampled\":\"true\"}\n{}\n", 0,
     KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"platform number", "{}\n{\"type\":\"profile_chunk\",\"platform\":3}\n{}\n", 0,
     KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"unknown header keys kept out", "{\"x\":[1,{\"y\":2}]}\n{\"type\":\"a\",\"zz\":{}}\nq\n", 0,
     KL_R_NONE, 1, 1},
    {"CRLF implicit payloads", "{}\n{\"type\":\"a\"}\n{}\r\n\r\n{\"type\":\"b\"}\n{}\r\n", 0,
     KL_R_NONE, 2, 3},
    {"CRLF item header", "{}\n{\"type\":\"a\"}\r\n{}\n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"trailing blank lines", "{}\n{\"type\":\"a\"}\nhello\n\n\n", 0, KL_R_NONE, 1, 5},
    {"garbage", "\x00\xff\xfe garbage \x01", 13, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"invalid utf-8 in header", "{\"dsn\":\"\xff\"}\n", 0, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"NUL inside header line", "{}\n{\"type\":\"a\"\x00}\n", 17, KL_R_ENVELOPE_MALFORMED, 0, 0},
    {"binary payload with NUL", "{}\n{\"type\":\"a\",\"length\":3}\n\x00\n\x00\n", 31, KL_R_NONE, 1,
     3},
};

static void test_framing(void)
{
    for (size_t i = 0; i < sizeof FRAME_CASES / sizeof FRAME_CASES[0]; i++) {
        const struct frame_case *c = &FRAME_CASES[i];
        size_t n = c->len ? c->len : strlen(c->in);
        struct kl_err err;
        struct kl_envelope *e = parse_n(c->in, n, NULL, &err);
        if (err.reason != c->want || (e == NULL) != (c->want != KL_R_NONE)) {
            KL_FAIL_("case '%s': want %s, got %s (%s)", c->name, kl_reason_str(c->want),
                     kl_reason_str(err.reason), err.msg);
            continue;
        }
        if (!e)
            continue;
        if (e->n_items != c->n_items)
            KL_FAIL_("case '%s': %zu items, want %zu", c->name, e->n_items, c->n_items);
        else if (e->n_items && e->items[0].payload_len != c->len0)
            KL_FAIL_("case '%s': payload 0 has %zu bytes, want %zu", c->name,
                     e->items[0].payload_len, c->len0);
        for (size_t k = 0; k < e->n_items; k++)
            if (!padded(&e->items[k]))
                KL_FAIL_("case '%s': item %zu not padded", c->name, k);
    }
}

static void test_crlf_payload_content(void)
{
    static const char in[] = "{}\n{\"type\":\"a\"}\n{}\r\n\r\n{\"type\":\"b\"}\n[1]\r\n";
    struct kl_err err;
    struct kl_envelope *e = parse_n(in, sizeof in - 1, NULL, &err);
    ASSERT_TRUE(e != NULL);
    if (!e)
        return;
    ASSERT_EQ_U64(e->n_items, 2);
    /* Relay keeps the \r of an implicit-length payload; JSON treats it as whitespace */
    ASSERT_TRUE(e->items[0].payload_len == 3 && memcmp(e->items[0].payload, "{}\r", 3) == 0);
    ASSERT_TRUE(payload_is_json(&e->items[0]) && payload_is_json(&e->items[1]));
    ASSERT_EQ_SLICE(e->items[1].type, "b");
}

/* ------------------------------------------------------------------------------------ */
/* Limits                                                                                 */

static struct kl_envelope_limits small_limits(void)
{
    struct kl_envelope_limits lim;
    kl_envelope_limits_default(&lim);
    lim.max_profile_bytes = 100;
    lim.max_event_bytes = 50;
    lim.max_item_bytes = 200;
    lim.max_items = 3;
    return lim;
}

static void envelope_with_item(struct kl_buf *b, const char *type, size_t n, bool with_length)
{
    kl_buf_reset(b);
    kl_buf_puts(b, "{}\n");
    if (with_length)
        kl_buf_printf(b, "{\"type\":\"%s\",\"length\":%zu}\n", type, n);
    else
        kl_buf_printf(b, "{\"type\":\"%s\"}\n", type);
    for (size_t i = 0; i < n; i++)
        kl_buf_putc(b, 'x');
    kl_buf_putc(b, '\n');
}

static void test_item_size_limits(void)
{
    struct kl_envelope_limits lim = small_limits();
    struct {
        const char *type;
        size_t max;
    } types[] = {{"profile", 100},
                 {"profile_chunk", 100},
                 {"transaction", 50},
                 {"event", 50},
                 {"attachment", 200}};
    struct kl_buf b;
    kl_buf_init(&b, 1 << 20);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        for (int wl = 0; wl < 2; wl++) {
            for (int d = -1; d <= 1; d++) {
                size_t n = types[t].max + (size_t)d;
                envelope_with_item(&b, types[t].type, n, wl);
                struct kl_err err;
                struct kl_envelope *e = parse_n(b.ptr, b.len, &lim, &err);
                enum kl_reason want = d > 0 ? KL_R_ENVELOPE_TOO_LARGE : KL_R_NONE;
                if (err.reason != want || (e == NULL) != (d > 0))
                    KL_FAIL_("%s length=%d size max%+d: got %s (%s)", types[t].type, wl, d,
                             kl_reason_str(err.reason), err.msg);
                else if (e && e->items[0].payload_len != n)
                    KL_FAIL_("%s: payload %zu, want %zu", types[t].type, e->items[0].payload_len,
                             n);
            }
        }
    }
    kl_buf_release(&b);
}

static void test_envelope_size_limit(void)
{
    struct kl_envelope_limits lim = small_limits();
    struct kl_buf b;
    kl_buf_init(&b, 1 << 20);
    envelope_with_item(&b, "profile", 90, true);
    struct kl_err err;
    for (int d = -1; d <= 1; d++) {
        lim.max_envelope_bytes = b.len - (size_t)d; /* body is max-1, max, max+1 */
        struct kl_envelope *e = parse_n(b.ptr, b.len, &lim, &err);
        if (d > 0) {
            ASSERT_TRUE(e == NULL);
            ASSERT_EQ_STR(kl_reason_str(err.reason), "envelope.too_large");
        } else {
            ASSERT_TRUE(e != NULL);
        }
    }
    kl_buf_release(&b);
}

static void test_too_many_items(void)
{
    struct kl_envelope_limits lim = small_limits();
    struct kl_buf b;
    kl_buf_init(&b, 1 << 20);
    for (size_t n = 2; n <= 4; n++) {
        kl_buf_reset(&b);
        kl_buf_puts(&b, "{}\n");
        for (size_t i = 0; i < n; i++)
            kl_buf_puts(&b, "{\"type\":\"a\",\"length\":1}\nx\n");
        struct kl_err err;
        struct kl_envelope *e = parse_n(b.ptr, b.len, &lim, &err);
        if (n <= lim.max_items) {
            ASSERT_TRUE(e != NULL);
            if (e)
                ASSERT_EQ_U64(e->n_items, n);
        } else {
            ASSERT_TRUE(e == NULL);
            ASSERT_EQ_INT(err.reason, KL_R_ENVELOPE_TOO_LARGE);
        }
    }
    /* the default: 1000 items pass, 1001 do not */
    for (size_t n = 1000; n <= 1001; n++) {
        kl_buf_reset(&b);
        kl_buf_puts(&b, "{}\n");
        for (size_t i = 0; i < n; i++)
            kl_buf_puts(&b, "{\"type\":\"client_report\"}\n{}\n");
        struct kl_err err;
        struct kl_envelope *e = parse_n(b.ptr, b.len, NULL, &err);
        ASSERT_TRUE((e != NULL) == (n == 1000));
    }
    kl_buf_release(&b);
}

static void test_defaults(void)
{
    struct kl_envelope_limits lim;
    kl_envelope_limits_default(&lim);
    ASSERT_EQ_U64(lim.max_envelope_bytes, 200u << 20);
    ASSERT_EQ_U64(lim.max_profile_bytes, 50u << 20);
    ASSERT_EQ_U64(lim.max_event_bytes, 1u << 20);
    ASSERT_EQ_U64(lim.max_items, 1000);
}

/* ------------------------------------------------------------------------------------ */
/* Writer                                                                                 */

static bool same_slice(struct kl_str a, struct kl_str b)
{
    return kl_str_is_set(a) == kl_str_is_set(b) && kl_str_eq(a, b);
}

static void check_same(const struct kl_envelope *x, const struct kl_envelope *y)
{
    ASSERT_TRUE(same_slice(x->event_id, y->event_id));
    ASSERT_TRUE(same_slice(x->dsn, y->dsn));
    ASSERT_TRUE(same_slice(x->sent_at, y->sent_at));
    ASSERT_TRUE(same_slice(x->sdk_name, y->sdk_name));
    ASSERT_TRUE(same_slice(x->sdk_version, y->sdk_version));
    ASSERT_EQ_U64(x->n_items, y->n_items);
    for (size_t i = 0; i < x->n_items && i < y->n_items; i++) {
        const struct kl_envelope_item *a = &x->items[i], *b = &y->items[i];
        ASSERT_TRUE(kl_str_eq(a->type, b->type));
        ASSERT_EQ_U64(a->payload_len, b->payload_len);
        ASSERT_TRUE(memcmp(a->payload, b->payload, a->payload_len) == 0);
        ASSERT_TRUE(same_slice(a->content_type, b->content_type));
        ASSERT_TRUE(same_slice(a->filename, b->filename));
        ASSERT_TRUE(same_slice(a->platform, b->platform));
        ASSERT_TRUE(same_slice(a->profile_type, b->profile_type));
        ASSERT_EQ_INT(a->sampled, b->sampled);
        ASSERT_EQ_INT(a->has_meta_length, b->has_meta_length);
        ASSERT_EQ_U64(a->meta_length, b->meta_length);
        ASSERT_TRUE(b->has_length);
    }
}

static void test_write_roundtrip(void)
{
    const char *inputs[] = {
        NODE_ENVELOPE, CHUNK_ENVELOPE, "{}",
        "{}\n{\"type\":\"profile_chunk\",\"platform\":\"android\","
        "\"profile_type\":\"ui\",\"meta_length\":2,\"sampled\":false,"
        "\"filename\":\"a\\\"b\",\"content_type\":\"x\",\"length\":4}\n{}\n\n\n"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        struct kl_err err;
        struct kl_envelope *e1 = parse_n(inputs[i], strlen(inputs[i]), NULL, &err);
        ASSERT_TRUE(e1 != NULL);
        if (!e1)
            continue;
        struct kl_buf b;
        kl_buf_init(&b, 1 << 20);
        ASSERT_EQ_INT(kl_envelope_write(e1, &b), 0);
        struct kl_envelope *e2 = parse_n(b.ptr, b.len, NULL, &err);
        ASSERT_TRUE(e2 != NULL);
        if (e2)
            check_same(e1, e2);
        kl_buf_release(&b);
    }

    /* building one from scratch, as the load generator will */
    struct kl_envelope_item items[2];
    memset(items, 0, sizeof items);
    items[0].type = KL_STR("transaction");
    items[0].payload = TX_PAYLOAD;
    items[0].payload_len = strlen(TX_PAYLOAD);
    items[1].type = KL_STR("profile");
    items[1].payload = "{\n\"multi\":\"line\"\n}";
    items[1].payload_len = strlen(items[1].payload);
    items[1].sampled = KL_OPT_TRUE;
    struct kl_envelope env = {.event_id = KL_STR(EVENT_ID),
                              .sdk_name = KL_STR("kiln.loadgen"),
                              .items = items,
                              .n_items = 2};
    struct kl_buf b;
    kl_buf_init(&b, 1 << 20);
    ASSERT_EQ_INT(kl_envelope_write(&env, &b), 0);
    struct kl_err err;
    struct kl_envelope *e = parse_n(b.ptr, b.len, NULL, &err);
    ASSERT_TRUE(e != NULL);
    if (e) {
        check_same(&env, e);
        ASSERT_TRUE(payload_is_json(&e->items[1]));
    }
    /* a buffer too small fails with the buffer's reason */
    struct kl_buf small;
    kl_buf_init(&small, 16);
    ASSERT_EQ_INT(kl_envelope_write(&env, &small), -1);
    ASSERT_EQ_INT(small.err.reason, KL_R_BUF_TOO_BIG);
    kl_buf_release(&small);
    kl_buf_release(&b);
}

/* ------------------------------------------------------------------------------------ */
/* Decompression                                                                          */

/* wbits: 16+15 gzip, 15 zlib, -15 raw deflate. Caller frees. */
static char *zlib_compress(const void *in, size_t n, int wbits, size_t *out_n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    char *o = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)o;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    *out_n = z.total_out;
    deflateEnd(&z);
    return o;
}

static char *zstd_compress(const void *in, size_t n, size_t *out_n)
{
    size_t cap = ZSTD_compressBound(n);
    char *o = malloc(cap);
    size_t r = ZSTD_compress(o, cap, in, n, 3);
    if (ZSTD_isError(r))
        abort();
    *out_n = r;
    return o;
}

/* Streaming zstd without a declared content size; window_log 0 = default. */
static char *zstd_compress_stream(const void *in, size_t n, int window_log, size_t *out_n)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 1);
    if (window_log)
        ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, window_log);
    size_t cap = ZSTD_compressBound(n) + 1024;
    char *o = malloc(cap);
    ZSTD_outBuffer ob = {o, cap, 0};
    ZSTD_inBuffer ib = {in, n, 0};
    /* feed in pieces with e_continue so the frame cannot know the total size */
    while (ib.pos < ib.size) {
        size_t step = ib.size - ib.pos < 65536 ? ib.size - ib.pos : 65536;
        ZSTD_inBuffer part = {(const char *)in + ib.pos, step, 0};
        while (part.pos < part.size)
            if (ZSTD_isError(ZSTD_compressStream2(c, &ob, &part, ZSTD_e_continue)))
                abort();
        ib.pos += step;
    }
    ZSTD_inBuffer none = {NULL, 0, 0};
    size_t left;
    do {
        left = ZSTD_compressStream2(c, &ob, &none, ZSTD_e_end);
        if (ZSTD_isError(left))
            abort();
    } while (left);
    ZSTD_freeCCtx(c);
    *out_n = ob.pos;
    return o;
}

static void check_decodes_to(enum kl_encoding enc, const char *z, size_t zn, const char *want,
                             size_t want_n)
{
    char *out;
    size_t out_n;
    struct kl_err err = KL_ERR_INIT;
    int rc = kl_decompress(&A, enc, z, zn, 1 << 20, &out, &out_n, &err);
    if (rc != 0) {
        KL_FAIL_("%s: %s (%s)", kl_encoding_name(enc), kl_reason_str(err.reason), err.msg);
        return;
    }
    ASSERT_EQ_U64(out_n, want_n);
    ASSERT_TRUE(out_n == want_n && memcmp(out, want, want_n) == 0);
    for (int i = 0; i < KL_PADDING; i++)
        if (out[out_n + i])
            KL_FAIL_("%s: padding byte %d not zero", kl_encoding_name(enc), i);
}

static void test_decompress_roundtrip(void)
{
    const char *env = NODE_ENVELOPE;
    size_t n = sizeof NODE_ENVELOPE - 1, zn;
    char *z;

    z = zlib_compress(env, n, 16 + 15, &zn);
    ASSERT_EQ_INT(kl_encoding_sniff(z, zn), KL_ENC_GZIP);
    check_decodes_to(KL_ENC_GZIP, z, zn, env, n);
    free(z);

    z = zlib_compress(env, n, 15, &zn);
    check_decodes_to(KL_ENC_DEFLATE, z, zn, env, n);
    free(z);

    z = zlib_compress(env, n, -15, &zn);
    check_decodes_to(KL_ENC_DEFLATE, z, zn, env, n);
    free(z);

    z = zstd_compress(env, n, &zn);
    ASSERT_EQ_INT(kl_encoding_sniff(z, zn), KL_ENC_ZSTD);
    check_decodes_to(KL_ENC_ZSTD, z, zn, env, n);
    free(z);

    z = zstd_compress_stream(env, n, 0, &zn);
    check_decodes_to(KL_ENC_ZSTD, z, zn, env, n);
    free(z);

    check_decodes_to(KL_ENC_IDENTITY, env, n, env, n);
    ASSERT_EQ_INT(kl_encoding_sniff(env, n), KL_ENC_IDENTITY);
    check_decodes_to(KL_ENC_IDENTITY, "", 0, "", 0);

    /* empty input compresses to a valid stream too */
    z = zlib_compress("", 0, 16 + 15, &zn);
    check_decodes_to(KL_ENC_GZIP, z, zn, "", 0);
    free(z);

    /* decompress then parse: the whole ingest path */
    z = zlib_compress(env, n, 16 + 15, &zn);
    char *out;
    size_t out_n;
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_decompress(NULL, kl_encoding_sniff(z, zn), z, zn, 1 << 20, &out, &out_n, &err),
                  0);
    struct kl_envelope *e = parse_n(out, out_n, NULL, &err);
    ASSERT_TRUE(e != NULL && e->n_items == 2);
    free(out); /* no arena: the caller owns it */
    free(z);
}

static void test_gzip_multi_member(void)
{
    size_t n1, n2;
    char *a = zlib_compress("hello ", 6, 16 + 15, &n1);
    char *b = zlib_compress("world", 5, 16 + 15, &n2);
    char *both = malloc(n1 + n2 + 4);
    memcpy(both, a, n1);
    memcpy(both + n1, b, n2);
    check_decodes_to(KL_ENC_GZIP, both, n1 + n2, "hello world", 11);

    /* trailing garbage after the last member */
    memcpy(both + n1 + n2, "junk", 4);
    char *out;
    size_t out_n;
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_decompress(&A, KL_ENC_GZIP, both, n1 + n2 + 4, 1 << 20, &out, &out_n, &err),
                  -1);
    ASSERT_EQ_INT(err.reason, KL_R_ENVELOPE_DECOMPRESS);
    ASSERT_TRUE(out == NULL);
    free(a);
    free(b);
    free(both);

    /* trailing data after a zlib stream */
    a = zlib_compress("hello", 5, 15, &n1);
    both = malloc(n1 + 1);
    memcpy(both, a, n1);
    both[n1] = 'x';
    kl_err_clear(&err);
    ASSERT_EQ_INT(kl_decompress(&A, KL_ENC_DEFLATE, both, n1 + 1, 1 << 20, &out, &out_n, &err), -1);
    ASSERT_EQ_INT(err.reason, KL_R_ENVELOPE_DECOMPRESS);
    free(a);
    free(both);
}

/* max_out is the exact bound: at the limit passes, one over fails. */
static void test_decompress_limit_edges(void)
{
    size_t n = 100000, zn;
    char *plain = malloc(n);
    for (size_t i = 0; i < n; i++)
        plain[i] = (char)('a' + (i * 7) % 23);
    enum kl_encoding encs[] = {KL_ENC_IDENTITY, KL_ENC_GZIP, KL_ENC_DEFLATE, KL_ENC_ZSTD,
                               KL_ENC_ZSTD};
    for (size_t k = 0; k < sizeof encs / sizeof encs[0]; k++) {
        char *z;
        if (encs[k] == KL_ENC_IDENTITY) {
            z = malloc(n);
            memcpy(z, plain, n);
            zn = n;
        } else if (encs[k] == KL_ENC_GZIP) {
            z = zlib_compress(plain, n, 16 + 15, &zn);
        } else if (encs[k] == KL_ENC_DEFLATE) {
            z = zlib_compress(plain, n, -15, &zn);
        } else if (k == 3) {
            z = zstd_compress(plain, n, &zn); /* declares its size */
        } else {
            z = zstd_compress_stream(plain, n, 0, &zn); /* does not */
        }
        for (int d = -1; d <= 1; d++) {
            char *out;
            size_t out_n;
            struct kl_err err = KL_ERR_INIT;
            int rc = kl_decompress(&A, encs[k], z, zn, n + (size_t)d, &out, &out_n, &err);
            if (d < 0) {
                if (rc != -1 || err.reason != KL_R_ENVELOPE_TOO_LARGE)
                    KL_FAIL_("%s #%zu at max-1: rc %d %s", kl_encoding_name(encs[k]), k, rc,
                             kl_reason_str(err.reason));
            } else if (rc != 0 || out_n != n || memcmp(out, plain, n) != 0) {
                KL_FAIL_("%s #%zu at max%+d: rc %d %s %s", kl_encoding_name(encs[k]), k, d, rc,
                         kl_reason_str(err.reason), err.msg);
            }
        }
        free(z);
    }
    free(plain);
}

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* A gzip bomb: 1100 members of 4 MiB of zeros each, ~4.5 MB on the wire, 4.3 GiB decoded. It
 * must fail at the 8 MiB limit having allocated about that much, not gigabytes. */
static void test_gzip_bomb(void)
{
    size_t chunk = 4u << 20, mn;
    char *zeros = calloc(1, chunk);
    char *member = zlib_compress(zeros, chunk, 16 + 15, &mn);
    free(zeros);
    size_t reps = 1100, bn = mn * reps;
    char *bomb = malloc(bn);
    for (size_t i = 0; i < reps; i++)
        memcpy(bomb + i * mn, member, mn);
    free(member);

    long before = maxrss_kib();
    char *out = (char *)1;
    size_t out_n = 1;
    struct kl_err err = KL_ERR_INIT;
    int rc = kl_decompress(NULL, KL_ENC_GZIP, bomb, bn, 8u << 20, &out, &out_n, &err);
    long grew_mib = (maxrss_kib() - before) / 1024;
    ASSERT_EQ_INT(rc, -1);
    ASSERT_EQ_STR(kl_reason_str(err.reason), "envelope.too_large");
    ASSERT_TRUE(out == NULL && out_n == 0);
    if (grew_mib > 64)
        KL_FAIL_("gzip bomb grew the RSS by %ld MiB", grew_mib);
    free(bomb);

    /* zstd: declared size over the limit fails before decoding; undeclared while streaming */
    size_t big = 64u << 20, zn;
    zeros = calloc(1, big);
    char *z = zstd_compress(zeros, big, &zn);
    kl_err_clear(&err);
    ASSERT_EQ_INT(kl_decompress(NULL, KL_ENC_ZSTD, z, zn, 1u << 20, &out, &out_n, &err), -1);
    ASSERT_EQ_INT(err.reason, KL_R_ENVELOPE_TOO_LARGE);
    free(z);
    z = zstd_compress_stream(zeros, big, 0, &zn);
    kl_err_clear(&err);
    ASSERT_EQ_INT(kl_decompress(NULL, KL_ENC_ZSTD, z, zn, 1u << 20, &out, &out_n, &err), -1);
    ASSERT_EQ_INT(err.reason, KL_R_ENVELOPE_TOO_LARGE);
    free(z);
    free(zeros);
}

/* Every proper prefix of a compressed stream is rejected as bad compression. */
static void test_truncated(void)
{
    const char *env = NODE_ENVELOPE;
    size_t n = sizeof NODE_ENVELOPE - 1, zn;
    struct {
        enum kl_encoding enc;
        char *z;
        size_t zn;
    } cases[3];
    cases[0].enc = KL_ENC_GZIP;
    cases[0].z = zlib_compress(env, n, 16 + 15, &zn);
    cases[0].zn = zn;
    cases[1].enc = KL_ENC_DEFLATE;
    cases[1].z = zlib_compress(env, n, 15, &zn);
    cases[1].zn = zn;
    cases[2].enc = KL_ENC_ZSTD;
    cases[2].z = zstd_compress(env, n, &zn);
    cases[2].zn = zn;
    for (int k = 0; k < 3; k++) {
        for (size_t cut = 0; cut < cases[k].zn; cut++) {
            char *out;
            size_t out_n;
            struct kl_err err = KL_ERR_INIT;
            int rc = kl_decompress(&A, cases[k].enc, cases[k].z, cut, 1 << 20, &out, &out_n, &err);
            if (rc != -1 || err.reason != KL_R_ENVELOPE_DECOMPRESS) {
                KL_FAIL_("%s cut at %zu of %zu: rc %d %s", kl_encoding_name(cases[k].enc), cut,
                         cases[k].zn, rc, kl_reason_str(err.reason));
                break;
            }
        }
        free(cases[k].z);
    }
}

static void test_garbage(void)
{
    static const char junk[] = "this is not compressed at all \xff\xfe\x00\x01";
    enum kl_encoding encs[] = {KL_ENC_GZIP, KL_ENC_DEFLATE, KL_ENC_ZSTD};
    for (size_t k = 0; k < 3; k++) {
        char *out;
        size_t out_n;
        struct kl_err err = KL_ERR_INIT;
        int rc = kl_decompress(&A, encs[k], junk, sizeof junk - 1, 1 << 20, &out, &out_n, &err);
        ASSERT_EQ_INT(rc, -1);
        ASSERT_EQ_STR(kl_reason_str(err.reason), "envelope.bad_compression");
    }
    /* a corrupted byte in the middle of a gzip stream (CRC or data error) */
    size_t zn;
    char *z = zlib_compress(NODE_ENVELOPE, sizeof NODE_ENVELOPE - 1, 16 + 15, &zn);
    z[zn / 2] ^= 0x55;
    char *out;
    size_t out_n;
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_decompress(&A, KL_ENC_GZIP, z, zn, 1 << 20, &out, &out_n, &err), -1);
    ASSERT_EQ_INT(err.reason, KL_R_ENVELOPE_DECOMPRESS);
    free(z);
}

static void test_zstd_window_limit(void)
{
    size_t n = 3u << 20, zn;
    char *plain = malloc(n);
    for (size_t i = 0; i < n; i++)
        plain[i] = (char)(i * 2654435761u >> 13);
    char *z = zstd_compress_stream(plain, n, 25, &zn); /* 32 MiB window declared */
    char *out;
    size_t out_n;
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_decompress(&A, KL_ENC_ZSTD, z, zn, 64u << 20, &out, &out_n, &err), -1);
    ASSERT_EQ_INT(err.reason, KL_R_ENVELOPE_DECOMPRESS);
    free(z);
    z = zstd_compress_stream(plain, n, 23, &zn); /* 8 MiB: within the limit */
    kl_err_clear(&err);
    ASSERT_EQ_INT(kl_decompress(&A, KL_ENC_ZSTD, z, zn, 64u << 20, &out, &out_n, &err), 0);
    ASSERT_TRUE(out_n == n && memcmp(out, plain, n) == 0);
    free(z);
    free(plain);
}

struct enc_case {
    const char *value;
    int rc;
    enum kl_encoding want;
};

static void test_encoding_header(void)
{
    static const struct enc_case cases[] = {
        {"gzip", 0, KL_ENC_GZIP},
        {" GZip ", 0, KL_ENC_GZIP},
        {"x-gzip", 0, KL_ENC_GZIP},
        {"deflate", 0, KL_ENC_DEFLATE},
        {"zstd", 0, KL_ENC_ZSTD},
        {"", 0, KL_ENC_IDENTITY},
        {"identity", 0, KL_ENC_IDENTITY},
        {"UTF-8", 0, KL_ENC_IDENTITY},
        {"gzip, identity", 0, KL_ENC_GZIP},
        {"identity,zstd", 0, KL_ENC_ZSTD},
        {"gzip,", 0, KL_ENC_GZIP},
        {"gzip, zstd", -1, KL_ENC_IDENTITY},
        {"gzip, gzip", -1, KL_ENC_IDENTITY},
        {"br", -1, KL_ENC_IDENTITY},
        {"compress", -1, KL_ENC_IDENTITY},
        {"gzipx", -1, KL_ENC_IDENTITY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum kl_encoding e = KL_ENC_ZSTD;
        struct kl_err err = KL_ERR_INIT;
        int rc = kl_encoding_from_header(kl_str_c(cases[i].value), &e, &err);
        if (rc != cases[i].rc || (rc == 0 && e != cases[i].want))
            KL_FAIL_("'%s': rc %d enc %s", cases[i].value, rc, kl_encoding_name(e));
        if (rc < 0 && err.reason != KL_R_ENVELOPE_UNSUPPORTED_ENCODING)
            KL_FAIL_("'%s': reason %s", cases[i].value, kl_reason_str(err.reason));
    }
    enum kl_encoding e;
    struct kl_err err = KL_ERR_INIT;
    ASSERT_EQ_INT(kl_encoding_from_header(KL_STR_NULL, &e, &err), 0);
    ASSERT_EQ_INT(e, KL_ENC_IDENTITY);
    ASSERT_EQ_INT(kl_encoding_sniff("\x1f", 1), KL_ENC_IDENTITY);
    ASSERT_EQ_INT(kl_encoding_sniff("\x1f\x8b", 2), KL_ENC_GZIP);
}

int main(void)
{
    kl_arena_init(&A);
    KL_RUN(test_node_sdk);
    KL_RUN(test_browser_sdk_with_length);
    KL_RUN(test_profile_chunk);
    KL_RUN(test_framing);
    KL_RUN(test_crlf_payload_content);
    KL_RUN(test_item_size_limits);
    KL_RUN(test_envelope_size_limit);
    KL_RUN(test_too_many_items);
    KL_RUN(test_defaults);
    KL_RUN(test_write_roundtrip);
    KL_RUN(test_decompress_roundtrip);
    KL_RUN(test_gzip_multi_member);
    KL_RUN(test_decompress_limit_edges);
    KL_RUN(test_gzip_bomb);
    KL_RUN(test_truncated);
    KL_RUN(test_garbage);
    KL_RUN(test_zstd_window_limit);
    KL_RUN(test_encoding_header);
    kl_arena_release(&A);
    KL_TEST_DONE();
}
