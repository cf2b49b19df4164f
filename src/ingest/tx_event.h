/* tx_event.h - the fields of a transaction event that feed its profile (spec §3.8)
 *
 * What: Relay merges the envelope's `transaction` item into the profile that came with it:
 * name, release, dist, environment, SDK, the trace context, tags (device.class among them)
 * and a string map `transaction_metadata`. kl_tx_event_parse extracts exactly those fields
 * from the event JSON; kl_merge_transaction applies them to a parsed profile.
 *
 * Model: struct kl_tx_event, all strings absent (ptr NULL) unless present in the event.
 * Ownership: strings live in arena a (the JSON doc is kept there). Errors: invalid JSON or
 * a non-object event -> KL_R_PROFILING_INVALID_TRANSACTION_METADATA is NOT used here; a bad
 * event is reported with KL_R_ENVELOPE_MALFORMED and the profile is processed without it.
 * thread_id/thread_name (contexts.trace.data, a string or an integer id) are not merged into
 * the profile: they link the transaction to continuous-profiling chunks (ingest/span.h).
 * Limits: KL_MAX_MAP_ENTRIES tags. Tests: tests/cli/process.sh (--transaction, envelopes),
 * tests/unit/test_span.c (the trace context's thread).
 */
#ifndef KL_INGEST_TX_EVENT_H
#define KL_INGEST_TX_EVENT_H

#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "profile/profile.h"

struct kl_tx_event {
    struct kl_str event_id;
    struct kl_str transaction; /* the transaction name */
    struct kl_str release, dist, environment, platform;
    struct kl_str sdk_name, sdk_version;
    struct kl_str trace_id, span_id, op, status; /* contexts.trace */
    struct kl_str http_method;                   /* request.method */
    struct kl_str app_identifier;                /* contexts.app.app_identifier */
    struct kl_str profiler_id;                   /* contexts.profile.profiler_id */
    struct kl_str thread_id, thread_name; /* contexts.trace.data["thread.id"/"thread.name"] */
    int64_t start_ns, end_ns;             /* start_timestamp, timestamp */
    bool has_start, has_end;
    kl_vec_kv tags; /* tags, as a flat string map (array-of-pairs or object form) */
};

/* Parse a transaction event (bytes with KL_PADDING readable after len). NULL on error. */
struct kl_tx_event *kl_tx_event_parse(struct kl_arena *a, const char *bytes, size_t len,
                                      struct kl_err *err);

/* Relay's merge (spec §3.1 step 12, §3.2, §3.8) of ev into p. */
void kl_merge_transaction(struct kl_profile *p, const struct kl_tx_event *ev);

#endif
