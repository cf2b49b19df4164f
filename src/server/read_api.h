/* read_api.h - the read side over HTTP, on Sentry's paths and in Sentry's shapes
 *
 * What: the handlers behind GET /api/0/.../profiling/...: one profile as speedscope or in
 * its stored form, raw chunks, the profile list and search, the aggregated flamegraph over
 * every matching profile and chunk (with expand=metrics), a differential flamegraph, slowest
 * functions, function trends, occurrences, and spans linked to continuous-profiling chunks.
 * They read what ingest stored (trees, functions, occurrences: pipeline/derive.h; span
 * links: ingest/span.h) through query/query.h and the store; no profile JSON is parsed
 * except to render one profile or merge chunks.
 *
 * Common parameters: project (id or slug; default all projects of the organization), query
 * (Sentry's search syntax, query/query.h), statsPeriod (e.g. 24h, 14d) or start & end
 * (RFC 3339); no time parameter means all time. Organization and project slugs default to
 * "default"; numeric ids work too.
 * Errors: 400 with query.bad / http.bad_request for bad parameters, 404 store.not_found,
 * rendered as {"detail":...,"error":{"reason":...}}. Tests: tests/cli/query.sh.
 */
#ifndef KL_SERVER_READ_API_H
#define KL_SERVER_READ_API_H

#include "http/http.h"
#include "store/store.h"

/* The app pointer handed to these handlers must start with this struct. */
struct kl_read_app {
    struct kl_store *store;
};

int kl_api_profile(struct kl_req *req); /* .../projects/{org}/{project}/profiling/profiles/{id}/ */
int kl_api_raw_profile(struct kl_req *req); /* .../raw_profiles/{id}/ */
int kl_api_raw_chunk(struct kl_req *req);   /* .../raw_chunks/{profiler_id}/{chunk_id}/ */
int kl_api_profiles(struct kl_req *req);    /* organizations/{org}/profiling/profiles/ */
int kl_api_flamegraph(struct kl_req *req);  /* organizations/{org}/profiling/flamegraph/ */
int kl_api_flamegraph_diff(struct kl_req *req);
int kl_api_functions(struct kl_req *req);
int kl_api_function_trends(struct kl_req *req);
int kl_api_occurrences(struct kl_req *req);
/* organizations/{org}/profiling/chunks/?project=&profiler_id=&start=&end= : the profiler's
 * sample-format chunks overlapping [start, end] merged into one (spec §8): the first chunk's
 * metadata, samples inside the range, frames and stacks appended with offsets, thread
 * metadata merged (first wins), measurements concatenated. {"chunk":...,"debug_chunk_ids"}. */
int kl_api_chunks(struct kl_req *req);
/* organizations/{org}/profiling/spans/?project=&profiler_id=&transaction=&start=&end=
 * &statsPeriod=&per_page=&cursor= : spans linked to chunks (ingest/span.h), newest first,
 * {"data":[{project_id, trace_id, span_id, parent_span_id, segment_id, is_segment, name,
 * segment_name, profiler_id, thread_id, thread_name, environment, release, start, end (RFC
 * 3339, as "timestamp" elsewhere), duration_ns, chunks_url}],"next_cursor"}. chunks_url is
 * the chunks request above for the span's profiler, project and exact [start, end].
 * transaction matches the segment name; start/end/statsPeriod bound the span's start. */
int kl_api_spans(struct kl_req *req);

#endif
