/* tx_event.c - transaction event fields and Relay's merge into the profile (tx_event.h) */
#include "ingest/tx_event.h"

#include <math.h>
#include <string.h>

#include "base/time.h"
#include "json/json.h"

static int get_opt_str(struct kl_json_val *v, struct kl_str *out)
{
    enum kl_json_type t = kl_json_type(v);
    if (t == KL_JSON_STRING)
        return kl_json_get_str(v, out);
    return t == KL_JSON_ERROR ? -1 : 0; /* other types: ignored, as Relay's lenient fields */
}

/* Event timestamps are floats (unix seconds) or RFC 3339 strings. */
static int get_time(struct kl_json_val *v, int64_t *ns, bool *has)
{
    enum kl_json_type t = kl_json_type(v);
    if (t == KL_JSON_NUMBER) {
        double d;
        if (kl_json_get_f64(v, &d) < 0)
            return -1;
        /* unix seconds whose nanoseconds fit in int64 (before 2262-04-11): llround of
         * anything larger has no defined value */
        if (isfinite(d) && d >= 0 && d < 9.2e9) {
            /* whole seconds and the fraction apart: d * 1e9 would round to ~256 ns steps */
            double whole = floor(d);
            *ns = (int64_t)whole * 1000000000LL + llround((d - whole) * 1e9);
            *has = true;
        }
        return 0;
    }
    if (t == KL_JSON_STRING) {
        struct kl_str s;
        if (kl_json_get_str(v, &s) < 0)
            return -1;
        *has = kl_rfc3339_parse(s, ns);
        return 0;
    }
    return t == KL_JSON_ERROR ? -1 : 0;
}

/* Fields of one object, by key, into string slots. */
struct field {
    const char *key;
    struct kl_str *out;
};

static int read_fields(struct kl_json_val *v, const struct field *fs, size_t n)
{
    if (kl_json_type(v) != KL_JSON_OBJECT)
        return 0;
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int r;
    if (kl_json_obj_begin(v, &it) < 0)
        return -1;
    while ((r = kl_json_obj_next(&it, &k, &x)) > 0)
        for (size_t i = 0; i < n; i++)
            if (kl_str_eq_c(k, fs[i].key) && get_opt_str(&x, fs[i].out) < 0)
                return -1;
    return r;
}

static int read_tags(struct kl_arena *a, struct kl_json_val *v, kl_vec_kv *tags)
{
    enum kl_json_type t = kl_json_type(v);
    struct kl_json_iter it;
    struct kl_json_val x;
    int r;
    if (t == KL_JSON_OBJECT) {
        struct kl_str k;
        if (kl_json_obj_begin(v, &it) < 0)
            return -1;
        while ((r = kl_json_obj_next(&it, &k, &x)) > 0) {
            struct kl_str s = KL_STR_NULL;
            if (get_opt_str(&x, &s) < 0)
                return -1;
            if (s.ptr && tags->len < KL_MAX_MAP_ENTRIES)
                kl_kv_set(a, tags, k, s);
        }
        return r;
    }
    if (t != KL_JSON_ARRAY)
        return t == KL_JSON_ERROR ? -1 : 0;
    /* [["key","value"], ...] as SDKs and Relay's normalized form send them */
    if (kl_json_arr_begin(v, &it) < 0)
        return -1;
    while ((r = kl_json_arr_next(&it, &x)) > 0) {
        if (kl_json_type(&x) != KL_JSON_ARRAY)
            continue;
        struct kl_json_iter pi;
        struct kl_json_val pv;
        struct kl_str kv[2] = {KL_STR_NULL, KL_STR_NULL};
        int i = 0, q;
        if (kl_json_arr_begin(&x, &pi) < 0)
            return -1;
        while ((q = kl_json_arr_next(&pi, &pv)) > 0) {
            if (i < 2 && get_opt_str(&pv, &kv[i]) < 0)
                return -1;
            i++;
        }
        if (q < 0)
            return -1;
        if (i == 2 && kv[0].ptr && kv[1].ptr && tags->len < KL_MAX_MAP_ENTRIES)
            kl_kv_set(a, tags, kv[0], kv[1]);
    }
    return r;
}

/* The thread that ran the transaction: a string, or an integer kept as its digits. */
static int get_thread_id(struct kl_json_val *v, struct kl_str *out)
{
    if (kl_json_type(v) != KL_JSON_NUMBER)
        return get_opt_str(v, out);
    struct kl_str n;
    if (kl_json_get_number_text(v, &n) < 0)
        return -1;
    for (size_t i = 0; i < n.len; i++)
        if (n.ptr[i] < '0' || n.ptr[i] > '9')
            return 0;
    if (n.len)
        *out = n;
    return 0;
}

/* contexts.trace: its string fields, and data["thread.id"/"thread.name"]. */
static int read_trace(struct kl_json_val *v, struct kl_tx_event *ev)
{
    if (kl_json_type(v) != KL_JSON_OBJECT)
        return 0;
    const struct field fs[] = {{"trace_id", &ev->trace_id},
                               {"span_id", &ev->span_id},
                               {"op", &ev->op},
                               {"status", &ev->status}};
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int r;
    if (kl_json_obj_begin(v, &it) < 0)
        return -1;
    while ((r = kl_json_obj_next(&it, &k, &x)) > 0) {
        if (kl_str_eq_c(k, "data")) {
            if (kl_json_type(&x) != KL_JSON_OBJECT)
                continue;
            struct kl_json_iter di;
            struct kl_str dk;
            struct kl_json_val dv;
            int q;
            if (kl_json_obj_begin(&x, &di) < 0)
                return -1;
            while ((q = kl_json_obj_next(&di, &dk, &dv)) > 0) {
                if (kl_str_eq_c(dk, "thread.id") && get_thread_id(&dv, &ev->thread_id) < 0)
                    return -1;
                if (kl_str_eq_c(dk, "thread.name") && get_opt_str(&dv, &ev->thread_name) < 0)
                    return -1;
            }
            if (q < 0)
                return -1;
            continue;
        }
        for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++)
            if (kl_str_eq_c(k, fs[i].key) && get_opt_str(&x, fs[i].out) < 0)
                return -1;
    }
    return r;
}

static int read_contexts(struct kl_json_val *v, struct kl_tx_event *ev)
{
    if (kl_json_type(v) != KL_JSON_OBJECT)
        return 0;
    struct kl_json_iter it;
    struct kl_str k;
    struct kl_json_val x;
    int r;
    if (kl_json_obj_begin(v, &it) < 0)
        return -1;
    while ((r = kl_json_obj_next(&it, &k, &x)) > 0) {
        if (kl_str_eq_c(k, "trace")) {
            if (read_trace(&x, ev) < 0)
                return -1;
        } else if (kl_str_eq_c(k, "app")) {
            const struct field fs[] = {{"app_identifier", &ev->app_identifier}};
            if (read_fields(&x, fs, 1) < 0)
                return -1;
        } else if (kl_str_eq_c(k, "profile")) {
            const struct field fs[] = {{"profiler_id", &ev->profiler_id}};
            if (read_fields(&x, fs, 1) < 0)
                return -1;
        }
    }
    return r;
}

struct kl_tx_event *kl_tx_event_parse(struct kl_arena *a, const char *bytes, size_t len,
                                      struct kl_err *err)
{
    struct kl_json_doc *doc = kl_json_open(a, bytes, len, KL_R_ENVELOPE_MALFORMED, err);
    if (!doc)
        return NULL;
    struct kl_tx_event *ev = kl_arena_calloc(a, 1, sizeof *ev);
    struct kl_json_val root, x;
    struct kl_json_iter it;
    struct kl_str k;
    int r;
    if (kl_json_root(doc, &root) < 0)
        return NULL;
    if (kl_json_type(&root) != KL_JSON_OBJECT) {
        kl_json_fail(doc, KL_R_ENVELOPE_MALFORMED, "transaction event is not an object");
        return NULL;
    }
    if (kl_json_obj_begin(&root, &it) < 0)
        return NULL;
    while ((r = kl_json_obj_next(&it, &k, &x)) > 0) {
        int e = 0;
        if (kl_str_eq_c(k, "event_id"))
            e = get_opt_str(&x, &ev->event_id);
        else if (kl_str_eq_c(k, "transaction"))
            e = get_opt_str(&x, &ev->transaction);
        else if (kl_str_eq_c(k, "release"))
            e = get_opt_str(&x, &ev->release);
        else if (kl_str_eq_c(k, "dist"))
            e = get_opt_str(&x, &ev->dist);
        else if (kl_str_eq_c(k, "environment"))
            e = get_opt_str(&x, &ev->environment);
        else if (kl_str_eq_c(k, "platform"))
            e = get_opt_str(&x, &ev->platform);
        else if (kl_str_eq_c(k, "sdk")) {
            const struct field fs[] = {{"name", &ev->sdk_name}, {"version", &ev->sdk_version}};
            e = read_fields(&x, fs, 2);
        } else if (kl_str_eq_c(k, "request")) {
            const struct field fs[] = {{"method", &ev->http_method}};
            e = read_fields(&x, fs, 1);
        } else if (kl_str_eq_c(k, "contexts"))
            e = read_contexts(&x, ev);
        else if (kl_str_eq_c(k, "tags"))
            e = read_tags(a, &x, &ev->tags);
        else if (kl_str_eq_c(k, "start_timestamp"))
            e = get_time(&x, &ev->start_ns, &ev->has_start);
        else if (kl_str_eq_c(k, "timestamp"))
            e = get_time(&x, &ev->end_ns, &ev->has_end);
        if (e < 0)
            return NULL;
    }
    if (r < 0 || kl_json_finish(doc) < 0)
        return NULL;
    return ev;
}

static const struct {
    const char *platform, *sdk;
} default_sdks[] = {
    {"android", "sentry.java.android"},
    {"cocoa", "sentry.cocoa"},
    {"csharp", "sentry.dotnet"},
    {"go", "sentry.go"},
    {"javascript", "sentry.javascript"},
    {"node", "sentry.javascript.node"},
    {"php", "sentry.php"},
    {"python", "sentry.python"},
    {"ruby", "sentry.ruby"},
    {"rust", "sentry.rust"},
};

static struct kl_str copy_str(struct kl_profile *p, struct kl_str s)
{
    return kl_intern(&p->strings, s);
}

static void meta_set(struct kl_profile *p, const char *key, struct kl_str v)
{
    if (!v.ptr)
        return;
    kl_kv_set(p->arena, &p->tx_metadata, kl_str_c(key), copy_str(p, v));
    p->has_tx_metadata = true;
}

static void meta_time(struct kl_profile *p, const char *key, int64_t ns)
{
    char *buf = kl_arena_alloc(p->arena, 48);
    size_t n = kl_rfc3339_format_nanos(ns, buf);
    meta_set(p, key, kl_str_make(buf, n));
}

void kl_merge_transaction(struct kl_profile *p, const struct kl_tx_event *ev)
{
    if (!ev || kl_profile_is_chunk(p))
        return;
    bool android = p->kind == KL_KIND_ANDROID;
    if (ev->transaction.ptr) {
        p->transaction.name = copy_str(p, ev->transaction);
        if (android)
            p->transaction.present = p->transaction.present || ev->transaction.len > 0;
    }
    if (ev->release.ptr && (android || !p->release.ptr || p->release.len == 0))
        p->release = copy_str(p, ev->release);
    if (ev->dist.ptr)
        p->dist = copy_str(p, ev->dist);
    if (ev->environment.ptr)
        p->environment = copy_str(p, ev->environment);
    if (ev->span_id.ptr)
        p->transaction.segment_id = copy_str(p, ev->span_id);
    if (ev->sdk_name.ptr && ev->sdk_version.ptr && ev->sdk_name.len && ev->sdk_version.len) {
        p->sdk_name = copy_str(p, ev->sdk_name);
        p->sdk_version = copy_str(p, ev->sdk_version);
        p->has_client_sdk = true;
    } else if (!p->has_client_sdk) {
        for (size_t i = 0; i < sizeof default_sdks / sizeof default_sdks[0]; i++) {
            if (kl_str_eq_c(p->platform, default_sdks[i].platform)) {
                p->sdk_name = kl_str_c(default_sdks[i].sdk);
                p->sdk_version = KL_STR("");
                p->has_client_sdk = true;
            }
        }
    }

    meta_set(p, "release", ev->release);
    meta_set(p, "dist", ev->dist);
    meta_set(p, "environment", ev->environment);
    meta_set(p, "transaction", ev->transaction);
    meta_set(p, "transaction.status", ev->status.ptr ? ev->status : KL_STR("unknown"));
    meta_set(p, "transaction.op", ev->op);
    meta_set(p, "http.method", ev->http_method);
    if (ev->has_start)
        meta_time(p, "transaction.start", ev->start_ns);
    if (ev->has_end)
        meta_time(p, "transaction.end", ev->end_ns);
    meta_set(p, "app.identifier", ev->app_identifier);
    meta_set(p, "segment_id", ev->span_id);
    if (p->has_client_sdk) {
        meta_set(p, "client_sdk.name", p->sdk_name);
        meta_set(p, "client_sdk.version", p->sdk_version);
    }
    for (size_t i = 0; i < ev->tags.len; i++) {
        kl_kv_set(p->arena, &p->tx_tags, copy_str(p, ev->tags.items[i].key),
                  copy_str(p, ev->tags.items[i].value));
        p->has_tx_tags = true;
    }
}
