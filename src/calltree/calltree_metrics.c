/* calltree_metrics.c - "slowest functions" from call trees (spec §6.4, vroomrs)
 *
 * Self time is computed bottom-up in one reverse pass over each thread's pre-order nodes
 * (children follow their parent, so walking backwards finishes every child before its
 * parent). Functions are then recorded in post-order, children in start order, which is
 * the order vroomrs appends to its per-function lists; threads go in the tree's order
 * (vroomrs walks a hash map, so its thread order, and hence which thread wins a tie for
 * the largest self time, is arbitrary).
 */
#include <stdlib.h>
#include <string.h>

#include "calltree/calltree.h"

#define MIN_DEPTH 1 /* roots (depth 0) are never recorded, as vroomrs's min_depth 1 */

struct fn_acc {
    uint32_t fingerprint;
    uint32_t first_node; /* the node that created the entry: function, package, in_app */
    uint32_t thread;     /* thread of the largest self time */
    uint32_t n;
    uint64_t sum_self, sample_count, max_self;
    uint32_t fill; /* filled entries of the output lists */
    int32_t out;   /* index in the output, -1 when dropped */
};

static int by_sum_desc(const void *x, const void *y)
{
    const struct fn_acc *const *a = x, *const *b = y;
    if ((*a)->sum_self != (*b)->sum_self)
        return (*a)->sum_self > (*b)->sum_self ? -1 : 1;
    /* ties keep the order functions were first recorded (the accumulators' order) */
    return *a < *b ? -1 : *a > *b;
}

/* Self times per node (0 when the node is not recorded). */
static void self_times(const struct kl_calltree *t, const struct kl_cthread *th, uint64_t *self,
                       uint64_t *child_app, uint64_t *child_sys, uint32_t *parent)
{
    uint32_t lo = th->first_node, hi = th->first_node + th->n_nodes;
    /* parents, from a stack of open ancestors */
    uint32_t *st = kl_xmalloc(((size_t)th->n_nodes + 1) * sizeof *st);
    uint32_t sp = 0;
    for (uint32_t i = lo; i < hi; i++) {
        while (sp > 0 && t->nodes[st[sp - 1]].depth >= t->nodes[i].depth)
            sp--;
        parent[i] = sp ? st[sp - 1] : UINT32_MAX;
        st[sp++] = i;
        child_app[i] = child_sys[i] = 0;
    }
    free(st);
    for (uint32_t i = hi; i-- > lo;) {
        const struct kl_cnode *n = &t->nodes[i];
        const struct kl_cframe *f = &t->frames[n->frame];
        uint64_t dur = n->end_ns - n->start_ns, ca = child_app[i], cs = child_sys[i];
        uint64_t app = ca < dur ? ca : dur, s = 0;
        if (n->depth >= MIN_DEPTH && (f->flags & KL_CFRAME_AGGREGATABLE)) {
            if (f->flags & KL_CFRAME_APPLICATION) {
                /* system descendants do not eat into an application function's self time */
                if (dur > ca) {
                    s = dur - ca;
                    app += s;
                }
            } else if (ca + cs < dur) {
                s = dur - ca - cs;
            }
        }
        self[i] = s;
        if (parent[i] != UINT32_MAX) {
            child_app[parent[i]] += app;
            child_sys[parent[i]] += dur - app;
        }
    }
}

/* Open-addressing map fingerprint -> accumulator index. */
struct fn_map {
    uint32_t *slots; /* index + 1 */
    uint32_t cap;
};

static uint32_t map_find(struct fn_map *m, const struct fn_acc *acc, uint32_t fp, bool *found)
{
    uint32_t j = (fp * 2654435761u) & (m->cap - 1);
    while (m->slots[j]) {
        if (acc[m->slots[j] - 1].fingerprint == fp) {
            *found = true;
            return j;
        }
        j = (j + 1) & (m->cap - 1);
    }
    *found = false;
    return j;
}

int kl_function_metrics(struct kl_arena *a, const struct kl_calltree *t, bool filter_system,
                        uint32_t max_n, struct kl_function_metric **out, uint32_t *n_out,
                        struct kl_err *err)
{
    (void)err;
    *out = NULL;
    *n_out = 0;
    size_t nn = t->n_nodes;
    uint64_t *self = kl_xmalloc((nn + 1) * sizeof *self);
    uint64_t *ca = kl_xmalloc((nn + 1) * sizeof *ca);
    uint64_t *cs = kl_xmalloc((nn + 1) * sizeof *cs);
    uint32_t *parent = kl_xmalloc((nn + 1) * sizeof *parent);
    /* post-order of all recorded nodes, with their thread */
    uint32_t *rec = kl_xmalloc((nn + 1) * sizeof *rec);
    uint32_t *rec_thread = kl_xmalloc((nn + 1) * sizeof *rec_thread);
    uint32_t n_rec = 0;
    uint32_t *st = kl_xmalloc((nn + 1) * sizeof *st);

    for (uint32_t ti = 0; ti < t->n_threads; ti++) {
        const struct kl_cthread *th = &t->threads[ti];
        self_times(t, th, self, ca, cs, parent);
        uint32_t sp = 0, hi = th->first_node + th->n_nodes;
        for (uint32_t i = th->first_node; i <= hi; i++) {
            uint32_t d = i < hi ? t->nodes[i].depth : 0;
            while (sp > 0 && (i == hi || t->nodes[st[sp - 1]].depth >= d)) {
                uint32_t k = st[--sp];
                if (self[k] > 0) {
                    rec[n_rec] = k;
                    rec_thread[n_rec++] = ti;
                }
            }
            if (i < hi)
                st[sp++] = i;
        }
    }
    free(st);
    free(ca);
    free(cs);
    free(parent);

    struct fn_acc *acc = kl_xmalloc(((size_t)n_rec + 1) * sizeof *acc);
    uint32_t n_acc = 0;
    struct fn_map m;
    m.cap = 16;
    while (m.cap < 2 * (uint64_t)n_rec + 2)
        m.cap *= 2;
    m.slots = kl_xcalloc(m.cap, sizeof *m.slots);
    uint32_t *rec_fn = kl_xmalloc(((size_t)n_rec + 1) * sizeof *rec_fn);
    for (uint32_t r = 0; r < n_rec; r++) {
        const struct kl_cnode *n = &t->nodes[rec[r]];
        uint32_t fp = t->frames[n->frame].fingerprint;
        bool found;
        uint32_t j = map_find(&m, acc, fp, &found);
        struct fn_acc *f;
        if (!found) {
            m.slots[j] = n_acc + 1;
            f = &acc[n_acc++];
            memset(f, 0, sizeof *f);
            f->fingerprint = fp;
            f->first_node = rec[r];
            f->thread = rec_thread[r];
            f->max_self = self[rec[r]];
        } else {
            f = &acc[m.slots[j] - 1];
            if (self[rec[r]] > f->max_self) {
                f->max_self = self[rec[r]];
                f->thread = rec_thread[r];
            }
        }
        f->n++;
        f->sum_self += self[rec[r]];
        f->sample_count += n->sample_count;
        rec_fn[r] = (uint32_t)(f - acc);
    }
    free(m.slots);

    /* keep, sort, cut */
    struct fn_acc **keep = kl_xmalloc(((size_t)n_acc + 1) * sizeof *keep);
    uint32_t n_keep = 0;
    for (uint32_t i = 0; i < n_acc; i++) {
        acc[i].out = -1;
        bool in_app = t->frames[t->nodes[acc[i].first_node].frame].flags & KL_CFRAME_APPLICATION;
        if (acc[i].sample_count <= 1 || (filter_system && !in_app))
            continue;
        keep[n_keep++] = &acc[i];
    }
    qsort(keep, n_keep, sizeof *keep, by_sum_desc);
    if (max_n > 0 && n_keep > max_n)
        n_keep = max_n;

    struct kl_function_metric *res = kl_arena_calloc(a, (size_t)n_keep + 1, sizeof *res);
    for (uint32_t i = 0; i < n_keep; i++) {
        struct fn_acc *f = keep[i];
        const struct kl_cframe *fr = &t->frames[t->nodes[f->first_node].frame];
        f->out = (int32_t)i;
        res[i].fingerprint = f->fingerprint;
        res[i].function = fr->name;
        res[i].package = fr->package;
        res[i].in_app = fr->flags & KL_CFRAME_APPLICATION;
        res[i].thread_id = t->threads[f->thread].id;
        res[i].self_times_ns = kl_arena_alloc(a, (size_t)f->n * sizeof(uint64_t));
        res[i].total_times_ns = kl_arena_alloc(a, (size_t)f->n * sizeof(uint64_t));
        res[i].n = f->n;
        res[i].sum_self_time_ns = f->sum_self;
        res[i].sample_count = f->sample_count;
        res[i].max_duration_ns = f->max_self;
    }
    for (uint32_t r = 0; r < n_rec; r++) {
        struct fn_acc *f = &acc[rec_fn[r]];
        if (f->out < 0)
            continue;
        const struct kl_cnode *n = &t->nodes[rec[r]];
        struct kl_function_metric *o = &res[f->out];
        o->self_times_ns[f->fill] = self[rec[r]];
        o->total_times_ns[f->fill++] = n->end_ns - n->start_ns;
    }
    free(keep);
    free(acc);
    free(rec_fn);
    free(rec);
    free(rec_thread);
    free(self);
    *out = res;
    *n_out = n_keep;
    return 0;
}
