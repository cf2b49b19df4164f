/* test_tx_event.c - the transaction event fields that feed a profile (ingest/tx_event.h) */
#include <string.h>

#include "ingest/tx_event.h"
#include "json/json.h"
#include "kl_test.h"

static struct kl_tx_event *parse(struct kl_arena *a, const char *json)
{
    size_t n = strlen(json);
    char *buf = kl_arena_alloc(a, n + KL_PADDING);
    memcpy(buf, json, n);
    memset(buf + n, 0, KL_PADDING);
    struct kl_err err = KL_ERR_INIT;
    return kl_tx_event_parse(a, buf, n, &err);
}

/* start_timestamp / timestamp: unix seconds (number) or RFC 3339; numbers whose nanoseconds
 * do not fit in int64 are ignored rather than overflowing */
static void test_times(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_tx_event *ev =
        parse(&a, "{\"start_timestamp\":1714557600.25,\"timestamp\":\"2024-05-01T10:00:01Z\"}");
    ASSERT_TRUE(ev != NULL);
    ASSERT_TRUE(ev->has_start && ev->has_end);
    ASSERT_EQ_U64((uint64_t)ev->start_ns, 1714557600250000000ull);
    ASSERT_EQ_U64((uint64_t)ev->end_ns, 1714557601000000000ull);
    ev = parse(&a, "{\"start_timestamp\":9.1e9,\"timestamp\":9.3e9}");
    ASSERT_TRUE(ev != NULL);
    ASSERT_TRUE(ev->has_start);
    ASSERT_EQ_U64((uint64_t)ev->start_ns, 9100000000000000000ull);
    ASSERT_TRUE(!ev->has_end);
    ev = parse(&a, "{\"start_timestamp\":1e11,\"timestamp\":-1}");
    ASSERT_TRUE(ev != NULL);
    ASSERT_TRUE(!ev->has_start && !ev->has_end);
    kl_arena_release(&a);
}

int main(void)
{
    KL_RUN(test_times);
    KL_TEST_DONE();
}
