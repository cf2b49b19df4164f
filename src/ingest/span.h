/* span.h - SDK span items and the transaction event, linked to continuous-profiling chunks
 *
 * What: SDKs with continuous (UI or backend) profiling say which profiler sampled a span by
 * a profiler id on the span or on its segment; the chunks of that profiler over the span's
 * time range are its profile. kl_span_set_parse_item reads one envelope item of type `span`,
 * kl_span_set_add_transaction adds the envelope's transaction event (a segment: SDKs v8-v10
 * link transactions this way), and kl_span_set_link gives every span the profiler id, thread
 * and segment fields it inherits from its segment in the same envelope.
 *
 * Model: struct kl_span_set holds the spans of one envelope in item order (struct kl_span,
 * item = the envelope item index it came from) and per-reason counts of skipped spans.
 * Two item shapes (both JSON objects), told apart by the payload, not the header:
 *   Span v2 container (sentry-javascript v10+ span streaming, content type
 *     application/vnd.sentry.items.span.v2+json): {"items":[{trace_id, span_id,
 *     parent_span_id?, name, status, is_segment, start_timestamp, end_timestamp (unix s,
 *     float), attributes:{"sentry.profiler_id":{"type":"string","value":..}, "thread.id",
 *     "thread.name", "sentry.segment.id", "sentry.segment.name", "sentry.environment",
 *     "sentry.release", ...}}]}. Attributes are {type, value}; other attributes ignored.
 *   Span v1 (standalone): {span_id, trace_id, parent_span_id?, segment_id?, is_segment?,
 *     start_timestamp, timestamp, op?, description?, data:{"sentry.profiler_id",
 *     "thread.id" (string or integer), "thread.name", "sentry.segment.name", "environment",
 *     "release"}}; name = description, else op.
 * The item header's content_type and item_count are not needed: the payload's "items"
 * array says which shape it is (a v1 span has no such key) and is counted as it is read.
 * Timestamps are unix seconds (decimal text converted exactly to ns; exponent forms via
 * strtod) or RFC 3339 strings; ids are lowercased, dashed uuids accepted for 32-hex ids.
 * Linking (kl_span_set_link): a span without a profiler id takes its segment's, the segment
 * being the span of the same envelope whose span_id equals its segment_id (a v2 segment
 * span, or the transaction); thread, segment name, environment and release are inherited
 * the same way when absent. A span is linked when it ends up with a profiler id.
 *
 * Why in one set per envelope: in the browser's UI profiling only the segment span carries
 * sentry.profiler_id; children are linked through it, and the segment may come in another
 * item (or be the transaction) of the same envelope. Spans are never linked across
 * envelopes: what an SDK did not put together, kiln does not guess.
 *
 * Ownership: every string and the span array live in the set's arena (strings point into
 * the JSON documents, also kept there); the payloads must outlive the arena and have
 * KL_PADDING readable bytes after their length (envelope payloads do).
 * Invariants: every span in spans has trace_id (32 hex), span_id (16 hex), start_ns <=
 * end_ns; segment_id and parent_span_id are 16 hex or absent; profiler_id 32 hex or absent.
 * Errors: an item that is not JSON or not an object: span.invalid_json; more than
 * KL_SPAN_MAX_ITEMS spans in one item: span.too_many (the item's spans are dropped, earlier
 * items' kept). Spans that are invalid on their own are skipped and counted in skipped[]:
 * span.not_object, span.missing_id (trace_id or span_id absent), span.bad_id (not hex of
 * the right length), span.bad_timestamp (absent, not a number/RFC 3339, non-finite, negative
 * or past the year 2255, where ns leave int64), span.end_before_start. Never logs.
 * Threads: a set belongs to one thread. Tests: tests/unit/test_span.c, fuzz/fuzz_span.c
 * (corpus fuzz/corpus/span/), tests/cli/serve.sh (span v2 stream + chunk, end to end).
 * Limits: KL_SPAN_MAX_ITEMS spans per item and KL_SPAN_MAX_SPANS per set (checked before
 * growing the array); names, environment and release cut to KL_SPAN_MAX_STR bytes (at a
 * UTF-8 boundary); thread ids longer than KL_SPAN_MAX_THREAD_ID are dropped; JSON depth by
 * the reader (KL_JSON_MAX_DEPTH).
 */
#ifndef KL_INGEST_SPAN_H
#define KL_INGEST_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/str.h"
#include "base/vec.h"
#include "ingest/tx_event.h"

#define KL_SPAN_MAX_ITEMS 1000   /* spans per item; SDKs flush their span buffers far below */
#define KL_SPAN_MAX_SPANS 10000  /* spans per envelope (all items and the transaction) */
#define KL_SPAN_MAX_STR 1024     /* bytes of a name, segment name, env, release, thread name */
#define KL_SPAN_MAX_THREAD_ID 64 /* bytes of a thread id */

/* Why a span was skipped: index into struct kl_span_set.skipped. */
enum kl_span_skip {
    KL_SPAN_SKIP_NOT_OBJECT = 0,
    KL_SPAN_SKIP_MISSING_ID,
    KL_SPAN_SKIP_BAD_ID,
    KL_SPAN_SKIP_BAD_TIMESTAMP,
    KL_SPAN_SKIP_END_BEFORE_START,
    KL_SPAN_SKIP__COUNT
};

struct kl_span {
    struct kl_str trace_id;       /* 32 lowercase hex */
    struct kl_str span_id;        /* 16 lowercase hex */
    struct kl_str parent_span_id; /* 16 lowercase hex or absent */
    struct kl_str segment_id;     /* 16 lowercase hex or absent; a segment's is its span_id */
    bool is_segment;
    struct kl_str name;         /* v2 name; v1 description, else op; transaction name */
    struct kl_str segment_name; /* sentry.segment.name, else the segment's name */
    struct kl_str profiler_id;  /* 32 lowercase hex or absent (own, or inherited by link) */
    struct kl_str thread_id, thread_name;
    struct kl_str environment, release;
    int64_t start_ns, end_ns; /* unix ns */
    uint32_t item;            /* envelope item index it came from */
    bool own_profiler;        /* profiler_id was on the span itself, not inherited */
};

typedef KL_VEC(struct kl_span) kl_vec_span;

struct kl_span_set {
    struct kl_arena *a;
    kl_vec_span spans;                     /* valid spans, in item order */
    uint32_t skipped[KL_SPAN_SKIP__COUNT]; /* invalid spans, by reason */
};

/* Start an empty set whose contents live in a. */
void kl_span_set_init(struct kl_span_set *s, struct kl_arena *a);

/* Parse one `span` item (bytes[0..len), KL_PADDING readable after len) from envelope item
 * index item and append its valid spans. Returns 0, or -1 with err (span.invalid_json,
 * span.too_many) and no span of this item appended. */
int kl_span_set_parse_item(struct kl_span_set *s, const char *bytes, size_t len, uint32_t item,
                           struct kl_err *err);

/* Add the transaction event ev (from envelope item index item) as a segment span when it
 * has a valid trace id, span id and start/end; its profiler id is contexts.profile.
 * profiler_id and its thread contexts.trace.data["thread.id"/"thread.name"]. Returns true
 * when added. Borrows ev's strings (they must live in the set's arena or longer). */
bool kl_span_set_add_transaction(struct kl_span_set *s, const struct kl_tx_event *ev,
                                 uint32_t item);

/* Inherit profiler id, thread, segment name, environment and release from each span's
 * segment (see the top comment). Returns the number of linked spans (with a profiler id). */
size_t kl_span_set_link(struct kl_span_set *s);

/* The stable reason string of a skip ("span.missing_id", ...). */
const char *kl_span_skip_reason(enum kl_span_skip k);

/* true when s is exactly n hex digits. */
bool kl_span_is_hex(struct kl_str s, size_t n);

#endif
