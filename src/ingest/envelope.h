/* envelope.h - Sentry envelopes: parse (bounded) and write
 *
 * What: kl_envelope_parse splits a decoded envelope body (what SDKs POST to
 * /api/<project>/envelope/, after kl_decompress) into its header and items, the way Relay's
 * Envelope::parse_bytes does, and checks Relay's size limits before copying anything.
 * kl_envelope_write serializes one back (tests, the load generator).
 *
 * Wire format (Sentry developer docs, Relay relay-server/src/envelope):
 *   <envelope header: one JSON object>\n           \n optional at EOF
 *   <item header: one JSON object, "type" required>\n
 *   <payload>\n                                     \n optional at EOF
 *   ...                                             more items
 * With "length": N the payload is exactly the N bytes after the header's \n, and the byte
 * after it must be \n or EOF. Without "length" the payload runs to the next \n (or EOF) and
 * a \r before that \n stays in the payload (harmless for JSON). Whitespace (space, \t, \r,
 * \n) before a header is skipped, so blank or CRLF lines between items are fine. A header's
 * closing '}' must be followed directly by \n or EOF: "{...}\r\n" is rejected, as in Relay.
 *
 * Model: struct kl_envelope holds the header fields kiln uses and an array of items. Each
 * item's payload is a copy in the arena followed by KL_PADDING zero bytes, so it can go
 * straight to kl_json_open / kl_profile_parse. Header strings are slices into the arena.
 *
 * Why copy payloads: the body buffer may be a request buffer that is reused, and the JSON
 * reader needs padding after each payload that the body cannot give in the middle; the copy
 * costs one memcpy, bounded by the envelope limit.
 *
 * Deviations from Relay (documented, deliberate): trailing whitespace after the last item is
 * accepted (Relay: "unexpected end of file"); header JSON must fit on one line (Relay's
 * streaming serde would accept a header spanning lines); known header keys given twice are
 * rejected (serde: "duplicate field"); dsn and profile_type are kept as strings, unchecked.
 * Per-type item counts (one event, one profile per envelope) are the caller's policy.
 *
 * Ownership: everything lives in arena a; buf may be freed after the call.
 * Errors: KL_R_ENVELOPE_MALFORMED (bad JSON, missing header or type, wrong field types, bad
 * event_id/sent_at, length past the end, missing newline), KL_R_ENVELOPE_TOO_LARGE (any
 * limit). kl_envelope_write: the buffer's sticky error. Never logs.
 * Threads: reentrant. Limits: struct kl_envelope_limits, checked before each allocation.
 * Tests: tests/unit/test_envelope.c, fuzz/fuzz_envelope.c (corpus fuzz/corpus/envelope/).
 */
#ifndef KL_INGEST_ENVELOPE_H
#define KL_INGEST_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"

/* Relay's defaults (relay-config limits: max_envelope_size, max_profile_size,
 * max_event_size, max_attachment_size). */
#define KL_ENVELOPE_MAX_BYTES ((size_t)200 * 1024 * 1024)
#define KL_ENVELOPE_MAX_PROFILE_BYTES ((size_t)50 * 1024 * 1024)
#define KL_ENVELOPE_MAX_EVENT_BYTES ((size_t)1024 * 1024)
#define KL_ENVELOPE_MAX_ITEM_BYTES ((size_t)100 * 1024 * 1024)
#define KL_ENVELOPE_MAX_ITEMS 1000

struct kl_envelope_limits {
    size_t max_envelope_bytes; /* whole decoded body */
    size_t max_profile_bytes;  /* one "profile" or "profile_chunk" payload */
    size_t max_event_bytes;    /* one "event" or "transaction" payload */
    size_t max_item_bytes;     /* one payload of any other type */
    size_t max_items;          /* items per envelope */
};

/* Fill *lim with the KL_ENVELOPE_* defaults above. */
void kl_envelope_limits_default(struct kl_envelope_limits *lim);

/* A header boolean that may be missing. */
enum kl_opt_bool { KL_OPT_ABSENT = 0, KL_OPT_FALSE, KL_OPT_TRUE };

struct kl_envelope_item {
    struct kl_str type;         /* "profile", "profile_chunk", "transaction", ... (required) */
    const char *payload;        /* arena copy, KL_PADDING zero bytes after payload_len */
    size_t payload_len;         /* bytes */
    bool has_length;            /* header "length" was given */
    uint32_t length;            /* header "length" (== payload_len when has_length) */
    struct kl_str content_type; /* absent: ptr NULL */
    struct kl_str filename;
    struct kl_str platform;     /* profile_chunk: "python", "javascript", ... */
    struct kl_str profile_type; /* profile_chunk, relay-internal: "ui" / "backend" */
    enum kl_opt_bool sampled;   /* profile: absent means true (Relay's default) */
    bool has_meta_length;
    uint32_t meta_length; /* Perfetto chunks: bytes of the JSON prefix */
};

struct kl_envelope {
    struct kl_str event_id;    /* as sent (validated as a UUID); absent: ptr NULL */
    struct kl_str dsn;         /* as sent */
    struct kl_str sent_at;     /* as sent (validated as RFC 3339) */
    struct kl_str sdk_name;    /* header sdk.name, e.g. "sentry.javascript.node" */
    struct kl_str sdk_version; /* header sdk.version */
    struct kl_envelope_item *items;
    size_t n_items;
};

/* Parse buf[0..len) (no padding needed). lim NULL means the defaults. Returns the envelope
 * (in a) or NULL with *err set. */
struct kl_envelope *kl_envelope_parse(struct kl_arena *a, const char *buf, size_t len,
                                      const struct kl_envelope_limits *lim, struct kl_err *err);

/* The first item of the given type, or NULL. */
const struct kl_envelope_item *kl_envelope_find_item(const struct kl_envelope *e, const char *type);

/* Append e to out: header line, then each item as header (with "length" = payload_len) +
 * \n + payload + \n. Absent fields are left out. Returns 0 or -1 (out->err). */
int kl_envelope_write(const struct kl_envelope *e, struct kl_buf *out);

#endif
