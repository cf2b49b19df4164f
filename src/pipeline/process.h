/* process.h - one profile through parse -> validate -> merge -> normalize, with outcomes
 *
 * What: kl_process_run takes the bytes of one `profile` or `profile_chunk` item (and,
 * optionally, the transaction event that came with it), runs every stage, and returns the
 * normalized profile plus the outcomes it produced. It is what `kiln process`, the server's
 * workers and the fuzzers call; each stage is also callable on its own.
 *
 * Model: stages, in order (spec §3, §5, §6):
 *   1. kl_profile_parse      JSON -> struct kl_profile (format chosen by version/platform)
 *   2. kl_validate_run       Relay's checks and trims, in Relay's order, with its reasons
 *   3. kl_merge_transaction  the transaction event's fields into the profile (§3.8)
 *   4. kl_normalize_run      frame platform, in-app rules, trims, idle stacks, device class
 *   5. kl_outcomes_for       accepted / filtered / invalid, with categories and quantities
 * Symbolication, deobfuscation and source maps join between 3 and 4 in later work.
 *
 * Ownership: everything in res->profile lives in arena a; the input bytes must outlive it
 * (strings may point into the parser's buffer, which the arena owns, not into the input;
 * the input must still have KL_PADDING readable bytes after len).
 * Errors: res->err holds the first failure; its reason is the outcome's reason.
 * Threads: independent calls on different arenas may run in parallel.
 * Tests: tests/unit/test_validate.c, tests/golden/process/, tests/cli/process.sh.
 */
#ifndef KL_PIPELINE_PROCESS_H
#define KL_PIPELINE_PROCESS_H

#include "base/arena.h"
#include "base/err.h"
#include "ingest/envelope.h"
#include "ingest/parse.h"
#include "ingest/tx_event.h"
#include "pipeline/outcome.h"
#include "profile/profile.h"

struct kl_process_opts {
    enum kl_item_type item_type;
    uint64_t organization_id;
    uint64_t project_id;
    int64_t received; /* unix seconds; 0 = now */
    int32_t retention_days;
    bool sampled;                 /* item header "sampled" (default true) */
    const struct kl_tx_event *tx; /* the envelope's transaction event, or NULL */
};

void kl_process_opts_init(struct kl_process_opts *o);

struct kl_process_result {
    struct kl_profile *profile; /* NULL when parsing failed early */
    bool is_chunk;
    struct kl_outcome outcomes[KL_MAX_OUTCOMES];
    int n_outcomes;
    struct kl_err err; /* KL_R_NONE when accepted */
};

/* Run the whole pipeline on bytes[0..len) (KL_PADDING readable bytes after len). Returns 0
 * when the profile was accepted, -1 when it was rejected (res->err says why); outcomes are
 * filled either way. */
int kl_process_run(struct kl_arena *a, const char *bytes, size_t len,
                   const struct kl_process_opts *opts, struct kl_process_result *res);

/* Called once per profile/profile_chunk item of an envelope, in item order. res->profile
 * and its strings live in the arena passed to kl_process_envelope. */
typedef void kl_item_result_fn(void *ctx, const struct kl_envelope_item *item,
                               struct kl_process_result *res);

/* Relay's envelope rules around kl_process_run (spec §2.1): the first `transaction` item is
 * the event merged into the profile; only the first `profile` item is processed (later ones:
 * invalid profiling_too_many_profiles); a sampled profile without a transaction is invalid
 * missing_transaction; an item header `sampled:false` makes the profile unsampled; every
 * `profile_chunk` is processed, and one whose header platform names another profile type
 * (ui vs backend) than its payload is invalid profiling_invalid_profile_type. Other item
 * types are ignored. base supplies org/project/received/retention. Returns the number of
 * items reported. */
int kl_process_envelope(struct kl_arena *a, const struct kl_envelope *env,
                        const struct kl_process_opts *base, kl_item_result_fn *fn, void *ctx);

#endif
