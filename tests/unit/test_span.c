/* test_span.c - span items (v1, v2) and transactions linked to chunks (ingest/span.h) */
#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "ingest/span.h"
#include "ingest/tx_event.h"

#include "kl_test.h"

#define PROF "0123456789abcdef0123456789abcdef"
#define TRACE "11112222333344445555666677778888"
#define SEG "aaaaaaaaaaaaaaaa"
#define CHILD "bbbbbbbbbbbbbbbb"

static struct kl_arena A;
static struct kl_span_set S;

static void fresh(void)
{
    kl_arena_release(&A);
    kl_arena_init(&A);
    kl_span_set_init(&S, &A);
}

/* The payload copied with the reader's padding, as envelope items are. */
static const char *padded(const char *json, size_t n)
{
    char *p = kl_arena_alloc(&A, n + KL_PADDING);
    memcpy(p, json, n);
    memset(p + n, 0, KL_PADDING);
    return p;
}

/* parse json as item `item`; returns the reason string ("" when accepted) */
static const char *parse(const char *json, uint32_t item)
{
    struct kl_err err = KL_ERR_INIT;
    size_t n = strlen(json);
    if (kl_span_set_parse_item(&S, padded(json, n), n, item, &err) == 0)
        return "";
    return kl_reason_str(err.reason);
}

static const struct kl_span *find(const char *span_id)
{
    for (size_t i = 0; i < S.spans.len; i++)
        if (kl_str_eq_c(S.spans.items[i].span_id, span_id))
            return &S.spans.items[i];
    return NULL;
}

static uint32_t skipped_total(void)
{
    uint32_t n = 0;
    for (int k = 0; k < KL_SPAN_SKIP__COUNT; k++)
        n += S.skipped[k];
    return n;
}

/* sentry-javascript v10+ span streaming: the segment carries the profiler, children the
 * segment id and their thread */
static const char V2[] =
    "{\"items\":[{\"trace_id\":\"" TRACE "\",\"span_id\":\"" SEG "\",\"name\":\"/checkout\","
    "\"status\":\"ok\",\"is_segment\":true,\"start_timestamp\":1700000000.5,"
    "\"end_timestamp\":1700000001.25,\"attributes\":{"
    "\"sentry.profiler_id\":{\"type\":\"string\",\"value\":\"" PROF "\"},"
    "\"thread.id\":{\"type\":\"string\",\"value\":\"0\"},"
    "\"thread.name\":{\"type\":\"string\",\"value\":\"main\"},"
    "\"sentry.segment.id\":{\"type\":\"string\",\"value\":\"" SEG "\"},"
    "\"sentry.segment.name\":{\"type\":\"string\",\"value\":\"/checkout\"},"
    "\"sentry.environment\":{\"type\":\"string\",\"value\":\"production\"},"
    "\"sentry.release\":{\"type\":\"string\",\"value\":\"shop@2.0.0\"},"
    "\"sentry.op\":{\"type\":\"string\",\"value\":\"pageload\"},"
    "\"sentry.sample_rate\":{\"type\":\"double\",\"value\":1.0},"
    "\"http.response.status_code\":{\"type\":\"integer\",\"value\":200},"
    "\"sentry.idle_span_finish_reason\":{\"type\":\"boolean\",\"value\":true},"
    "\"tags\":{\"type\":\"array\",\"value\":[\"a\",{\"b\":[1,2]}]}}},"
    "{\"trace_id\":\"" TRACE "\",\"span_id\":\"" CHILD "\",\"parent_span_id\":\"" SEG "\","
    "\"name\":\"fetch /api/cart\",\"status\":\"ok\",\"is_segment\":false,"
    "\"start_timestamp\":1700000000.75,\"end_timestamp\":1700000000.75,\"attributes\":{"
    "\"thread.id\":{\"type\":\"string\",\"value\":\"0\"},"
    "\"sentry.segment.id\":{\"type\":\"string\",\"value\":\"" SEG "\"}}}]}";

static void test_v2_container(void)
{
    fresh();
    ASSERT_EQ_STR(parse(V2, 3), "");
    ASSERT_EQ_INT(S.spans.len, 2);
    ASSERT_EQ_INT(skipped_total(), 0);
    ASSERT_EQ_INT(kl_span_set_link(&S), 2);
    const struct kl_span *seg = find(SEG), *ch = find(CHILD);
    if (!seg || !ch) {
        KL_FAIL_("spans missing");
        return;
    }
    ASSERT_TRUE(seg->is_segment && seg->own_profiler);
    ASSERT_EQ_SLICE(seg->trace_id, TRACE);
    ASSERT_EQ_SLICE(seg->segment_id, SEG);
    ASSERT_EQ_SLICE(seg->name, "/checkout");
    ASSERT_EQ_SLICE(seg->thread_name, "main");
    ASSERT_EQ_INT(seg->start_ns, 1700000000500000000LL);
    ASSERT_EQ_INT(seg->end_ns, 1700000001250000000LL);
    ASSERT_EQ_INT(seg->item, 3);
    /* the child: linked through its segment, its own thread id kept, the rest inherited */
    ASSERT_TRUE(!ch->is_segment && !ch->own_profiler);
    ASSERT_EQ_SLICE(ch->profiler_id, PROF);
    ASSERT_EQ_SLICE(ch->parent_span_id, SEG);
    ASSERT_EQ_SLICE(ch->segment_id, SEG);
    ASSERT_EQ_SLICE(ch->name, "fetch /api/cart");
    ASSERT_EQ_SLICE(ch->segment_name, "/checkout");
    ASSERT_EQ_SLICE(ch->thread_id, "0");
    ASSERT_EQ_SLICE(ch->thread_name, "main");
    ASSERT_EQ_SLICE(ch->environment, "production");
    ASSERT_EQ_SLICE(ch->release, "shop@2.0.0");
    ASSERT_EQ_INT(ch->end_ns - ch->start_ns, 0); /* end == start is a valid span */
}

/* Span v1 (standalone): profiler and thread in data, integer thread id, RFC 3339 start,
 * upper-case and dashed ids normalized */
static void test_v1_span(void)
{
    fresh();
    ASSERT_EQ_STR(
        parse("{\"span_id\":\"CCCCCCCCCCCCCCCC\",\"trace_id\":\"11112222-3333-4444-5555-"
              "666677778888\",\"segment_id\":\"CCCCCCCCCCCCCCCC\",\"start_timestamp\":"
              "\"2023-11-14T22:13:20.5Z\",\"timestamp\":1700000021,\"op\":\"http.server\","
              "\"description\":\"GET /users\",\"data\":{\"sentry.profiler_id\":\"" PROF "\","
              "\"thread.id\":140234,\"thread.name\":\"MainThread\",\"environment\":\"prod\","
              "\"other\":[1,{\"x\":null}]},\"profile_id\":\"" PROF "\"}",
              0),
        "");
    ASSERT_EQ_INT(S.spans.len, 1);
    ASSERT_EQ_INT(kl_span_set_link(&S), 1);
    const struct kl_span *sp = find("cccccccccccccccc");
    if (!sp) {
        KL_FAIL_("span missing");
        return;
    }
    ASSERT_EQ_SLICE(sp->trace_id, TRACE);
    ASSERT_TRUE(sp->is_segment); /* segment_id == span_id */
    ASSERT_EQ_SLICE(sp->name, "GET /users");
    ASSERT_EQ_SLICE(sp->segment_name, "GET /users");
    ASSERT_EQ_SLICE(sp->thread_id, "140234");
    ASSERT_EQ_SLICE(sp->thread_name, "MainThread");
    ASSERT_EQ_SLICE(sp->environment, "prod");
    ASSERT_EQ_INT(sp->start_ns, 1700000000500000000LL);
    ASSERT_EQ_INT(sp->end_ns, 1700000021000000000LL);

    /* without a description the op is the name; without a profiler nothing links */
    fresh();
    ASSERT_EQ_STR(parse("{\"span_id\":\"" CHILD "\",\"trace_id\":\"" TRACE "\","
                        "\"start_timestamp\":1.0,\"timestamp\":2.0,\"op\":\"db\"}",
                        0),
                  "");
    ASSERT_EQ_INT(kl_span_set_link(&S), 0);
    ASSERT_EQ_SLICE(S.spans.items[0].name, "db");
    ASSERT_TRUE(!S.spans.items[0].profiler_id.ptr);
}

/* SDKs v8-v10: the transaction is the profiled segment; its spans link through it */
static void test_transaction_segment(void)
{
    fresh();
    static const char tx[] =
        "{\"type\":\"transaction\",\"transaction\":\"GET /api\",\"environment\":\"prod\","
        "\"release\":\"api@1\",\"start_timestamp\":1700000000.0,\"timestamp\":1700000002.0,"
        "\"contexts\":{\"trace\":{\"trace_id\":\"" TRACE "\",\"span_id\":\"" SEG "\","
        "\"op\":\"http.server\",\"data\":{\"thread.id\":7,\"thread.name\":\"worker-7\","
        "\"other\":{}}},\"profile\":{\"profiler_id\":\"" PROF "\"}}}";
    struct kl_err err = KL_ERR_INIT;
    struct kl_tx_event *ev = kl_tx_event_parse(&A, padded(tx, strlen(tx)), strlen(tx), &err);
    if (!ev) {
        KL_FAIL_("tx: %s", err.msg);
        return;
    }
    ASSERT_EQ_SLICE(ev->thread_id, "7");
    ASSERT_EQ_SLICE(ev->thread_name, "worker-7");
    ASSERT_EQ_SLICE(ev->op, "http.server"); /* the trace context's other fields still read */
    ASSERT_EQ_STR(parse("{\"span_id\":\"" CHILD "\",\"trace_id\":\"" TRACE "\","
                        "\"segment_id\":\"" SEG "\",\"parent_span_id\":\"" SEG "\","
                        "\"start_timestamp\":1700000000.5,\"timestamp\":1700000001,"
                        "\"description\":\"SELECT 1\"}",
                        1),
                  "");
    ASSERT_TRUE(kl_span_set_add_transaction(&S, ev, 0));
    ASSERT_EQ_INT(kl_span_set_link(&S), 2);
    const struct kl_span *seg = find(SEG), *ch = find(CHILD);
    if (!seg || !ch) {
        KL_FAIL_("spans missing");
        return;
    }
    ASSERT_TRUE(seg->is_segment);
    ASSERT_EQ_INT(seg->item, 0);
    ASSERT_EQ_SLICE(seg->name, "GET /api");
    ASSERT_EQ_SLICE(seg->thread_id, "7");
    ASSERT_EQ_INT(seg->end_ns - seg->start_ns, 2000000000LL);
    ASSERT_EQ_SLICE(ch->profiler_id, PROF);
    ASSERT_EQ_SLICE(ch->thread_id, "7");
    ASSERT_EQ_SLICE(ch->thread_name, "worker-7");
    ASSERT_EQ_SLICE(ch->segment_name, "GET /api");
    ASSERT_EQ_SLICE(ch->release, "api@1");
    ASSERT_EQ_INT(ch->item, 1);

    /* a segment of another trace with the same span id does not lend its profiler */
    fresh();
    ev = kl_tx_event_parse(&A, padded(tx, strlen(tx)), strlen(tx), &err);
    ASSERT_TRUE(kl_span_set_add_transaction(&S, ev, 0));
    ASSERT_EQ_STR(parse("{\"span_id\":\"" CHILD "\",\"trace_id\":\"" PROF "\","
                        "\"segment_id\":\"" SEG "\",\"start_timestamp\":1,\"timestamp\":2}",
                        1),
                  "");
    ASSERT_EQ_INT(kl_span_set_link(&S), 1);
    ASSERT_TRUE(!find(CHILD)->profiler_id.ptr);

    /* a transaction without ids or times is no segment */
    static const char bad[] = "{\"transaction\":\"x\",\"contexts\":{\"profile\":{"
                              "\"profiler_id\":\"" PROF "\"}}}";
    ev = kl_tx_event_parse(&A, padded(bad, strlen(bad)), strlen(bad), &err);
    ASSERT_TRUE(ev && !kl_span_set_add_transaction(&S, ev, 2));
}

/* Every skip reason, each span alone in a container next to a valid one: skipped one by
 * one, the valid span kept. */
static void test_skip_reasons(void)
{
    static const struct {
        const char *span;
        enum kl_span_skip why;
    } cases[] = {
        {"5", KL_SPAN_SKIP_NOT_OBJECT},
        {"[\"" TRACE "\"]", KL_SPAN_SKIP_NOT_OBJECT},
        {"{\"span_id\":\"" CHILD "\",\"start_timestamp\":1,\"end_timestamp\":2}",
         KL_SPAN_SKIP_MISSING_ID},
        {"{\"trace_id\":\"" TRACE "\",\"start_timestamp\":1,\"end_timestamp\":2}",
         KL_SPAN_SKIP_MISSING_ID},
        {"{\"trace_id\":null,\"span_id\":\"" CHILD "\",\"start_timestamp\":1,\"end_timestamp\":2}",
         KL_SPAN_SKIP_MISSING_ID},
        {"{\"trace_id\":\"1111222233334444555566667777888z\",\"span_id\":\"" CHILD "\","
         "\"start_timestamp\":1,\"end_timestamp\":2}",
         KL_SPAN_SKIP_BAD_ID},
        {"{\"trace_id\":\"" TRACE "\",\"span_id\":\"bbbbbbbbbbbbbbb\",\"start_timestamp\":1,"
         "\"end_timestamp\":2}",
         KL_SPAN_SKIP_BAD_ID},
        {"{\"trace_id\":\"" TRACE "\",\"span_id\":12,\"start_timestamp\":1,\"end_timestamp\":2}",
         KL_SPAN_SKIP_BAD_ID},
        {"{\"trace_id\":\"" TRACE "\",\"span_id\":\"" CHILD "\",\"parent_span_id\":\"xyz\","
         "\"start_timestamp\":1,\"end_timestamp\":2}",
         KL_SPAN_SKIP_BAD_ID},
        {"{\"trace_id\":\"" TRACE "\",\"span_id\":\"" CHILD "\",\"start_timestamp\":1,"
         "\"end_timestamp\":2,\"attributes\":{\"sentry.profiler_id\":{\"type\":\"string\","
         "\"value\":\"not-a-uuid\"}}}",
         KL_SPAN_SKIP_BAD_ID},
        {"{\"trace_id\":\"" TRACE "\",\"span_id\":\"" CHILD "\",\"start_timestamp\":1,"
         "\"end_timestamp\":2,\"attributes\":{\"sentry.segment.id\":{\"type\":\"string\","
         "\"value\":\"" TRACE "\"}}}",
         KL_SPAN_SKIP_BAD_ID},
        {"{\"trace_id\":\"" TRACE "\",\"span_id\":\"" CHILD "\",\"end_timestamp\":2}",
         KL_SPAN_SKIP_BAD_TIMESTAMP},
        {"{\"trace_id\":\"" TRACE "\",\"span_id\":\"" CHILD "\",\"start_timestamp\":1e400,"
         "\"end_timestamp\":2}",
         KL_SPAN_SKIP_BAD_TIMESTAMP},
        {"{\"trace_id\":\"" TRACE "\",\"span_id\":\"" CHILD "\",\"start_timestamp\":-1,"
         "\"end_timestamp\":2}",
         KL_SPAN_SKIP_BAD_TIMESTAMP},
        {"{\"trace_id\":\"" TRACE "\",\"span_id\":\"" CHILD "\",\"start_timestamp\":\"soon\","
         "\"end_timestamp\":2}",
         KL_SPAN_SKIP_BAD_TIMESTAMP},
        {"{\"trace_id\":\"" TRACE "\",\"span_id\":\"" CHILD "\",\"start_timestamp\":1,"
         "\"end_timestamp\":true}",
         KL_SPAN_SKIP_BAD_TIMESTAMP},
        {"{\"trace_id\":\"" TRACE "\",\"span_id\":\"" CHILD "\",\"start_timestamp\":1,"
         "\"end_timestamp\":1e11}",
         KL_SPAN_SKIP_BAD_TIMESTAMP},
        /* the year 2255 and later: the ns would overflow int64 (a fuzz find) */
        {"{\"trace_id\":\"" TRACE "\",\"span_id\":\"" CHILD "\",\"start_timestamp\":1,"
         "\"end_timestamp\":17000000007.5}",
         KL_SPAN_SKIP_BAD_TIMESTAMP},
        {"{\"trace_id\":\"" TRACE "\",\"span_id\":\"" CHILD "\",\"start_timestamp\":1,"
         "\"end_timestamp\":9000000000}",
         KL_SPAN_SKIP_BAD_TIMESTAMP},
        {"{\"trace_id\":\"" TRACE "\",\"span_id\":\"" CHILD "\",\"start_timestamp\":1,"
         "\"end_timestamp\":\"2300-01-01T00:00:00Z\"}",
         KL_SPAN_SKIP_BAD_TIMESTAMP},
        {"{\"trace_id\":\"" TRACE "\",\"span_id\":\"" CHILD "\",\"start_timestamp\":2,"
         "\"end_timestamp\":1.999999}",
         KL_SPAN_SKIP_END_BEFORE_START},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fresh();
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"items\":[%s,{\"trace_id\":\"" TRACE "\",\"span_id\":\"" SEG "\","
                 "\"start_timestamp\":1,\"end_timestamp\":2}]}",
                 cases[i].span);
        const char *r = parse(json, 0);
        if (strcmp(r, "") != 0) {
            KL_FAIL_("case %zu: item refused (%s)", i, r);
            continue;
        }
        if (S.spans.len != 1 || S.skipped[cases[i].why] != 1 || skipped_total() != 1)
            KL_FAIL_("case %zu (%s): %zu spans, %u skipped for the reason, %u in all", i,
                     kl_span_skip_reason(cases[i].why), S.spans.len, S.skipped[cases[i].why],
                     skipped_total());
    }
    /* the last second before the bound is fine, to the ns */
    fresh();
    ASSERT_EQ_STR(
        parse("{\"span_id\":\"" CHILD "\",\"trace_id\":\"" TRACE "\","
              "\"start_timestamp\":8999999999.999999999,\"timestamp\":8999999999.999999999}",
              0),
        "");
    ASSERT_EQ_INT(S.spans.len, 1);
    if (S.spans.len)
        ASSERT_EQ_INT(S.spans.items[0].end_ns, 8999999999999999999LL);
    ASSERT_EQ_STR(kl_span_skip_reason(KL_SPAN_SKIP_END_BEFORE_START), "span.end_before_start");
    ASSERT_EQ_STR(kl_span_skip_reason(KL_SPAN_SKIP_NOT_OBJECT), "span.not_object");
    ASSERT_EQ_STR(kl_span_skip_reason(KL_SPAN_SKIP_MISSING_ID), "span.missing_id");
    ASSERT_EQ_STR(kl_span_skip_reason(KL_SPAN_SKIP_BAD_ID), "span.bad_id");
    ASSERT_EQ_STR(kl_span_skip_reason(KL_SPAN_SKIP_BAD_TIMESTAMP), "span.bad_timestamp");
    /* a v1 span is skipped the same way */
    fresh();
    ASSERT_EQ_STR(parse("{\"span_id\":\"" CHILD "\",\"start_timestamp\":1,\"timestamp\":2}", 0),
                  "");
    ASSERT_EQ_INT(S.spans.len, 0);
    ASSERT_EQ_INT(S.skipped[KL_SPAN_SKIP_MISSING_ID], 1);
}

/* A container of n minimal spans */
static char *container(size_t n)
{
    struct kl_buf b;
    kl_buf_init(&b, 1u << 24);
    kl_buf_puts(&b, "{\"items\":[");
    for (size_t i = 0; i < n; i++)
        kl_buf_printf(&b,
                      "%s{\"trace_id\":\"" TRACE "\",\"span_id\":\"%016zx\","
                      "\"start_timestamp\":1,\"end_timestamp\":2}",
                      i ? "," : "", i);
    kl_buf_puts(&b, "]}");
    char *p = kl_arena_strndup(&A, b.ptr, b.len);
    kl_buf_release(&b);
    return p;
}

static void test_limits(void)
{
    /* spans per item at -1, = and +1 */
    for (int d = -1; d <= 1; d++) {
        fresh();
        size_t n = (size_t)(KL_SPAN_MAX_ITEMS + d);
        ASSERT_EQ_STR(parse("{\"items\":[]}", 0), "");
        const char *r = parse(container(n), 1);
        if (d <= 0) {
            ASSERT_EQ_STR(r, "");
            ASSERT_EQ_INT(S.spans.len, n);
        } else {
            ASSERT_EQ_STR(r, "span.too_many");
            ASSERT_EQ_INT(S.spans.len, 0);
        }
    }
    /* spans per envelope: items of 1000 add up to the limit, one more is refused */
    fresh();
    for (int i = 0; i < KL_SPAN_MAX_SPANS / KL_SPAN_MAX_ITEMS; i++)
        ASSERT_EQ_STR(parse(container(KL_SPAN_MAX_ITEMS), (uint32_t)i), "");
    ASSERT_EQ_INT(S.spans.len, KL_SPAN_MAX_SPANS);
    ASSERT_EQ_STR(parse(container(1), 99), "span.too_many");
    ASSERT_EQ_INT(S.spans.len, KL_SPAN_MAX_SPANS);

    /* names at -1, = and +1 bytes: cut to the limit, never inside a UTF-8 sequence */
    for (int d = -1; d <= 1; d++) {
        fresh();
        size_t n = (size_t)(KL_SPAN_MAX_STR + d);
        char *name = kl_arena_alloc(&A, n + 1);
        memset(name, 'n', n);
        name[n] = '\0';
        char *json = kl_arena_alloc(&A, n + 256);
        snprintf(json, n + 256,
                 "{\"span_id\":\"" CHILD "\",\"trace_id\":\"" TRACE "\",\"start_timestamp\":1,"
                 "\"timestamp\":2,\"description\":\"%s\"}",
                 name);
        ASSERT_EQ_STR(parse(json, 0), "");
        ASSERT_EQ_INT(S.spans.items[0].name.len, d <= 0 ? n : (size_t)KL_SPAN_MAX_STR);
    }
    fresh();
    {
        /* 1023 ASCII bytes then "é" (2 bytes): the cut drops the whole character */
        char name[KL_SPAN_MAX_STR + 8];
        memset(name, 'n', KL_SPAN_MAX_STR - 1);
        memcpy(name + KL_SPAN_MAX_STR - 1, "\xc3\xa9", 3);
        char json[KL_SPAN_MAX_STR + 256];
        snprintf(json, sizeof json,
                 "{\"span_id\":\"" CHILD "\",\"trace_id\":\"" TRACE "\",\"start_timestamp\":1,"
                 "\"timestamp\":2,\"description\":\"%s\"}",
                 name);
        ASSERT_EQ_STR(parse(json, 0), "");
        ASSERT_EQ_INT(S.spans.items[0].name.len, KL_SPAN_MAX_STR - 1);
    }
    /* thread ids at -1, = and +1 bytes: a longer one is dropped, the span kept */
    for (int d = -1; d <= 1; d++) {
        fresh();
        size_t n = (size_t)(KL_SPAN_MAX_THREAD_ID + d);
        char tid[KL_SPAN_MAX_THREAD_ID + 2];
        memset(tid, '7', n);
        tid[n] = '\0';
        char json[512];
        snprintf(json, sizeof json,
                 "{\"span_id\":\"" CHILD "\",\"trace_id\":\"" TRACE "\",\"start_timestamp\":1,"
                 "\"timestamp\":2,\"data\":{\"thread.id\":\"%s\",\"sentry.profiler_id\":\"" PROF
                 "\"}}",
                 tid);
        ASSERT_EQ_STR(parse(json, 0), "");
        ASSERT_EQ_INT(S.spans.len, 1);
        ASSERT_EQ_INT(S.spans.items[0].thread_id.len, d <= 0 ? n : 0);
    }
}

static void test_malformed(void)
{
    static const char *bad[] = {
        "",
        "{",
        "not json",
        "[]",
        "\"span\"",
        "{\"items\":[{\"trace_id\":]}",
        "{\"span_id\":\"" CHILD "\"} trailing",
        "{\"items\":[{\"trace_id\":\"" TRACE "\",\"span_id\":\"" CHILD "\","
        "\"start_timestamp\":1,\"end_timestamp\":2},{\"trace_id\":\"\xff\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fresh();
        /* an earlier item's spans survive a later item's failure; the failing item adds
         * nothing, not even the spans read before its error */
        ASSERT_EQ_STR(parse(V2, 0), "");
        const char *r = parse(bad[i], 1);
        if (strcmp(r, "span.invalid_json") != 0)
            KL_FAIL_("case %zu: got \"%s\"", i, r);
        ASSERT_EQ_INT(S.spans.len, 2);
        ASSERT_EQ_INT(skipped_total(), 0);
    }
    /* a deeply nested unknown attribute is the reader's depth limit, not a crash */
    fresh();
    struct kl_buf b;
    kl_buf_init(&b, 1u << 20);
    kl_buf_puts(&b, "{\"span_id\":\"" CHILD "\",\"data\":{\"x\":");
    for (int i = 0; i < 1000; i++)
        kl_buf_puts(&b, "[");
    for (int i = 0; i < 1000; i++)
        kl_buf_puts(&b, "]");
    kl_buf_puts(&b, "}}");
    char *deep = kl_arena_strndup(&A, b.ptr, b.len);
    kl_buf_release(&b);
    ASSERT_EQ_STR(parse(deep, 0), "span.invalid_json");
}

int main(void)
{
    kl_arena_init(&A);
    KL_RUN(test_v2_container);
    KL_RUN(test_v1_span);
    KL_RUN(test_transaction_segment);
    KL_RUN(test_skip_reasons);
    KL_RUN(test_limits);
    KL_RUN(test_malformed);
    kl_arena_release(&A);
    KL_TEST_DONE();
}
