/* query.h - the read side's queries over a store: search syntax, flamegraphs, diffs,
 * slowest functions, function trends, occurrences
 *
 * What: the one place the HTTP API (server/) and the CLI (kiln flamegraph, kiln query) turn
 * a request into store scans: kl_query_parse reads Sentry's search syntax into a
 * struct kl_profile_filter; kl_query_flamegraph merges every stored call tree that matches
 * (all of them: no 1,000-sample cap) into a struct kl_flamegraph; kl_query_functions and
 * kl_query_function_trends aggregate the stored per-profile function metrics.
 *
 * Model: nothing is re-parsed from profile JSON: call trees, functions and occurrences are
 * stored at ingest (pipeline/derive.h). A flamegraph query is one scan of the calltrees
 * table in start order (the store sorts row ids, then reads each tree once); each row's tree
 * (KCT2, calltree/calltree.h) is decoded into a scratch arena and added to an accumulator:
 * even rows on the calling thread, odd rows on a helper thread with its own accumulator,
 * merged in at the end, so the result does not depend on timing.
 * Search syntax (Sentry's, the subset kiln indexes): space-separated `key:value` or
 * `key:"quoted value"` terms, keys transaction, release, environment, platform,
 * device.class (device.classification), profile.kind (transaction|continuous).
 * Errors: KL_R_QUERY_BAD (unknown key, unterminated quote), store reasons.
 * Threads: one query per thread (kl_query_flamegraph starts and joins one helper thread
 * when the machine has two or more cores); the store serializes reads.
 * Tests: tests/cli/query.sh; benchmark bench/bench_read.c.
 */
#ifndef KL_QUERY_QUERY_H
#define KL_QUERY_QUERY_H

#include "aggregate/flamegraph.h"
#include "base/arena.h"
#include "base/err.h"
#include "json/json.h"
#include "store/store.h"

/* Parse `q` (may be empty) into f's string filters; strings point into q or arena a. */
int kl_query_parse(struct kl_arena *a, struct kl_str q, struct kl_profile_filter *f,
                   struct kl_err *err);

/* Merge every stored tree matching f into fg. OUT: *n_trees merged. */
int kl_query_flamegraph(struct kl_store *s, const struct kl_profile_filter *f,
                        struct kl_flamegraph *fg, uint64_t *n_trees, struct kl_err *err);

/* Slowest functions over the profiles matching f: per fingerprint, all self times pooled.
 * Rows sorted by total self time, descending. */
struct kl_query_function {
    uint32_t fingerprint;
    struct kl_str function, package;
    bool in_app;
    uint64_t count; /* calls */
    uint64_t sample_count;
    uint64_t sum_ns, p50_ns, p75_ns, p95_ns, p99_ns, max_ns;
    double avg_ns;
    uint64_t profiles;   /* distinct profiles/chunks it was seen in */
    struct kl_str worst; /* item id with the largest self time */
    struct kl_str examples[5];
    uint32_t n_examples;
};
int kl_query_functions(struct kl_store *s, struct kl_arena *a, const struct kl_profile_filter *f,
                       uint32_t max_n, struct kl_query_function **out, uint32_t *n_out,
                       struct kl_err *err);

/* Function trends: the same functions over two filters (before: a release or a period;
 * after), with the change of their p95 and average self time. Sorted by the absolute
 * change of p95 × count (the time that moved), largest first. */
struct kl_query_trend {
    struct kl_query_function before, after;
    double p95_change; /* after.p95 / before.p95 - 1 (NaN when before has none) */
    double avg_change;
    int64_t p95_delta_ns;
};
int kl_query_function_trends(struct kl_store *s, struct kl_arena *a,
                             const struct kl_profile_filter *before,
                             const struct kl_profile_filter *after, uint32_t max_n,
                             struct kl_query_trend **out, uint32_t *n_out, struct kl_err *err);

/* JSON writers shared by the API and the CLI. */
void kl_query_write_function(struct kl_jw *w, const struct kl_query_function *f);
/* One trend: fingerprint, name, package, p95_delta_ns, p95_change and avg_change (null when
 * the before side has none), before and after (kl_query_write_function). */
void kl_query_write_trend(struct kl_jw *w, const struct kl_query_trend *t);
/* One stored profile or chunk: profile_id (or profiler_id and chunk_id), org_id,
 * project_id, platform, transaction, release, environment, <time_key> (RFC 3339 start),
 * duration_ns, samples. */
void kl_query_write_profile_row(struct kl_jw *w, const struct kl_profile_row *r,
                                const char *time_key);

/* Linked spans (ingest/span.h): the span filter for a profile filter (its query= keys
 * transaction, release and environment; the others name profile fields spans do not have:
 * http.bad_request), narrowed to transaction when given (it must agree with the query's). */
int kl_query_span_filter(const struct kl_profile_filter *pf, struct kl_str transaction,
                         struct kl_span_filter *out, struct kl_err *err);
/* One linked span: ids, names, thread, environment, release, start/end (RFC 3339),
 * duration_ns; with an organization slug also chunks_url, the chunks request
 * (/api/0/organizations/<org>/profiling/chunks/) that covers exactly the span. */
void kl_query_write_span_row(struct kl_jw *w, const struct kl_stored_span *r, struct kl_str org);

#endif
