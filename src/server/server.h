/* server.h - `kiln serve`: Sentry-compatible ingestion, a durable queue, workers, storage
 *
 * What: the running service. HTTP threads authenticate each envelope (Relay's rules,
 * http/auth.h), check its framing, and append it to the durable queue (queue/queue.h); the
 * 200 goes out only once the record is fsync'd. Worker threads take records, run every
 * profile/profile_chunk item through the pipeline (pipeline/process.h), store the result and
 * its outcomes in one store transaction keyed by "<record id>/<item index>"
 * (store/store.h), then retire the record. The envelope's `span` items and a transaction
 * naming a profiler are linked to chunks (ingest/span.h) and committed the same way, one
 * transaction per item; they have no outcomes (spans are not a profile category). Envelopes
 * are queued when they hold a profile, a chunk, or a span item or transaction whose payload
 * mentions "profiler_id" (spans link only within their envelope, so without one nothing
 * could link); everything else is acknowledged and dropped.
 *
 * Model:
 *   HTTP thread:  auth -> envelope framing -> key lookup -> kl_queue_append (group commit)
 *                 -> 200 {"id":...} | 4xx with reason | 429 Retry-After (queue full)
 *   worker:       kl_queue_take -> kl_process_envelope -> per item: stored item + outcomes
 *                 -> kl_store_commit_item; span items: kl_span_set_* -> per item: span
 *                 links -> kl_store_commit_item; then kl_queue_retire
 * A record holds the body as received (still gzip/deflate/zstd: its meta.flags low byte is
 * the Content-Encoding) and is an envelope, or, with KL_QFLAG_RELAY_MSG, one Relay->Sentry
 * message posted to /api/<project>/relay-message/ (ingest/relay_msg.h), processed as one
 * item by the same code as `kiln process --msgpack`.
 * Why: acknowledged means durable (the queue's fsync), and exactly-once storage and outcome
 * comes from the store's processed-items table: a record replayed after a crash commits
 * nothing twice. Ingest never waits for processing, so acknowledgement latency is the
 * queue's group-commit latency, and a burst is absorbed up to the queue's bound.
 *
 * Threads: MHD thread per connection (appends block on the group commit), N workers (one
 * per core by default). Ownership: struct kl_server owns store, queue, metrics and threads.
 * Errors: startup failures are returned (kl_err); request failures are answered with their
 * reason and logged one line each; a store failure keeps the record unretired (replayed at
 * the next start) and is logged.
 * Tests: tests/cli/serve.sh (the real binary on loopback), tests/cli/crash.sh (kill -9).
 */
#ifndef KL_SERVER_SERVER_H
#define KL_SERVER_SERVER_H

#include <stdint.h>

#include "base/err.h"

struct kl_server_config {
    const char *data_dir; /* store, blobs and queue live here */
    const char *addr;     /* listen address, e.g. "127.0.0.1" */
    uint16_t port;        /* 0: ephemeral */
    unsigned workers;     /* 0: one per core */
    uint64_t queue_max_bytes;
    uint64_t queue_max_records;
    uint64_t inflight_max_bytes; /* request bodies held at once; 0: the HTTP default (1 GiB) */
    const char *public_host;     /* host[:port] printed in DSNs; NULL: addr:port */
};

struct kl_server;

/* Open the store (bootstrapping org/project/key on first start), the queue (recovering what
 * a previous run left), start workers and HTTP. NULL with *err on failure. */
struct kl_server *kl_server_start(const struct kl_server_config *cfg, struct kl_err *err);
uint16_t kl_server_port(const struct kl_server *s);
/* The DSN of the default project's first key (valid while s lives). */
const char *kl_server_dsn(const struct kl_server *s);
/* Graceful stop: no new requests, in-flight answered, workers finish their current record,
 * unprocessed records stay in the queue for the next start. Frees s. */
void kl_server_stop(struct kl_server *s);

#endif
