/* server.c - `kiln serve` internals (see server.h) */
#include "server/server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/decompress.h"
#include "base/log.h"
#include "base/time.h"
#include "http/auth.h"
#include "http/http.h"
#include "http/metrics.h"
#include "ingest/envelope.h"
#include "ingest/relay_msg.h"
#include "ingest/span.h"
#include "ingest/tx_event.h"
#include "json/json.h"
#include "pipeline/derive.h"
#include "pipeline/process.h"
#include "queue/queue.h"
#include "server/read_api.h"
#include "store/store.h"

#define MAX_WORKERS 64

/* meta.flags of a queued record: the body's Content-Encoding (enum kl_encoding, low byte)
 * and what the body is (an envelope unless KL_QFLAG_RELAY_MSG). */
#define KL_QFLAG_ENCODING_MASK 0xffu
#define KL_QFLAG_RELAY_MSG 0x100u
/* queue item hint (server-defined bits start at 8): span items, or a transaction that
 * names a profiler, to be linked to chunks (ingest/span.h) */
#define KL_SERVE_HINT_SPAN (1u << 8)
#define STORE_RETRIES 5

struct kl_server {
    struct kl_read_app read; /* first: the read handlers see the app as a kl_read_app */
    struct kl_server_config cfg;
    struct kl_store *store;
    struct kl_queue *queue;
    struct kl_metrics *metrics;
    struct kl_http_server *http;
    struct kl_envelope_limits env_limits;
    pthread_t workers[MAX_WORKERS];
    unsigned n_workers;
    atomic_bool stopping;
    char dsn[256];
    char host[128];

    struct kl_metric_family *m_items;    /* kiln_items_total{type} */
    struct kl_metric_family *m_outcomes; /* kiln_outcomes_total{outcome,reason,category} */
    struct kl_metric_family *m_latency;  /* kiln_processing_seconds */
    struct kl_metric_family *m_rejected; /* kiln_ingest_rejected_total{reason} */
    struct kl_metric_family *m_queue;    /* kiln_queue_depth{unit} */
    struct kl_metric_family *m_store_errors;
    struct kl_metric_family *m_spans; /* kiln_spans_total{result} */
};

/* ------------------------------------------------------------------------------------ */
/* ingest                                                                                */

static void log_reject(struct kl_req *req, const struct kl_err *err)
{
    struct kl_server *s = req->app;
    struct kl_log_ctx ctx = {req->id, "ingest"};
    kl_counter_add(kl_metric_get(s->m_rejected, "reason", kl_reason_str(err->reason), NULL), 1);
    kl_log(KL_LOG_INFO, &ctx, "msg=\"envelope rejected\" status=%d reason=%s detail=\"%s\"",
           kl_reason_http_status(err->reason), kl_reason_str(err->reason), err->msg);
}

static int reject(struct kl_req *req, const struct kl_err *err)
{
    log_reject(req, err);
    return kl_http_reply_error(req, err);
}

/* A 429's headers: Retry-After, and Relay's X-Sentry-Rate-Limits
 * ("<seconds>:<categories>:<scope>:<reason code>"; empty categories = all), which Sentry
 * SDKs read to back off per category instead of retrying at once. */
static void add_rate_limit_headers(struct kl_req *req)
{
    kl_http_add_header(req, "Retry-After", "1");
    kl_http_add_header(req, "X-Sentry-Rate-Limits", "1::organization:queue_full");
}

/* Refuse before the body is read and inflated when the queue cannot take it anyway. */
static int admit_envelope(struct kl_req *req)
{
    struct kl_server *s = req->app;
    struct kl_queue_stats st;
    kl_queue_stats(s->queue, &st);
    uint64_t max_records =
        s->cfg.queue_max_records ? s->cfg.queue_max_records : KL_QUEUE_DEFAULT_MAX_RECORDS;
    uint64_t max_bytes =
        s->cfg.queue_max_bytes ? s->cfg.queue_max_bytes : KL_QUEUE_DEFAULT_MAX_BYTES;
    if (st.depth_records >= max_records || st.depth_bytes >= max_bytes) {
        add_rate_limit_headers(req);
        kl_err_set(&req->err, KL_R_QUEUE_FULL,
                   "the queue holds %llu envelopes (%llu bytes); retry later",
                   (unsigned long long)st.depth_records, (unsigned long long)st.depth_bytes);
        kl_counter_add(kl_metric_get(s->m_rejected, "reason", "queue.full", NULL), 1);
        return -1;
    }
    return 0;
}

/* The project a request's key belongs to, after Relay's checks (unknown key, disabled
 * project, a path project id that is not the key's). Returns 0 or -1 (err set). */
static int resolve_project(struct kl_server *s, const struct kl_sentry_auth *auth,
                           uint64_t *project_id, uint64_t *org_id, struct kl_err *err)
{
    bool active = false;
    if (kl_store_key_lookup(s->store, auth->public_key, project_id, org_id, &active, err) < 0) {
        if (err->reason != KL_R_STORE_NOT_FOUND)
            return -1;
        kl_err_clear(err);
        return kl_err_set(err, KL_R_AUTH_PROJECT_REJECTED,
                          "event submission rejected with_reason: ProjectId (unknown key)");
    }
    if (!active || (auth->has_project_id && auth->project_id != *project_id))
        return kl_err_set(err, KL_R_AUTH_PROJECT_REJECTED,
                          "event submission rejected with_reason: ProjectId");
    return 0;
}

/* Append the request body to the queue, durably, as it came over the wire when it was
 * compressed (gzip is ~7x smaller than the envelope: less to write, fsync and checksum per
 * request; the worker decodes it again). flags: KL_QFLAG_* besides the encoding. */
static int enqueue_body(struct kl_req *req, uint64_t org_id, uint64_t project_id, uint32_t hints,
                        uint32_t flags, struct kl_err *err)
{
    struct kl_server *s = req->app;
    struct kl_queue_meta meta = {0};
    meta.org_id = org_id;
    meta.project_id = project_id;
    meta.received_ns = kl_now_ns();
    meta.item_hints = hints;
    meta.flags = flags;
    const char *qbody = req->body;
    size_t qlen = req->body_len;
    if (req->encoding != KL_ENC_IDENTITY && req->wire_len < req->body_len) {
        qbody = req->wire;
        qlen = req->wire_len;
        meta.flags |= (uint32_t)req->encoding;
    }
    uint64_t id;
    if (kl_queue_append(s->queue, &meta, qbody, qlen, &id, err) < 0) {
        if (err->reason == KL_R_QUEUE_FULL)
            add_rate_limit_headers(req);
        return -1;
    }
    return 0;
}

/* Relay's auth from the query string and headers (the envelope's dsn comes later). */
static int request_auth(struct kl_req *req, struct kl_sentry_auth *auth, struct kl_err *err)
{
    struct kl_auth_input in;
    kl_auth_input_from_req(req, &in);
    return kl_sentry_auth_from_parts(req->arena, &in, auth, err);
}

static int handle_envelope(struct kl_req *req)
{
    struct kl_server *s = req->app;
    struct kl_err err = KL_ERR_INIT;
    struct kl_sentry_auth auth;
    if (request_auth(req, &auth, &err) < 0)
        return reject(req, &err);

    struct kl_envelope *env =
        kl_envelope_parse(req->arena, req->body, req->body_len, &s->env_limits, &err);
    if (!env)
        return reject(req, &err);
    if (kl_sentry_auth_with_dsn(&auth, env->dsn, &err) < 0)
        return reject(req, &err);

    uint64_t project_id = 0, org_id = 0;
    if (resolve_project(s, &auth, &project_id, &org_id, &err) < 0)
        return reject(req, &err);

    uint32_t hints = 0;
    for (size_t i = 0; i < env->n_items; i++) {
        struct kl_str t = env->items[i].type;
        const char *name = "other";
        if (kl_str_eq_c(t, "profile")) {
            hints |= KL_QUEUE_HINT_PROFILE;
            name = "profile";
        } else if (kl_str_eq_c(t, "profile_chunk")) {
            hints |= KL_QUEUE_HINT_PROFILE_CHUNK;
            name = "profile_chunk";
        } else if (kl_str_eq_c(t, "transaction")) {
            hints |= KL_QUEUE_HINT_TRANSACTION;
            name = "transaction";
            /* SDKs v8-v10 link a transaction to chunks by contexts.profile.profiler_id; a
             * byte search keeps the other transactions out of the queue unparsed */
            if (memmem(env->items[i].payload, env->items[i].payload_len, "profiler_id", 11))
                hints |= KL_SERVE_HINT_SPAN;
        } else if (kl_str_eq_c(t, "span")) {
            /* spans link only within their envelope (ingest/span.h): without a profiler id
             * in some item nothing can link, and span streams without profiling stay out */
            if (memmem(env->items[i].payload, env->items[i].payload_len, "profiler_id", 11))
                hints |= KL_SERVE_HINT_SPAN;
            name = "span";
        }
        kl_counter_add(kl_metric_get(s->m_items, "type", name, NULL), 1);
    }

    char body[64];
    int n;
    if (env->event_id.ptr) {
        struct kl_uuid u;
        char hex[33] = "";
        if (kl_uuid_parse(env->event_id, &u))
            kl_uuid_hex(&u, hex);
        n = snprintf(body, sizeof body, "{\"id\":\"%s\"}", hex);
    } else {
        n = snprintf(body, sizeof body, "{}");
    }

    /* Only envelopes with something to profile or to link to a profile are queued; the
     * rest (events, sessions, client reports...) are acknowledged and ignored, as Relay
     * does for what it drops. */
    if ((hints & (KL_QUEUE_HINT_PROFILE | KL_QUEUE_HINT_PROFILE_CHUNK | KL_SERVE_HINT_SPAN)) &&
        enqueue_body(req, org_id, project_id, hints, 0, &err) < 0)
        return reject(req, &err);
    return kl_http_reply_json(req, 200, body, (size_t)n);
}

/* POST /api/<project_id>/relay-message/: one Relay -> Sentry message (spec §4, msgpack), the
 * bridge for a Relay (or a Kafka consumer of ingest-profiles) in front of kiln. Same auth as
 * envelopes; the message's organization and project must be the key's. Queued as received,
 * decoded by the same worker code as `kiln process --msgpack`. */
static int handle_relay_msg(struct kl_req *req)
{
    struct kl_server *s = req->app;
    struct kl_err err = KL_ERR_INIT;
    struct kl_sentry_auth auth;
    if (request_auth(req, &auth, &err) < 0)
        return reject(req, &err);
    if (auth.source == KL_AUTH_NONE) { /* no envelope header dsn to fall back on */
        kl_err_set(&err, KL_R_AUTH_MISSING,
                   "missing authorization: pass the project's key as ?sentry_key=, "
                   "X-Sentry-Auth or Authorization");
        return reject(req, &err);
    }
    uint64_t project_id = 0, org_id = 0;
    if (resolve_project(s, &auth, &project_id, &org_id, &err) < 0)
        return reject(req, &err);
    struct kl_relay_msg *m = kl_relay_msg_parse(req->arena, req->body, req->body_len, &err);
    if (!m)
        return reject(req, &err);
    if (m->project_id != project_id || m->organization_id != org_id) {
        kl_err_set(&err, KL_R_AUTH_PROJECT_REJECTED,
                   "the message is for organization %llu project %llu; this key belongs to "
                   "organization %llu project %llu",
                   (unsigned long long)m->organization_id, (unsigned long long)m->project_id,
                   (unsigned long long)org_id, (unsigned long long)project_id);
        return reject(req, &err);
    }
    bool chunk = kl_str_eq_c(m->type, "profile_chunk");
    kl_counter_add(kl_metric_get(s->m_items, "type", chunk ? "profile_chunk" : "profile", NULL), 1);
    if (enqueue_body(req, org_id, project_id,
                     chunk ? KL_QUEUE_HINT_PROFILE_CHUNK : KL_QUEUE_HINT_PROFILE,
                     KL_QFLAG_RELAY_MSG, &err) < 0)
        return reject(req, &err);
    return kl_http_reply_json(req, 200, "{}", 2);
}

/* ------------------------------------------------------------------------------------ */
/* stats_v2: the outcomes in Sentry's shape                                             */

struct stats_ctx {
    unsigned group;
    int64_t start_s, interval_s;
    size_t n_intervals;
    struct kl_arena *a;
    struct group {
        uint64_t project_id;
        int outcome, category;
        struct kl_str reason;
        uint64_t total;
        uint64_t *series;
    } * groups;
    size_t n_groups, cap;
    struct kl_str category_filter;
};

static int stats_row(void *ctx, const struct kl_outcome_row *r)
{
    struct stats_ctx *c = ctx;
    if (c->category_filter.ptr &&
        !kl_str_eq_c(c->category_filter, kl_category_name((enum kl_category)r->category)))
        return 0;
    struct group *g = NULL;
    for (size_t i = 0; i < c->n_groups; i++) {
        struct group *x = &c->groups[i];
        if ((!(c->group & KL_GROUP_PROJECT) || x->project_id == r->project_id) &&
            (!(c->group & KL_GROUP_OUTCOME) || x->outcome == r->outcome) &&
            (!(c->group & KL_GROUP_CATEGORY) || x->category == r->category) &&
            (!(c->group & KL_GROUP_REASON) || kl_str_eq(x->reason, r->reason))) {
            g = x;
            break;
        }
    }
    if (!g) {
        if (c->n_groups == c->cap) {
            size_t ncap = c->cap ? c->cap * 2 : 16;
            c->groups = kl_arena_grow(c->a, c->groups, c->cap * sizeof *c->groups,
                                      ncap * sizeof *c->groups);
            c->cap = ncap;
        }
        g = &c->groups[c->n_groups++];
        memset(g, 0, sizeof *g);
        g->project_id = r->project_id;
        g->outcome = r->outcome;
        g->category = r->category;
        g->reason =
            r->reason.ptr
                ? kl_str_make(kl_arena_strndup(c->a, r->reason.ptr, r->reason.len), r->reason.len)
                : KL_STR("");
        g->series = kl_arena_calloc(c->a, c->n_intervals ? c->n_intervals : 1, sizeof(uint64_t));
    }
    g->total += r->quantity;
    if (r->hour_s >= c->start_s && c->interval_s > 0) {
        size_t ix = (size_t)((r->hour_s - c->start_s) / c->interval_s);
        if (ix < c->n_intervals)
            g->series[ix] += r->quantity;
    }
    return 0;
}

static int handle_stats(struct kl_req *req)
{
    struct kl_server *s = req->app;
    struct kl_err err = KL_ERR_INIT;
    struct kl_str org = kl_req_param(req, "org_slug");
    if (!kl_str_eq_c(org, "default") && !kl_str_eq_c(org, "1")) {
        kl_err_set(&err, KL_R_HTTP_NOT_FOUND, "organization '%.*s' not found", (int)org.len,
                   org.ptr);
        return kl_http_reply_error(req, &err);
    }
    struct stats_ctx c = {0};
    c.a = req->arena;
    c.interval_s = 3600;
    int64_t now = kl_now_ns() / 1000000000LL, period = 86400, end_s = now;
    struct kl_str sp = kl_req_query(req, "statsPeriod"), st = kl_req_query(req, "start"),
                  en = kl_req_query(req, "end"), iv = kl_req_query(req, "interval");
    if (sp.ptr && !kl_period_parse(sp, &period)) {
        kl_err_set(&err, KL_R_HTTP_BAD_REQUEST, "statsPeriod must look like 24h, 14d, 90m");
        return kl_http_reply_error(req, &err);
    }
    if (iv.ptr && (!kl_period_parse(iv, &c.interval_s) || c.interval_s < 3600)) {
        kl_err_set(&err, KL_R_HTTP_BAD_REQUEST, "interval must be 1h or longer (1h, 1d)");
        return kl_http_reply_error(req, &err);
    }
    int64_t start_ns, end_ns;
    if (st.ptr && en.ptr) {
        if (!kl_rfc3339_parse(st, &start_ns) || !kl_rfc3339_parse(en, &end_ns) ||
            end_ns <= start_ns) {
            kl_err_set(&err, KL_R_HTTP_BAD_REQUEST, "start and end must be RFC 3339, start < end");
            return kl_http_reply_error(req, &err);
        }
        end_s = end_ns / 1000000000LL;
        period = end_s - start_ns / 1000000000LL;
    }
    c.start_s = (end_s - period) / c.interval_s * c.interval_s;
    c.n_intervals = (size_t)((end_s - c.start_s + c.interval_s - 1) / c.interval_s);
    if (c.n_intervals > 10000) {
        kl_err_set(&err, KL_R_HTTP_BAD_REQUEST, "too many intervals; use a longer interval");
        return kl_http_reply_error(req, &err);
    }
    for (size_t i = 0; i < req->n_query; i++) {
        if (!kl_str_eq_c(req->query[i].name, "groupBy"))
            continue;
        struct kl_str g = req->query[i].value;
        if (kl_str_eq_c(g, "outcome"))
            c.group |= KL_GROUP_OUTCOME;
        else if (kl_str_eq_c(g, "reason"))
            c.group |= KL_GROUP_REASON;
        else if (kl_str_eq_c(g, "category"))
            c.group |= KL_GROUP_CATEGORY;
        else if (kl_str_eq_c(g, "project"))
            c.group |= KL_GROUP_PROJECT;
        else {
            kl_err_set(&err, KL_R_HTTP_BAD_REQUEST,
                       "groupBy takes outcome, reason, category or project");
            return kl_http_reply_error(req, &err);
        }
    }
    c.category_filter = kl_req_query(req, "category");
    struct kl_outcome_filter f = {0};
    f.since_s = c.start_s;
    f.until_s = end_s + 1;
    f.group =
        KL_GROUP_HOUR | KL_GROUP_PROJECT | KL_GROUP_OUTCOME | KL_GROUP_REASON | KL_GROUP_CATEGORY;
    if (kl_store_sum_outcomes(s->store, &f, stats_row, &c, &err) < 0)
        return kl_http_reply_error(req, &err);

    struct kl_buf out;
    kl_buf_init(&out, 64u << 20);
    struct kl_jw w;
    kl_jw_init(&w, &out);
    char ts[48];
    kl_jw_obj_begin(&w);
    kl_rfc3339_format(c.start_s * 1000000000LL, ts);
    kl_jw_key(&w, "start");
    kl_jw_cstr(&w, ts);
    kl_rfc3339_format((c.start_s + (int64_t)c.n_intervals * c.interval_s) * 1000000000LL, ts);
    kl_jw_key(&w, "end");
    kl_jw_cstr(&w, ts);
    kl_jw_key(&w, "intervals");
    kl_jw_arr_begin(&w);
    for (size_t i = 0; i < c.n_intervals; i++) {
        kl_rfc3339_format((c.start_s + (int64_t)i * c.interval_s) * 1000000000LL, ts);
        kl_jw_cstr(&w, ts);
    }
    kl_jw_arr_end(&w);
    kl_jw_key(&w, "groups");
    kl_jw_arr_begin(&w);
    for (size_t i = 0; i < c.n_groups; i++) {
        struct group *g = &c.groups[i];
        kl_jw_obj_begin(&w);
        kl_jw_key(&w, "by");
        kl_jw_obj_begin(&w);
        if (c.group & KL_GROUP_OUTCOME) {
            kl_jw_key(&w, "outcome");
            kl_jw_cstr(&w, kl_outcome_name((enum kl_outcome_kind)g->outcome));
        }
        if (c.group & KL_GROUP_REASON) {
            kl_jw_key(&w, "reason");
            kl_jw_str(&w, g->reason.len ? g->reason : KL_STR("none"));
        }
        if (c.group & KL_GROUP_CATEGORY) {
            kl_jw_key(&w, "category");
            kl_jw_cstr(&w, kl_category_name((enum kl_category)g->category));
        }
        if (c.group & KL_GROUP_PROJECT) {
            kl_jw_key(&w, "project");
            kl_jw_u64(&w, g->project_id);
        }
        kl_jw_obj_end(&w);
        kl_jw_key(&w, "totals");
        kl_jw_obj_begin(&w);
        kl_jw_key(&w, "sum(quantity)");
        kl_jw_u64(&w, g->total);
        kl_jw_obj_end(&w);
        kl_jw_key(&w, "series");
        kl_jw_obj_begin(&w);
        kl_jw_key(&w, "sum(quantity)");
        kl_jw_arr_begin(&w);
        for (size_t j = 0; j < c.n_intervals; j++)
            kl_jw_u64(&w, g->series[j]);
        kl_jw_arr_end(&w);
        kl_jw_obj_end(&w);
        kl_jw_obj_end(&w);
    }
    kl_jw_arr_end(&w);
    kl_jw_obj_end(&w);
    int rc = kl_http_reply_json(req, 200, out.ptr, out.len);
    kl_buf_release(&out);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* workers                                                                               */

/* Batch transactions (store.h, deferred mode) that a worker's unflushed items joined. */
struct batch_range {
    uint64_t lo, hi; /* lo == 0: none */
};

static void batch_range_add(struct batch_range *r, uint64_t b)
{
    if (b == 0)
        return;
    if (r->lo == 0 || b < r->lo)
        r->lo = b;
    if (b > r->hi)
        r->hi = b;
}

struct item_ctx {
    struct kl_server *s;
    const struct kl_queue_record *rec;
    const struct kl_envelope *env;
    struct kl_arena *arena;
    int failures;
    struct batch_range *batches; /* the worker's: every commit's batch is added */
};

static int commit_with_retry(struct kl_server *s, const struct kl_stored_item *it,
                             struct batch_range *batches, struct kl_err *err)
{
    for (int attempt = 0;; attempt++) {
        kl_err_clear(err);
        uint64_t batch = 0;
        int rc = kl_store_commit_item_batched(s->store, it, &batch, err);
        batch_range_add(batches, batch); /* a failed item's batch too: it may hold others */
        if (rc >= 0)
            return rc;
        if (attempt + 1 >= STORE_RETRIES ||
            (err->reason != KL_R_STORE_BUSY && err->reason != KL_R_STORE_IO &&
             err->reason != KL_R_STORE_FULL))
            return -1;
        usleep(10000u << attempt);
    }
}

/* Store one processed item (item index of its queue record) with its outcomes, exactly once. */
static void commit_result(struct item_ctx *c, size_t index, struct kl_process_result *res)
{
    struct kl_server *s = c->s;
    char qid[48];
    int qn = snprintf(qid, sizeof qid, "%llu/%zu", (unsigned long long)c->rec->id, index);
    struct kl_str queue_id = kl_str_make(kl_arena_strndup(c->arena, qid, (size_t)qn), (size_t)qn);
    int64_t received_s = c->rec->meta.received_ns / 1000000000LL;
    struct kl_stored_item it;
    struct kl_err err = KL_ERR_INIT;
    bool have = false;
    if (res->err.reason == KL_R_NONE && res->profile) {
        if (kl_stored_item_from_profile(c->arena, res->profile, queue_id, res->outcomes,
                                        res->n_outcomes, &it, &err) == 0) {
            have = true;
            /* read-side data; a failure here keeps the profile, without them */
            struct kl_err derr = KL_ERR_INIT;
            if (it.kind != KL_STORED_NONE &&
                kl_derive_run(c->arena, res->profile, &it, &derr) < 0) {
                struct kl_log_ctx dctx = {qid, "derive"};
                kl_log(KL_LOG_WARN, &dctx,
                       "msg=\"no call tree for this profile\" reason=%s "
                       "detail=\"%s\"",
                       kl_reason_str(derr.reason), derr.msg);
                it.tree = NULL;
                it.tree_len = 0;
                it.n_functions = 0;
                it.n_occurrences = 0;
            }
        }
    }
    if (!have) {
        kl_stored_item_outcomes(&it, queue_id, c->rec->meta.org_id, c->rec->meta.project_id,
                                received_s, res->outcomes, res->n_outcomes);
    }
    struct kl_log_ctx lctx = {qid, "store"};
    int rc = commit_with_retry(s, &it, c->batches, &err);
    struct kl_outcome dup[KL_MAX_OUTCOMES];
    if (rc < 0 && err.reason == KL_R_STORE_CONFLICT) {
        /* The same profile (or chunk) id was stored before, from another envelope: this copy
         * is refused with its own invalid outcomes, so every item is still accounted for. */
        int n = 0;
        struct kl_str id = kl_profile_outcome_id(res->profile);
        bool chunk = res->is_chunk;
        enum kl_category cats[2] = {chunk ? KL_CAT_PROFILE_CHUNK : KL_CAT_PROFILE,
                                    KL_CAT_PROFILE_INDEXED};
        for (int k = 0; k < (chunk ? 1 : 2); k++) {
            struct kl_outcome *o = &dup[n++];
            memset(o, 0, sizeof *o);
            o->outcome = KL_OUTCOME_INVALID;
            o->reason = KL_R_PROFILE_DUPLICATE;
            o->category = cats[k];
            o->quantity = 1;
            size_t l = id.len < 32 ? id.len : 32;
            memcpy(o->event_id, id.ptr, l);
        }
        memcpy(res->outcomes, dup, sizeof(struct kl_outcome) * (size_t)n);
        res->n_outcomes = n;
        kl_err_clear(&res->err);
        kl_err_set(&res->err, KL_R_PROFILE_DUPLICATE, "%s", err.msg);
        kl_stored_item_outcomes(&it, queue_id, c->rec->meta.org_id, c->rec->meta.project_id,
                                received_s, res->outcomes, res->n_outcomes);
        rc = commit_with_retry(s, &it, c->batches, &err);
    }
    if (rc < 0) {
        c->failures++;
        kl_counter_add(kl_metric_get(s->m_store_errors, "reason", kl_reason_str(err.reason), NULL),
                       1);
        kl_log(KL_LOG_ERROR, &lctx,
               "msg=\"store commit failed, record kept for replay\" "
               "reason=%s detail=\"%s\"",
               kl_reason_str(err.reason), err.msg);
        return;
    }
    if (rc == KL_COMMIT_ALREADY)
        return; /* a replay: its outcomes were counted the first time */
    for (int i = 0; i < res->n_outcomes; i++) {
        const struct kl_outcome *o = &res->outcomes[i];
        kl_counter_add(kl_metric_get(s->m_outcomes, "outcome", kl_outcome_name(o->outcome),
                                     "reason", o->reason ? kl_reason_str(o->reason) : "",
                                     "category", kl_category_name(o->category), NULL),
                       o->quantity);
    }
    if (res->err.reason != KL_R_NONE)
        kl_log(KL_LOG_INFO, &lctx, "msg=\"profile rejected\" reason=%s detail=\"%s\"",
               kl_reason_str(res->err.reason), res->err.msg);
}

static void on_item(void *ctx, const struct kl_envelope_item *item, struct kl_process_result *res)
{
    struct item_ctx *c = ctx;
    commit_result(c, (size_t)(item - c->env->items), res);
}

/* A queued Relay -> Sentry message (spec §4): one profile or chunk that a Relay already
 * accepted, with its organization, project, received time and retention. */
static void process_relay_msg(struct item_ctx *c, const char *body, size_t len)
{
    struct kl_err err = KL_ERR_INIT;
    struct kl_relay_msg *m = kl_relay_msg_parse(c->arena, body, len, &err);
    if (!m) {
        struct kl_log_ctx lctx = {NULL, "worker"};
        kl_log(KL_LOG_ERROR, &lctx, "msg=\"queued relay message unreadable\" record=%llu reason=%s",
               (unsigned long long)c->rec->id, kl_reason_str(err.reason));
        return;
    }
    struct kl_process_opts o;
    kl_process_opts_init(&o);
    o.organization_id = c->rec->meta.org_id;
    o.project_id = c->rec->meta.project_id;
    o.received = m->received > 0 ? m->received : c->rec->meta.received_ns / 1000000000LL;
    if (m->retention_days)
        o.retention_days = (int32_t)m->retention_days;
    o.item_type = kl_str_eq_c(m->type, "profile_chunk") ? KL_ITEM_PROFILE_CHUNK : KL_ITEM_PROFILE;
    struct kl_process_result res;
    kl_process_run(c->arena, m->payload, m->payload_len, &o, &res);
    commit_result(c, 0, &res);
}

static struct kl_str item_queue_id(struct item_ctx *c, size_t index)
{
    char qid[48];
    int qn = snprintf(qid, sizeof qid, "%llu/%zu", (unsigned long long)c->rec->id, index);
    return kl_str_make(kl_arena_strndup(c->arena, qid, (size_t)qn), (size_t)qn);
}

/* Commit the linked spans of one envelope item under its own queue id, so a replay of the
 * record is a no-op. Spans are not a profile category: they have no outcomes. */
static void commit_spans(struct item_ctx *c, uint32_t item, const struct kl_span *sp, size_t n)
{
    struct kl_server *s = c->s;
    struct kl_stored_span *rows = kl_arena_calloc(c->arena, n ? n : 1, sizeof *rows);
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!sp[i].profiler_id.ptr)
            continue;
        struct kl_stored_span *r = &rows[k++];
        r->trace_id = sp[i].trace_id;
        r->span_id = sp[i].span_id;
        r->parent_span_id = sp[i].parent_span_id;
        r->segment_id = sp[i].segment_id;
        r->is_segment = sp[i].is_segment;
        r->name = sp[i].name;
        r->segment_name = sp[i].segment_name;
        r->profiler_id = sp[i].profiler_id;
        r->thread_id = sp[i].thread_id;
        r->thread_name = sp[i].thread_name;
        r->environment = sp[i].environment;
        r->release = sp[i].release;
        r->start_ns = sp[i].start_ns;
        r->end_ns = sp[i].end_ns;
    }
    if (k == 0)
        return;
    struct kl_str queue_id = item_queue_id(c, item);
    struct kl_stored_item it;
    kl_stored_item_outcomes(&it, queue_id, c->rec->meta.org_id, c->rec->meta.project_id,
                            c->rec->meta.received_ns / 1000000000LL, NULL, 0);
    it.spans = rows;
    it.n_spans = k;
    struct kl_err err = KL_ERR_INIT;
    int rc = commit_with_retry(s, &it, c->batches, &err);
    if (rc < 0) {
        struct kl_log_ctx lctx = {queue_id.ptr, "store"};
        c->failures++;
        kl_counter_add(kl_metric_get(s->m_store_errors, "reason", kl_reason_str(err.reason), NULL),
                       1);
        kl_log(KL_LOG_ERROR, &lctx,
               "msg=\"span commit failed, record kept for replay\" reason=%s detail=\"%s\"",
               kl_reason_str(err.reason), err.msg);
        return;
    }
    if (rc == KL_COMMIT_DONE)
        kl_counter_add(kl_metric_get(s->m_spans, "result", "linked", NULL), k);
}

/* The envelope's `span` items and its first transaction (the one kl_process_envelope merges)
 * as one set, linked, then committed item by item. */
static void process_spans(struct item_ctx *c)
{
    struct kl_server *s = c->s;
    const struct kl_envelope *env = c->env;
    char rid[32];
    snprintf(rid, sizeof rid, "%llu", (unsigned long long)c->rec->id);
    struct kl_log_ctx lctx = {rid, "spans"};
    struct kl_span_set set;
    kl_span_set_init(&set, c->arena);
    bool tx_seen = false, any = false;
    for (size_t i = 0; i < env->n_items; i++) {
        const struct kl_envelope_item *it = &env->items[i];
        if (kl_str_eq_c(it->type, "span")) {
            any = true;
            struct kl_err err = KL_ERR_INIT;
            if (kl_span_set_parse_item(&set, it->payload, it->payload_len, (uint32_t)i, &err) < 0) {
                kl_counter_add(kl_metric_get(s->m_spans, "result", kl_reason_str(err.reason), NULL),
                               1);
                kl_log(KL_LOG_INFO, &lctx,
                       "msg=\"span item dropped\" item=%zu reason=%s detail=\"%s\"", i,
                       kl_reason_str(err.reason), err.msg);
            }
        } else if (!tx_seen && kl_str_eq_c(it->type, "transaction")) {
            tx_seen = true;
            if (!memmem(it->payload, it->payload_len, "profiler_id", 11))
                continue;
            struct kl_err err = KL_ERR_INIT;
            /* parsed a second time (kl_process_envelope keeps its copy): only transactions
             * that name a profiler get here, and events are <= 1 MiB */
            struct kl_tx_event *ev =
                kl_tx_event_parse(c->arena, it->payload, it->payload_len, &err);
            if (ev && ev->profiler_id.ptr)
                any |= kl_span_set_add_transaction(&set, ev, (uint32_t)i);
        }
    }
    if (!any)
        return;
    size_t linked = kl_span_set_link(&set);
    for (int k = 0; k < KL_SPAN_SKIP__COUNT; k++) {
        if (!set.skipped[k])
            continue;
        const char *why = kl_span_skip_reason((enum kl_span_skip)k);
        kl_counter_add(kl_metric_get(s->m_spans, "result", why, NULL), set.skipped[k]);
        kl_log(KL_LOG_DEBUG, &lctx, "msg=\"spans skipped\" reason=%s count=%u", why,
               set.skipped[k]);
    }
    if (set.spans.len > linked)
        kl_counter_add(kl_metric_get(s->m_spans, "result", "unlinked", NULL),
                       set.spans.len - linked);
    /* spans are in item order: one commit per run of the same item */
    for (size_t i = 0, j; i < set.spans.len; i = j) {
        for (j = i + 1; j < set.spans.len && set.spans.items[j].item == set.spans.items[i].item;
             j++)
            ;
        commit_spans(c, set.spans.items[i].item, &set.spans.items[i], j - i);
    }
}

/* Process one record; returns true when every item was committed (the record may be retired
 * once the store is synced). */
static bool process_record(struct kl_server *s, struct kl_queue_record *rec,
                           struct batch_range *batches)
{
    struct kl_arena a;
    kl_arena_init(&a);
    int64_t t0 = kl_monotonic_ns();
    struct item_ctx ctx = {s, rec, NULL, &a, 0, batches};
    if (rec->error == KL_R_NONE && rec->payload) {
        struct kl_err err = KL_ERR_INIT;
        const char *body = rec->payload;
        size_t body_len = rec->payload_len;
        struct kl_envelope *env = NULL;
        enum kl_encoding enc = (enum kl_encoding)(rec->meta.flags & KL_QFLAG_ENCODING_MASK);
        if (enc != KL_ENC_IDENTITY) {
            char *dec;
            if (kl_decompress(&a, enc, rec->payload, rec->payload_len, KL_HTTP_DEFAULT_MAX_BODY,
                              &dec, &body_len, &err) == 0)
                body = dec;
            else
                body = NULL;
        }
        if (body && (rec->meta.flags & KL_QFLAG_RELAY_MSG)) {
            process_relay_msg(&ctx, body, body_len);
        } else if (body && (env = kl_envelope_parse(&a, body, body_len, &s->env_limits, &err))) {
            ctx.env = env;
            struct kl_process_opts o;
            kl_process_opts_init(&o);
            o.organization_id = rec->meta.org_id;
            o.project_id = rec->meta.project_id;
            o.received = rec->meta.received_ns / 1000000000LL;
            kl_process_envelope(&a, env, &o, on_item, &ctx);
            process_spans(&ctx);
        } else {
            /* validated at ingest, so only a changed limit or a damaged record lands here */
            struct kl_log_ctx lctx = {NULL, "worker"};
            kl_log(KL_LOG_ERROR, &lctx, "msg=\"queued envelope unreadable\" record=%llu reason=%s",
                   (unsigned long long)rec->id, kl_reason_str(err.reason));
        }
    } else {
        struct kl_log_ctx lctx = {NULL, "worker"};
        kl_log(KL_LOG_ERROR, &lctx, "msg=\"queue record lost its payload\" record=%llu reason=%s",
               (unsigned long long)rec->id, kl_reason_str(rec->error));
    }
    kl_histogram_observe(kl_metric_get(s->m_latency, NULL), (double)(kl_monotonic_ns() - t0) / 1e9);
    kl_arena_release(&a);
    return ctx.failures == 0;
}

#define RETIRE_BATCH 64
#define RETIRE_MAX_DELAY_NS (20 * 1000000LL)

/* Make the batch durable with one store sync (which also commits the store's open batch
 * transaction), then retire its records. */
static void flush_batch(struct kl_server *s, uint64_t *ids, unsigned *n,
                        struct batch_range *batches)
{
    if (*n == 0)
        return;
    struct kl_err err = KL_ERR_INIT;
    for (int attempt = 0; kl_store_sync_batches(s->store, batches->lo, batches->hi, &err) < 0;
         attempt++) {
        struct kl_log_ctx lctx = {NULL, "worker"};
        kl_log(KL_LOG_ERROR, &lctx,
               "msg=\"store sync failed, records kept\" reason=%s detail=\"%s\"",
               kl_reason_str(err.reason), err.msg);
        if (attempt >= 3) {
            *n = 0; /* not retired: replayed at the next start */
            *batches = (struct batch_range){0, 0};
            return;
        }
        kl_err_clear(&err);
        usleep(50000);
    }
    for (unsigned i = 0; i < *n; i++)
        kl_queue_retire(s->queue, ids[i]);
    *n = 0;
    *batches = (struct batch_range){0, 0};
}

/* Workers commit without flushing and retire in batches after one sync: group commit for
 * the store, the same idea as the queue's (server.h). */
static void *worker_main(void *arg)
{
    struct kl_server *s = arg;
    /* one profile after another: keep the last one's arena blocks mapped (base/arena.h) */
    kl_arena_set_cache(KL_ARENA_WORKER_CACHE_BYTES);
    uint64_t ids[RETIRE_BATCH];
    unsigned n = 0;
    struct batch_range batches = {0, 0};
    int64_t first = 0;
    for (;;) {
        struct kl_queue_record *rec = NULL;
        int rc = kl_queue_take(s->queue, &rec, n ? 0 : 500);
        if (rc < 0)
            break;
        if (rc > 0) {
            flush_batch(s, ids, &n, &batches);
            continue;
        }
        if (process_record(s, rec, &batches)) {
            if (n == 0)
                first = kl_monotonic_ns();
            ids[n++] = rec->id;
        }
        kl_queue_record_free(rec);
        if (n == RETIRE_BATCH || (n && kl_monotonic_ns() - first > RETIRE_MAX_DELAY_NS))
            flush_batch(s, ids, &n, &batches);
    }
    flush_batch(s, ids, &n, &batches);
    return NULL;
}

static void collect_queue(struct kl_metrics *m, void *arg)
{
    (void)m;
    struct kl_server *s = arg;
    struct kl_queue_stats st;
    kl_queue_stats(s->queue, &st);
    kl_gauge_set(kl_metric_get(s->m_queue, "unit", "records", NULL), (double)st.depth_records);
    kl_gauge_set(kl_metric_get(s->m_queue, "unit", "bytes", NULL), (double)st.depth_bytes);
}

/* ------------------------------------------------------------------------------------ */
/* lifecycle                                                                             */

static const struct kl_route routes[] = {
    {"POST", "/api/{project_id}/envelope/", handle_envelope, KL_ROUTE_CORS, "envelope",
     admit_envelope},
    {"POST", "/api/{project_id}/relay-message/", handle_relay_msg, 0, "relay_message",
     admit_envelope},
    {"GET", "/api/0/organizations/{org_slug}/stats_v2/", handle_stats, 0, "stats_v2", NULL},
    {"GET", "/api/0/projects/{org}/{project}/profiling/profiles/{profile_id}/", kl_api_profile, 0,
     "profile", NULL},
    {"GET", "/api/0/projects/{org}/{project}/profiling/raw_profiles/{profile_id}/",
     kl_api_raw_profile, 0, "raw_profile", NULL},
    {"GET", "/api/0/projects/{org}/{project}/profiling/raw_chunks/{profiler_id}/{chunk_id}/",
     kl_api_raw_chunk, 0, "raw_chunk", NULL},
    {"GET", "/api/0/organizations/{org}/profiling/profiles/", kl_api_profiles, 0, "profiles", NULL},
    {"GET", "/api/0/organizations/{org}/profiling/flamegraph/", kl_api_flamegraph, 0, "flamegraph",
     NULL},
    {"GET", "/api/0/organizations/{org}/profiling/flamegraph/diff/", kl_api_flamegraph_diff, 0,
     "flamegraph_diff", NULL},
    {"GET", "/api/0/organizations/{org}/profiling/functions/", kl_api_functions, 0, "functions",
     NULL},
    {"GET", "/api/0/organizations/{org}/profiling/function-trends/", kl_api_function_trends, 0,
     "function_trends", NULL},
    {"GET", "/api/0/organizations/{org}/profiling/occurrences/", kl_api_occurrences, 0,
     "occurrences", NULL},
    {"GET", "/api/0/organizations/{org}/profiling/chunks/", kl_api_chunks, 0, "chunks", NULL},
    {"GET", "/api/0/organizations/{org}/profiling/spans/", kl_api_spans, 0, "spans", NULL},
    {"GET", "/health", kl_http_handle_health, 0, "health", NULL},
    {"GET", "/metrics", kl_http_handle_metrics, 0, "metrics", NULL},
};

struct kl_server *kl_server_start(const struct kl_server_config *cfg, struct kl_err *err)
{
    struct kl_server *s = kl_xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    kl_envelope_limits_default(&s->env_limits);
    char path[4096];
    s->store = kl_store_open_sqlite(cfg->data_dir, err);
    if (!s->store)
        goto fail;
    s->read.store = s->store;
    kl_store_set_deferred_sync(s->store, true);
    char key[KL_STORE_KEY_LEN + 1];
    if (kl_store_bootstrap(s->store, key, err) < 0)
        goto fail;
    snprintf(path, sizeof path, "%s/queue", cfg->data_dir);
    struct kl_queue_limits ql = {0};
    uint64_t max_done = 0;
    if (kl_store_max_queue_record(s->store, &max_done, err) < 0)
        goto fail;
    ql.min_id = max_done + 1;
    ql.max_bytes = cfg->queue_max_bytes;
    ql.max_records = cfg->queue_max_records;
    s->queue = kl_queue_open(path, &ql, err);
    if (!s->queue)
        goto fail;

    s->metrics = kl_metrics_new();
    s->m_items = kl_metrics_counter(s->metrics, "kiln_envelope_items_total",
                                    "Envelope items received, by item type");
    s->m_outcomes = kl_metrics_counter(s->metrics, "kiln_outcomes_total",
                                       "Outcome quantities recorded, by outcome, reason, category");
    s->m_rejected = kl_metrics_counter(s->metrics, "kiln_ingest_rejected_total",
                                       "Envelopes refused at ingest, by reason");
    s->m_store_errors = kl_metrics_counter(s->metrics, "kiln_store_errors_total",
                                           "Store commits that failed after retries, by reason");
    s->m_spans = kl_metrics_counter(s->metrics, "kiln_spans_total",
                                    "Spans read from span items and transactions, by result: "
                                    "linked (stored), unlinked, or why skipped");
    s->m_latency = kl_metrics_histogram(s->metrics, "kiln_processing_seconds",
                                        "Time to process and store one queued envelope",
                                        kl_metrics_latency_buckets, kl_metrics_latency_buckets_n);
    s->m_queue =
        kl_metrics_gauge(s->metrics, "kiln_queue_depth", "Queued envelopes not yet processed");
    kl_metrics_on_collect(s->metrics, collect_queue, s);

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    s->n_workers = cfg->workers ? cfg->workers : (unsigned)(cores > 0 ? cores : 1);
    if (s->n_workers > MAX_WORKERS)
        s->n_workers = MAX_WORKERS;
    for (unsigned i = 0; i < s->n_workers; i++) {
        if (pthread_create(&s->workers[i], NULL, worker_main, s) != 0) {
            s->n_workers = i;
            kl_err_set(err, KL_R_INTERNAL, "cannot start worker threads");
            goto fail;
        }
    }

    struct kl_http_config hc = {0};
    hc.addr = cfg->addr;
    hc.port = cfg->port;
    hc.thread_per_connection = true; /* appends block on the queue's group commit */
    hc.max_inflight_bytes = (size_t)cfg->inflight_max_bytes;
    hc.metrics = s->metrics;
    s->http = kl_http_start(&hc, routes, sizeof routes / sizeof routes[0], s, err);
    if (!s->http)
        goto fail;
    if (cfg->public_host)
        snprintf(s->host, sizeof s->host, "%s", cfg->public_host);
    else
        snprintf(s->host, sizeof s->host, "%s:%u", cfg->addr ? cfg->addr : "127.0.0.1",
                 (unsigned)kl_http_port(s->http));
    snprintf(s->dsn, sizeof s->dsn, "http://%s@%s/1", key, s->host);
    return s;
fail:
    kl_server_stop(s);
    return NULL;
}

uint16_t kl_server_port(const struct kl_server *s)
{
    return kl_http_port(s->http);
}

const char *kl_server_dsn(const struct kl_server *s)
{
    return s->dsn;
}

void kl_server_stop(struct kl_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    kl_http_stop(s->http); /* no new requests; in-flight ones answered */
    if (s->queue)
        kl_queue_shutdown(s->queue); /* workers finish their record and leave */
    for (unsigned i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    kl_queue_close(s->queue);
    kl_store_close(s->store);
    kl_metrics_free(s->metrics);
    free(s);
}
