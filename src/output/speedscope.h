/* speedscope.h - one profile as speedscope JSON, the way vroom serves GET .../profiles/<id>/
 *
 * What: kl_speedscope_write renders a processed profile (spec §8.1) as one JSON document that
 * both Sentry's UI (vroom's extended keys) and speedscope.app itself (standard "$schema",
 * "shared.frames", "profiles", "activeProfileIndex", "exporter", "name") can load.
 *
 * Model (output):
 *   {"$schema", activeProfileIndex, androidClock?, durationNS?, images?, measurements?,
 *    metadata:{device/os/transaction view + version}, platform, profileID?, chunkID?,
 *    profiles:[...], projectID, shared:{frames:[...]}, transactionName, version?, exporter,
 *    name}
 *   Sample formats (v1, v2): one "sampled" profile per thread, in order of each thread's first
 *   sample in time; samples are root->leaf indices into shared.frames; weights[i] = t[i+1] -
 *   t[i] and 0 for the last sample. v1 values are ns since the profile timestamp; v2 values
 *   are ns since the chunk's first sample (metadata.timestamp anchors them).
 *   Android method traces: one "evented" profile per listed thread with events, {type O|C,
 *   frame, at}; a method with inline_frames opens one frame per inline entry (outer caller
 *   first) and closes them innermost first, so O/C stay balanced as speedscope requires.
 *   Frame: {name, image (module_or_package), path?, file?, line?, col?, inline?,
 *   is_application, fingerprint (vroom's uint32 FNV-1 of "image:function")}.
 *
 * Why: a direct streaming writer over the flat model (CSR stacks) costs one pass over the
 * stacks to number frames and one to write; nothing is built as a tree. Frames are numbered
 * in the order vroom numbers them (first seen, samples in time order, root to leaf) so the
 * output can be diffed against vroom's.
 *
 * Ownership: reads p only; scratch memory lives in a private arena released before return.
 * Output is appended to out (flushed through its sink when full; the caller flushes last).
 * Invariants: on success the output is one complete JSON value; on failure out holds a
 * prefix that must be discarded.
 * Errors: profiling_malformed_samples (stack or thread index out of range),
 * profiling_malformed_stacks (frame index out of range), profiling_invalid_sampled_profile
 * (neither sample data nor a decoded Android trace), and the buffer's own
 * base.buf.too_big / io.write. Never logs.
 * Threads: reentrant; p must not change during the call.
 * Limits: Android call depth KL_SPEEDSCOPE_MAX_DEPTH (deeper enters are dropped, as in
 * vroom); sizes are bounded by the model's KL_MAX_* limits and by out->max.
 * Tests: tests/unit/test_speedscope.c.
 */
#ifndef KL_OUTPUT_SPEEDSCOPE_H
#define KL_OUTPUT_SPEEDSCOPE_H

#include "base/buf.h"
#include "base/err.h"
#include "profile/profile.h"

#define KL_SPEEDSCOPE_MAX_DEPTH 128 /* vroom's MaxStackDepth for Android traces */

/* Append the speedscope document for p to out. p should be validated and normalized
 * (frame status/in_app settled). Returns 0, or -1 with *err set (see Errors above). */
int kl_speedscope_write(const struct kl_profile *p, struct kl_buf *out, struct kl_err *err);

#endif
