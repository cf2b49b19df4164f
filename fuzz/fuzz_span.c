/* fuzz_span.c - span items (ingest/span.h) on arbitrary bytes
 *
 * The first byte picks options: bit 0 adds a profiled transaction segment (trace
 * 11112222333344445555666677778888, span aaaaaaaaaaaaaaaa) before linking, bit 1 parses the
 * payload twice (as items 0 and 1). The remaining bytes are the item payload. Properties:
 * a refused item adds no span and no skip count and says why (span.invalid_json or
 * span.too_many); every kept span satisfies span.h's invariants and limits, before and
 * after linking; the link count is the number of spans with a profiler id.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "ingest/span.h"
#include "ingest/tx_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond)
        abort();
}

static int lower_hex(struct kl_str s, size_t n)
{
    if (!kl_span_is_hex(s, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s.ptr[i] >= 'A' && s.ptr[i] <= 'F')
            return 0;
    return 1;
}

static void check_span(const struct kl_span *sp)
{
    check(lower_hex(sp->trace_id, 32) && lower_hex(sp->span_id, 16));
    check(!sp->parent_span_id.ptr || lower_hex(sp->parent_span_id, 16));
    check(!sp->segment_id.ptr || lower_hex(sp->segment_id, 16));
    check(!sp->profiler_id.ptr || lower_hex(sp->profiler_id, 32));
    check(!sp->is_segment || kl_str_eq(sp->segment_id, sp->span_id));
    check(sp->start_ns >= 0 && sp->end_ns >= sp->start_ns);
    check(sp->name.len <= KL_SPAN_MAX_STR && sp->segment_name.len <= KL_SPAN_MAX_STR);
    check(sp->environment.len <= KL_SPAN_MAX_STR && sp->release.len <= KL_SPAN_MAX_STR);
    check(sp->thread_id.len <= KL_SPAN_MAX_THREAD_ID && sp->thread_name.len <= KL_SPAN_MAX_STR);
}

static uint32_t skipped(const struct kl_span_set *s)
{
    uint32_t n = 0;
    for (int k = 0; k < KL_SPAN_SKIP__COUNT; k++)
        n += s->skipped[k];
    return n;
}

static void parse_one(struct kl_span_set *s, const char *p, size_t n, uint32_t item)
{
    size_t before = s->spans.len;
    uint32_t sk = skipped(s);
    struct kl_err err = KL_ERR_INIT;
    if (kl_span_set_parse_item(s, p, n, item, &err) < 0) {
        check(err.reason == KL_R_SPAN_INVALID_JSON || err.reason == KL_R_SPAN_TOO_MANY);
        check(s->spans.len == before && skipped(s) == sk);
        return;
    }
    check(s->spans.len - before <= KL_SPAN_MAX_ITEMS && s->spans.len <= KL_SPAN_MAX_SPANS);
    for (size_t i = before; i < s->spans.len; i++)
        check(s->spans.items[i].item == item);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    struct kl_arena a;
    kl_arena_init(&a);
    size_t n = size - 1;
    char *p = kl_arena_alloc(&a, n + KL_PADDING);
    memcpy(p, data + 1, n);
    memset(p + n, 0, KL_PADDING);
    struct kl_span_set s;
    kl_span_set_init(&s, &a);
    parse_one(&s, p, n, 0);
    if (opt & 2)
        parse_one(&s, p, n, 1);
    if (opt & 1) {
        struct kl_tx_event ev;
        memset(&ev, 0, sizeof ev);
        ev.trace_id = KL_STR("11112222333344445555666677778888");
        ev.span_id = KL_STR("aaaaaaaaaaaaaaaa");
        ev.profiler_id = KL_STR("0123456789abcdef0123456789abcdef");
        ev.transaction = KL_STR("GET /fuzz");
        ev.thread_id = KL_STR("0");
        ev.has_start = ev.has_end = true;
        ev.start_ns = 1000000000;
        ev.end_ns = 2000000000;
        size_t before = s.spans.len;
        check(kl_span_set_add_transaction(&s, &ev, 2) == (before < KL_SPAN_MAX_SPANS));
    }
    for (size_t i = 0; i < s.spans.len; i++)
        check_span(&s.spans.items[i]);
    size_t linked = kl_span_set_link(&s), with = 0;
    for (size_t i = 0; i < s.spans.len; i++) {
        check_span(&s.spans.items[i]);
        with += s.spans.items[i].profiler_id.ptr != NULL;
    }
    check(linked == with);
    kl_arena_release(&a);
    return 0;
}
