/* stored.h - the normalized profile as stored JSON (what kiln keeps and serves raw)
 *
 * What: kl_profile_write_stored writes a processed profile in the stored form of spec §7:
 * the fields of vroomrs's models (sample v1, sample v2 chunk, Android profile, Android
 * chunk) plus organization_id, project_id, received, retention_days, sampled; normalized
 * frames (platform, in_app, status), `state:"idle"` samples, appended idle stacks, pruned
 * thread/queue metadata, ids as 32 hex, addresses as "0x..." hex. Field names and shapes
 * follow vroomrs so that Sentry's readers accept kiln's blobs; the order is vroomrs's
 * struct order. kiln re-reads this form (kiln process accepts it back).
 *
 * Speed: most of a big profile is samples and stacks. A v1 sample is written in one piece
 * from per-thread and per-queue text built once; stack entries (frame indices) are looked up
 * in a table of their decimal text. Both follow json.h's fast-path switch, so the tests
 * compare them with the field-by-field writer (tests/unit/test_parse.c, fuzz_profile.c).
 *
 * Ownership: writes into out (a kl_buf, possibly streaming to a sink); reads p only.
 * Errors: out's sticky error (KL_R_BUF_TOO_BIG, KL_R_IO_WRITE) is returned. Threads: pure.
 * Tests: tests/golden/process (all of ../shared/corpus/sentry), tests/unit/test_store.c,
 * fuzz/fuzz_profile.c (write, parse back).
 */
#ifndef KL_OUTPUT_STORED_H
#define KL_OUTPUT_STORED_H

#include "base/buf.h"
#include "base/err.h"
#include "profile/profile.h"

int kl_profile_write_stored(const struct kl_profile *p, struct kl_buf *out, struct kl_err *err);

#endif
