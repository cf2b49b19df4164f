/* decompress.h - bounded decompression of request bodies (gzip, deflate, zstd)
 *
 * What: kl_decompress turns a compressed body into plain bytes, through libdeflate or
 * libzstd and stopping as soon as the output would pass a caller-given maximum, so a 10 GB
 * "zip bomb" that fits in 10 MB on the wire costs at most max_out bytes of memory. The output
 * is followed by KL_PADDING zero bytes, ready for the JSON reader and the envelope parser.
 * kl_encoding_from_header reads an HTTP Content-Encoding value; kl_encoding_sniff guesses
 * from magic bytes (for `kiln process --envelope file.gz`).
 *
 * Model: one call, one output buffer. The buffer starts at a guess (gzip's ISIZE, zstd's
 * frame content size, else 4x the input; at least 64 KiB) and doubles, never past
 * max_out + 1 + KL_PADDING bytes: the one byte past max_out is how "more output than
 * allowed" is noticed without a second probe. libdeflate decodes whole members, so a member
 * that outgrows the buffer is decoded again into the doubled one (rare: ISIZE is right for
 * every honest single-member body). Encodings:
 *   identity  copy (still checked against max_out, still padded)
 *   gzip      RFC 1952, concatenated members are read one after the other
 *   deflate   HTTP's "deflate" is ambiguous: zlib-wrapped (RFC 1950) when the first two
 *             bytes are a valid zlib header, raw RFC 1951 otherwise (what browsers and curl do)
 *   zstd      RFC 8878, every frame; window limited to 2^KL_ZSTD_WINDOW_LOG_MAX (8 MiB, enough
 *             for levels <= 19) so a frame cannot demand a 2 GiB window (reliability.md §4.3)
 *
 * Why a growing buffer instead of trusting a declared size: gzip's ISIZE is mod 2^32 and
 * both it and zstd's frame content size are attacker-controlled; they are only hints. A declared
 * zstd content size over max_out is still used to fail early.
 *
 * Ownership: with an arena, *out is malloc'd and freed by the arena's release (no copy, no
 * doubling waste from arena growth); with a NULL arena the caller free()s *out. Nothing is
 * returned on failure.
 * Errors: KL_R_ENVELOPE_TOO_LARGE (output would exceed max_out), KL_R_ENVELOPE_DECOMPRESS
 * (corrupt, truncated, trailing garbage, window too large), KL_R_ENVELOPE_UNSUPPORTED_ENCODING
 * (from kl_encoding_from_header: unknown or stacked encodings). Never logs.
 * Threads: reentrant; no shared state. Limits: max_out, the zstd window.
 * Tests: tests/unit/test_envelope.c, fuzz/fuzz_envelope.c.
 */
#ifndef KL_BASE_DECOMPRESS_H
#define KL_BASE_DECOMPRESS_H

#include <stddef.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/str.h"

#define KL_ZSTD_WINDOW_LOG_MAX 23

enum kl_encoding {
    KL_ENC_IDENTITY = 0,
    KL_ENC_GZIP,
    KL_ENC_DEFLATE, /* zlib-wrapped or raw, detected */
    KL_ENC_ZSTD,
};

/* The name used in Content-Encoding ("identity", "gzip", "deflate", "zstd"). */
const char *kl_encoding_name(enum kl_encoding e);

/* Parse a Content-Encoding header value. Case-insensitive, comma-separated, whitespace
 * trimmed. "", "identity" and "UTF-8" (sent by sentry-ruby 5.x and sentry-java Android 2.0)
 * mean identity and are ignored inside a list; "x-gzip" is gzip. At most one real encoding:
 * stacked ones ("gzip, zstd", "gzip, gzip") and unknown ones ("br", "compress") fail with
 * KL_R_ENVELOPE_UNSUPPORTED_ENCODING. Returns 0 or -1. OUT: *out. */
int kl_encoding_from_header(struct kl_str value, enum kl_encoding *out, struct kl_err *err);

/* Guess from magic bytes: gzip (1f 8b), zstd (28 b5 2f fd), identity otherwise. Raw deflate
 * has no magic and is never guessed. */
enum kl_encoding kl_encoding_sniff(const char *in, size_t n);

/* The size kl_decompress will first allocate for in[0..n): gzip's ISIZE, zstd's frame
 * content size, else 4x the input, at least 64 KiB, at most max_out + 1. Attacker-controlled
 * like its sources: a budget may reserve it up front, then settle on the real size. */
size_t kl_decompress_size_hint(enum kl_encoding enc, const char *in, size_t n, size_t max_out);

/* Decompress in[0..n) with enc into a new buffer of at most max_out bytes plus KL_PADDING
 * zero bytes. Returns 0 or -1 (err filled, nothing allocated survives).
 * OUT: *out (see Ownership above: arena-owned when a != NULL, else caller frees),
 * *out_len = decoded length (<= max_out). */
int kl_decompress(struct kl_arena *a, enum kl_encoding enc, const char *in, size_t n,
                  size_t max_out, char **out, size_t *out_len, struct kl_err *err);

#endif
