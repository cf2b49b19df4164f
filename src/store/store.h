/* store.h - where kiln keeps organizations, projects, keys, profile metadata and outcomes
 *
 * What: the durable side of `kiln serve` and of the CLI's read commands. Metadata lives in
 * a database behind struct kl_store_ops (SQLite in store_sqlite.c, embedded by default under
 * --data DIR; a PostgreSQL backend implements the same table later); the normalized profile
 * JSON lives in zstd-compressed blob files under DIR/blobs at the keys of spec §7
 * (blob.h has the container format and the atomic write).
 *
 * Model (SQLite schema, DIR/kiln.db, PRAGMA user_version = KL_STORE_SCHEMA_VERSION):
 *   organizations   id PK, slug UNIQUE, name, created_s
 *   projects        id PK, organization_id -> organizations, slug (UNIQUE per org), name,
 *                   created_s
 *   project_keys    public_key PK (32 hex), project_id -> projects, active, created_s
 *   processed_items queue_id PK, committed_s       one row per committed queue item
 *   profiles        (organization_id, project_id, profile_id) PK + the processed-profiles
 *                   fields of spec §5.10: platform, transaction_name, release, environment,
 *                   start_ns, duration_ns, sample_count, device_locale/manufacturer/model/
 *                   classification, architecture, os_name/version/build_number,
 *                   android_api_level, sdk_name/version, version_code/name, trace_id,
 *                   transaction_id, received_s, retention_days, blob_key, queue_id
 *   chunks          (organization_id, project_id, profiler_id, chunk_id) PK + the
 *                   snuba-profile-chunks fields: platform, release, environment, start_ns,
 *                   duration_ns (end = start + duration), sample_count, sdk_name/version,
 *                   received_s, retention_days, blob_key, queue_id
 *   outcomes_hourly (hour_s, organization_id, project_id, outcome, reason, category) PK,
 *                   quantity summed by UPSERT; reason '' when none (NULLs never match in a
 *                   key); outcome and category carry Sentry's numbers (pipeline/outcome.h)
 *   profiles and chunks are indexed on start_ns and (project_id, start_ns): time-led, so
 *   ingest appends to the index instead of scattering (dependency-bench §5).
 *   span_links      (organization_id, project_id, trace_id, span_id) PK + parent_span_id,
 *                   segment_id, is_segment, name, segment_name, profiler_id, thread_id,
 *                   thread_name, environment, release, start_ns, end_ns, queue_id: spans
 *                   linked to continuous-profiling chunks (ingest/span.h), indexed by
 *                   (project_id, profiler_id, start_ns) and (project_id, start_ns); added in
 *                   schema version 2 (a version 1 database gains it when opened)
 *
 * Why: kl_store_commit_item is the one write of the hot path and it is one transaction:
 * the queue id in processed_items makes a replayed queue item (after kill -9 between commit
 * and queue ack) a no-op that says so, and the metadata row and the outcome sums move
 * together, so outcomes are counted exactly once. The blob is compressed and fsynced to a
 * temp file before the transaction, outside any lock; it is renamed into place inside the
 * transaction, after the duplicate checks and before COMMIT (the backend calls a hook), so
 * a committed row always has its blob, a rejected duplicate never overwrites one, and a
 * crash between rename and COMMIT leaves a blob without a row that the replay overwrites.
 *
 * Ownership: the store is a heap object (kl_store_open_*, kl_store_close). Strings handed to
 * callbacks live until the callback returns. Items are borrowed for the call.
 * Invariants: every profiles/chunks row has its blob on disk; processed_items holds every
 * queue id whose outcomes are in outcomes_hourly.
 * Errors: store.busy (the database stayed locked past the busy timeout), store.io,
 * store.full (disk full), store.corrupt, store.schema (a newer kiln made the database),
 * store.not_found, store.conflict (duplicate id or slug), store.invalid (bad name),
 * store.bad_key (blob key outside the allowed alphabet). The store never logs.
 * Threads: one store may be shared by any number of threads; see store_sqlite.c for how
 * writes are serialized. Another process (the CLI) may open the same DIR at the same time.
 * Limits: names <= KL_STORE_MAX_NAME bytes, queue ids <= 200 bytes, profile/chunk ids must
 * make a valid blob key (hex, <= KL_BLOB_KEY_MAX), blobs <= KL_BLOB_MAX_BYTES.
 * Tests: tests/unit/test_store.c (a contract suite over the ops table, per backend).
 */
#ifndef KL_STORE_STORE_H
#define KL_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/str.h"
#include "pipeline/outcome.h"
#include "profile/profile.h"

#define KL_STORE_SCHEMA_VERSION 2
#define KL_STORE_MAX_NAME 200
#define KL_STORE_MAX_SLUG 50
#define KL_STORE_KEY_LEN 32 /* public keys: 32 lowercase hex */

struct kl_store; /* opaque */

/* ---- rows handed to callbacks (strings valid during the callback only) ---- */

struct kl_project {
    uint64_t id;
    uint64_t organization_id;
    struct kl_str org_slug;
    struct kl_str slug;
    struct kl_str name;
    int64_t created_s;
};

struct kl_key {
    struct kl_str public_key;
    uint64_t project_id;
    bool active;
    int64_t created_s;
};

enum kl_stored_kind {
    KL_STORED_NONE = 0, /* outcomes only: rejected, or unsampled (nothing to keep) */
    KL_STORED_PROFILE,  /* transaction profile: profiles row + blob */
    KL_STORED_CHUNK,    /* continuous chunk: chunks row + blob */
};

/* Derived at ingest for the read side (spec §6.4, §6.6), committed with the item. */
struct kl_stored_function {
    uint32_t fingerprint;
    struct kl_str function, package, thread_id;
    bool in_app;
    uint64_t sum_self_ns; /* over the profile's calls */
    uint64_t sample_count;
    uint64_t max_self_ns;
    const uint64_t *self_times_ns; /* one per call */
    uint32_t n_calls;
};

struct kl_stored_occurrence {
    int type; /* Sentry's issue type (2002 image decode, 2003 JSON, ...) */
    struct kl_str category, title, function, package, fingerprint;
    uint64_t duration_ns, sample_count;
    struct kl_str body; /* Sentry's occurrence JSON */
};

/* A span linked to a profiler's chunks (ingest/span.h struct kl_span, as stored); also the
 * row of kl_store_list_spans. */
struct kl_stored_span {
    uint64_t organization_id, project_id; /* rows only: items use the item's */
    struct kl_str trace_id, span_id;      /* 32 / 16 hex */
    struct kl_str parent_span_id, segment_id;
    bool is_segment;
    struct kl_str name, segment_name;
    struct kl_str profiler_id; /* 32 hex */
    struct kl_str thread_id, thread_name;
    struct kl_str environment, release;
    int64_t start_ns, end_ns;
};

struct kl_span_filter {
    uint64_t organization_id;   /* 0 = any */
    uint64_t project_id;        /* 0 = any */
    struct kl_str profiler_id;  /* absent = any */
    struct kl_str segment_name; /* the transaction; absent = any */
    struct kl_str release;      /* absent = any */
    struct kl_str environment;  /* absent = any */
    int64_t since_ns;           /* start_ns >= since_ns; 0 = no bound */
    int64_t until_ns;           /* start_ns < until_ns; 0 = no bound */
    uint32_t limit;             /* 0 = no limit */
    uint32_t offset;
};

/* One queue item's result, as committed by kl_store_commit_item. Plain fields so any
 * backend can bind them; absent strings are KL_STR_NULL and stored as NULL. */
struct kl_stored_item {
    struct kl_str queue_id; /* unique and stable across replays, e.g. "<seq>/<item index>" */
    enum kl_stored_kind kind;
    uint64_t organization_id;
    uint64_t project_id;
    struct kl_str profile_id;  /* PROFILE: 32 hex */
    struct kl_str profiler_id; /* CHUNK: 32 hex */
    struct kl_str chunk_id;    /* CHUNK: 32 hex */
    struct kl_str platform;
    struct kl_str transaction_name;
    struct kl_str release;
    struct kl_str environment;
    struct kl_str trace_id;
    struct kl_str transaction_id;
    int64_t start_ns;      /* profile start, unix ns */
    uint64_t duration_ns;  /* end - start */
    uint64_t sample_count; /* samples (Android: trace events) */
    struct kl_str device_locale, device_manufacturer, device_model, device_classification;
    struct kl_str architecture;
    struct kl_str os_name, os_version, os_build_number;
    uint32_t android_api_level; /* 0 = unknown */
    struct kl_str sdk_name, sdk_version;
    struct kl_str version_code, version_name;
    int64_t received_s; /* unix seconds; also picks the outcomes' hour */
    int32_t retention_days;
    const char *blob; /* PROFILE/CHUNK: the stored JSON (uncompressed), else NULL */
    size_t blob_len;
    const struct kl_outcome *outcomes;
    int n_outcomes;
    /* read-side data (optional): the compact call tree (calltree/calltree.h binary form),
     * the profile's slowest functions, its occurrences */
    const char *tree;
    size_t tree_len;
    const struct kl_stored_function *functions;
    uint32_t n_functions;
    const struct kl_stored_occurrence *occurrences;
    uint32_t n_occurrences;
    /* spans of this queue item linked to chunks (any kind; a `span` item is kind NONE):
     * rows of span_links, committed with the queue id; a span already stored (same trace
     * and span id, from a resent envelope) is kept once */
    const struct kl_stored_span *spans;
    uint32_t n_spans;
};

/* Row of kl_store_list_profiles. */
struct kl_profile_row {
    enum kl_stored_kind kind;
    uint64_t organization_id;
    uint64_t project_id;
    struct kl_str profile_id;            /* PROFILE */
    struct kl_str profiler_id, chunk_id; /* CHUNK */
    struct kl_str platform;
    struct kl_str transaction_name;
    struct kl_str release;
    struct kl_str environment;
    int64_t start_ns;
    uint64_t duration_ns;
    uint64_t sample_count;
    int64_t received_s;
    struct kl_str blob_key;
};

struct kl_profile_filter {
    uint64_t organization_id; /* 0 = any */
    uint64_t project_id;      /* 0 = any */
    int64_t since_ns;         /* start_ns >= since_ns; 0 = no bound */
    int64_t until_ns;         /* start_ns < until_ns; 0 = no bound */
    uint32_t limit;           /* 0 = no limit */
    uint32_t offset;          /* rows to skip (pagination) */
    /* exact-match filters; absent (ptr NULL) = any */
    struct kl_str transaction, release, environment, platform, device_class;
    int kind; /* 0 any, KL_STORED_PROFILE, KL_STORED_CHUNK */
    bool oldest_first;
    uint32_t sort; /* 0 start (newest first), 1 duration (longest first) */
};

/* Row of kl_store_scan_calltrees: one stored tree with the columns queries filter on. */
struct kl_calltree_row {
    enum kl_stored_kind kind;
    uint64_t organization_id, project_id;
    struct kl_str profile_id, profiler_id, chunk_id;
    struct kl_str transaction_name, release, environment, platform;
    int64_t start_ns;
    uint64_t duration_ns;
    const char *tree; /* valid during the callback only */
    size_t tree_len;
};

/* Row of kl_store_scan_functions. */
struct kl_function_row {
    enum kl_stored_kind kind;
    uint64_t project_id;
    struct kl_str item_id; /* profile_id, or "<profiler_id>/<chunk_id>" */
    struct kl_str transaction_name, release, environment, platform, thread_id;
    int64_t start_ns;
    uint32_t fingerprint;
    struct kl_str function, package;
    bool in_app;
    uint64_t sum_self_ns, sample_count, max_self_ns;
    const uint64_t *self_times_ns; /* valid during the callback only */
    uint32_t n_calls;
};

/* Row of kl_store_list_occurrences. */
struct kl_occurrence_row {
    uint64_t project_id;
    struct kl_str profile_id, transaction_name, release, environment, platform;
    int64_t start_ns;
    int type;
    struct kl_str category, title, function, package, fingerprint, body;
    uint64_t duration_ns, sample_count;
};

enum kl_outcome_group {
    KL_GROUP_HOUR = 1 << 0,
    KL_GROUP_PROJECT = 1 << 1, /* organization and project */
    KL_GROUP_OUTCOME = 1 << 2,
    KL_GROUP_REASON = 1 << 3,
    KL_GROUP_CATEGORY = 1 << 4,
};

struct kl_outcome_filter {
    uint64_t organization_id; /* 0 = any */
    uint64_t project_id;      /* 0 = any */
    int64_t since_s;          /* hour buckets starting at or after since_s (rounded down) */
    int64_t until_s;          /* ... and before until_s; 0 = no bound */
    unsigned group;           /* enum kl_outcome_group flags; 0 = one total row */
};

/* Row of kl_store_sum_outcomes; fields not grouped on are -1 (numbers), 0 (ids) or
 * KL_STR_NULL (reason). An empty reason means none (accepted). */
struct kl_outcome_row {
    int64_t hour_s;
    uint64_t organization_id;
    uint64_t project_id;
    int outcome; /* enum kl_outcome_kind */
    struct kl_str reason;
    int category; /* enum kl_category */
    uint64_t quantity;
};

/* Callbacks return 0 to go on, non-zero to stop (the call then returns 0). */
typedef int kl_project_fn(void *ctx, const struct kl_project *p);
typedef int kl_key_fn(void *ctx, const struct kl_key *k);
typedef int kl_profile_row_fn(void *ctx, const struct kl_profile_row *r);
typedef int kl_outcome_row_fn(void *ctx, const struct kl_outcome_row *r);
typedef int kl_calltree_row_fn(void *ctx, const struct kl_calltree_row *r);
typedef int kl_function_row_fn(void *ctx, const struct kl_function_row *r);
typedef int kl_occurrence_row_fn(void *ctx, const struct kl_occurrence_row *r);
typedef int kl_span_row_fn(void *ctx, const struct kl_stored_span *r);

/* kl_store_commit_item results besides -1. */
enum kl_commit_result {
    KL_COMMIT_DONE = 0,    /* committed now */
    KL_COMMIT_ALREADY = 1, /* the queue id was committed before: nothing changed */
};

/* ---- opening ---- */

/* Open (creating if needed) the embedded store under data_dir: DIR/kiln.db (SQLite, WAL,
 * synchronous=FULL) and DIR/blobs. Migrates an empty database to the current schema;
 * fails with store.schema on a newer one. Returns NULL and fills err on failure. */
struct kl_store *kl_store_open_sqlite(const char *data_dir, struct kl_err *err);
/* Close the store (NULL is fine). No call may be in flight. */
void kl_store_close(struct kl_store *s);
/* "sqlite", "postgres"... */
const char *kl_store_backend_name(const struct kl_store *s);

/* ---- organizations, projects, keys ---- */

/* On first start create organization "default" (id 1), project "default" (id 1) and one
 * random key; on later starts change nothing. OUT: key_out = the default project's first
 * active key (creating one if it has none), NUL-terminated. */
int kl_store_bootstrap(struct kl_store *s, char key_out[KL_STORE_KEY_LEN + 1], struct kl_err *err);
/* Create a project in org_id with a slug made from name (lower-case [a-z0-9-]) and one
 * key. OUT: project_id. store.conflict when the slug is taken, store.not_found when the
 * organization does not exist, store.invalid when name has no usable character. */
int kl_store_project_create(struct kl_store *s, struct kl_str name, uint64_t org_id,
                            uint64_t *project_id, struct kl_err *err);
/* Every project, by id. */
int kl_store_project_list(struct kl_store *s, kl_project_fn *fn, void *ctx, struct kl_err *err);
/* The keys of one project, oldest first. */
int kl_store_project_keys(struct kl_store *s, uint64_t project_id, kl_key_fn *fn, void *ctx,
                          struct kl_err *err);
/* Add a random key to a project. OUT: key_out. */
int kl_store_key_create(struct kl_store *s, uint64_t project_id, char key_out[KL_STORE_KEY_LEN + 1],
                        struct kl_err *err);
/* The per-request check: which project a DSN public key belongs to. Served from an
 * in-memory cache of recent hits (KL_STORE_KEY_CACHE_TTL_S; changes made through this
 * store object show at once, changes made by another process within the TTL).
 * store.not_found for an unknown key. OUT: project_id, org_id, active. */
int kl_store_key_lookup(struct kl_store *s, struct kl_str public_key, uint64_t *project_id,
                        uint64_t *org_id, bool *active, struct kl_err *err);
/* A project by organization and project slug; store.not_found when absent. OUT: out
 * (its strings are NULL: only ids and created_s are filled). */
int kl_store_project_find_by_slug(struct kl_store *s, struct kl_str org_slug,
                                  struct kl_str project_slug, struct kl_project *out,
                                  struct kl_err *err);

#define KL_STORE_KEY_CACHE_TTL_S 10

/* ---- the pipeline's write ---- */

/* Commit one processed item: blob (for PROFILE/CHUNK), queue id, metadata row and outcome
 * sums, atomically (see the top comment). Returns KL_COMMIT_DONE, KL_COMMIT_ALREADY when
 * the queue id was committed before (nothing changes; the queue may ack), or -1: store.
 * conflict when another queue item already stored this profile/chunk id (nothing changes;
 * commit an outcomes-only item for it instead), store.busy/io/full (retry later; nothing
 * is visible). Safe from several threads at once. */
int kl_store_commit_item(struct kl_store *s, const struct kl_stored_item *it, struct kl_err *err);
/* The same; in deferred mode (below) also says which batch transaction the item joined:
 * *batch, to pass to kl_store_sync_batches. */
int kl_store_commit_item_batched(struct kl_store *s, const struct kl_stored_item *it,
                                 uint64_t *batch, struct kl_err *err);

/* Fill it as an outcomes-only item (kind NONE). Borrows queue_id and outcomes. */
void kl_stored_item_outcomes(struct kl_stored_item *it, struct kl_str queue_id, uint64_t org_id,
                             uint64_t project_id, int64_t received_s,
                             const struct kl_outcome *outcomes, int n_outcomes);
/* Fill it from an accepted, normalized profile: metadata from p (spec §5.10, §6.5) and
 * the stored JSON (output/stored.h) written into memory owned by a. An unsampled
 * transaction profile gives an outcomes-only item, as Sentry keeps nothing of it.
 * Borrows p's strings, queue_id and outcomes: they must outlive the commit. */
int kl_stored_item_from_profile(struct kl_arena *a, const struct kl_profile *p,
                                struct kl_str queue_id, const struct kl_outcome *outcomes,
                                int n_outcomes, struct kl_stored_item *it, struct kl_err *err);
/* The blob key of an item: "<org>/<project>/<profile_id>" or
 * "<org>/<project>/<profiler_id>/<chunk_id>" (spec §7). Returns the length, or 0 when the
 * ids do not make a valid key. out must hold KL_BLOB_KEY_MAX + 1 bytes. */
size_t kl_stored_item_blob_key(const struct kl_stored_item *it, char *out);

/* ---- reads for the CLI and the query API (work while a server has DIR open) ---- */

/* Profiles and chunks matching f, newest start first. */
int kl_store_list_profiles(struct kl_store *s, const struct kl_profile_filter *f,
                           kl_profile_row_fn *fn, void *ctx, struct kl_err *err);
/* Outcome quantities summed over f's hours, grouped by f->group, ordered by the grouped
 * columns. */
int kl_store_sum_outcomes(struct kl_store *s, const struct kl_outcome_filter *f,
                          kl_outcome_row_fn *fn, void *ctx, struct kl_err *err);
/* The highest queue record number among committed queue ids of the form "<record>/<item>"
 * (0 when none): the server opens its queue above it, so a wiped queue directory can never
 * hand out an id the store already counts as done. */
int kl_store_max_queue_record(struct kl_store *s, uint64_t *out, struct kl_err *err);

/* Deferred durability (group commit for the store). With it on, kl_store_commit_item no
 * longer flushes anything itself: blobs are written and renamed without fsync, and items
 * join one shared batch transaction (each item in a savepoint of its own, so a failed or
 * conflicting item changes nothing) that stays open until the next sync; SQLite commits
 * it with synchronous=NORMAL. kl_store_sync commits the open batch and makes everything
 * committed so far durable with one syncfs(2) of the data directory's filesystem. A caller
 * must not treat an item as done (retire its queue record) before a sync covering its batch
 * returned 0: kl_store_sync_batches(lo, hi) fails when any batch in [lo, hi] failed to
 * commit, even one another thread committed (its items are gone; replay them). After a
 * crash the unretired records are replayed: an item whose commit survived returns
 * KL_COMMIT_ALREADY and its blob is rewritten then, in case the blob did not survive.
 * Why: per profile this was ~3 flushes, then one transaction with ~36 WAL pages (about
 * two dozen of them index and table pages that the next profile rewrites); a batch writes
 * those once (bench/ingest.sh measured both as ingest limits). Readers see a batch when it
 * commits, at most one sync interval late. */
void kl_store_set_deferred_sync(struct kl_store *s, bool on);
int kl_store_sync(struct kl_store *s, struct kl_err *err);
int kl_store_sync_batches(struct kl_store *s, uint64_t lo, uint64_t hi, struct kl_err *err);
/* Stored call trees matching f (profiles and/or chunks; limit/offset/sort ignored), oldest
 * first (equal starts in insertion order), all read in one snapshot. */
int kl_store_scan_calltrees(struct kl_store *s, const struct kl_profile_filter *f,
                            kl_calltree_row_fn *fn, void *ctx, struct kl_err *err);
/* Stored function metrics of the items matching f; fingerprint != 0 narrows to one function. */
int kl_store_scan_functions(struct kl_store *s, const struct kl_profile_filter *f,
                            uint32_t fingerprint, kl_function_row_fn *fn, void *ctx,
                            struct kl_err *err);
/* Stored occurrences of the profiles matching f, newest first; type != 0 narrows. */
int kl_store_list_occurrences(struct kl_store *s, const struct kl_profile_filter *f, int type,
                              kl_occurrence_row_fn *fn, void *ctx, struct kl_err *err);

/* Spans linked to chunks matching f, newest start first (then trace and span id). */
int kl_store_list_spans(struct kl_store *s, const struct kl_span_filter *f, kl_span_row_fn *fn,
                        void *ctx, struct kl_err *err);

/* ---- backend interface ----
 * A backend implements these on its own handle (impl) and wraps it with kl_store_new;
 * the generic layer (store.c) does argument checks, the key cache and the blob staging, so
 * a backend only talks to its database. Every op returns 0 or -1 (commit_item: enum
 * kl_commit_result or -1) and fills err with the reasons above. Ops may be called from
 * several threads at once: the backend serializes what it must. */

/* Called by commit_item inside its transaction, after the duplicate checks and before
 * COMMIT; a -1 rolls the transaction back. */
typedef int kl_commit_hook_fn(void *ctx, struct kl_err *err);

struct kl_store_ops {
    const char *name;
    void (*close)(void *impl);
    int (*bootstrap)(void *impl, char key_out[KL_STORE_KEY_LEN + 1], struct kl_err *err);
    int (*project_create)(void *impl, struct kl_str name, struct kl_str slug, uint64_t org_id,
                          const char *key, uint64_t *project_id, struct kl_err *err);
    int (*project_list)(void *impl, kl_project_fn *fn, void *ctx, struct kl_err *err);
    int (*project_keys)(void *impl, uint64_t project_id, kl_key_fn *fn, void *ctx,
                        struct kl_err *err);
    int (*key_create)(void *impl, uint64_t project_id, const char *key, struct kl_err *err);
    /* store.not_found when absent */
    int (*key_lookup)(void *impl, struct kl_str public_key, uint64_t *project_id, uint64_t *org_id,
                      bool *active, struct kl_err *err);
    int (*project_find_by_slug)(void *impl, struct kl_str org_slug, struct kl_str project_slug,
                                struct kl_project *out, struct kl_err *err);
    /* *batch: the batch transaction joined in deferred mode (0 otherwise) */
    int (*commit_item)(void *impl, const struct kl_stored_item *it, struct kl_str blob_key,
                       kl_commit_hook_fn *hook, void *hook_ctx, uint64_t *batch,
                       struct kl_err *err);
    /* commit the open batch transaction, if any; a failure is remembered for batch_failed */
    int (*commit_batch)(void *impl, struct kl_err *err);
    /* whether a batch with an id in [lo, hi] failed to commit */
    bool (*batch_failed)(void *impl, uint64_t lo, uint64_t hi);
    int (*list_profiles)(void *impl, const struct kl_profile_filter *f, kl_profile_row_fn *fn,
                         void *ctx, struct kl_err *err);
    int (*sum_outcomes)(void *impl, const struct kl_outcome_filter *f, kl_outcome_row_fn *fn,
                        void *ctx, struct kl_err *err);
    int (*max_queue_record)(void *impl, uint64_t *out, struct kl_err *err);
    int (*set_deferred_sync)(void *impl, bool on, struct kl_err *err);
    int (*scan_calltrees)(void *impl, const struct kl_profile_filter *f, kl_calltree_row_fn *fn,
                          void *ctx, struct kl_err *err);
    int (*scan_functions)(void *impl, const struct kl_profile_filter *f, uint32_t fingerprint,
                          kl_function_row_fn *fn, void *ctx, struct kl_err *err);
    int (*list_occurrences)(void *impl, const struct kl_profile_filter *f, int type,
                            kl_occurrence_row_fn *fn, void *ctx, struct kl_err *err);
    int (*list_spans)(void *impl, const struct kl_span_filter *f, kl_span_row_fn *fn, void *ctx,
                      struct kl_err *err);
};

/* Wrap a backend handle; creates data_dir/blobs. On failure calls ops->close(impl). */
struct kl_store *kl_store_new(const struct kl_store_ops *ops, void *impl, const char *data_dir,
                              struct kl_err *err);
/* For blob.c: whether blob writes skip their fsyncs (kl_store_set_deferred_sync). */
bool kl__store_deferred(const struct kl_store *s);
/* For blob.c: the blob root directory ("<data_dir>/blobs"). */
const char *kl__store_blob_dir(const struct kl_store *s);
/* A random key: 32 lowercase hex (uuid4 hex, as Sentry makes them) + NUL. */
void kl__store_random_key(char out[KL_STORE_KEY_LEN + 1]);
/* Slug from a name: lower-case ASCII letters and digits, runs of anything else as one
 * '-', no leading or trailing '-', at most KL_STORE_MAX_SLUG bytes. Returns its length
 * (0: no usable character). */
size_t kl__store_slugify(struct kl_str name, char out[KL_STORE_MAX_SLUG + 1]);

#endif
