/* store.c - the backend-independent half of the store: dispatch through struct
 * kl_store_ops, argument checks, the key cache, blob staging around commit_item, and the
 * profile -> stored item mapping (see store.h) */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/hash.h"
#include "base/time.h"
#include "output/stored.h"
#include "store/blob.h"

/* Key cache: direct-mapped, positive hits only, so its size is bounded by the table and a
 * flood of unknown keys cannot grow it. A miss costs one indexed SELECT (a few us). */
#define KEY_CACHE_SLOTS 1024

struct key_slot {
    char key[KL_STORE_KEY_LEN + 1]; /* "" = empty slot */
    uint64_t project_id, org_id;
    bool active;
    int64_t loaded_ns;
};

struct kl_store {
    const struct kl_store_ops *ops;
    void *impl;
    char *blob_dir;
    atomic_bool deferred; /* kl_store_set_deferred_sync */
    pthread_mutex_t cache_mu;
    struct key_slot cache[KEY_CACHE_SLOTS];
};

struct kl_store *kl_store_new(const struct kl_store_ops *ops, void *impl, const char *data_dir,
                              struct kl_err *err)
{
    size_t n = strlen(data_dir) + sizeof "/blobs";
    char *dir = kl_xmalloc(n);
    snprintf(dir, n, "%s/blobs", data_dir);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        kl_err_set(err, errno == ENOSPC ? KL_R_STORE_FULL : KL_R_STORE_IO,
                   "cannot create directory '%s': %s", dir, strerror(errno));
        free(dir);
        ops->close(impl);
        return NULL;
    }
    struct kl_store *s = kl_xcalloc(1, sizeof *s);
    s->ops = ops;
    s->impl = impl;
    s->blob_dir = dir;
    pthread_mutex_init(&s->cache_mu, NULL);
    return s;
}

void kl_store_close(struct kl_store *s)
{
    if (!s)
        return;
    s->ops->close(s->impl);
    pthread_mutex_destroy(&s->cache_mu);
    free(s->blob_dir);
    free(s);
}

const char *kl_store_backend_name(const struct kl_store *s)
{
    return s->ops->name;
}

const char *kl__store_blob_dir(const struct kl_store *s)
{
    return s->blob_dir;
}

void kl__store_random_key(char out[KL_STORE_KEY_LEN + 1])
{
    struct kl_uuid u;
    kl_uuid_v4(&u);
    kl_uuid_hex(&u, out);
}

size_t kl__store_slugify(struct kl_str name, char out[KL_STORE_MAX_SLUG + 1])
{
    size_t n = 0;
    bool dash = false;
    for (size_t i = 0; i < name.len && n < KL_STORE_MAX_SLUG; i++) {
        char c = name.ptr[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (dash && n > 0 && n + 1 < KL_STORE_MAX_SLUG)
                out[n++] = '-';
            dash = false;
            out[n++] = c;
        } else {
            dash = true;
        }
    }
    out[n] = '\0';
    return n;
}

/* ---- organizations, projects, keys ---- */

static void cache_clear(struct kl_store *s)
{
    pthread_mutex_lock(&s->cache_mu);
    for (size_t i = 0; i < KEY_CACHE_SLOTS; i++)
        s->cache[i].key[0] = '\0';
    pthread_mutex_unlock(&s->cache_mu);
}

int kl_store_bootstrap(struct kl_store *s, char key_out[KL_STORE_KEY_LEN + 1], struct kl_err *err)
{
    key_out[0] = '\0';
    int r = s->ops->bootstrap(s->impl, key_out, err);
    cache_clear(s);
    return r;
}

int kl_store_project_create(struct kl_store *s, struct kl_str name, uint64_t org_id,
                            uint64_t *project_id, struct kl_err *err)
{
    char slug[KL_STORE_MAX_SLUG + 1];
    *project_id = 0;
    if (name.len > KL_STORE_MAX_NAME)
        return kl_err_set(err, KL_R_STORE_INVALID, "project name longer than %d bytes",
                          KL_STORE_MAX_NAME);
    if (kl__store_slugify(name, slug) == 0)
        return kl_err_set(err, KL_R_STORE_INVALID, "project name '%.*s' has no letter or digit",
                          (int)name.len, name.ptr ? name.ptr : "");
    char key[KL_STORE_KEY_LEN + 1];
    kl__store_random_key(key);
    return s->ops->project_create(s->impl, name, kl_str_c(slug), org_id, key, project_id, err);
}

int kl_store_project_list(struct kl_store *s, kl_project_fn *fn, void *ctx, struct kl_err *err)
{
    return s->ops->project_list(s->impl, fn, ctx, err);
}

int kl_store_project_keys(struct kl_store *s, uint64_t project_id, kl_key_fn *fn, void *ctx,
                          struct kl_err *err)
{
    return s->ops->project_keys(s->impl, project_id, fn, ctx, err);
}

int kl_store_key_create(struct kl_store *s, uint64_t project_id, char key_out[KL_STORE_KEY_LEN + 1],
                        struct kl_err *err)
{
    kl__store_random_key(key_out);
    int r = s->ops->key_create(s->impl, project_id, key_out, err);
    if (r < 0)
        key_out[0] = '\0';
    return r;
}

static bool key_syntax_ok(struct kl_str k)
{
    if (k.len != KL_STORE_KEY_LEN)
        return false;
    for (size_t i = 0; i < k.len; i++) {
        char c = k.ptr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

int kl_store_key_lookup(struct kl_store *s, struct kl_str public_key, uint64_t *project_id,
                        uint64_t *org_id, bool *active, struct kl_err *err)
{
    *project_id = *org_id = 0;
    *active = false;
    /* Keys are stored lower-case hex; anything else can never match, so skip the query. */
    if (!key_syntax_ok(public_key))
        return kl_err_set(err, KL_R_STORE_NOT_FOUND, "unknown key");
    size_t slot = kl_fnv1a64(public_key.ptr, public_key.len) % KEY_CACHE_SLOTS;
    int64_t now = kl_monotonic_ns();
    pthread_mutex_lock(&s->cache_mu);
    struct key_slot *c = &s->cache[slot];
    if (memcmp(c->key, public_key.ptr, KL_STORE_KEY_LEN) == 0 &&
        now - c->loaded_ns < (int64_t)KL_STORE_KEY_CACHE_TTL_S * 1000000000) {
        *project_id = c->project_id;
        *org_id = c->org_id;
        *active = c->active;
        pthread_mutex_unlock(&s->cache_mu);
        return 0;
    }
    pthread_mutex_unlock(&s->cache_mu);
    if (s->ops->key_lookup(s->impl, public_key, project_id, org_id, active, err) < 0)
        return -1;
    pthread_mutex_lock(&s->cache_mu);
    memcpy(c->key, public_key.ptr, KL_STORE_KEY_LEN);
    c->key[KL_STORE_KEY_LEN] = '\0';
    c->project_id = *project_id;
    c->org_id = *org_id;
    c->active = *active;
    c->loaded_ns = now;
    pthread_mutex_unlock(&s->cache_mu);
    return 0;
}

int kl_store_project_find_by_slug(struct kl_store *s, struct kl_str org_slug,
                                  struct kl_str project_slug, struct kl_project *out,
                                  struct kl_err *err)
{
    memset(out, 0, sizeof *out);
    return s->ops->project_find_by_slug(s->impl, org_slug, project_slug, out, err);
}

/* ---- commit ---- */

size_t kl_stored_item_blob_key(const struct kl_stored_item *it, char *out)
{
    int n;
    if (it->kind == KL_STORED_PROFILE)
        n = snprintf(out, KL_BLOB_KEY_MAX + 1, "%llu/%llu/%.*s",
                     (unsigned long long)it->organization_id, (unsigned long long)it->project_id,
                     (int)it->profile_id.len, it->profile_id.ptr ? it->profile_id.ptr : "");
    else if (it->kind == KL_STORED_CHUNK)
        n = snprintf(out, KL_BLOB_KEY_MAX + 1, "%llu/%llu/%.*s/%.*s",
                     (unsigned long long)it->organization_id, (unsigned long long)it->project_id,
                     (int)it->profiler_id.len, it->profiler_id.ptr ? it->profiler_id.ptr : "",
                     (int)it->chunk_id.len, it->chunk_id.ptr ? it->chunk_id.ptr : "");
    else
        return 0;
    if (n <= 0 || n > KL_BLOB_KEY_MAX || !kl_blob_key_valid(kl_str_make(out, (size_t)n))) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n;
}

static int publish_hook(void *ctx, struct kl_err *err)
{
    return kl__blob_publish(ctx, err);
}

int kl_store_commit_item_batched(struct kl_store *s, const struct kl_stored_item *it,
                                 uint64_t *batch, struct kl_err *err)
{
    if (batch)
        *batch = 0;
    if (!it->queue_id.ptr || it->queue_id.len == 0 || it->queue_id.len > 200)
        return kl_err_set(err, KL_R_STORE_INVALID, "an item needs a queue id of 1-200 bytes");
    if (it->n_outcomes < 0 || (it->n_outcomes > 0 && !it->outcomes))
        return kl_err_set(err, KL_R_STORE_INVALID, "bad outcome list");
    if (it->n_spans > 0 && !it->spans)
        return kl_err_set(err, KL_R_STORE_INVALID, "bad span list");
    for (uint32_t i = 0; i < it->n_spans; i++)
        if (!it->spans[i].trace_id.ptr || !it->spans[i].span_id.ptr ||
            !it->spans[i].profiler_id.ptr)
            return kl_err_set(err, KL_R_STORE_INVALID, "a stored span needs its ids");
    if (it->kind == KL_STORED_NONE)
        return s->ops->commit_item(s->impl, it, KL_STR_NULL, NULL, NULL, batch, err);

    char key[KL_BLOB_KEY_MAX + 1];
    size_t klen = kl_stored_item_blob_key(it, key);
    if (klen == 0)
        return kl_err_set(err, KL_R_STORE_BAD_KEY, "item ids do not make a blob key");
    if (!it->blob)
        return kl_err_set(err, KL_R_STORE_INVALID, "a stored profile needs its blob");
    struct kl_blob_stage *st = kl_xmalloc(sizeof *st);
    int r = kl__blob_stage(s, kl_str_make(key, klen), it->blob, it->blob_len, st, err);
    if (r == 0) {
        r = s->ops->commit_item(s->impl, it, kl_str_make(key, klen), publish_hook, st, batch, err);
        kl__blob_discard(st); /* no-op once published */
    }
    free(st);
    /* A replay after a crash in deferred mode: the commit survived, the blob may not have.
     * Rewriting it is idempotent (same key, same content). */
    if (r == KL_COMMIT_ALREADY && atomic_load(&s->deferred) &&
        kl_blob_put(s, kl_str_make(key, klen), it->blob, it->blob_len, err) < 0)
        return -1;
    return r;
}

int kl_store_commit_item(struct kl_store *s, const struct kl_stored_item *it, struct kl_err *err)
{
    return kl_store_commit_item_batched(s, it, NULL, err);
}

bool kl__store_deferred(const struct kl_store *s)
{
    return atomic_load(&s->deferred);
}

void kl_store_set_deferred_sync(struct kl_store *s, bool on)
{
    struct kl_err err = KL_ERR_INIT;
    if (s->ops->set_deferred_sync && s->ops->set_deferred_sync(s->impl, on, &err) == 0)
        atomic_store(&s->deferred, on);
}

int kl_store_sync_batches(struct kl_store *s, uint64_t lo, uint64_t hi, struct kl_err *err)
{
    if (!atomic_load(&s->deferred))
        return 0;
    if (s->ops->commit_batch(s->impl, err) < 0)
        return -1;
    int fd = open(s->blob_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return kl_err_set(err, KL_R_STORE_IO, "cannot open '%s': %s", s->blob_dir, strerror(errno));
    int r = syncfs(fd);
    int e = errno;
    close(fd);
    if (r < 0)
        return kl_err_set(err, e == ENOSPC ? KL_R_STORE_FULL : KL_R_STORE_IO, "syncfs: %s",
                          strerror(e));
    if (lo && s->ops->batch_failed(s->impl, lo, hi))
        return kl_err_set(err, KL_R_STORE_IO,
                          "a batch transaction between %llu and %llu failed to commit; its "
                          "items are replayed at the next start",
                          (unsigned long long)lo, (unsigned long long)hi);
    return 0;
}

int kl_store_sync(struct kl_store *s, struct kl_err *err)
{
    return kl_store_sync_batches(s, 0, 0, err);
}

void kl_stored_item_outcomes(struct kl_stored_item *it, struct kl_str queue_id, uint64_t org_id,
                             uint64_t project_id, int64_t received_s,
                             const struct kl_outcome *outcomes, int n_outcomes)
{
    memset(it, 0, sizeof *it);
    it->queue_id = queue_id;
    it->kind = KL_STORED_NONE;
    it->organization_id = org_id;
    it->project_id = project_id;
    it->received_s = received_s;
    it->outcomes = outcomes;
    it->n_outcomes = n_outcomes;
}

static void free_detached(void *p)
{
    free(p);
}

/* Start and duration as vroomrs computes them for the metadata messages (spec §6.5). */
static void profile_times(const struct kl_profile *p, int64_t *start_ns, uint64_t *dur_ns)
{
    const kl_vec_sample *sm = &p->data.samples;
    int64_t start = p->has_timestamp ? p->timestamp_ns : p->received * 1000000000LL;
    uint64_t dur = 0;
    switch (p->kind) {
    case KL_KIND_SAMPLE_V1:
        if (sm->len >= 2) {
            uint64_t lo = UINT64_MAX, hi = 0;
            for (size_t i = 0; i < sm->len; i++) {
                uint64_t t = sm->items[i].ts_ns;
                lo = t < lo ? t : lo;
                hi = t > hi ? t : hi;
            }
            dur = hi - lo;
        }
        break;
    case KL_KIND_SAMPLE_V2:
        if (sm->len > 0) {
            double lo = sm->items[0].ts_s, hi = lo;
            for (size_t i = 1; i < sm->len; i++) {
                double t = sm->items[i].ts_s;
                lo = t < lo ? t : lo;
                hi = t > hi ? t : hi;
            }
            start = (int64_t)(lo * 1e9);
            dur = (uint64_t)((hi - lo) * 1e9);
        }
        break;
    case KL_KIND_ANDROID_CHUNK:
        if (p->timestamp_s > 0)
            start = (int64_t)(p->timestamp_s * 1e9);
        dur = p->duration_ns;
        break;
    default:
        dur = p->duration_ns;
        break;
    }
    *start_ns = start;
    *dur_ns = dur;
}

int kl_stored_item_from_profile(struct kl_arena *a, const struct kl_profile *p,
                                struct kl_str queue_id, const struct kl_outcome *outcomes,
                                int n_outcomes, struct kl_stored_item *it, struct kl_err *err)
{
    kl_stored_item_outcomes(it, queue_id, p->organization_id, p->project_id, p->received, outcomes,
                            n_outcomes);
    bool chunk = kl_profile_is_chunk(p);
    if (!chunk && !p->sampled)
        return 0;
    it->kind = chunk ? KL_STORED_CHUNK : KL_STORED_PROFILE;
    if (chunk) {
        it->profiler_id = p->profiler_id;
        it->chunk_id = p->chunk_id;
    } else {
        it->profile_id = p->event_id;
        it->transaction_name = p->transaction.name;
        it->trace_id = p->transaction.trace_id;
        it->transaction_id = p->transaction.id;
    }
    it->platform = p->platform;
    it->release = p->release;
    it->environment = p->environment;
    profile_times(p, &it->start_ns, &it->duration_ns);
    it->sample_count = p->kind == KL_KIND_ANDROID || p->kind == KL_KIND_ANDROID_CHUNK
                           ? p->android.events.len
                           : p->data.samples.len;
    it->device_locale = p->device_locale;
    it->device_manufacturer = p->device_manufacturer;
    it->device_model = p->device_model;
    it->device_classification = p->device_classification;
    it->architecture = p->device_architecture;
    if (p->kind == KL_KIND_ANDROID && !kl_str_is_set(it->architecture))
        it->architecture = KL_STR("unknown");
    it->os_name = p->os_name;
    it->os_version = p->os_version;
    it->os_build_number = p->os_build_number;
    it->android_api_level = p->has_android_api_level ? p->android_api_level : 0;
    if (p->has_client_sdk) {
        it->sdk_name = p->sdk_name;
        it->sdk_version = p->sdk_version;
    }
    if (p->kind == KL_KIND_ANDROID) {
        it->version_code = p->version_code;
        it->version_name = p->version_name;
    } else {
        it->version_code = KL_STR("");
        it->version_name = p->release;
    }
    it->retention_days = p->retention_days;

    struct kl_buf b;
    kl_buf_init(&b, KL_BLOB_MAX_BYTES);
    if (kl_profile_write_stored(p, &b, err) < 0) {
        kl_buf_release(&b);
        return -1;
    }
    size_t n;
    char *json = kl_buf_detach(&b, &n);
    kl_arena_on_release(a, free_detached, json);
    it->blob = json;
    it->blob_len = n;
    return 0;
}

/* ---- reads ---- */

int kl_store_list_profiles(struct kl_store *s, const struct kl_profile_filter *f,
                           kl_profile_row_fn *fn, void *ctx, struct kl_err *err)
{
    return s->ops->list_profiles(s->impl, f, fn, ctx, err);
}

int kl_store_sum_outcomes(struct kl_store *s, const struct kl_outcome_filter *f,
                          kl_outcome_row_fn *fn, void *ctx, struct kl_err *err)
{
    return s->ops->sum_outcomes(s->impl, f, fn, ctx, err);
}

int kl_store_max_queue_record(struct kl_store *s, uint64_t *out, struct kl_err *err)
{
    return s->ops->max_queue_record(s->impl, out, err);
}

int kl_store_scan_calltrees(struct kl_store *s, const struct kl_profile_filter *f,
                            kl_calltree_row_fn *fn, void *ctx, struct kl_err *err)
{
    return s->ops->scan_calltrees(s->impl, f, fn, ctx, err);
}

int kl_store_scan_functions(struct kl_store *s, const struct kl_profile_filter *f,
                            uint32_t fingerprint, kl_function_row_fn *fn, void *ctx,
                            struct kl_err *err)
{
    return s->ops->scan_functions(s->impl, f, fingerprint, fn, ctx, err);
}

int kl_store_list_occurrences(struct kl_store *s, const struct kl_profile_filter *f, int type,
                              kl_occurrence_row_fn *fn, void *ctx, struct kl_err *err)
{
    return s->ops->list_occurrences(s->impl, f, type, fn, ctx, err);
}

int kl_store_list_spans(struct kl_store *s, const struct kl_span_filter *f, kl_span_row_fn *fn,
                        void *ctx, struct kl_err *err)
{
    return s->ops->list_spans(s->impl, f, fn, ctx, err);
}
