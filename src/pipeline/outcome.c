/* outcome.c - outcome names and JSON lines */
#include "pipeline/outcome.h"

#include "json/json.h"

const char *kl_outcome_name(enum kl_outcome_kind o)
{
    switch (o) {
    case KL_OUTCOME_ACCEPTED:
        return "accepted";
    case KL_OUTCOME_FILTERED:
        return "filtered";
    case KL_OUTCOME_RATE_LIMITED:
        return "rate_limited";
    case KL_OUTCOME_INVALID:
        return "invalid";
    }
    return "invalid";
}

const char *kl_category_name(enum kl_category c)
{
    switch (c) {
    case KL_CAT_PROFILE:
        return "profile";
    case KL_CAT_PROFILE_INDEXED:
        return "profile_indexed";
    case KL_CAT_PROFILE_DURATION:
        return "profile_duration";
    case KL_CAT_PROFILE_CHUNK:
        return "profile_chunk";
    case KL_CAT_PROFILE_DURATION_UI:
        return "profile_duration_ui";
    case KL_CAT_PROFILE_CHUNK_UI:
        return "profile_chunk_ui";
    }
    return "profile";
}

void kl_outcome_write_json(const struct kl_outcome *o, struct kl_buf *out)
{
    struct kl_jw w;
    kl_jw_init(&w, out);
    kl_jw_obj_begin(&w);
    kl_jw_key(&w, "outcome");
    kl_jw_cstr(&w, kl_outcome_name(o->outcome));
    kl_jw_key(&w, "reason");
    if (o->reason == KL_R_NONE)
        kl_jw_null(&w);
    else
        kl_jw_cstr(&w, kl_reason_str(o->reason));
    kl_jw_key(&w, "category");
    kl_jw_cstr(&w, kl_category_name(o->category));
    kl_jw_key(&w, "quantity");
    kl_jw_u64(&w, o->quantity);
    kl_jw_key(&w, "event_id");
    if (o->event_id[0])
        kl_jw_cstr(&w, o->event_id);
    else
        kl_jw_null(&w);
    kl_jw_obj_end(&w);
    kl_buf_putc(out, '\n');
}
