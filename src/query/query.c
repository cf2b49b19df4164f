/* query.c - read-side queries (see query.h) */
#include "query/query.h"

#include <math.h>
#include <pthread.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/time.h"
#include "calltree/calltree.h"

/* ---- search syntax ---- */

int kl_query_parse(struct kl_arena *a, struct kl_str q, struct kl_profile_filter *f,
                   struct kl_err *err)
{
    const char *p = q.ptr, *e = q.ptr + q.len;
    while (p && p < e) {
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        if (p >= e)
            break;
        const char *k = p;
        while (p < e && *p != ':' && *p != ' ')
            p++;
        if (p >= e || *p != ':')
            return kl_err_set(err, KL_R_QUERY_BAD,
                              "query terms look like key:value or key:\"value\" (near '%.*s')",
                              (int)(p - k > 40 ? 40 : p - k), k);
        struct kl_str key = kl_str_make(k, (size_t)(p - k));
        p++;
        struct kl_str val;
        if (p < e && *p == '"') {
            p++;
            char *buf = kl_arena_alloc(a, (size_t)(e - p) + 1);
            size_t n = 0;
            while (p < e && *p != '"') {
                if (*p == '\\' && p + 1 < e)
                    p++;
                buf[n++] = *p++;
            }
            if (p >= e)
                return kl_err_set(err, KL_R_QUERY_BAD, "unterminated quote in query");
            p++;
            val = kl_str_make(buf, n);
        } else {
            const char *v = p;
            while (p < e && *p != ' ')
                p++;
            val = kl_str_make(v, (size_t)(p - v));
        }
        if (kl_str_eq_c(key, "transaction"))
            f->transaction = val;
        else if (kl_str_eq_c(key, "release"))
            f->release = val;
        else if (kl_str_eq_c(key, "environment"))
            f->environment = val;
        else if (kl_str_eq_c(key, "platform") || kl_str_eq_c(key, "platform.name"))
            f->platform = val;
        else if (kl_str_eq_c(key, "device.class") || kl_str_eq_c(key, "device.classification"))
            f->device_class = val;
        else if (kl_str_eq_c(key, "profile.kind")) {
            if (kl_str_eq_c(val, "transaction"))
                f->kind = KL_STORED_PROFILE;
            else if (kl_str_eq_c(val, "continuous"))
                f->kind = KL_STORED_CHUNK;
            else
                return kl_err_set(err, KL_R_QUERY_BAD, "profile.kind is transaction or continuous");
        } else {
            return kl_err_set(err, KL_R_QUERY_BAD,
                              "unknown query key '%.*s' (kiln searches transaction, release, "
                              "environment, platform, device.class, profile.kind)",
                              (int)(key.len > 40 ? 40 : key.len), key.ptr);
        }
    }
    return 0;
}

/* ---- flamegraph ---- */

/* Rows are decoded and merged on two threads: the scanning thread merges even rows into the
 * caller's accumulator and hands odd rows (a copy of the tree bytes) to a helper thread
 * with its own accumulator, merged in at the end (kl_flamegraph_merge). The split is by row
 * order, so the result is the same on every run. Measured on 10,000 stored profiles: the
 * merge is CPU-bound once SQLite reads are memory-mapped, so two cores nearly halve it. */

#define FG_RING 64

struct fg_item {
    char *tree;
    size_t len;
    struct kl_calltree_row row; /* strings copied into strs */
    char strs[160];
};

struct fg_ctx {
    struct kl_flamegraph *fg;
    struct kl_err *err;
    uint64_t n;
    int failed;
    /* helper thread */
    struct kl_flamegraph *fg2;
    struct kl_err err2;
    uint64_t n2;
    int failed2;
    pthread_t th;
    bool threaded;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct fg_item ring[FG_RING];
    unsigned head, tail; /* head: next to fill, tail: next to take */
    bool done;
    uint64_t row;
};

static int merge_tree(struct kl_flamegraph *fg, const struct kl_calltree_row *r, const char *tree,
                      size_t len, struct kl_err *err, uint64_t *n)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_err derr = KL_ERR_INIT;
    struct kl_calltree *t = kl_calltree_decode(&a, tree, len, &derr);
    int rc = 0;
    if (t) {
        struct kl_fg_example ex = {0};
        ex.project_id = r->project_id;
        ex.profile_id = r->profile_id;
        ex.profiler_id = r->profiler_id;
        ex.chunk_id = r->chunk_id;
        ex.start_ns = r->start_ns;
        ex.end_ns = r->start_ns + (int64_t)r->duration_ns;
        struct kl_fg_add how = {0};
        how.threads = r->kind == KL_STORED_CHUNK ? KL_CALLTREE_ALL : KL_CALLTREE_ACTIVE;
        how.example = &ex;
        rc = kl_flamegraph_add(fg, t, &how, err);
        if (rc == 0)
            (*n)++;
    }
    /* an undecodable tree (a store written by another version) is skipped, not fatal */
    kl_arena_release(&a);
    return rc;
}

static struct kl_str copy_into(char *buf, size_t *used, size_t cap, struct kl_str s)
{
    if (!s.ptr || *used + s.len > cap)
        return KL_STR_NULL;
    memcpy(buf + *used, s.ptr, s.len);
    struct kl_str r = kl_str_make(buf + *used, s.len);
    *used += s.len;
    return r;
}

static void *fg_helper(void *arg)
{
    struct fg_ctx *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (c->head == c->tail && !c->done)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->head == c->tail && c->done) {
            pthread_mutex_unlock(&c->mu);
            return NULL;
        }
        struct fg_item *it = &c->ring[c->tail % FG_RING];
        pthread_mutex_unlock(&c->mu);
        if (!c->failed2 && merge_tree(c->fg2, &it->row, it->tree, it->len, &c->err2, &c->n2) < 0)
            c->failed2 = 1;
        free(it->tree);
        pthread_mutex_lock(&c->mu);
        c->tail++;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
}

static int add_tree(void *ctx, const struct kl_calltree_row *r)
{
    struct fg_ctx *c = ctx;
    if (!c->threaded || (c->row++ & 1) == 0) {
        if (merge_tree(c->fg, r, r->tree, r->tree_len, c->err, &c->n) < 0) {
            c->failed = 1;
            return 1;
        }
        return 0;
    }
    pthread_mutex_lock(&c->mu);
    while (c->head - c->tail == FG_RING)
        pthread_cond_wait(&c->cv, &c->mu);
    struct fg_item *it = &c->ring[c->head % FG_RING];
    pthread_mutex_unlock(&c->mu);
    it->tree = kl_xmalloc(r->tree_len ? r->tree_len : 1);
    memcpy(it->tree, r->tree, r->tree_len);
    it->len = r->tree_len;
    it->row = *r;
    size_t used = 0;
    it->row.profile_id = copy_into(it->strs, &used, sizeof it->strs, r->profile_id);
    it->row.profiler_id = copy_into(it->strs, &used, sizeof it->strs, r->profiler_id);
    it->row.chunk_id = copy_into(it->strs, &used, sizeof it->strs, r->chunk_id);
    it->row.transaction_name = it->row.release = it->row.environment = it->row.platform =
        KL_STR_NULL;
    it->row.tree = NULL;
    pthread_mutex_lock(&c->mu);
    c->head++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int kl_query_flamegraph(struct kl_store *s, const struct kl_profile_filter *f,
                        struct kl_flamegraph *fg, uint64_t *n_trees, struct kl_err *err)
{
    struct fg_ctx *c = kl_xcalloc(1, sizeof *c);
    c->fg = fg;
    c->err = err;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 1) {
        c->fg2 = kl_flamegraph_new_like(fg);
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->cv, NULL);
        c->threaded = pthread_create(&c->th, NULL, fg_helper, c) == 0;
        if (!c->threaded) {
            kl_flamegraph_free(c->fg2);
            c->fg2 = NULL;
        }
    }
    int rc = kl_store_scan_calltrees(s, f, add_tree, c, err);
    if (c->threaded) {
        pthread_mutex_lock(&c->mu);
        c->done = true;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->th, NULL);
        if (rc == 0 && !c->failed && c->failed2) {
            *err = c->err2;
            rc = -1;
        }
        if (rc == 0 && !c->failed && kl_flamegraph_merge(fg, c->fg2, err) < 0)
            rc = -1;
        kl_flamegraph_free(c->fg2);
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
    }
    if (c->failed)
        rc = -1;
    if (n_trees)
        *n_trees = c->n + c->n2;
    free(c);
    return rc;
}

/* ---- functions ---- */

struct fn_acc {
    uint32_t fingerprint;
    struct kl_str function, package;
    bool in_app;
    uint64_t sample_count, sum, max, profiles;
    KL_VEC(uint64_t) times;
    struct kl_str worst;
    struct kl_str examples[5];
    uint32_t n_examples;
};

struct fn_ctx {
    struct kl_arena *a;
    struct fn_acc *accs;
    size_t n, cap;
    uint32_t *slots; /* open addressing on fingerprint: index + 1 */
    size_t slot_cap;
};

/* The accumulator of fingerprint fp, NULL when absent. */
static struct fn_acc *fn_lookup(const struct fn_ctx *c, uint32_t fp)
{
    if (!c->slot_cap)
        return NULL;
    size_t j = (fp * 2654435761u) & (c->slot_cap - 1);
    while (c->slots[j]) {
        struct fn_acc *x = &c->accs[c->slots[j] - 1];
        if (x->fingerprint == fp)
            return x;
        j = (j + 1) & (c->slot_cap - 1);
    }
    return NULL;
}

/* The accumulator of fingerprint fp, created when new. */
static struct fn_acc *fn_find(struct fn_ctx *c, uint32_t fp)
{
    if (c->n * 2 >= c->slot_cap) {
        size_t ncap = c->slot_cap ? c->slot_cap * 2 : 1024;
        uint32_t *ns = kl_arena_calloc(c->a, ncap, sizeof *ns);
        for (size_t i = 0; i < c->n; i++) {
            size_t j = (c->accs[i].fingerprint * 2654435761u) & (ncap - 1);
            while (ns[j])
                j = (j + 1) & (ncap - 1);
            ns[j] = (uint32_t)i + 1;
        }
        c->slots = ns;
        c->slot_cap = ncap;
    }
    size_t j = (fp * 2654435761u) & (c->slot_cap - 1);
    while (c->slots[j]) {
        struct fn_acc *x = &c->accs[c->slots[j] - 1];
        if (x->fingerprint == fp)
            return x;
        j = (j + 1) & (c->slot_cap - 1);
    }
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 256;
        c->accs = kl_arena_grow(c->a, c->accs, c->cap * sizeof *c->accs, ncap * sizeof *c->accs);
        c->cap = ncap;
    }
    struct fn_acc *x = &c->accs[c->n];
    memset(x, 0, sizeof *x);
    x->fingerprint = fp;
    c->slots[j] = (uint32_t)++c->n;
    return x;
}

static struct kl_str dup_str(struct kl_arena *a, struct kl_str s)
{
    if (!s.ptr)
        return s;
    return kl_str_make(kl_arena_strndup(a, s.ptr, s.len), s.len);
}

static int add_function(void *ctx, const struct kl_function_row *r)
{
    struct fn_ctx *c = ctx;
    struct fn_acc *x = fn_find(c, r->fingerprint);
    if (!x->function.ptr) {
        x->function = dup_str(c->a, r->function);
        x->package = dup_str(c->a, r->package);
        x->in_app = r->in_app;
    }
    x->sample_count += r->sample_count;
    x->sum += r->sum_self_ns;
    x->profiles++;
    if (r->max_self_ns > x->max || !x->worst.ptr) {
        if (r->max_self_ns >= x->max) {
            x->max = r->max_self_ns;
            x->worst = dup_str(c->a, r->item_id);
        }
    }
    if (x->n_examples < 5)
        x->examples[x->n_examples++] = dup_str(c->a, r->item_id);
    kl_vec_reserve(c->a, &x->times, r->n_calls);
    for (uint32_t i = 0; i < r->n_calls; i++) {
        uint64_t v;
        memcpy(&v, (const char *)r->self_times_ns + i * sizeof v, sizeof v);
        x->times.items[x->times.len++] = v;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* nearest rank: sorted v, index ceil(n*q) - 1 */
static uint64_t rank(const uint64_t *v, size_t n, double q)
{
    if (!n)
        return 0;
    size_t i = (size_t)ceil((double)n * q);
    return v[i ? i - 1 : 0];
}

static void finish(const struct fn_acc *x, struct kl_query_function *o)
{
    memset(o, 0, sizeof *o);
    o->fingerprint = x->fingerprint;
    o->function = x->function;
    o->package = x->package;
    o->in_app = x->in_app;
    o->count = x->times.len;
    o->sample_count = x->sample_count;
    o->sum_ns = x->sum;
    o->profiles = x->profiles;
    qsort(x->times.items, x->times.len, sizeof(uint64_t), cmp_u64);
    o->p50_ns = rank(x->times.items, x->times.len, 0.50);
    o->p75_ns = rank(x->times.items, x->times.len, 0.75);
    o->p95_ns = rank(x->times.items, x->times.len, 0.95);
    o->p99_ns = rank(x->times.items, x->times.len, 0.99);
    o->max_ns = x->times.len ? x->times.items[x->times.len - 1] : 0;
    o->avg_ns = x->times.len ? (double)x->sum / (double)x->times.len : 0;
    o->worst = x->worst;
    o->n_examples = x->n_examples;
    memcpy(o->examples, x->examples, sizeof o->examples);
}

static int cmp_fn(const void *a, const void *b)
{
    const struct kl_query_function *x = a, *y = b;
    if (x->sum_ns != y->sum_ns)
        return x->sum_ns > y->sum_ns ? -1 : 1;
    return x->fingerprint < y->fingerprint ? -1 : x->fingerprint > y->fingerprint;
}

static int collect(struct kl_store *s, struct kl_arena *a, const struct kl_profile_filter *f,
                   struct fn_ctx *c, struct kl_err *err)
{
    memset(c, 0, sizeof *c);
    c->a = a;
    return kl_store_scan_functions(s, f, 0, add_function, c, err);
}

int kl_query_functions(struct kl_store *s, struct kl_arena *a, const struct kl_profile_filter *f,
                       uint32_t max_n, struct kl_query_function **out, uint32_t *n_out,
                       struct kl_err *err)
{
    struct fn_ctx c;
    if (collect(s, a, f, &c, err) < 0)
        return -1;
    struct kl_query_function *res = kl_arena_calloc(a, c.n ? c.n : 1, sizeof *res);
    for (size_t i = 0; i < c.n; i++)
        finish(&c.accs[i], &res[i]);
    qsort(res, c.n, sizeof *res, cmp_fn);
    *out = res;
    *n_out = (uint32_t)(max_n && c.n > max_n ? max_n : c.n);
    return 0;
}

static int cmp_trend(const void *a, const void *b)
{
    const struct kl_query_trend *x = a, *y = b;
    double dx = fabs((double)x->p95_delta_ns * (double)x->after.count);
    double dy = fabs((double)y->p95_delta_ns * (double)y->after.count);
    return dx > dy ? -1 : dx < dy;
}

int kl_query_function_trends(struct kl_store *s, struct kl_arena *a,
                             const struct kl_profile_filter *before,
                             const struct kl_profile_filter *after, uint32_t max_n,
                             struct kl_query_trend **out, uint32_t *n_out, struct kl_err *err)
{
    struct fn_ctx cb, ca;
    if (collect(s, a, before, &cb, err) < 0 || collect(s, a, after, &ca, err) < 0)
        return -1;
    struct kl_query_trend *res = kl_arena_calloc(a, ca.n ? ca.n : 1, sizeof *res);
    size_t n = 0;
    for (size_t i = 0; i < ca.n; i++) {
        struct fn_acc *x = &ca.accs[i];
        struct fn_acc *y = fn_lookup(&cb, x->fingerprint); /* the "before" side */
        struct kl_query_trend *t = &res[n++];
        finish(x, &t->after);
        if (y)
            finish(y, &t->before);
        t->p95_delta_ns = (int64_t)t->after.p95_ns - (int64_t)t->before.p95_ns;
        t->p95_change =
            t->before.p95_ns ? (double)t->after.p95_ns / (double)t->before.p95_ns - 1 : NAN;
        t->avg_change = t->before.avg_ns > 0 ? t->after.avg_ns / t->before.avg_ns - 1 : NAN;
    }
    qsort(res, n, sizeof *res, cmp_trend);
    *out = res;
    *n_out = (uint32_t)(max_n && n > max_n ? max_n : n);
    return 0;
}

void kl_query_write_function(struct kl_jw *w, const struct kl_query_function *f)
{
    kl_jw_obj_begin(w);
    kl_jw_key(w, "name");
    kl_jw_str(w, f->function.ptr ? f->function : KL_STR(""));
    kl_jw_key(w, "package");
    kl_jw_str(w, f->package.ptr ? f->package : KL_STR(""));
    kl_jw_key(w, "fingerprint");
    kl_jw_u64(w, f->fingerprint);
    kl_jw_key(w, "in_app");
    kl_jw_bool(w, f->in_app);
    kl_jw_key(w, "p50");
    kl_jw_u64(w, f->p50_ns);
    kl_jw_key(w, "p75");
    kl_jw_u64(w, f->p75_ns);
    kl_jw_key(w, "p95");
    kl_jw_u64(w, f->p95_ns);
    kl_jw_key(w, "p99");
    kl_jw_u64(w, f->p99_ns);
    kl_jw_key(w, "avg");
    kl_jw_f64(w, f->avg_ns);
    kl_jw_key(w, "sum");
    kl_jw_u64(w, f->sum_ns);
    kl_jw_key(w, "count");
    kl_jw_u64(w, f->count);
    kl_jw_key(w, "sample_count");
    kl_jw_u64(w, f->sample_count);
    kl_jw_key(w, "profiles");
    kl_jw_u64(w, f->profiles);
    kl_jw_key(w, "worst");
    if (f->worst.ptr)
        kl_jw_str(w, f->worst);
    else
        kl_jw_null(w);
    kl_jw_key(w, "examples");
    kl_jw_arr_begin(w);
    for (uint32_t i = 0; i < f->n_examples; i++)
        kl_jw_str(w, f->examples[i]);
    kl_jw_arr_end(w);
    kl_jw_obj_end(w);
}

void kl_query_write_profile_row(struct kl_jw *w, const struct kl_profile_row *r,
                                const char *time_key)
{
    char ts[48];
    kl_jw_obj_begin(w);
    if (r->kind == KL_STORED_CHUNK) {
        kl_jw_key_str_or_null(w, "profiler_id", r->profiler_id);
        kl_jw_key_str_or_null(w, "chunk_id", r->chunk_id);
    } else {
        kl_jw_key_str_or_null(w, "profile_id", r->profile_id);
    }
    kl_jw_key(w, "org_id");
    kl_jw_u64(w, r->organization_id);
    kl_jw_key(w, "project_id");
    kl_jw_u64(w, r->project_id);
    kl_jw_key(w, "platform");
    kl_jw_str(w, r->platform.ptr ? r->platform : KL_STR(""));
    kl_jw_key_str_or_null(w, "transaction", r->transaction_name);
    kl_jw_key_str_or_null(w, "release", r->release);
    kl_jw_key_str_or_null(w, "environment", r->environment);
    kl_rfc3339_format(r->start_ns, ts);
    kl_jw_key(w, time_key);
    kl_jw_cstr(w, ts);
    kl_jw_key(w, "duration_ns");
    kl_jw_u64(w, r->duration_ns);
    kl_jw_key(w, "samples");
    kl_jw_u64(w, r->sample_count);
    kl_jw_obj_end(w);
}

int kl_query_span_filter(const struct kl_profile_filter *pf, struct kl_str transaction,
                         struct kl_span_filter *out, struct kl_err *err)
{
    memset(out, 0, sizeof *out);
    if (pf->platform.ptr || pf->device_class.ptr || pf->kind)
        return kl_err_set(err, KL_R_HTTP_BAD_REQUEST,
                          "spans can be searched by transaction, release and environment");
    if (transaction.ptr && pf->transaction.ptr && !kl_str_eq(transaction, pf->transaction))
        return kl_err_set(err, KL_R_HTTP_BAD_REQUEST,
                          "transaction and query=transaction:... name different transactions");
    out->organization_id = pf->organization_id;
    out->project_id = pf->project_id;
    out->since_ns = pf->since_ns;
    out->until_ns = pf->until_ns;
    out->segment_name = transaction.ptr ? transaction : pf->transaction;
    out->release = pf->release;
    out->environment = pf->environment;
    return 0;
}

void kl_query_write_span_row(struct kl_jw *w, const struct kl_stored_span *r, struct kl_str org)
{
    char st[48], en[48];
    kl_rfc3339_format(r->start_ns, st);
    kl_rfc3339_format(r->end_ns, en);
    kl_jw_obj_begin(w);
    kl_jw_key(w, "project_id");
    kl_jw_u64(w, r->project_id);
    kl_jw_key_str_or_null(w, "trace_id", r->trace_id);
    kl_jw_key_str_or_null(w, "span_id", r->span_id);
    kl_jw_key_str_or_null(w, "parent_span_id", r->parent_span_id);
    kl_jw_key_str_or_null(w, "segment_id", r->segment_id);
    kl_jw_key(w, "is_segment");
    kl_jw_bool(w, r->is_segment);
    kl_jw_key_str_or_null(w, "name", r->name);
    kl_jw_key_str_or_null(w, "segment_name", r->segment_name);
    kl_jw_key_str_or_null(w, "profiler_id", r->profiler_id);
    kl_jw_key_str_or_null(w, "thread_id", r->thread_id);
    kl_jw_key_str_or_null(w, "thread_name", r->thread_name);
    kl_jw_key_str_or_null(w, "environment", r->environment);
    kl_jw_key_str_or_null(w, "release", r->release);
    kl_jw_key(w, "start");
    kl_jw_cstr(w, st);
    kl_jw_key(w, "end");
    kl_jw_cstr(w, en);
    kl_jw_key(w, "duration_ns");
    kl_jw_i64(w, r->end_ns - r->start_ns);
    if (org.ptr) {
        /* RFC 3339 needs no escaping in a query: digits, '-', ':', '.', 'T', 'Z' */
        char url[512];
        snprintf(url, sizeof url,
                 "/api/0/organizations/%.*s/profiling/chunks/?project=%llu&profiler_id=%.*s"
                 "&start=%s&end=%s",
                 (int)org.len, org.ptr, (unsigned long long)r->project_id, (int)r->profiler_id.len,
                 r->profiler_id.ptr ? r->profiler_id.ptr : "", st, en);
        kl_jw_key(w, "chunks_url");
        kl_jw_cstr(w, url);
    }
    kl_jw_obj_end(w);
}

static void write_change(struct kl_jw *w, const char *k, double v)
{
    kl_jw_key(w, k);
    if (isnan(v))
        kl_jw_null(w);
    else
        kl_jw_f64(w, v);
}

void kl_query_write_trend(struct kl_jw *w, const struct kl_query_trend *t)
{
    kl_jw_obj_begin(w);
    kl_jw_key(w, "fingerprint");
    kl_jw_u64(w, t->after.fingerprint);
    kl_jw_key(w, "name");
    kl_jw_str(w, t->after.function.ptr ? t->after.function : KL_STR(""));
    kl_jw_key(w, "package");
    kl_jw_str(w, t->after.package.ptr ? t->after.package : KL_STR(""));
    kl_jw_key(w, "p95_delta_ns");
    kl_jw_i64(w, t->p95_delta_ns);
    write_change(w, "p95_change", t->p95_change);
    write_change(w, "avg_change", t->avg_change);
    kl_jw_key(w, "before");
    kl_query_write_function(w, &t->before);
    kl_jw_key(w, "after");
    kl_query_write_function(w, &t->after);
    kl_jw_obj_end(w);
}
