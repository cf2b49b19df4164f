/* process.c - the pipeline for one item (see process.h) */
#include "pipeline/process.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/time.h"
#include "ingest/validate.h"
#include "normalize/normalize.h"

void kl_process_opts_init(struct kl_process_opts *o)
{
    memset(o, 0, sizeof *o);
    o->item_type = KL_ITEM_AUTO;
    o->organization_id = 1;
    o->project_id = 1;
    o->retention_days = 90;
    o->sampled = true;
}

/* Duration in ms for the duration outcome (spec §5.12), capped. */
static uint64_t outcome_duration_ms(const struct kl_profile *p)
{
    const struct kl_sample_data *d = &p->data;
    switch (p->kind) {
    case KL_KIND_SAMPLE_V1: {
        const struct kl_transaction *t = &p->transaction;
        uint64_t ms = 0;
        if (t->relative_end_ns > t->relative_start_ns) {
            ms = (t->relative_end_ns - t->relative_start_ns) / 1000000;
        } else if (d->samples.len >= 2) {
            uint64_t lo = UINT64_MAX, hi = 0;
            for (size_t i = 0; i < d->samples.len; i++) {
                uint64_t ts = d->samples.items[i].ts_ns;
                lo = ts < lo ? ts : lo;
                hi = ts > hi ? ts : hi;
            }
            ms = (hi - lo) / 1000000;
        }
        return ms > 30000 ? 30000 : ms;
    }
    case KL_KIND_SAMPLE_V2: {
        if (d->samples.len == 0)
            return 0;
        double lo = d->samples.items[0].ts_s, hi = lo;
        for (size_t i = 1; i < d->samples.len; i++) {
            double ts = d->samples.items[i].ts_s;
            lo = ts < lo ? ts : lo;
            hi = ts > hi ? ts : hi;
        }
        double ms = floor((hi - lo) * 1000.0);
        return ms > 66000 ? 66000 : (uint64_t)ms;
    }
    case KL_KIND_ANDROID: {
        uint64_t ms = p->duration_ns / 1000000;
        return ms > 30000 ? 30000 : ms;
    }
    case KL_KIND_ANDROID_CHUNK: {
        uint64_t ms = p->duration_ns / 1000000;
        return ms > 66000 ? 66000 : ms;
    }
    default:
        return 0;
    }
}

static void add(struct kl_process_result *res, enum kl_outcome_kind o, enum kl_reason r,
                enum kl_category c, uint64_t qty, struct kl_str event_id)
{
    kl_assert(res->n_outcomes < KL_MAX_OUTCOMES);
    struct kl_outcome *x = &res->outcomes[res->n_outcomes++];
    x->outcome = o;
    x->reason = r;
    x->category = c;
    x->quantity = qty;
    size_t n = event_id.ptr ? (event_id.len < 32 ? event_id.len : 32) : 0;
    if (n)
        memcpy(x->event_id, event_id.ptr, n);
    x->event_id[n] = '\0';
}

static void accepted_outcomes(struct kl_process_result *res, const struct kl_profile *p)
{
    bool ui = kl_platform_is_ui(p->platform);
    struct kl_str id = kl_profile_outcome_id(p);
    uint64_t ms = p->sampled ? outcome_duration_ms(p) : 0;
    if (res->is_chunk) {
        add(res, KL_OUTCOME_ACCEPTED, KL_R_NONE,
            ui ? KL_CAT_PROFILE_CHUNK_UI : KL_CAT_PROFILE_CHUNK, 1, id);
    } else {
        add(res, KL_OUTCOME_ACCEPTED, KL_R_NONE, KL_CAT_PROFILE, 1, id);
        if (p->sampled)
            add(res, KL_OUTCOME_ACCEPTED, KL_R_NONE, KL_CAT_PROFILE_INDEXED, 1, id);
        else
            add(res, KL_OUTCOME_FILTERED, KL_R_SAMPLED, KL_CAT_PROFILE_INDEXED, 1, id);
    }
    if (ms > 0)
        add(res, KL_OUTCOME_ACCEPTED, KL_R_NONE,
            ui ? KL_CAT_PROFILE_DURATION_UI : KL_CAT_PROFILE_DURATION, ms, KL_STR_NULL);
}

static void invalid_outcomes(struct kl_process_result *res, const struct kl_profile *p,
                             bool sampled)
{
    struct kl_str id = p ? kl_profile_outcome_id(p) : KL_STR_NULL;
    enum kl_reason r = res->err.reason;
    if (res->is_chunk) {
        add(res, KL_OUTCOME_INVALID, r, KL_CAT_PROFILE_CHUNK, 1, id);
    } else {
        add(res, KL_OUTCOME_INVALID, r, KL_CAT_PROFILE, 1, id);
        if (sampled)
            add(res, KL_OUTCOME_INVALID, r, KL_CAT_PROFILE_INDEXED, 1, id);
    }
}

int kl_process_run(struct kl_arena *a, const char *bytes, size_t len,
                   const struct kl_process_opts *opts, struct kl_process_result *res)
{
    memset(res, 0, sizeof *res);
    struct kl_profile *p = kl_profile_parse(a, bytes, len, opts->item_type, &res->err);
    res->profile = p;
    res->is_chunk = p ? kl_profile_is_chunk(p) : opts->item_type == KL_ITEM_PROFILE_CHUNK;
    if (!p)
        goto invalid;
    p->organization_id = opts->organization_id;
    p->project_id = opts->project_id;
    p->received = opts->received ? opts->received : kl_now_ns() / 1000000000LL;
    p->retention_days = opts->retention_days;
    p->sampled = opts->sampled;
    if (kl_validate_run(p, &res->err) < 0)
        goto invalid;
    kl_merge_transaction(p, opts->tx);
    if (kl_normalize_run(p, &res->err) < 0)
        goto invalid;
    accepted_outcomes(res, p);
    return 0;
invalid:
    invalid_outcomes(res, p, opts->sampled);
    return -1;
}

static void reject_item(struct kl_process_result *res, bool chunk, bool sampled, enum kl_reason r,
                        const char *msg)
{
    memset(res, 0, sizeof *res);
    res->is_chunk = chunk;
    kl_err_set(&res->err, r, "%s", msg);
    invalid_outcomes(res, NULL, sampled);
}

int kl_process_envelope(struct kl_arena *a, const struct kl_envelope *env,
                        const struct kl_process_opts *base, kl_item_result_fn *fn, void *ctx)
{
    const struct kl_tx_event *tx = NULL;
    const struct kl_envelope_item *txi = kl_envelope_find_item(env, "transaction");
    if (txi) {
        struct kl_err terr = KL_ERR_INIT;
        tx = kl_tx_event_parse(a, txi->payload, txi->payload_len, &terr);
    }
    int reported = 0;
    bool seen_profile = false;
    for (size_t i = 0; i < env->n_items; i++) {
        const struct kl_envelope_item *it = &env->items[i];
        struct kl_process_result res;
        struct kl_process_opts o = *base;
        o.tx = tx;
        if (kl_str_eq_c(it->type, "profile")) {
            o.item_type = KL_ITEM_PROFILE;
            o.sampled = it->sampled != KL_OPT_FALSE;
            if (seen_profile) {
                reject_item(&res, false, o.sampled, KL_R_PROFILING_TOO_MANY_PROFILES,
                            "only the first profile item of an envelope is kept");
            } else if (o.sampled && !tx) {
                reject_item(&res, false, o.sampled, KL_R_MISSING_TRANSACTION,
                            "a sampled profile needs its transaction in the same envelope");
            } else {
                kl_process_run(a, it->payload, it->payload_len, &o, &res);
            }
            seen_profile = true;
        } else if (kl_str_eq_c(it->type, "profile_chunk")) {
            o.item_type = KL_ITEM_PROFILE_CHUNK;
            o.tx = NULL;
            o.sampled = true;
            kl_process_run(a, it->payload, it->payload_len, &o, &res);
            if (res.profile && it->platform.ptr && it->platform.len &&
                kl_platform_is_ui(it->platform) != kl_platform_is_ui(res.profile->platform)) {
                struct kl_str id = kl_profile_outcome_id(res.profile);
                reject_item(&res, true, true, KL_R_PROFILING_INVALID_PROFILE_TYPE,
                            "the item header's platform names another profile type than the "
                            "payload's");
                for (int k = 0; k < res.n_outcomes; k++) {
                    size_t n = id.len < 32 ? id.len : 32;
                    memcpy(res.outcomes[k].event_id, id.ptr, n);
                    res.outcomes[k].event_id[n] = '\0';
                }
            }
        } else {
            continue;
        }
        fn(ctx, it, &res);
        reported++;
    }
    return reported;
}
