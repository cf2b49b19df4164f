/* blob.h - compressed profile blobs under <data>/blobs, written atomically
 *
 * What: the normalized profile JSON of every stored profile or chunk, compressed with zstd
 * (level KL_BLOB_ZSTD_LEVEL) in a small container, one file per key of spec §7:
 * "<org_id>/<project_id>/<profile_id>" or "<org_id>/<project_id>/<profiler_id>/<chunk_id>".
 *
 * Container (one file; integers little-endian):
 *   offset  size  meaning
 *   0       4     magic "KLB1"
 *   4       1     version, 1
 *   5       1     codec: 1 = zstd (frame with content size and content checksum)
 *   6       2     reserved, 0
 *   8       8     uncompressed length
 *   16      n     the compressed frame, to the end of the file
 * The header makes a blob self-describing (another codec, e.g. Sentry's LZ4 for export,
 * needs no guessing) and gives the reader its size bound before it allocates.
 *
 * Why files and not database rows: blobs are 10 KB to 50 MB, written once and read whole;
 * as files they stay out of the WAL and the page cache of the metadata, and any backend
 * (PostgreSQL later) shares them. Atomic write: temp file in the key's directory
 * (".<name>.tmp.<pid>.<n>", a name no valid key can have), write, fsync, rename, fsync the
 * directory; new directories are fsynced into their parents. A reader sees the old blob or
 * the new one, never a torn one, and after kill -9 or power loss a renamed blob is whole.
 *
 * Ownership: kl_blob_get's output lives in the caller's arena, with KL_PADDING zero bytes
 * after len (the JSON parser's requirement); kl_blob_encode's output is malloc'd.
 * Errors: store.bad_key (key outside [0-9a-fA-F] components joined by '/'), store.not_found,
 * store.corrupt (bad container, checksum, or size over the bound), store.io, store.full,
 * base.buf.too_big (input over KL_BLOB_MAX_BYTES).
 * Threads: safe; each thread keeps its own zstd contexts (thread-specific data, freed at
 * thread exit), so workers compress in parallel.
 * Limits: KL_BLOB_MAX_BYTES uncompressed, keys <= KL_BLOB_KEY_MAX bytes, <= 4 components.
 * Tests: tests/unit/test_store.c.
 */
#ifndef KL_STORE_BLOB_H
#define KL_STORE_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/str.h"

struct kl_store;

/* Level 1: on stored profile JSON it compresses as well as level 3 (106 KB -> 15.2 KB vs
 * 15.2 KB; 2 MB -> 258 KB vs 272 KB) at 1,150 instead of 915 MB/s (`zstd -b1 -e3`). */
#define KL_BLOB_ZSTD_LEVEL 1
#define KL_BLOB_MAX_BYTES (512u * 1024 * 1024) /* normalized JSON of a 50 MiB profile, x10 */
#define KL_BLOB_KEY_MAX 160
#define KL_BLOB_HEADER 16

/* Whether key is a valid blob key: 1 to 4 non-empty components of hex digits joined by
 * '/', at most KL_BLOB_KEY_MAX bytes. Nothing else (no '.', no leading '/') can escape the
 * blob directory. */
bool kl_blob_key_valid(struct kl_str key);

/* Compress p[0..n) into a container. OUT: *out (malloc'd; caller frees), *out_len. */
int kl_blob_encode(const char *p, size_t n, char **out, size_t *out_len, struct kl_err *err);
/* Check and decompress a container of len bytes; fails past max uncompressed bytes.
 * OUT: *out (in a, KL_PADDING zero bytes after *out_len), *out_len. */
int kl_blob_decode(const char *p, size_t len, size_t max, struct kl_arena *a, char **out,
                   size_t *out_len, struct kl_err *err);

/* Compress and write p[0..n) at key atomically, replacing any blob there. */
int kl_blob_put(struct kl_store *s, struct kl_str key, const char *p, size_t n, struct kl_err *err);
/* Read and decompress the blob at key. OUT: *out (in a, KL_PADDING zero bytes after), *len.
 * store.not_found when there is none. */
int kl_blob_get(struct kl_store *s, struct kl_str key, struct kl_arena *a, char **out, size_t *len,
                struct kl_err *err);
/* Whether a blob exists at key (false for invalid keys). */
bool kl_blob_exists(struct kl_store *s, struct kl_str key);

/* Two-step write used by kl_store_commit_item: stage compresses and fsyncs a temp file
 * (slow, outside any lock); publish renames it into place and fsyncs the directory
 * (inside the database transaction); discard removes an unpublished temp file. */
struct kl_blob_stage {
    char tmp[4096];
    char path[4096];
    char dir[4096];
    bool staged;
    bool nosync; /* deferred durability: no fsync of the file or its directory */
};
int kl__blob_stage(struct kl_store *s, struct kl_str key, const char *p, size_t n,
                   struct kl_blob_stage *st, struct kl_err *err);
int kl__blob_publish(struct kl_blob_stage *st, struct kl_err *err);
void kl__blob_discard(struct kl_blob_stage *st);

#endif
