/* parse.h - JSON payloads of `profile` and `profile_chunk` items into struct kl_profile
 *
 * What: kl_profile_parse reads Sentry's sample format v1, sample format v2, legacy Android
 * profiles and Android trace chunks — as SDKs send them, and in the stored (processed) form
 * vroomrs writes — into the model of profile/profile.h, and decides which format it is.
 *
 * Model: one forward pass over the document (simdjson On-Demand through json/json.h). The
 * format is not known until `version`/`platform` have been seen and they may come last, so
 * the pass is driven by the JSON's own shape: `profile` with samples/stacks/frames fills
 * p->data, with methods/events fills p->android; timestamps are read as RFC 3339 strings or
 * numbers; thread ids as numbers or strings. The format is then decided (spec §2.1 rule 4,
 * §3.4 routing) and the fields that format requires are checked, as serde would.
 *
 * Why one pass: a second pass (or a DOM) would cost a second walk over 30 MB or ~4x the input
 * in memory; deciding after the pass costs nothing.
 *
 * Fast paths: the two bulk shapes are read from their text (json.h "Raw scanning"): each
 * `samples` element that is a plain v1 sample object (known keys once, integers, strings
 * without escapes, any whitespace) and each `stacks` element that is a plain integer array.
 * Anything else - an escape, a fraction or exponent, a leading zero, a sign, 20+ digits, an
 * unknown or repeated key, `timestamp` (v2), truncation, a thread or queue count at its
 * limit - is declined with nothing changed and read by the general path, which produces
 * the same results and reasons as before (tests/unit/test_parse.c and fuzz/fuzz_profile.c
 * compare both paths on every input). They took the 30 MB benchmark profile's parse from
 * ~52 ms to ~22 ms.
 *
 * Ownership: the profile and everything in it live in arena a (the JSON document too).
 * Errors: KL_R_PROFILING_INVALID_JSON (syntax, wrong types, missing required fields, bad
 * UUIDs/timestamps), KL_R_PROFILING_PLATFORM_NOT_SUPPORTED (no version and not Android; an
 * unknown version), and the KL_R_PROFILE_TOO_MANY_* / KL_R_PROFILE_STACK_TOO_DEEP limits.
 * Semantic checks (indexes in range, durations, transactions) are validation's job
 * (ingest/validate.h), as in Relay.
 * Limits: KL_MAX_* in profile/profile.h, checked before each allocation; JSON depth 128.
 * Threads: reentrant. Tests: tests/unit/test_validate.c, tests/unit/test_parse.c (fast paths
 * against the general path), tests/golden (tests/cli/golden.sh), fuzz/fuzz_profile.c.
 */
#ifndef KL_INGEST_PARSE_H
#define KL_INGEST_PARSE_H

#include "base/arena.h"
#include "base/err.h"
#include "profile/profile.h"

enum kl_item_type {
    KL_ITEM_PROFILE = 0,       /* envelope item "profile": transaction profile */
    KL_ITEM_PROFILE_CHUNK = 1, /* envelope item "profile_chunk": continuous chunk */
    KL_ITEM_AUTO = 2,          /* decide from the payload (profiler_id => chunk) */
};

/* bytes must have KL_PADDING readable bytes after len. NULL on error. */
struct kl_profile *kl_profile_parse(struct kl_arena *a, const char *bytes, size_t len,
                                    enum kl_item_type type, struct kl_err *err);

#endif
