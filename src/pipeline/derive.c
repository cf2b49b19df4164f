/* derive.c - call trees, functions and occurrences for the store (see derive.h) */
#include "pipeline/derive.h"

#include <string.h>

#include "calltree/calltree.h"
#include "occurrence/occurrence.h"

int kl_derive_run(struct kl_arena *a, const struct kl_profile *p, struct kl_stored_item *it,
                  struct kl_err *err)
{
    bool chunk = kl_profile_is_chunk(p);
    struct kl_calltree *t =
        kl_calltree_build(a, p, chunk ? KL_CALLTREE_ALL : KL_CALLTREE_ACTIVE, err);
    if (!t)
        return -1;
    struct kl_buf b;
    kl_buf_init(&b, (size_t)1 << 31);
    if (kl_calltree_encode(t, &b) < 0) {
        kl_err_set(err, b.err.reason, "%s", b.err.msg);
        kl_buf_release(&b);
        return -1;
    }
    char *tree = kl_arena_alloc(a, b.len ? b.len : 1);
    memcpy(tree, b.ptr, b.len);
    it->tree = tree;
    it->tree_len = b.len;
    kl_buf_release(&b);

    struct kl_function_metric *fm;
    uint32_t n_fm;
    if (kl_function_metrics(a, t, true, KL_DERIVE_MAX_FUNCTIONS, &fm, &n_fm, err) < 0)
        return -1;
    struct kl_stored_function *fs = kl_arena_calloc(a, n_fm ? n_fm : 1, sizeof *fs);
    for (uint32_t i = 0; i < n_fm; i++) {
        fs[i].fingerprint = fm[i].fingerprint;
        fs[i].function = fm[i].function;
        fs[i].package = fm[i].package;
        fs[i].thread_id = fm[i].thread_id;
        fs[i].in_app = fm[i].in_app;
        fs[i].sum_self_ns = fm[i].sum_self_time_ns;
        fs[i].sample_count = fm[i].sample_count;
        fs[i].max_self_ns = fm[i].max_duration_ns;
        fs[i].self_times_ns = fm[i].self_times_ns;
        fs[i].n_calls = fm[i].n;
    }
    it->functions = fs;
    it->n_functions = n_fm;

    if (!chunk && p->sampled) {
        struct kl_occurrence *occ;
        uint32_t n_occ;
        if (kl_occurrences_detect(a, p, t, &occ, &n_occ, err) < 0)
            return -1;
        struct kl_stored_occurrence *os = kl_arena_calloc(a, n_occ ? n_occ : 1, sizeof *os);
        for (uint32_t i = 0; i < n_occ; i++) {
            os[i].type = (int)occ[i].type;
            os[i].category = kl_str_c(occ[i].category);
            os[i].title = kl_str_c(occ[i].title);
            os[i].function = occ[i].frame_name;
            os[i].package = occ[i].package;
            os[i].fingerprint = kl_str_c(occ[i].fingerprint);
            os[i].duration_ns = occ[i].duration_ns;
            os[i].sample_count = occ[i].sample_count;
            struct kl_buf ob;
            kl_buf_init(&ob, 16u << 20);
            kl_occurrence_write_json(&occ[i], p, &ob);
            os[i].body = kl_str_make(kl_arena_strndup(a, ob.ptr, ob.len), ob.len);
            kl_buf_release(&ob);
        }
        it->occurrences = os;
        it->n_occurrences = n_occ;
    }
    return 0;
}
