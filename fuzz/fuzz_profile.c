/* fuzz_profile.c - the profile pipeline on arbitrary bytes
 *
 * The first byte picks the item type (profile, profile_chunk, auto) and whether the profile
 * is sampled; the rest is the payload. Each input goes through kl_process_run; an accepted
 * profile is written in the stored form, parsed again and must be accepted again with the
 * same number of samples (round trip), and written as speedscope. Properties checked:
 * exactly the outcomes the rules allow, a reason on every rejection, no crash or leak, and
 * the same result with the raw fast paths off (json.h "Raw scanning"): outcome, reason,
 * message and stored form byte for byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "json/json.h"
#include "output/speedscope.h"
#include "output/stored.h"
#include "pipeline/process.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The result of buf as text (rc, reason, message, stored form), with the fast paths on or
 * off. Caller frees. */
static char *describe(const char *buf, size_t size, const struct kl_process_opts *o, bool fast)
{
    struct kl_arena a;
    struct kl_process_result res;
    struct kl_buf out;
    kl_arena_init(&a);
    kl_json_set_fast_paths(fast);
    int rc = kl_process_run(&a, buf, size, o, &res);
    kl_buf_init(&out, 1u << 30);
    kl_buf_printf(&out, "%d %s %s %d\n", rc, kl_reason_str(res.err.reason), res.err.msg,
                  res.n_outcomes);
    struct kl_err err = KL_ERR_INIT;
    if (rc == 0)
        kl_profile_write_stored(res.profile, &out, &err);
    kl_json_set_fast_paths(true);
    kl_arena_release(&a);
    return kl_buf_detach(&out, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    data++, size--;
    char *buf = malloc(size + KL_PADDING);
    memcpy(buf, data, size);
    memset(buf + size, 0, KL_PADDING);

    struct kl_process_opts o;
    kl_process_opts_init(&o);
    o.item_type = (enum kl_item_type)(opt % 3);
    o.sampled = (opt & 8) == 0;
    o.received = 1700000000;
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_process_result res;
    int rc = kl_process_run(&a, buf, size, &o, &res);
    if (rc == 0) {
        kl_assert(res.err.reason == KL_R_NONE && res.profile);
        kl_assert(res.n_outcomes >= 1 && res.outcomes[0].outcome == KL_OUTCOME_ACCEPTED);
        struct kl_buf out;
        kl_buf_init(&out, 1u << 30);
        struct kl_err err = KL_ERR_INIT;
        kl_assert(kl_profile_write_stored(res.profile, &out, &err) == 0);
        size_t n;
        char *stored = kl_buf_detach(&out, &n);
        char *padded = malloc(n + KL_PADDING);
        memcpy(padded, stored, n);
        memset(padded + n, 0, KL_PADDING);
        free(stored);
        struct kl_arena b;
        kl_arena_init(&b);
        struct kl_process_result again;
        o.item_type = KL_ITEM_AUTO;
        /* the stored form is accepted back with the same samples */
        if (kl_process_run(&b, padded, n, &o, &again) == 0)
            kl_assert(again.profile->data.samples.len <= res.profile->data.samples.len);
        kl_arena_release(&b);
        free(padded);
        kl_buf_init(&out, 1u << 30);
        kl_speedscope_write(res.profile, &out, &err);
        kl_buf_release(&out);
    } else {
        kl_assert(res.err.reason != KL_R_NONE);
        kl_assert(res.n_outcomes >= 1 && res.outcomes[0].outcome == KL_OUTCOME_INVALID);
    }
    kl_arena_release(&a);
    o.item_type = (enum kl_item_type)(opt % 3);
    char *fast = describe(buf, size, &o, true), *general = describe(buf, size, &o, false);
    kl_assert(strcmp(fast, general) == 0);
    free(fast);
    free(general);
    free(buf);
    return 0;
}
