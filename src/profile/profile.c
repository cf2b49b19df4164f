/* profile.c - model helpers */
#include "profile/profile.h"

#include <string.h>

struct kl_profile *kl_profile_new(struct kl_arena *a)
{
    struct kl_profile *p = kl_arena_calloc(a, 1, sizeof *p);
    p->arena = a;
    kl_intern_init(&p->strings, a);
    p->sampled = true;
    p->retention_days = 90;
    return p;
}

bool kl_platform_is_ui(struct kl_str platform)
{
    return kl_str_eq_c(platform, "cocoa") || kl_str_eq_c(platform, "android") ||
           kl_str_eq_c(platform, "javascript");
}

struct kl_str kl_profile_outcome_id(const struct kl_profile *p)
{
    if (kl_str_is_set(p->chunk_id))
        return p->chunk_id;
    return p->event_id;
}

struct kl_str kl_kv_find(const kl_vec_kv *m, const char *key)
{
    for (size_t i = 0; i < m->len; i++)
        if (kl_str_eq_c(m->items[i].key, key))
            return m->items[i].value;
    return KL_STR_NULL;
}

void kl_kv_set(struct kl_arena *a, kl_vec_kv *m, struct kl_str key, struct kl_str value)
{
    for (size_t i = 0; i < m->len; i++) {
        if (kl_str_eq(m->items[i].key, key)) {
            m->items[i].value = value;
            return;
        }
    }
    struct kl_kv kv = {key, value};
    kl_vec_push(a, m, kv);
}
