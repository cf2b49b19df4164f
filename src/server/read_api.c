/* read_api.c - read-side HTTP handlers (see read_api.h) */
#include "server/read_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate/flamegraph.h"
#include "base/time.h"
#include "ingest/parse.h"
#include "json/json.h"
#include "output/speedscope.h"
#include "output/stored.h"
#include "query/query.h"
#include "store/blob.h"

static struct kl_store *store_of(struct kl_req *req)
{
    return ((struct kl_read_app *)req->app)->store;
}

static int fail(struct kl_req *req, enum kl_reason r, const char *msg)
{
    struct kl_err err = KL_ERR_INIT;
    kl_err_set(&err, r, "%s", msg);
    return kl_http_reply_error(req, &err);
}

static int reply_buf(struct kl_req *req, struct kl_buf *b)
{
    int rc;
    if (kl_err_is_set(&b->err))
        rc = kl_http_reply_error(req, &b->err);
    else
        rc = kl_http_reply_json(req, 200, b->ptr, b->len);
    kl_buf_release(b);
    return rc;
}

/* Close a paged list {"data":[...], "next_cursor": N|null}: the caller asked the store for
 * one row more than a page (n > per_page means there is a next page). */
static void end_page(struct kl_jw *w, uint64_t n, uint64_t per_page, uint64_t cursor)
{
    kl_jw_arr_end(w);
    kl_jw_key(w, "next_cursor");
    if (n > per_page)
        kl_jw_u64(w, cursor + per_page);
    else
        kl_jw_null(w);
    kl_jw_obj_end(w);
}

/* Organization by slug or id: kiln has one organization, "default" (id 1). */
static bool org_ok(struct kl_req *req, uint64_t *org_id)
{
    struct kl_str org = kl_req_param(req, "org");
    *org_id = 1;
    return kl_str_eq_c(org, "default") || kl_str_eq_c(org, "1");
}

struct proj_find {
    struct kl_str want;
    uint64_t id;
};

static int match_project(void *ctx, const struct kl_project *p)
{
    struct proj_find *f = ctx;
    uint64_t n;
    if (kl_str_eq(p->slug, f->want) || (kl_parse_u64(f->want, &n) && n == p->id)) {
        f->id = p->id;
        return 1;
    }
    return 0;
}

/* Project by slug or id; 0 when absent. */
static int project_id(struct kl_req *req, struct kl_str s, uint64_t *out)
{
    struct proj_find f = {s, 0};
    struct kl_err err = KL_ERR_INIT;
    if (kl_store_project_list(store_of(req), match_project, &f, &err) < 0)
        return kl_http_reply_error(req, &err), -1;
    if (!f.id) {
        kl_err_set(&err, KL_R_STORE_NOT_FOUND, "project '%.*s' not found", (int)s.len, s.ptr);
        return kl_http_reply_error(req, &err), -1;
    }
    *out = f.id;
    return 0;
}

/* Filter from the request's common parameters; prefix selects "before_"/"after_" variants
 * (e.g. before_query, before_start) for the comparison endpoints. Replies on error. */
static int filter_from(struct kl_req *req, const char *prefix, struct kl_profile_filter *f)
{
    char name[64];
    memset(f, 0, sizeof *f);
    uint64_t org;
    if (!org_ok(req, &org))
        return fail(req, KL_R_STORE_NOT_FOUND, "organization not found"), -1;
    f->organization_id = org;
    struct kl_str proj = kl_req_query(req, "project");
    if (proj.ptr && proj.len && !kl_str_eq_c(proj, "-1") &&
        project_id(req, proj, &f->project_id) < 0)
        return -1;
    struct kl_err err = KL_ERR_INIT;
    snprintf(name, sizeof name, "%squery", prefix);
    struct kl_str q = kl_req_query(req, name);
    if (q.ptr && kl_query_parse(req->arena, q, f, &err) < 0)
        return kl_http_reply_error(req, &err), -1;
    snprintf(name, sizeof name, "%sstatsPeriod", prefix);
    struct kl_str sp = kl_req_query(req, name);
    snprintf(name, sizeof name, "%sstart", prefix);
    struct kl_str st = kl_req_query(req, name);
    snprintf(name, sizeof name, "%send", prefix);
    struct kl_str en = kl_req_query(req, name);
    if (sp.ptr) {
        int64_t secs;
        if (!kl_period_parse(sp, &secs))
            return fail(req, KL_R_HTTP_BAD_REQUEST, "statsPeriod looks like 24h, 14d, 90m"), -1;
        f->since_ns = kl_now_ns() - secs * 1000000000LL;
    }
    if (st.ptr && !kl_rfc3339_parse(st, &f->since_ns))
        return fail(req, KL_R_HTTP_BAD_REQUEST, "start must be RFC 3339"), -1;
    if (en.ptr && !kl_rfc3339_parse(en, &f->until_ns))
        return fail(req, KL_R_HTTP_BAD_REQUEST, "end must be RFC 3339"), -1;
    return 0;
}

/* ---- one profile ---- */

static int load_blob(struct kl_req *req, struct kl_str key, char **out, size_t *len)
{
    struct kl_err err = KL_ERR_INIT;
    if (kl_blob_get(store_of(req), key, req->arena, out, len, &err) < 0) {
        if (err.reason == KL_R_STORE_NOT_FOUND || err.reason == KL_R_STORE_BAD_KEY) {
            kl_err_clear(&err);
            kl_err_set(&err, KL_R_STORE_NOT_FOUND, "profile not found");
        }
        return kl_http_reply_error(req, &err), -1;
    }
    return 0;
}

static int profile_key(struct kl_req *req, const char *a, const char *b, struct kl_str *key)
{
    uint64_t org, proj;
    if (!org_ok(req, &org))
        return fail(req, KL_R_STORE_NOT_FOUND, "organization not found"), -1;
    if (project_id(req, kl_req_param(req, "project"), &proj) < 0)
        return -1;
    struct kl_str x = kl_req_param(req, a), y = b ? kl_req_param(req, b) : KL_STR_NULL;
    struct kl_uuid u1, u2;
    if (!kl_uuid_parse(x, &u1) || (b && !kl_uuid_parse(y, &u2)))
        return fail(req, KL_R_HTTP_BAD_REQUEST, "ids are 32 hex digits or dashed uuids"), -1;
    char h1[33], h2[33], *buf = kl_arena_alloc(req->arena, 160);
    kl_uuid_hex(&u1, h1);
    int n;
    if (b) {
        kl_uuid_hex(&u2, h2);
        n = snprintf(buf, 160, "%llu/%llu/%s/%s", (unsigned long long)org, (unsigned long long)proj,
                     h1, h2);
    } else {
        n = snprintf(buf, 160, "%llu/%llu/%s", (unsigned long long)org, (unsigned long long)proj,
                     h1);
    }
    *key = kl_str_make(buf, (size_t)n);
    return 0;
}

int kl_api_profile(struct kl_req *req)
{
    struct kl_str key;
    char *json;
    size_t len;
    if (profile_key(req, "profile_id", NULL, &key) < 0 || load_blob(req, key, &json, &len) < 0)
        return 0;
    struct kl_str fmt = kl_req_query(req, "format");
    if (fmt.ptr && kl_str_eq_c(fmt, "sample"))
        return kl_http_reply_json(req, 200, json, len);
    struct kl_err err = KL_ERR_INIT;
    struct kl_profile *p = kl_profile_parse(req->arena, json, len, KL_ITEM_AUTO, &err);
    if (!p)
        return kl_http_reply_error(req, &err);
    struct kl_buf b;
    kl_buf_init(&b, (size_t)1 << 31);
    if (kl_speedscope_write(p, &b, &err) < 0) {
        kl_buf_release(&b);
        return kl_http_reply_error(req, &err);
    }
    kl_http_add_header(req, "Cache-Control", "public, max-age=3600, immutable");
    return reply_buf(req, &b);
}

int kl_api_raw_profile(struct kl_req *req)
{
    struct kl_str key;
    char *json;
    size_t len;
    if (profile_key(req, "profile_id", NULL, &key) < 0 || load_blob(req, key, &json, &len) < 0)
        return 0;
    return kl_http_reply_json(req, 200, json, len);
}

int kl_api_raw_chunk(struct kl_req *req)
{
    struct kl_str key;
    char *json;
    size_t len;
    if (profile_key(req, "profiler_id", "chunk_id", &key) < 0 ||
        load_blob(req, key, &json, &len) < 0)
        return 0;
    return kl_http_reply_json(req, 200, json, len);
}

/* ---- list and search ---- */

struct list_ctx {
    struct kl_jw w;
    uint32_t n;   /* rows seen */
    uint32_t max; /* rows written: the page; a row past it only says there is a next page */
};

static int list_row(void *ctx, const struct kl_profile_row *r)
{
    struct list_ctx *c = ctx;
    if (c->n >= c->max) {
        c->n++;
        return 1;
    }
    kl_query_write_profile_row(&c->w, r, "timestamp");
    c->n++;
    return 0;
}

int kl_api_profiles(struct kl_req *req)
{
    struct kl_profile_filter f;
    if (filter_from(req, "", &f) < 0)
        return 0;
    uint64_t per_page = 50, cursor = 0;
    struct kl_str pp = kl_req_query(req, "per_page"), cu = kl_req_query(req, "cursor"),
                  so = kl_req_query(req, "sort");
    if ((pp.ptr && (!kl_parse_u64(pp, &per_page) || per_page == 0 || per_page > 1000)) ||
        (cu.ptr && !kl_parse_u64(cu, &cursor)))
        return fail(req, KL_R_HTTP_BAD_REQUEST, "per_page is 1..1000, cursor a number");
    if (so.ptr) {
        if (kl_str_eq_c(so, "-timestamp"))
            f.sort = 0;
        else if (kl_str_eq_c(so, "timestamp"))
            f.oldest_first = true;
        else if (kl_str_eq_c(so, "-duration"))
            f.sort = 1;
        else
            return fail(req, KL_R_HTTP_BAD_REQUEST, "sort is -timestamp, timestamp or -duration");
    }
    f.limit = (uint32_t)per_page + 1; /* one row more than a page: is there a next page? */
    f.offset = (uint32_t)cursor;
    struct kl_buf b;
    kl_buf_init(&b, (size_t)1 << 30);
    struct list_ctx c;
    kl_jw_init(&c.w, &b);
    c.n = 0;
    c.max = (uint32_t)per_page;
    kl_jw_obj_begin(&c.w);
    kl_jw_key(&c.w, "data");
    kl_jw_arr_begin(&c.w);
    struct kl_err err = KL_ERR_INIT;
    c.max = (uint32_t)per_page;
    if (kl_store_list_profiles(store_of(req), &f, list_row, &c, &err) < 0) {
        kl_buf_release(&b);
        return kl_http_reply_error(req, &err);
    }
    end_page(&c.w, c.n, per_page, cursor);
    return reply_buf(req, &b);
}

/* ---- flamegraphs ---- */

int kl_api_flamegraph(struct kl_req *req)
{
    struct kl_profile_filter f;
    if (filter_from(req, "", &f) < 0)
        return 0;
    struct kl_str expand = kl_req_query(req, "expand");
    bool metrics = expand.ptr && kl_str_eq_c(expand, "metrics");
    struct kl_fg_options fo = {0};
    fo.metrics = metrics;
    struct kl_flamegraph *fg = kl_flamegraph_new(&fo);
    struct kl_err err = KL_ERR_INIT;
    uint64_t n;
    if (kl_query_flamegraph(store_of(req), &f, fg, &n, &err) < 0) {
        kl_flamegraph_free(fg);
        return kl_http_reply_error(req, &err);
    }
    struct kl_buf b;
    kl_buf_init(&b, (size_t)1 << 31);
    struct kl_fg_speedscope_opts so = {0};
    so.metrics = metrics;
    so.project_id = f.project_id;
    struct kl_str fmt = kl_req_query(req, "format");
    int rc;
    if (fmt.ptr && kl_str_eq_c(fmt, "collapsed")) {
        rc = kl_flamegraph_write_collapsed(fg, KL_FG_WEIGHT_SAMPLES, &b, &err);
        if (rc == 0) {
            rc = kl_http_reply(req, 200, "text/plain; charset=utf-8", b.ptr, b.len);
            kl_buf_release(&b);
            kl_flamegraph_free(fg);
            return rc;
        }
    } else if (fmt.ptr && kl_str_eq_c(fmt, "svg")) {
        struct kl_fg_svg_opts sv = {0};
        rc = kl_flamegraph_write_svg(fg, &sv, &b, &err);
        if (rc == 0) {
            rc = kl_http_reply(req, 200, "image/svg+xml", b.ptr, b.len);
            kl_buf_release(&b);
            kl_flamegraph_free(fg);
            return rc;
        }
    } else {
        rc = kl_flamegraph_write_speedscope(fg, &so, &b, &err);
    }
    kl_flamegraph_free(fg);
    if (rc < 0) {
        kl_buf_release(&b);
        return kl_http_reply_error(req, &err);
    }
    return reply_buf(req, &b);
}

int kl_api_flamegraph_diff(struct kl_req *req)
{
    struct kl_profile_filter fa, fb;
    if (filter_from(req, "before_", &fa) < 0 || filter_from(req, "after_", &fb) < 0)
        return 0;
    struct kl_flamegraph *a = kl_flamegraph_new(NULL), *b = kl_flamegraph_new(NULL);
    struct kl_err err = KL_ERR_INIT;
    int rc = -1;
    struct kl_buf out;
    kl_buf_init(&out, (size_t)1 << 31);
    if (kl_query_flamegraph(store_of(req), &fa, a, NULL, &err) == 0 &&
        kl_query_flamegraph(store_of(req), &fb, b, NULL, &err) == 0) {
        struct kl_str wq = kl_req_query(req, "weight");
        enum kl_fg_weight wt =
            wq.ptr && kl_str_eq_c(wq, "duration") ? KL_FG_WEIGHT_NS : KL_FG_WEIGHT_SAMPLES;
        struct kl_fg_diff *d = kl_fg_diff_new(a, b, wt);
        struct kl_str fmt = kl_req_query(req, "format");
        struct kl_fg_svg_opts sv = {0};
        sv.weight = wt;
        if (fmt.ptr && kl_str_eq_c(fmt, "svg"))
            rc = kl_fg_diff_write_svg(d, &sv, false, &out, &err);
        else if (fmt.ptr && kl_str_eq_c(fmt, "collapsed"))
            rc = kl_fg_diff_write_collapsed(d, &out, &err);
        else
            rc = kl_fg_diff_write_json(d, &out, &err);
        kl_fg_diff_free(d);
        if (rc == 0 && fmt.ptr && (kl_str_eq_c(fmt, "svg") || kl_str_eq_c(fmt, "collapsed"))) {
            rc = kl_http_reply(
                req, 200, kl_str_eq_c(fmt, "svg") ? "image/svg+xml" : "text/plain; charset=utf-8",
                out.ptr, out.len);
            kl_buf_release(&out);
            kl_flamegraph_free(a);
            kl_flamegraph_free(b);
            return rc;
        }
    }
    kl_flamegraph_free(a);
    kl_flamegraph_free(b);
    if (rc < 0) {
        kl_buf_release(&out);
        return kl_http_reply_error(req, &err);
    }
    return reply_buf(req, &out);
}

/* ---- functions ---- */

int kl_api_functions(struct kl_req *req)
{
    struct kl_profile_filter f;
    if (filter_from(req, "", &f) < 0)
        return 0;
    struct kl_query_function *fs;
    uint32_t n;
    struct kl_err err = KL_ERR_INIT;
    if (kl_query_functions(store_of(req), req->arena, &f, 100, &fs, &n, &err) < 0)
        return kl_http_reply_error(req, &err);
    struct kl_buf b;
    kl_buf_init(&b, (size_t)1 << 30);
    struct kl_jw w;
    kl_jw_init(&w, &b);
    kl_jw_obj_begin(&w);
    kl_jw_key(&w, "functions");
    kl_jw_arr_begin(&w);
    for (uint32_t i = 0; i < n; i++)
        kl_query_write_function(&w, &fs[i]);
    kl_jw_arr_end(&w);
    kl_jw_obj_end(&w);
    return reply_buf(req, &b);
}

int kl_api_function_trends(struct kl_req *req)
{
    struct kl_profile_filter fa, fb;
    if (filter_from(req, "before_", &fa) < 0 || filter_from(req, "after_", &fb) < 0)
        return 0;
    struct kl_query_trend *ts;
    uint32_t n;
    struct kl_err err = KL_ERR_INIT;
    if (kl_query_function_trends(store_of(req), req->arena, &fa, &fb, 100, &ts, &n, &err) < 0)
        return kl_http_reply_error(req, &err);
    struct kl_buf b;
    kl_buf_init(&b, (size_t)1 << 30);
    struct kl_jw w;
    kl_jw_init(&w, &b);
    kl_jw_obj_begin(&w);
    kl_jw_key(&w, "trends");
    kl_jw_arr_begin(&w);
    for (uint32_t i = 0; i < n; i++) {
        kl_query_write_trend(&w, &ts[i]);
    }
    kl_jw_arr_end(&w);
    kl_jw_obj_end(&w);
    return reply_buf(req, &b);
}

/* ---- occurrences ---- */

static int occ_row(void *ctx, const struct kl_occurrence_row *r)
{
    struct kl_jw *w = ctx;
    char ts[48];
    kl_jw_obj_begin(w);
    kl_jw_key(w, "profile_id");
    kl_jw_str(w, r->profile_id);
    kl_jw_key(w, "project_id");
    kl_jw_u64(w, r->project_id);
    kl_rfc3339_format(r->start_ns, ts);
    kl_jw_key(w, "timestamp");
    kl_jw_cstr(w, ts);
    kl_jw_key(w, "type");
    kl_jw_i64(w, r->type);
    kl_jw_key_str_or_null(w, "category", r->category);
    kl_jw_key_str_or_null(w, "title", r->title);
    kl_jw_key_str_or_null(w, "function", r->function);
    kl_jw_key_str_or_null(w, "package", r->package);
    kl_jw_key_str_or_null(w, "transaction", r->transaction_name);
    kl_jw_key_str_or_null(w, "release", r->release);
    kl_jw_key_str_or_null(w, "fingerprint", r->fingerprint);
    kl_jw_key(w, "duration_ns");
    kl_jw_u64(w, r->duration_ns);
    kl_jw_key(w, "sample_count");
    kl_jw_u64(w, r->sample_count);
    kl_jw_key(w, "occurrence");
    if (r->body.ptr && r->body.len)
        kl_jw_raw(w, r->body.ptr, r->body.len);
    else
        kl_jw_null(w);
    kl_jw_obj_end(w);
    return 0;
}

int kl_api_occurrences(struct kl_req *req)
{
    struct kl_profile_filter f;
    if (filter_from(req, "", &f) < 0)
        return 0;
    uint64_t type = 0, per_page = 100, cursor = 0;
    struct kl_str t = kl_req_query(req, "type"), pp = kl_req_query(req, "per_page"),
                  cu = kl_req_query(req, "cursor");
    if ((t.ptr && !kl_parse_u64(t, &type)) ||
        (pp.ptr && (!kl_parse_u64(pp, &per_page) || per_page == 0 || per_page > 1000)) ||
        (cu.ptr && !kl_parse_u64(cu, &cursor)))
        return fail(req, KL_R_HTTP_BAD_REQUEST, "type, per_page (1..1000), cursor are numbers");
    f.limit = (uint32_t)per_page;
    f.offset = (uint32_t)cursor;
    struct kl_buf b;
    kl_buf_init(&b, (size_t)1 << 30);
    struct kl_jw w;
    kl_jw_init(&w, &b);
    kl_jw_obj_begin(&w);
    kl_jw_key(&w, "data");
    kl_jw_arr_begin(&w);
    struct kl_err err = KL_ERR_INIT;
    if (kl_store_list_occurrences(store_of(req), &f, (int)type, occ_row, &w, &err) < 0) {
        kl_buf_release(&b);
        return kl_http_reply_error(req, &err);
    }
    kl_jw_arr_end(&w);
    kl_jw_obj_end(&w);
    return reply_buf(req, &b);
}

/* ---- chunks merged over a time range (spec §8, "Merged sample chunk") ---- */

/* A merge holds every chunk's profile in memory at once: about 17 hours of 60 s chunks. */
#define KL_API_MAX_MERGED_CHUNKS 1000

struct chunk_ref {
    struct kl_str key;
    int64_t start_ns;
};

struct chunk_scan {
    struct kl_arena *a;
    struct kl_str profiler_id;
    int64_t start_ns, end_ns;
    struct chunk_ref *refs;
    size_t n, cap;
};

static int chunk_row(void *ctx, const struct kl_profile_row *r)
{
    struct chunk_scan *c = ctx;
    if (r->kind != KL_STORED_CHUNK || !kl_str_eq(r->profiler_id, c->profiler_id))
        return 0;
    int64_t end = r->start_ns + (int64_t)r->duration_ns;
    if (end < c->start_ns || r->start_ns > c->end_ns)
        return 0;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        c->refs = kl_arena_grow(c->a, c->refs, c->cap * sizeof *c->refs, ncap * sizeof *c->refs);
        c->cap = ncap;
    }
    c->refs[c->n].key =
        kl_str_make(kl_arena_strndup(c->a, r->blob_key.ptr, r->blob_key.len), r->blob_key.len);
    c->refs[c->n].start_ns = r->start_ns;
    c->n++;
    return 0;
}

static int cmp_chunk(const void *x, const void *y)
{
    const struct chunk_ref *a = x, *b = y;
    return a->start_ns < b->start_ns ? -1 : a->start_ns > b->start_ns;
}

/* Append chunk src's samples inside [lo, hi] (unix seconds), with its frames and stacks,
 * to dst; thread metadata: the first chunk that names a thread wins; measurements are
 * concatenated per name. */
static void merge_chunk(struct kl_profile *dst, const struct kl_profile *src, double lo, double hi)
{
    struct kl_arena *a = dst->arena;
    struct kl_sample_data *d = &dst->data;
    const struct kl_sample_data *s = &src->data;
    uint32_t frame_off = (uint32_t)d->frames.len;
    uint32_t stack_off = (uint32_t)kl_stack_count(d);
    kl_vec_reserve(a, &d->frames, s->frames.len);
    for (size_t i = 0; i < s->frames.len; i++)
        d->frames.items[d->frames.len++] = s->frames.items[i];
    if (d->stack_off.len == 0)
        kl_vec_push(a, &d->stack_off, 0);
    for (size_t i = 0; i < kl_stack_count(s); i++) {
        const uint32_t *st = kl_stack_at(s, i);
        uint32_t n = kl_stack_len(s, i);
        kl_vec_reserve(a, &d->stack_frames, n);
        for (uint32_t j = 0; j < n; j++)
            d->stack_frames.items[d->stack_frames.len++] = st[j] + frame_off;
        kl_vec_push(a, &d->stack_off, (uint32_t)d->stack_frames.len);
    }
    for (size_t i = 0; i < s->samples.len; i++) {
        struct kl_sample x = s->samples.items[i];
        if (x.ts_s < lo || x.ts_s > hi)
            continue;
        const struct kl_thread *t = &s->threads.items[x.thread];
        size_t k;
        for (k = 0; k < d->threads.len && !kl_str_eq(d->threads.items[k].id, t->id); k++)
            ;
        if (k == d->threads.len)
            kl_vec_push(a, &d->threads, *t);
        else if (!d->threads.items[k].has_metadata && t->has_metadata)
            d->threads.items[k] = *t;
        d->threads.items[k].sampled = true;
        x.thread = (uint32_t)k;
        x.stack_id += stack_off;
        kl_vec_push(a, &d->samples, x);
    }
    d->has_thread_metadata |= s->has_thread_metadata;
    for (size_t i = 0; i < src->measurements.len; i++) {
        const struct kl_measurement *m = &src->measurements.items[i];
        size_t k;
        for (k = 0;
             k < dst->measurements.len && !kl_str_eq(dst->measurements.items[k].name, m->name); k++)
            ;
        if (k == dst->measurements.len) {
            kl_vec_push(a, &dst->measurements, *m);
            dst->has_measurements = true;
            continue;
        }
        struct kl_measurement *t = &dst->measurements.items[k];
        struct kl_mvalue *v = kl_arena_alloc(a, (t->n + m->n) * sizeof *v + 1);
        memcpy(v, t->values, t->n * sizeof *v);
        memcpy(v + t->n, m->values, m->n * sizeof *v);
        t->values = v;
        t->n += m->n;
    }
}

int kl_api_chunks(struct kl_req *req)
{
    uint64_t org;
    if (!org_ok(req, &org))
        return fail(req, KL_R_STORE_NOT_FOUND, "organization not found");
    struct kl_str proj = kl_req_query(req, "project"), pid = kl_req_query(req, "profiler_id"),
                  st = kl_req_query(req, "start"), en = kl_req_query(req, "end");
    uint64_t project;
    struct kl_uuid u;
    int64_t start_ns, end_ns;
    if (!proj.ptr || !pid.ptr || !st.ptr || !en.ptr)
        return fail(req, KL_R_HTTP_BAD_REQUEST, "project, profiler_id, start and end are required");
    if (project_id(req, proj, &project) < 0)
        return 0;
    if (!kl_uuid_parse(pid, &u))
        return fail(req, KL_R_HTTP_BAD_REQUEST, "profiler_id is a uuid");
    if (!kl_rfc3339_parse(st, &start_ns) || !kl_rfc3339_parse(en, &end_ns) || end_ns < start_ns)
        return fail(req, KL_R_HTTP_BAD_REQUEST, "start and end are RFC 3339, start <= end");
    char hex[33];
    kl_uuid_hex(&u, hex);
    struct chunk_scan cs = {0};
    cs.a = req->arena;
    cs.profiler_id = kl_str_make(hex, 32);
    cs.start_ns = start_ns;
    cs.end_ns = end_ns;
    struct kl_profile_filter f = {0};
    f.organization_id = org;
    f.project_id = project;
    f.kind = KL_STORED_CHUNK;
    f.until_ns = end_ns + 1;
    struct kl_err err = KL_ERR_INIT;
    if (kl_store_list_profiles(store_of(req), &f, chunk_row, &cs, &err) < 0)
        return kl_http_reply_error(req, &err);
    if (cs.n == 0)
        return fail(req, KL_R_STORE_NOT_FOUND, "no chunks found to merge");
    if (cs.n > KL_API_MAX_MERGED_CHUNKS)
        return fail(req, KL_R_HTTP_BAD_REQUEST,
                    "more than 1000 chunks in the range; narrow start and end");
    qsort(cs.refs, cs.n, sizeof *cs.refs, cmp_chunk);
    struct kl_profile *merged = NULL;
    double lo = (double)start_ns / 1e9, hi = (double)end_ns / 1e9;
    for (size_t i = 0; i < cs.n; i++) {
        char *json;
        size_t len;
        if (load_blob(req, cs.refs[i].key, &json, &len) < 0)
            return 0;
        struct kl_profile *p = kl_profile_parse(req->arena, json, len, KL_ITEM_PROFILE_CHUNK, &err);
        if (!p)
            return kl_http_reply_error(req, &err);
        if (p->kind != KL_KIND_SAMPLE_V2)
            return fail(req, KL_R_HTTP_BAD_REQUEST,
                        "only sample-format chunks merge; Android trace chunks are served one by "
                        "one (raw_chunks)");
        if (!merged) {
            /* the first chunk is the base: its metadata wins */
            merged = p;
            struct kl_sample_data keep = p->data;
            memset(&merged->data, 0, sizeof merged->data);
            merged->data.present = true;
            merged->measurements.len = 0;
            merged->has_measurements = false;
            struct kl_profile tmp = *p;
            tmp.data = keep;
            tmp.measurements = p->measurements;
            merge_chunk(merged, &tmp, lo, hi);
        } else {
            merge_chunk(merged, p, lo, hi);
        }
    }
    struct kl_buf b;
    kl_buf_init(&b, (size_t)1 << 31);
    kl_buf_puts(&b, "{\"chunk\":");
    if (kl_profile_write_stored(merged, &b, &err) < 0) {
        kl_buf_release(&b);
        return kl_http_reply_error(req, &err);
    }
    kl_buf_puts(&b, ",\"debug_chunk_ids\":[");
    for (size_t i = 0; i < cs.n; i++) {
        struct kl_str k = cs.refs[i].key;
        const char *slash = memrchr(k.ptr, '/', k.len);
        kl_buf_printf(&b, "%s\"%.*s\"", i ? "," : "",
                      (int)(slash ? k.len - (size_t)(slash + 1 - k.ptr) : k.len),
                      slash ? slash + 1 : k.ptr);
    }
    kl_buf_puts(&b, "]}");
    return reply_buf(req, &b);
}

/* ---- spans linked to chunks ---- */

struct span_list {
    struct kl_jw w;
    uint32_t n, max; /* as struct list_ctx */
    struct kl_str org;
};

static int span_row(void *ctx, const struct kl_stored_span *r)
{
    struct span_list *c = ctx;
    if (c->n++ >= c->max)
        return 1;
    kl_query_write_span_row(&c->w, r, c->org);
    return 0;
}

int kl_api_spans(struct kl_req *req)
{
    struct kl_profile_filter pf;
    if (filter_from(req, "", &pf) < 0)
        return 0;
    struct kl_str pid = kl_req_query(req, "profiler_id"), tx = kl_req_query(req, "transaction"),
                  pp = kl_req_query(req, "per_page"), cu = kl_req_query(req, "cursor");
    struct kl_span_filter f;
    struct kl_err ferr = KL_ERR_INIT;
    if (kl_query_span_filter(&pf, tx, &f, &ferr) < 0)
        return kl_http_reply_error(req, &ferr);
    char hex[33];
    if (pid.ptr) {
        struct kl_uuid u;
        if (!kl_uuid_parse(pid, &u))
            return fail(req, KL_R_HTTP_BAD_REQUEST, "profiler_id is a uuid");
        kl_uuid_hex(&u, hex);
        f.profiler_id = kl_str_make(hex, 32);
    }
    uint64_t per_page = 50, cursor = 0;
    if ((pp.ptr && (!kl_parse_u64(pp, &per_page) || per_page == 0 || per_page > 1000)) ||
        (cu.ptr && (!kl_parse_u64(cu, &cursor) || cursor > UINT32_MAX)))
        return fail(req, KL_R_HTTP_BAD_REQUEST, "per_page is 1..1000, cursor a number");
    f.limit = (uint32_t)per_page + 1; /* one more than a page: is there a next page? */
    f.offset = (uint32_t)cursor;
    struct kl_buf b;
    kl_buf_init(&b, (size_t)1 << 30);
    struct span_list c;
    kl_jw_init(&c.w, &b);
    c.n = 0;
    c.max = (uint32_t)per_page;
    c.org = kl_req_param(req, "org");
    kl_jw_obj_begin(&c.w);
    kl_jw_key(&c.w, "data");
    kl_jw_arr_begin(&c.w);
    struct kl_err err = KL_ERR_INIT;
    if (kl_store_list_spans(store_of(req), &f, span_row, &c, &err) < 0) {
        kl_buf_release(&b);
        return kl_http_reply_error(req, &err);
    }
    end_page(&c.w, c.n, per_page, cursor);
    return reply_buf(req, &b);
}
