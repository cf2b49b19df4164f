/* derive.h - what the read side needs from one processed profile, computed at ingest
 *
 * What: kl_derive_run builds the profile's call trees (calltree/calltree.h), encodes them in
 * the compact binary form, extracts its slowest functions (spec §6.4) and detects its
 * occurrences (spec §6.6), and fills the read-side fields of a struct kl_stored_item so they
 * are committed in the same transaction as the profile (exactly once, like its outcomes).
 * Reads (flamegraphs, function trends, occurrence lists) then never re-parse profile JSON.
 *
 * Rules: transaction profiles keep the active thread's trees (vroomrs's choice), their
 * application functions (top 100, min depth 1) and, when sampled, their occurrences
 * (typed ones only, as Sentry sends). Chunks keep every thread's trees and functions and no
 * occurrences. Android profiles over 15 s have no tree (vroomrs skips them).
 * Ownership: everything in arena a; the item borrows it. Errors: the call-tree reasons;
 * a failure here is reported, the caller stores the profile without read-side data.
 * Tests: tests/cli/query.sh (through the server), tests/unit/test_store.c.
 */
#ifndef KL_PIPELINE_DERIVE_H
#define KL_PIPELINE_DERIVE_H

#include "base/arena.h"
#include "base/err.h"
#include "profile/profile.h"
#include "store/store.h"

#define KL_DERIVE_MAX_FUNCTIONS 100

int kl_derive_run(struct kl_arena *a, const struct kl_profile *p, struct kl_stored_item *it,
                  struct kl_err *err);

#endif
