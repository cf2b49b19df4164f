/* relay_msg.h - the Relay -> Sentry Kafka message of the ingest-profiles topic (spec §4)
 *
 * What: Relay sends each accepted profile or chunk to Sentry as a msgpack map:
 *   type ("profile" | "profile_chunk"), organization_id, project_id, key_id (uint or nil),
 *   received (unix seconds), retention_days, payload (bin: the expanded profile JSON).
 * kl_relay_msg_parse decodes it so that `kiln process --msgpack` and the server's workers
 * accept it, and a Kafka consumer can be added later without new parsing.
 *
 * Why our own reader: msgpack-c (libmsgpack-dev) allocates a container at its declared size
 * before reading its elements, so a 6-byte message could make it reserve gigabytes. This
 * reader knows the one shape it accepts, checks every length against the bytes left before
 * using it, allocates nothing but the padded payload copy, and skips unknown values with a
 * bounded depth.
 *
 * Ownership: strings point into the input; the payload is copied into arena a with
 * KL_PADDING zero bytes after it (the JSON parser's need). Errors: KL_R_MSGPACK_MALFORMED
 * (truncated, wrong types, missing payload, nesting deeper than 32, trailing bytes).
 * Limits: the payload up to KL_MAX_PROFILE_BYTES (KL_R_PROFILING_EXCEED_SIZE_LIMIT).
 * Tests: tests/unit/test_relay_msg.c, fuzz/fuzz_relay_msg.c.
 */
#ifndef KL_INGEST_RELAY_MSG_H
#define KL_INGEST_RELAY_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"

struct kl_relay_msg {
    struct kl_str type; /* "profile" or "profile_chunk" */
    uint64_t organization_id, project_id, key_id;
    bool has_key_id;
    int64_t received;
    uint32_t retention_days;
    const char *payload; /* arena copy, KL_PADDING zero bytes after payload_len */
    size_t payload_len;
};

struct kl_relay_msg *kl_relay_msg_parse(struct kl_arena *a, const char *buf, size_t len,
                                        struct kl_err *err);

/* Encode m (payload included) as Relay does; for tests and load generation. */
int kl_relay_msg_write(const struct kl_relay_msg *m, struct kl_buf *out);

#endif
