/* test_relay_msg.c - Relay's msgpack message: round trip, hand-made bytes, hostile lengths */
#include <string.h>

#include "ingest/relay_msg.h"
#include "kl_test.h"

static void test_round_trip(void)
{
    struct kl_relay_msg m = {0};
    m.type = KL_STR("profile_chunk");
    m.organization_id = 4508968118321152ULL;
    m.project_id = 7;
    m.has_key_id = true;
    m.key_id = 300;
    m.received = 1700000000;
    m.retention_days = 30;
    m.payload = "{\"a\":1}";
    m.payload_len = 7;
    struct kl_buf b;
    kl_buf_init(&b, 1 << 20);
    ASSERT_EQ_INT(kl_relay_msg_write(&m, &b), 0);
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_err err = KL_ERR_INIT;
    struct kl_relay_msg *x = kl_relay_msg_parse(&a, b.ptr, b.len, &err);
    ASSERT_TRUE(x != NULL);
    if (x) {
        ASSERT_EQ_SLICE(x->type, "profile_chunk");
        ASSERT_EQ_U64(x->organization_id, 4508968118321152ULL);
        ASSERT_EQ_U64(x->project_id, 7);
        ASSERT_TRUE(x->has_key_id && x->key_id == 300);
        ASSERT_EQ_INT(x->received, 1700000000);
        ASSERT_EQ_INT(x->retention_days, 30);
        ASSERT_EQ_INT(x->payload_len, 7);
        ASSERT_TRUE(memcmp(x->payload, "{\"a\":1}", 7) == 0 && x->payload[7] == 0);
    }
    /* every truncation fails cleanly */
    for (size_t n = 0; n < b.len; n++) {
        kl_err_clear(&err);
        ASSERT_TRUE(kl_relay_msg_parse(&a, b.ptr, n, &err) == NULL);
        ASSERT_EQ_INT(err.reason, KL_R_MSGPACK_MALFORMED);
    }
    kl_arena_release(&a);
    kl_buf_release(&b);
}

static void test_hand_made(void)
{
    /* {"payload": bin8 "{}", "organization_id": 1, "project_id": 2, "extra": [nil, {"x": -1}]} */
    static const unsigned char msg[] = {
        0x84, 0xa7, 'p',  'a', 'y', 'l', 'o', 'a', 'd',  0xc4, 0x02, '{',  '}', 0xaf,
        'o',  'r',  'g',  'a', 'n', 'i', 'z', 'a', 't',  'i',  'o',  'n',  '_', 'i',
        'd',  0x01, 0xaa, 'p', 'r', 'o', 'j', 'e', 'c',  't',  '_',  'i',  'd', 0xcd,
        0x01, 0x00, 0xa5, 'e', 'x', 't', 'r', 'a', 0x92, 0xc0, 0x81, 0xa1, 'x', 0xff};
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_err err = KL_ERR_INIT;
    struct kl_relay_msg *x = kl_relay_msg_parse(&a, (const char *)msg, sizeof msg, &err);
    ASSERT_TRUE(x != NULL);
    if (x) {
        ASSERT_EQ_SLICE(x->type, "profile");
        ASSERT_EQ_U64(x->project_id, 256);
        ASSERT_EQ_INT(x->payload_len, 2);
    }
    kl_arena_release(&a);
}

static void test_hostile(void)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_err err = KL_ERR_INIT;
    /* a map claiming 2^32-1 entries in 5 bytes */
    static const unsigned char m1[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    ASSERT_TRUE(kl_relay_msg_parse(&a, (const char *)m1, sizeof m1, &err) == NULL);
    /* an unknown key whose array claims 2^32-1 elements */
    static const unsigned char m2[] = {0x81, 0xa1, 'z', 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
    kl_err_clear(&err);
    ASSERT_TRUE(kl_relay_msg_parse(&a, (const char *)m2, sizeof m2, &err) == NULL);
    ASSERT_EQ_INT(err.reason, KL_R_MSGPACK_MALFORMED);
    /* a bin claiming 4 GiB */
    static const unsigned char m3[] = {0x81, 0xa7, 'p',  'a',  'y',  'l',  'o',
                                       'a',  'd',  0xc6, 0xff, 0xff, 0xff, 0xff};
    kl_err_clear(&err);
    ASSERT_TRUE(kl_relay_msg_parse(&a, (const char *)m3, sizeof m3, &err) == NULL);
    /* nesting 40 deep in an unknown key */
    unsigned char m4[64];
    size_t n = 0;
    m4[n++] = 0x81;
    m4[n++] = 0xa1;
    m4[n++] = 'z';
    for (int i = 0; i < 40; i++)
        m4[n++] = 0x91;
    m4[n++] = 0xc0;
    kl_err_clear(&err);
    ASSERT_TRUE(kl_relay_msg_parse(&a, (const char *)m4, n, &err) == NULL);
    ASSERT_EQ_INT(err.reason, KL_R_MSGPACK_MALFORMED);
    /* not a map; trailing bytes */
    kl_err_clear(&err);
    ASSERT_TRUE(kl_relay_msg_parse(&a, "\x01", 1, &err) == NULL);
    kl_arena_release(&a);
}

int main(void)
{
    KL_RUN(test_round_trip);
    KL_RUN(test_hand_made);
    KL_RUN(test_hostile);
    KL_TEST_DONE();
}
