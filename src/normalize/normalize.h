/* normalize.h - frame canonicalisation and platform stack trimming, in place
 *
 * What: after validation, kl_normalize_run brings a profile into the shape Sentry stores and
 * aggregates: device classification from the transaction's device.class tag (spec §5.7),
 * frame platform fill (§5.8), per-frame status and in_app (§6.1) and the per-kind stack
 * trims (§6.2): cocoa main trim, python <module> trim, idle-stack replacement (v1),
 * synthetic ART frame dropping (Android sample chunks) and, for legacy Android profiles,
 * the embedded js_profile plus the proguard image derived from build_id.
 *
 * Model: it edits struct kl_profile (profile/profile.h) and nothing else. Per kind:
 *   SAMPLE_V1      frames; cocoa: main trim; python: module trim; idle replacement
 *   SAMPLE_V2      android: drop synthetic frames + reindex stacks; frames; python: module trim
 *   ANDROID        methods get the platform; js_data as a "javascript" v1 profile;
 *                  build_id -> {type:"proguard", uuid:build_id} image; build_id dropped
 *   ANDROID_CHUNK  methods get the platform
 * Device classification applies to cocoa/android profiles except SAMPLE_V2 kinds and
 * version "2": tag "1"/"2"/"3" -> low/medium/high, any other value -> unknown, no tag ->
 * p->device_classification left as it was. The proguard image is appended only when the
 * profile had a debug_meta (has_debug_meta stands in for "an image list exists").
 * Stacks are CSR (profile.h): trims rewrite stack_frames/stack_off in place, never growing
 * a stack; idle replacement APPENDS new stacks at the end, so existing stack ids stay valid
 * and sample stack ids only change for idle samples. Samples are never reordered.
 *
 * Why: one pass over the flat arrays, no per-stack allocation; the results match vroomrs
 * (Sentry's current processing) stack for stack, including its quirks (the last `main`
 * frame is the one trimmed on, an empty common stack is still appended), so stored output
 * can be compared with Sentry's.
 *
 * Ownership: new strings ("low", "proguard", a frame's filled platform) are interned in
 * p->strings; grown vectors and new stacks live in p->arena. Scratch memory (index maps,
 * sample orderings) is malloc'd and freed before returning. Slices returned by
 * kl_frame_module_or_package / kl_package_trim borrow the frame's own bytes.
 *
 * Invariants: after a successful run every frame (v1/v2) has platform and in_app set;
 * stack ids held by non-idle samples are unchanged. Not idempotent (a second run may trim a
 * python stack again or append more idle stacks): the pipeline runs it exactly once.
 *
 * Errors: PROFILING_MALFORMED_SAMPLES (a sample's stack or thread out of range),
 * PROFILING_MALFORMED_STACKS (a frame index out of range where the frame must be read),
 * PROFILE_TOO_MANY_STACKS (idle replacement would pass KL_MAX_STACKS or
 * KL_MAX_STACK_ENTRIES), INTERNAL (unknown kind). Validation normally rules the first two
 * out. It never logs.
 *
 * Threads: the predicates are pure; kl_normalize_run needs the profile to itself.
 * Limits: the model's KL_MAX_* bound what idle replacement may add.
 * Left out: project grouping-enhancement rules (§5.9) and retention (§5.7) need project
 * configuration and belong to the pipeline.
 * Tests: tests/unit/test_normalize.c.
 */
#ifndef KL_NORMALIZE_NORMALIZE_H
#define KL_NORMALIZE_NORMALIZE_H

#include <stdbool.h>

#include "base/err.h"
#include "base/str.h"
#include "profile/profile.h"

/* Normalize p in place according to p->kind (table above). Returns 0, or -1 with *err
 * set; on failure p may be partly normalized and should be discarded. */
int kl_normalize_run(struct kl_profile *p, struct kl_err *err);

/* The §6.1 rule: whether f is application code, judged by the frame's platform (the
 * profile's when the frame has none). Ignores f->in_app except for the Android rows
 * (java/native/android frames in an "android" profile), where a set in_app wins. Uses
 * f->status, so call it after status was filled from data.symbolicator_status. */
bool kl_frame_is_application(const struct kl_frame *f, struct kl_str profile_platform);

/* f->module when non-empty, else kl_package_trim(f->package) when the package is
 * non-empty, else "" (present, empty). Borrows f's bytes. */
struct kl_str kl_frame_module_or_package(const struct kl_frame *f);

/* The display form of a package path: its last component (Windows separators when the
 * path starts with "X:\" or "\\"; the one before when the path ends in a separator) with
 * one trailing .dylib/.so/.a/.dll/.exe removed. A sub-slice of package. */
struct kl_str kl_package_trim(struct kl_str package);

/* A cocoa "main" frame: status "symbolicated" and function main or UIApplicationMain. */
bool kl_frame_is_main(const struct kl_frame *f);

/* An ART runtime frame (package ends with libart.so) or an anonymous mapping without a
 * function name (package starts with "<anonymous"); dropped from Android sample chunks. */
bool kl_frame_is_synthetic_android(const struct kl_frame *f);

#endif
