/* fuzz_relay_msg.c - Relay's msgpack message decoder on arbitrary bytes; a decoded message
 * must encode and decode back to the same fields. */
#include <stdint.h>
#include <string.h>

#include "ingest/relay_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_err err = KL_ERR_INIT;
    struct kl_relay_msg *m = kl_relay_msg_parse(&a, (const char *)data, size, &err);
    if (m) {
        struct kl_buf b;
        kl_buf_init(&b, 1u << 30);
        kl_assert(kl_relay_msg_write(m, &b) == 0);
        struct kl_err e2 = KL_ERR_INIT;
        struct kl_relay_msg *x = kl_relay_msg_parse(&a, b.ptr, b.len, &e2);
        kl_assert(x && x->payload_len == m->payload_len && x->project_id == m->project_id &&
                  x->organization_id == m->organization_id &&
                  memcmp(x->payload, m->payload, m->payload_len) == 0);
        kl_buf_release(&b);
    } else {
        kl_assert(err.reason != KL_R_NONE);
    }
    kl_arena_release(&a);
    return 0;
}
