/* validate.h - Relay's checks and trims of a parsed profile, in Relay's order
 *
 * What: kl_validate_run applies what Relay does to a profile after parsing it
 * (relay-profiling sample/v1.rs, sample/v2.rs, android/legacy.rs, android/chunk.rs; spec
 * §3.1-§3.4): transaction checks, the sample window, idle-sample trimming per thread,
 * dropping threads with too few samples, index range checks, the duration limits,
 * pointer-authentication stripping and metadata pruning. It edits the profile in place.
 *
 * Model: samples are compacted in place (order kept, except v2 which Relay sorts by time);
 * threads and queues keep their indexes but get `sampled`/`referenced` flags that the
 * writers use to prune metadata.
 * Errors (Relay's reasons): profiling_invalid_profile_metadata, profiling_no_transaction_-
 * associated, profiling_invalid_transaction_metadata, profiling_not_enough_samples,
 * profiling_malformed_samples, profiling_malformed_stacks, profiling_duration_is_too_long,
 * profiling_duration_is_zero, profiling_invalid_base64_value,
 * profiling_invalid_sampled_profile, invalid_build_id.
 * Threads: one profile per call. Tests: tests/unit/test_validate.c, tests/cli/process.sh.
 */
#ifndef KL_INGEST_VALIDATE_H
#define KL_INGEST_VALIDATE_H

#include "base/err.h"
#include "profile/profile.h"

#define KL_MAX_PROFILE_DURATION_NS (30ULL * 1000000000ULL)
#define KL_MAX_CHUNK_DURATION_NS (66ULL * 1000000000ULL)

int kl_validate_run(struct kl_profile *p, struct kl_err *err);

#endif
