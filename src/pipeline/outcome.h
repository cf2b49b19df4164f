/* outcome.h - the outcomes a processed item produces (spec §5.12, §2.4)
 *
 * What: every profile or chunk kiln receives ends in outcomes: accepted, filtered or
 * invalid, each with a data category and a quantity, so that "nothing lost" can be checked
 * by counting. kl_outcomes_for computes them from the pipeline's result the way Relay and
 * Sentry together would emit them for one item.
 *
 * Model: struct kl_outcome {outcome, reason, category, quantity, event id}. Categories and
 * outcome codes carry Sentry's numbers (relay-base-schema) so they can be exported as is.
 *
 * Rules (one item):
 *   transaction profile accepted, sampled: profile + profile_indexed (1 each) +
 *     profile_duration(_ui) in ms (capped at 30000; skipped when 0);
 *   transaction profile accepted, unsampled: profile accepted + profile_indexed filtered
 *     "sampled"; no duration outcome;
 *   chunk accepted: profile_chunk(_ui) 1 + profile_duration(_ui) in ms (capped at 66000);
 *   transaction profile invalid: profile (+ profile_indexed when sampled), with the reason;
 *   chunk invalid: profile_chunk (never _ui, as Sentry does), with the reason.
 * Errors: none. Threads: pure functions. Tests: tests/unit/test_validate.c, tests/cli/process.sh.
 */
#ifndef KL_PIPELINE_OUTCOME_H
#define KL_PIPELINE_OUTCOME_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "profile/profile.h"

enum kl_outcome_kind {
    KL_OUTCOME_ACCEPTED = 0,
    KL_OUTCOME_FILTERED = 1,
    KL_OUTCOME_RATE_LIMITED = 2,
    KL_OUTCOME_INVALID = 3,
};

enum kl_category {
    KL_CAT_PROFILE = 6,
    KL_CAT_PROFILE_INDEXED = 11,
    KL_CAT_PROFILE_DURATION = 17,
    KL_CAT_PROFILE_CHUNK = 18,
    KL_CAT_PROFILE_DURATION_UI = 25,
    KL_CAT_PROFILE_CHUNK_UI = 26,
};

#define KL_MAX_OUTCOMES 4

struct kl_outcome {
    enum kl_outcome_kind outcome;
    enum kl_reason reason; /* KL_R_NONE for accepted */
    enum kl_category category;
    uint64_t quantity;
    char event_id[33]; /* "" when the outcome carries none (duration outcomes) */
};

const char *kl_outcome_name(enum kl_outcome_kind o);
const char *kl_category_name(enum kl_category c);

/* Write one outcome as a JSON line (with '\n'):
 * {"outcome":"accepted","reason":null,"category":"profile","quantity":1,"event_id":"..."} */
void kl_outcome_write_json(const struct kl_outcome *o, struct kl_buf *out);

#endif
