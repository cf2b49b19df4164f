/* fuzz_envelope.c - libFuzzer target: bounded decompression + envelope parse + write round trip
 *
 * The first byte picks what sits in front of the parser (0 identity, 1 gzip, 2 zstd,
 * 3 deflate; the rest of the byte is ignored); the remaining bytes are the body. Properties
 * checked: payloads lie in arena memory with KL_PADDING zero bytes after them, limits hold,
 * and write(parse(x)) parses back to the same envelope.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/decompress.h"
#include "base/err.h"
#include "ingest/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_DECODED (4u << 20)

static void check(int cond)
{
    if (!cond)
        abort();
}

static int same_opt(struct kl_str a, struct kl_str b)
{
    return kl_str_is_set(a) == kl_str_is_set(b) && kl_str_eq(a, b);
}

static void check_same(const struct kl_envelope *x, const struct kl_envelope *y)
{
    check(same_opt(x->event_id, y->event_id) && same_opt(x->dsn, y->dsn) &&
          same_opt(x->sent_at, y->sent_at) && same_opt(x->sdk_name, y->sdk_name) &&
          same_opt(x->sdk_version, y->sdk_version));
    check(x->n_items == y->n_items);
    for (size_t i = 0; i < x->n_items; i++) {
        const struct kl_envelope_item *a = &x->items[i], *b = &y->items[i];
        check(kl_str_eq(a->type, b->type));
        check(a->payload_len == b->payload_len);
        check(a->payload_len == 0 || memcmp(a->payload, b->payload, a->payload_len) == 0);
        check(same_opt(a->content_type, b->content_type) && same_opt(a->filename, b->filename) &&
              same_opt(a->platform, b->platform) && same_opt(a->profile_type, b->profile_type));
        check(a->sampled == b->sampled && a->has_meta_length == b->has_meta_length &&
              a->meta_length == b->meta_length);
        check(b->has_length && b->length == b->payload_len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum kl_encoding encs[4] = {KL_ENC_IDENTITY, KL_ENC_GZIP, KL_ENC_ZSTD,
                                             KL_ENC_DEFLATE};
    if (size < 1)
        return 0;
    enum kl_encoding enc = encs[data[0] & 3];
    const char *in = (const char *)data + 1;
    size_t n = size - 1;

    /* the HTTP layer's budget reserves this much before decoding: never past the limit */
    size_t hint = kl_decompress_size_hint(enc, in, n, FUZZ_MAX_DECODED);
    check(hint <= FUZZ_MAX_DECODED + 1);
    check(enc != KL_ENC_IDENTITY || hint == (n < FUZZ_MAX_DECODED + 1 ? n : FUZZ_MAX_DECODED + 1));

    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_err err = KL_ERR_INIT;
    char *body;
    size_t body_len;
    if (kl_decompress(&a, enc, in, n, FUZZ_MAX_DECODED, &body, &body_len, &err) < 0) {
        check(kl_err_is_set(&err));
        check(err.reason == KL_R_ENVELOPE_TOO_LARGE || err.reason == KL_R_ENVELOPE_DECOMPRESS);
        kl_arena_release(&a);
        return 0;
    }
    check(body_len <= FUZZ_MAX_DECODED);
    for (size_t i = 0; i < KL_PADDING; i++)
        check(body[body_len + i] == 0);

    struct kl_envelope_limits lim;
    kl_envelope_limits_default(&lim);
    lim.max_items = 64;
    lim.max_event_bytes = 4096;
    struct kl_envelope *e = kl_envelope_parse(&a, body, body_len, &lim, &err);
    if (!e) {
        check(err.reason == KL_R_ENVELOPE_MALFORMED || err.reason == KL_R_ENVELOPE_TOO_LARGE);
        kl_arena_release(&a);
        return 0;
    }
    check(!kl_err_is_set(&err));
    check(e->n_items <= lim.max_items);
    for (size_t i = 0; i < e->n_items; i++) {
        const struct kl_envelope_item *it = &e->items[i];
        check(kl_str_is_set(it->type));
        check(it->payload_len <= body_len);
        check(!it->has_length || it->length == it->payload_len);
        for (size_t k = 0; k < KL_PADDING; k++)
            check(it->payload[it->payload_len + k] == 0);
    }

    struct kl_buf out;
    kl_buf_init(&out, 64u << 20);
    check(kl_envelope_write(e, &out) == 0);
    struct kl_err err2 = KL_ERR_INIT;
    struct kl_envelope *e2 = kl_envelope_parse(&a, out.ptr, out.len, &lim, &err2);
    check(e2 != NULL);
    check_same(e, e2);
    kl_buf_release(&out);
    kl_arena_release(&a);
    return 0;
}
