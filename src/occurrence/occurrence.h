/* occurrence.h - performance issue ("occurrence") detection over a profile's call trees
 *
 * What: kl_occurrences_detect finds Sentry's profiling issues in one sampled transaction
 * profile (spec §6.6): frames known to be slow on the main thread (JSON, regex, image
 * decode, Core Data, SwiftUI, file I/O...; per-platform tables) and the cause of each frozen
 * frame in the frozen_frame_renders measurement. kl_occurrence_write_json renders one
 * finding as the occurrence message Sentry sends to ingest-occurrences.
 *
 * Model: input is a struct kl_calltree (calltree/calltree.h: flat pre-order nodes per
 * thread) plus the profile for metadata and measurements. Output is an array of
 * struct kl_occurrence, one per finding, each with its category and issue type, the
 * suspect node's (function, package, duration, sample count), its stack root -> node, and
 * the evidence Sentry shows. Rules, as vroomrs (src/occurrence) applies them:
 *   frame jobs   per platform (tables.c): node (node:fs *Sync on the active thread, any
 *                duration; addSourceContext* on all threads, >= 100 ms), cocoa (thread
 *                "main" only, >= 16 ms and >= 4 samples), android (active thread, >= 40 ms,
 *                name compared up to its first '('). Children are searched before their
 *                parent and the first child subtree with a match ends the search of that
 *                node (so the deepest match on a path wins and later siblings are not
 *                searched); one finding per (package, function) per job.
 *   frame drop   per frozen_frame_renders value (end ns, duration ns): margin = max(5 %,
 *                10 ms); window [end - duration - margin (or 0), end + margin]; the node must
 *                be application code with a name, lie in the window, start before window
 *                start + 20 % and last >= 50 %; longest wins, ties -> deeper, a child equal
 *                to its parent beats it. Skipped when >= 80 % of its stack is unnamed; the
 *                first root of the active thread with a cause gives the finding.
 *   Android: function names in results lose their "package." prefix (fingerprint too).
 *   Issue types: 2002 image decode, 2003 JSON decode, 2004 Core Data, 2006 SwiftUI view,
 *   2007 regex, 2009 frame drop; everything else is type 0 and dropped unless
 *   KL_OCC_KEEP_UNTYPED is passed. fingerprint = md5 hex of project_id (decimal) + title +
 *   type (decimal) + module_or_package + function, no separators.
 *
 * Why: the walks are iterative over the flat arrays (no recursion: stacks may be 64k deep)
 * and table matches are computed once per distinct frame rather than per node. MD5 comes
 * from md5.c (RFC 1321, ~100 lines) since no linked library (zlib, zstd, sqlite,
 * libmicrohttpd) exports one and a few hashes per profile do not justify OpenSSL/nettle.
 *
 * Ownership: results live in arena a; their strings borrow the tree's and the profile's
 * bytes (both must outlive the results) or are copied into a (stripped names, evidence
 * text). Scratch memory is malloc'd and freed before returning.
 * Order: frame-job findings in job order, each job's in discovery order (vroomrs: hash-map
 * order), then frame drops in measurement order.
 * Errors: none beyond out-of-memory (abort); chunk or unsampled profiles give 0 findings.
 * Threads: pure functions; the tables are immutable.
 * Limits: none of its own; the tree's limits bound the walk.
 * Tests: tests/unit/test_occurrence.c.
 */
#ifndef KL_OCCURRENCE_OCCURRENCE_H
#define KL_OCCURRENCE_OCCURRENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"
#include "calltree/calltree.h"
#include "profile/profile.h"

enum kl_occurrence_type {
    KL_OCC_TYPE_NONE = 0,
    KL_OCC_TYPE_IMAGE_DECODE = 2002,
    KL_OCC_TYPE_JSON_DECODE = 2003,
    KL_OCC_TYPE_CORE_DATA = 2004,
    KL_OCC_TYPE_VIEW = 2006,
    KL_OCC_TYPE_REGEX = 2007,
    KL_OCC_TYPE_FRAME_DROP = 2009,
};

/* One frame of the suspect's stack (root first), from the call tree. */
struct kl_occurrence_frame {
    struct kl_str function; /* Android: without the "package." prefix */
    struct kl_str package;  /* module_or_package */
    struct kl_str path;
    uint32_t line;
    bool in_app;
};

struct kl_occurrence_evidence {
    const char *name;    /* "Suspect function", "Package", "Duration" */
    struct kl_str value; /* lives in the arena or borrows the tree */
    bool important;
};

struct kl_occurrence {
    uint32_t type;          /* enum kl_occurrence_type; 0 for untyped categories */
    const char *category;   /* "json_decode", "frame_drop", ... (static) */
    const char *title;      /* issue_title (static) */
    struct kl_str subtitle; /* the suspect function (Android: prefix stripped) */
    struct kl_str culprit;  /* transaction name */
    char fingerprint[33];   /* md5 hex, see the design comment */
    char id[33];            /* occurrence id, uuid4 hex */
    char event_id[33];      /* event id, uuid4 hex */
    int64_t detection_time_ns;
    struct kl_str frame_name;    /* = subtitle */
    struct kl_str frame_package; /* the frame's raw package (path) when found, else package */
    struct kl_str frame_module;  /* the frame's module, "" when none */
    struct kl_str package;       /* module_or_package: what tables and fingerprint use */
    uint64_t duration_ns;        /* the suspect node's duration */
    uint64_t sample_count;
    uint64_t profile_duration_ns;
    double percentage;                 /* duration_ns * 100 / profile_duration_ns */
    uint32_t thread;                   /* index into the tree's threads */
    uint32_t node;                     /* index into the tree's nodes */
    struct kl_occurrence_frame *stack; /* root -> suspect, n_stack entries */
    uint32_t n_stack;
    struct kl_occurrence_evidence evidence_display[3];
    uint32_t n_evidence_display; /* 3, or 2 for frame drops (no Duration) */
    bool evidence_sample_count;  /* evidence_data carries sample_count (Android, not drops) */
};

enum kl_occurrence_flags {
    KL_OCC_KEEP_UNTYPED = 1 << 0, /* also return type-0 findings (file I/O, SQL, ...) */
};

/* Find the occurrences of a sampled transaction profile p whose call trees are t (built
 * with KL_CALLTREE_ACTIVE, or ALL: thread selection is redone here). Type-0 findings are
 * dropped as Sentry drops them. OUT: *out (array in a, NULL when none), *n. Returns 0;
 * -1 with *err only on a tree that does not fit the profile (never for these inputs
 * today, kept for the pipeline's stage shape). */
int kl_occurrences_detect(struct kl_arena *a, const struct kl_profile *p,
                          const struct kl_calltree *t, struct kl_occurrence **out, uint32_t *n,
                          struct kl_err *err);
/* The same with enum kl_occurrence_flags. */
int kl_occurrences_detect_ex(struct kl_arena *a, const struct kl_profile *p,
                             const struct kl_calltree *t, unsigned flags,
                             struct kl_occurrence **out, uint32_t *n, struct kl_err *err);

/* Append o as Sentry's occurrence JSON (spec §6.6): id, project_id, payload_type, type,
 * issue_title, subtitle, culprit, level, fingerprint, resource_id, detection_time,
 * evidence_display, evidence_data, event{debug_meta, environment, event_id, platform,
 * project_id, received, release, stacktrace, tags, timestamp}, plus vroomrs's category,
 * duration_ns and sample_count. Returns 0, or -1 when out hits its limit (out->err). */
int kl_occurrence_write_json(const struct kl_occurrence *o, const struct kl_profile *p,
                             struct kl_buf *out);

/* Rust's Debug form of a duration ("16.01ms", "1.5s", "250µs", "0ns") after rounding ns
 * to the nearest 10 µs, as the Duration evidence shows it. Writes at most 40 bytes plus
 * NUL into buf; returns the length. */
size_t kl_occurrence_fmt_duration(uint64_t ns, char *buf);

#endif
