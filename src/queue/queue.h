/* queue.h - the durable ingest queue behind `kiln serve`: group-committed append-only segments
 *
 * What: kl_queue_append returns only once a record (small metadata + the raw request body) is
 * written and fdatasync'd, so a 200 may be answered; worker threads take records, run the
 * pipeline, store the result and its outcome, then kl_queue_retire the record. kill -9 at any
 * point loses no acknowledged record; a restart hands every unretired record out again.
 *
 * Model: <dir>/seg-<first id, 20 digits>.log are append-only segment files; <dir>/retire.log
 * lists retired ids; <dir>/lock is flock'd while open. Records, little-endian, no padding:
 *
 *   off  size  record header + fixed metadata
 *     0     4  magic "KLQ1"
 *     4     4  crc32 (zlib) over [32, 32+meta_len+payload_len) then over [8, 32)
 *     8     8  record id: > every earlier id in the queue directory, never reused
 *    16     4  meta_len (48 + blob_len)
 *    20     4  payload_len (<= KL_QUEUE_PAYLOAD_MAX)
 *    24     1  kind (1 = item); 25..31 zero
 *    32     8  org_id          40  8  project_id       48  8  key_id
 *    56     8  received_ns     64  4  item_hints       68  4  flags
 *    72     4  blob_len        76  4  zero
 *    80  blob  opaque server metadata, then payload_len bytes of payload
 *
 *   retire.log entries (16 bytes): 0 u64 id, 8 "KLR1", 12 crc32 of bytes [0, 12).
 *
 * Why group commit: one fdatasync costs 0.5 ms (idle) to 4 ms (shared disk) here, so an fsync
 * per request caps us at 250-2000 acks/s. Appenders queue a struct pointing at their bytes and
 * sleep; a single committer thread writes everything queued with pwritev, calls ONE
 * fdatasync, and wakes the whole batch. While it syncs, the next batch gathers. Records reach
 * workers only after their fdatasync, so nothing un-acknowledged is ever processed.
 * Retire is lazy: an entry is write(2)n to retire.log without fsync (kill -9 keeps it; power
 * loss may replay a few records). That is safe because the store is idempotent on the record
 * id (processed_items table): delivery is at-least-once, storage exactly-once.
 *
 * Recovery (kl_queue_open): the last segment is read in full and cut at its first record
 * whose header, length or crc is bad (the torn tail); older segments were fdatasync'd before
 * the next one was created, so only their header chain is walked (a break there is
 * queue.corrupt and open fails; a payload crc error surfaces at take as rec->error). Retired
 * records are skipped, the rest are handed out again in id order; after a cut the id sequence
 * jumps by 2^32 so no id a cut record might have had is ever reused. Segments (except the
 * last, which keeps the id sequence) are deleted once every record in them is retired.
 * A failed write (ENOSPC, EFBIG) fails only its batch (queue.io) and cuts the segment back.
 *
 * Ownership: the queue borrows meta and payload only for the duration of kl_queue_append.
 * kl_queue_take returns a malloc'd record the caller frees with kl_queue_record_free.
 * Errors: queue.full (429: over max_records or max_bytes, never blocks), queue.too_large
 * (413), queue.closed (503), queue.io (503: a write failed; after a failed fdatasync the
 * queue refuses every later append, PostgreSQL's rule: never retry an fsync), queue.corrupt,
 * queue.locked (another process has the directory). It never logs.
 * Threads: every function is safe to call from any thread, except kl_queue_close (after all
 * other callers are done). Limits: struct kl_queue_limits; payload <= 200 MiB, blob <= 64 KiB.
 * Tests: tests/unit/test_queue.c (incl. a fork + kill -9 crash test and a throughput print).
 */
#ifndef KL_QUEUE_QUEUE_H
#define KL_QUEUE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define KL_QUEUE_PAYLOAD_MAX (200u * 1024 * 1024) /* Relay's envelope limit, decompressed */
#define KL_QUEUE_BLOB_MAX (64u * 1024)
#define KL_QUEUE_HEADER_BYTES 80 /* record header + fixed metadata */

#define KL_QUEUE_DEFAULT_MAX_BYTES (1ull << 30)
#define KL_QUEUE_DEFAULT_MAX_RECORDS 100000
#define KL_QUEUE_DEFAULT_SEGMENT_BYTES (64ull << 20)

/* item_hints bits (what the envelope holds, so a worker can route before parsing); the
 * server may define more from bit 8 up. */
#define KL_QUEUE_HINT_PROFILE (1u << 0)
#define KL_QUEUE_HINT_PROFILE_CHUNK (1u << 1)
#define KL_QUEUE_HINT_TRANSACTION (1u << 2)

struct kl_queue;

struct kl_queue_limits {
    uint64_t max_bytes;     /* record bytes (header included) appended, not retired; 0: 1 GiB */
    uint64_t max_records;   /* records appended, not retired; 0: 100k */
    uint64_t segment_bytes; /* start a new segment past this size; 0: 64 MiB */
    uint64_t min_id;        /* ids handed out are >= this: pass the store's highest processed
                               id + 1 so a wiped queue directory cannot reuse ids */
};

struct kl_queue_meta {
    uint64_t org_id;
    uint64_t project_id;
    uint64_t key_id;     /* the DSN key's id */
    int64_t received_ns; /* when the request arrived (Unix epoch ns) */
    uint32_t item_hints; /* KL_QUEUE_HINT_* */
    uint32_t flags;      /* server-defined */
    const void *blob;    /* opaque server metadata (headers, client ip, ...) or NULL */
    size_t blob_len;     /* <= KL_QUEUE_BLOB_MAX */
};

struct kl_queue_record {
    uint64_t id;               /* pass to kl_queue_retire */
    struct kl_queue_meta meta; /* meta.blob points into this record */
    char *payload;             /* payload_len bytes, then KL_PADDING (64) zero bytes */
    size_t payload_len;
    enum kl_reason error; /* KL_R_NONE, or why payload is NULL (queue.corrupt, queue.io):
                             record an outcome and retire it like any other */
};

struct kl_queue_stats {
    uint64_t depth_records; /* appended and not retired (incl. being committed) */
    uint64_t depth_bytes;   /* their record bytes */
    uint64_t ready_records; /* durable and waiting for a worker */
    uint64_t appends;       /* acknowledged appends since open */
    uint64_t append_bytes;  /* their record bytes */
    uint64_t rejected_full; /* appends refused with queue.full */
    uint64_t failed;        /* appends failed with queue.io */
    uint64_t fsyncs;        /* committed batches (one fdatasync each) */
    uint64_t batch_max;     /* most records in one batch */
    uint64_t batch_le[8];   /* batches of <= 1, 2, 4, 8, 16, 32, 64 records, and more */
    uint64_t taken;         /* records handed to workers */
    uint64_t retired;       /* records retired since open */
    uint64_t recovered;     /* unretired records found by kl_queue_open */
    uint64_t segments;      /* segment files now */
    uint64_t segments_deleted;
    uint64_t retire_log_errors; /* failed retire.log writes (the record may replay) */
    bool broken;                /* an fdatasync failed: appends refused until restart */
};

/* Open (creating if needed) the queue in dir, recover it and start the committer thread.
 * lim may be NULL for the defaults. Returns NULL and fills err (queue.locked, queue.corrupt,
 * queue.io) on failure. */
struct kl_queue *kl_queue_open(const char *dir, const struct kl_queue_limits *lim,
                               struct kl_err *err);

/* Stop accepting appends (queue.closed), let the committer finish the batch in flight (its
 * appenders get their answer), wake every taker (they return -1). Idempotent. */
void kl_queue_shutdown(struct kl_queue *q);

/* kl_queue_shutdown, then free everything. No other thread may be inside or enter a kl_queue_*
 * call on q: join workers and HTTP threads between kl_queue_shutdown and kl_queue_close. */
void kl_queue_close(struct kl_queue *q);

/* Bytes a record with this metadata and payload length holds against max_bytes. */
uint64_t kl_queue_record_bytes(const struct kl_queue_meta *meta, size_t payload_len);

/* Append one record and block until it is durable (or failed). OUT: *id_out, its id.
 * Copies nothing: meta, meta->blob and payload must stay valid until the call returns.
 * Returns 0 (durable: answer 200), or -1 with queue.full (answer 429 with Retry-After),
 * queue.too_large, queue.closed or queue.io. */
int kl_queue_append(struct kl_queue *q, const struct kl_queue_meta *meta, const void *payload,
                    size_t len, uint64_t *id_out, struct kl_err *err);

/* Take the oldest durable record not yet handed out. timeout_ms < 0 waits forever.
 * Returns 0 with *rec set (free with kl_queue_record_free), 1 on timeout, -1 once the queue
 * is shut down. Each record is handed out once per open; unretired ones come back after a
 * restart. */
int kl_queue_take(struct kl_queue *q, struct kl_queue_record **rec, int timeout_ms);

void kl_queue_record_free(struct kl_queue_record *rec);

/* Mark a record done (after its result and outcome are committed to the store). Frees its
 * bytes against the limits; deletes segments that become fully retired. Returns 0, or -1 if
 * id is unknown or already retired (no effect). */
int kl_queue_retire(struct kl_queue *q, uint64_t id);

void kl_queue_stats(struct kl_queue *q, struct kl_queue_stats *out);

#endif
