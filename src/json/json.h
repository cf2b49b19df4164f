/* json.h - JSON reading (simdjson On-Demand behind a C API) and streaming JSON writing
 *
 * What: kl_json_* reads a document as a forward-only pull parser: open, take the root
 * value, walk objects and arrays in document order, and convert scalars on demand. The
 * profile parsers drive it with schema-directed code (known keys are dispatched, others
 * skipped), which is how simdjson's On-Demand reaches ~1 GB/s on profiles. kl_jw_* writes
 * JSON into a struct kl_buf, streaming through its sink.
 *
 * Model: struct kl_json_doc owns a simdjson::ondemand::parser and its document, released
 * with the arena given to kl_json_open. struct kl_json_val and struct kl_json_iter are
 * small opaque handles into that document (their bytes hold simdjson iterators); they are
 * valid only while the doc lives and only forward: taking a later field or element skips
 * what was left unread in earlier ones.
 *
 * Why: of the parsers measured here (../shared/spec/dependency-bench.md §1) simdjson is
 * 10-30x faster than jansson/json-c/cJSON and On-Demand keeps no tape, so peak memory stays
 * near input size + structural index (DOM needed ~4x input on profiles with long integer
 * arrays). json_simdjson.cpp is the project's only C++ file. The writer is ours: library
 * dumpers measured 45-200 MB/s against ~900 MB/s for a direct writer.
 *
 * Ownership: strings returned by kl_json_get_str and keys point into the input bytes when
 * they have no escapes (no copy: the common case) and into the doc's string buffer when
 * they do; either way they live as long as both the input and the doc (the arena). The
 * input bytes must stay alive and unmodified until the arena is released.
 *
 * Errors: every failure sets the err given at open, once (first error wins), with the
 * syntax reason given at open (Relay: profiling_invalid_json) and a message naming the
 * simdjson error; callers return -1 up the stack. Scalar type mismatches are errors too.
 * Invalid UTF-8 anywhere in the input, truncated documents, numbers that do not fit the
 * requested type and nesting deeper than KL_JSON_MAX_DEPTH (serde_json's own limit, so the
 * same documents fail as in Relay) are rejected. Lone or mismatched UTF-16 surrogate escapes
 * are rejected (serde_json rejects them too). On-Demand does not validate values it skips
 * beyond bracket balance: malformed JSON inside an unknown field may pass (documented
 * deviation from serde; known fields are always fully checked).
 *
 * Fast paths: callers may read a hot, regular value straight from its text with the
 * kl_json_scan_* helpers and let On-Demand skip it (see "Raw scanning" below); the writer
 * looks small integers up (kl_jw_numtab), finds bytes to escape 8 at a time and formats the
 * common doubles without printf (kl_fmt_f64, checked against the printf reference).
 *
 * Threads: a doc belongs to one thread; the fast-path switch is per thread. Limits: input
 * length < 4 GiB (simdjson's own), depth KL_JSON_MAX_DEPTH; array/object sizes are bounded
 * by the callers' count limits.
 * Tests: tests/unit/test_json.c, tests/unit/test_parse.c, fuzz/fuzz_profile.c.
 */
#ifndef KL_JSON_JSON_H
#define KL_JSON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"
#include "base/vec.h"

#define KL_JSON_MAX_DEPTH 128

enum kl_json_type {
    KL_JSON_ERROR = 0,
    KL_JSON_NULL,
    KL_JSON_BOOL,
    KL_JSON_NUMBER,
    KL_JSON_STRING,
    KL_JSON_ARRAY,
    KL_JSON_OBJECT,
};

struct kl_json_doc;

struct kl_json_val {
    struct kl_json_doc *doc;
    bool consumed; /* read by the caller; unread values are walked and checked on skip */
    uint64_t opaque[4];
};

struct kl_json_iter {
    struct kl_json_doc *doc;
    int state;                /* 0 before first, 1 iterating, 2 done */
    struct kl_json_val *last; /* the value handed out last, checked if left unread */
    uint64_t opaque[8];
};

/* Open buf[0..len) for reading. buf must have KL_PADDING readable bytes after len. Errors
 * go to *err with reason syntax_reason. Returns NULL on failure (e.g. invalid UTF-8, which
 * On-Demand checks for the whole input up front). The doc is freed with arena a. */
struct kl_json_doc *kl_json_open(struct kl_arena *a, const char *buf, size_t len,
                                 enum kl_reason syntax_reason, struct kl_err *err);
/* OUT: root value. */
int kl_json_root(struct kl_json_doc *d, struct kl_json_val *out);
/* After the root was consumed: fail if anything but whitespace follows. */
int kl_json_finish(struct kl_json_doc *d);
/* Set the doc's error (reason given explicitly) - for schema errors found by callers. */
int kl_json_fail(struct kl_json_doc *d, enum kl_reason r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct kl_err *kl_json_err(struct kl_json_doc *d);

/* The type of v without consuming it (KL_JSON_ERROR, with the error set, on failure). */
enum kl_json_type kl_json_type(struct kl_json_val *v);

int kl_json_get_str(struct kl_json_val *v, struct kl_str *out);
int kl_json_get_u64(struct kl_json_val *v, uint64_t *out);
int kl_json_get_i64(struct kl_json_val *v, int64_t *out);
int kl_json_get_f64(struct kl_json_val *v, double *out);
int kl_json_get_bool(struct kl_json_val *v, bool *out);
/* 1 and consumed if v is null, 0 if not (not consumed), -1 on error. */
int kl_json_is_null(struct kl_json_val *v);
/* Relay's "num-or-string" u64: a JSON integer or a string of decimal digits. */
int kl_json_get_u64_lenient(struct kl_json_val *v, uint64_t *out);
/* The raw text of a number token (for numbers that do not fit 64 bits, say). */
int kl_json_get_number_text(struct kl_json_val *v, struct kl_str *out);
/* Skip v entirely. */
int kl_json_skip(struct kl_json_val *v);

/* Objects: begin, then next until it returns 0. next returns 1 with key and value set. The
 * key is unescaped and lives with the doc. */
int kl_json_obj_begin(struct kl_json_val *v, struct kl_json_iter *it);
int kl_json_obj_next(struct kl_json_iter *it, struct kl_str *key, struct kl_json_val *val);
/* Arrays: same shape. */
int kl_json_arr_begin(struct kl_json_val *v, struct kl_json_iter *it);
int kl_json_arr_next(struct kl_json_iter *it, struct kl_json_val *val);

/* Append the elements of an array of non-negative integers to out (grown from a). Elements
 * above UINT32_MAX are stored as UINT32_MAX (callers treat that as out of range). Fails with
 * limit_reason when out would exceed max_total elements. OUT: *count = elements read. A plain
 * array ("[1, 2,3]") is read from its text (see "Raw scanning"), anything else element by
 * element through On-Demand, with the same results. */
int kl_json_arr_append_u32(struct kl_json_val *v, struct kl_arena *a, kl_vec_u32 *out,
                           size_t max_total, enum kl_reason limit_reason, size_t *count);

/* ------------------------------------------------------------------------------------ */
/* Raw scanning: fast paths over a value's own text                                      */
/*
 * The hot values of a profile are very regular (a sample object, a stack's integer array),
 * and walking them token by token through On-Demand costs several times what reading their
 * text directly does. A caller may scan a value's text itself: kl_json_raw gives the input
 * from the value's first byte, the caller scans it with the kl_json_scan_* helpers below,
 * which accept only a strict, common subset of JSON (no escapes, plain integers), and
 * either
 *   - succeeds: it has read the whole value up to its closing bracket and calls
 *     kl_json_scanned(v); On-Demand then skips the value by its structural index (which
 *     matches the text: stage 1 located the same brackets and quotes, as the scanned
 *     strings hold no escapes), or
 *   - declines: it has changed nothing the general path would see, and reads v through the
 *     general API as before, which accepts or rejects it with the usual reasons.
 * So a fast path changes speed, never results: anything unusual (escapes, exponents,
 * fractions, negative or oversized numbers, unknown or duplicate keys, truncation) is left
 * to the general path. Every helper checks the end pointer before every read.
 */

/* The input from v's first byte; OUT: *end = the end of the input. v is not consumed. */
const char *kl_json_raw(struct kl_json_val *v, const char **end);
/* v was read completely by a raw scan: no further checks, On-Demand skips its text. */
void kl_json_scanned(struct kl_json_val *v);
/* Raw fast paths on (the default) or off for this thread: the fuzz target runs every input
 * both ways and compares the results. */
void kl_json_set_fast_paths(bool on);
bool kl_json_fast_paths(void);

static inline const char *kl_json_scan_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* Non-zero when one of the 8 bytes of w is a quote, a backslash or a control character:
 * the bytes that end a plain string or need escaping (exact for every byte, no carries
 * between them: each lane is tested with values below 0x80 and the input's high bit masked
 * out). The high bit of each such byte is set in the result. */
static inline uint64_t kl__json_special8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t lo7 = w & ~high;
    uint64_t ctl = (lo7 + (0x80 - 0x20) * ones) ^ high; /* high bit set if < 0x20 */
    uint64_t q = (lo7 ^ ('"' * ones)) + 0x7f * ones;    /* high bit clear if == '"' */
    uint64_t bs = (lo7 ^ ('\\' * ones)) + 0x7f * ones;  /* high bit clear if == '\\' */
    return (ctl | ~q | ~bs) & ~w & high;
}

/* A string at *pp (which must point at its opening quote) with no escape and no control
 * character: OUT *s = its body (a slice of the input), *pp = after the closing quote.
 * false (nothing changed) otherwise. */
static inline bool kl_json_scan_str(const char **pp, const char *end, struct kl_str *s)
{
    const char *p = *pp + 1, *b = p;
    while (end - p >= 8) { /* 8 bytes at a time up to the first special byte */
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t m = kl__json_special8(w);
        if (m) {
            p += __builtin_ctzll(m) / 8;
            break;
        }
        p += 8;
    }
    while (p < end && *p != '"') {
        if (*p == '\\' || (unsigned char)*p < 0x20)
            return false;
        p++;
    }
    if (p >= end)
        return false;
    s->ptr = b;
    s->len = (size_t)(p - b);
    *pp = p + 1;
    return true;
}

/* The number of leading ASCII digits of p[0..8) (the input must be readable there: the
 * KL_PADDING after the document guarantees it), and in *v their value, for up to 8. Bytes
 * after the first non-digit do not matter (carries only move to later bytes). */
static inline unsigned kl__json_digits8(const char *p, uint64_t *v)
{
    uint64_t w;
    memcpy(&w, p, 8);
    uint64_t x = w ^ 0x3030303030303030u; /* digits become 0..9 */
    uint64_t bad = (x | (x + 0x0606060606060606u)) & 0xF0F0F0F0F0F0F0F0u;
    unsigned n = bad ? (unsigned)__builtin_ctzll(bad) / 8 : 8;
    if (n == 0)
        return 0;
    x <<= 8 * (8 - n); /* leading zero digits in the low bytes */
    x = (x * 10 + (x >> 8)) & 0x00FF00FF00FF00FFu;
    x = (x * 100 + (x >> 16)) & 0x0000FFFF0000FFFFu;
    x = (x * 10000 + (x >> 32)) & 0xFFFFFFFFu;
    *v = x;
    return n;
}

/* A non-negative JSON integer of at most 19 digits (so it fits u64), not followed by a
 * fraction, exponent or more digits: OUT *v, *pp = after it. false otherwise (leading zeros,
 * a minus sign, "1.0", "1e3", 20+ digits, truncation: the general path decides). */
static inline bool kl_json_scan_u64(const char **pp, const char *end, uint64_t *v)
{
    const char *p = *pp;
    uint64_t x;
    unsigned n = kl__json_digits8(p, &x);
    if (n == 0 || (size_t)(end - p) <= n)
        return false; /* not a digit, or digits up to the end (truncated) */
    if (n == 8) {
        const char *lim = p + 19 < end ? p + 19 : end;
        const char *q = p + 8;
        while (q < lim && (unsigned)(*q - '0') <= 9)
            x = x * 10 + (uint64_t)(*q++ - '0');
        n = (unsigned)(q - p);
        if (q >= end)
            return false;
    }
    if (*p == '0' && n > 1)
        return false;
    p += n;
    if ((unsigned)(*p - '0') <= 9 || *p == '.' || *p == 'e' || *p == 'E')
        return false;
    *v = x;
    *pp = p;
    return true;
}

/* Fully validate buf[0..len) with simdjson's DOM parser and keep nothing (the benchmark
 * ceiling; also a strict check). buf needs KL_PADDING readable bytes after len. */
int kl_json_validate(const char *buf, size_t len, enum kl_reason syntax_reason, struct kl_err *err);

/* ------------------------------------------------------------------------------------ */
/* Writer                                                                                */

#define KL_JW_MAX_DEPTH 64

struct kl_jw {
    struct kl_buf *out;
    int depth;
    bool first[KL_JW_MAX_DEPTH]; /* no element written yet at this depth */
    bool after_key;
};

void kl_jw_init(struct kl_jw *w, struct kl_buf *out);
void kl_jw_obj_begin(struct kl_jw *w);
void kl_jw_obj_end(struct kl_jw *w);
void kl_jw_arr_begin(struct kl_jw *w);
void kl_jw_arr_end(struct kl_jw *w);
/* key is a plain ASCII literal: written without an escaping pass (inline, so that the
 * length of a literal is a constant) */
void kl_jw_key_n(struct kl_jw *w, const char *key, size_t n);
static inline void kl_jw_key(struct kl_jw *w, const char *key)
{
    kl_jw_key_n(w, key, strlen(key));
}
void kl_jw_key_str(struct kl_jw *w, struct kl_str key);
void kl_jw_str(struct kl_jw *w, struct kl_str s);
void kl_jw_cstr(struct kl_jw *w, const char *s);
/* key, then s, or null when s is absent (ptr NULL): serde's Option<String> without skip. */
void kl_jw_key_str_or_null(struct kl_jw *w, const char *key, struct kl_str s);
void kl_jw_u64(struct kl_jw *w, uint64_t v);
void kl_jw_i64(struct kl_jw *w, int64_t v);
/* A whole array of unsigned integers in one go (stacks: millions of entries). */
void kl_jw_u32_array(struct kl_jw *w, const uint32_t *v, size_t n);
/* The text of 0..n-1 looked up instead of computed, for arrays of many small integers (the
 * stacks of the stored form: millions of frame indices below the frame count). Each entry
 * is one word: up to 7 digits in the low bytes, the length in the top byte. n is capped at
 * KL_JW_NUMTAB_MAX (512 KiB); larger values are formatted as usual. The table is malloc'd:
 * kl_jw_numtab_release frees it. */
#define KL_JW_NUMTAB_MAX 65536u
struct kl_jw_numtab {
    uint64_t *word;
    uint32_t n;
};
void kl_jw_numtab_init(struct kl_jw_numtab *t, uint32_t n);
void kl_jw_numtab_release(struct kl_jw_numtab *t);
/* kl_jw_u32_array, with the values below t->n taken from t: the same text. */
void kl_jw_u32_array_tab(struct kl_jw *w, const uint32_t *v, size_t n,
                         const struct kl_jw_numtab *t);
/* Shortest text that reads back as the same double (serde/ryu style: integers as "82.0"). */
void kl_jw_f64(struct kl_jw *w, double v);
void kl_jw_bool(struct kl_jw *w, bool v);
void kl_jw_null(struct kl_jw *w);
/* Raw JSON text, written as is (the caller guarantees it is valid). */
void kl_jw_raw(struct kl_jw *w, const char *p, size_t n);
/* The same, written in place: the separator is written and room for n bytes reserved; the
 * caller writes at the returned pointer and ends with kl_jw_raw_end(w, end of what it
 * wrote). NULL when the buffer failed (its error is set; write nothing). For hot loops that
 * emit many small values at once (the samples of the stored form). */
char *kl_jw_raw_begin(struct kl_jw *w, size_t n);
void kl_jw_raw_end(struct kl_jw *w, char *end);
/* Decimal digits of v into out (>= 20 bytes, no NUL); returns the length. */
size_t kl_fmt_u64(uint64_t v, char *out);
/* The same without branching on the length for values below 10^16, for hot loops: out must
 * have 24 bytes of room, of which up to 16 may be written (past the digits too). */
size_t kl_fmt_u64_wide(uint64_t v, char *out);
/* The same for a u32 as kl_jw_u32_array writes it (out >= 20 bytes; may write past the
 * digits), for its tests. */
size_t kl__fmt_u32_wide(uint32_t v, char *out);
/* Escape s as a JSON string body into b (no quotes). */
void kl_json_escape(struct kl_buf *b, struct kl_str s);
/* Shortest round-trip formatting of a double into out (>= 32 bytes); returns length. */
size_t kl_fmt_f64(double v, char *out);
/* The same by printf/strtod alone: kl_fmt_f64's reference, for its tests. */
size_t kl__fmt_f64_printf(double v, char *out);

#endif
