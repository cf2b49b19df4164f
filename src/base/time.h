/* time.h - RFC 3339 timestamps and UUIDs, as Relay reads and writes them
 *
 * What: parse RFC 3339 / ISO 8601 date-times (with fraction and offset) into ns since the
 * Unix epoch and format them back the way chrono does for a DateTime<Utc> (serde form:
 * "2022-09-01T09:45:00Z", fraction trimmed to 3/6/9 digits); parse UUIDs in dashed or
 * 32-hex form into 16 bytes and format them as 32 lowercase hex (Relay's EventId form) or
 * dashed.
 * Errors: the parse functions return false; callers choose the reason. Threads: pure.
 * Tests: tests/unit/test_base.c.
 */
#ifndef KL_BASE_TIME_H
#define KL_BASE_TIME_H

#include <stdbool.h>
#include <stdint.h>

#include "base/str.h"

bool kl_rfc3339_parse(struct kl_str s, int64_t *ns_out);
/* Writes at most 40 bytes plus NUL into out; returns the length. chrono's AutoSi form. */
size_t kl_rfc3339_format(int64_t ns, char *out);
/* Relay's transaction.start/end form: "+00:00" offset and nine fraction digits. */
size_t kl_rfc3339_format_nanos(int64_t ns, char *out);

/* A point in time as users type it: unix seconds or RFC 3339. false on junk or overflow. */
bool kl_time_arg_parse(struct kl_str s, int64_t *ns_out);
/* A period like "90s", "15m", "24h", "14d", "2w" (Sentry's statsPeriod); false otherwise. */
bool kl_period_parse(struct kl_str p, int64_t *secs_out);

int64_t kl_now_ns(void);
int64_t kl_monotonic_ns(void);

struct kl_uuid {
    uint8_t b[16];
};
/* Accepts 32 hex digits, the dashed 8-4-4-4-12 form, with or without braces or "urn:uuid:"
 * (as the uuid crate does). */
bool kl_uuid_parse(struct kl_str s, struct kl_uuid *out);
bool kl_uuid_is_nil(const struct kl_uuid *u);
/* 32 lowercase hex + NUL (33 bytes). */
void kl_uuid_hex(const struct kl_uuid *u, char out[33]);
/* 36 dashed lowercase + NUL (37 bytes). */
void kl_uuid_dashed(const struct kl_uuid *u, char out[37]);
/* A random v4 uuid (getrandom). */
void kl_uuid_v4(struct kl_uuid *out);

#endif
