/* calltree.h - call trees of a profile, function metrics, and their compact binary form
 *
 * What: kl_calltree_build turns a normalized profile (any format of profile/profile.h) into
 * per-thread call trees as vroomrs does (spec §6.3): consecutive samples sharing a stack
 * prefix extend the same node, so a node is a call with a start, an end and a sample count.
 * kl_function_metrics walks the trees for the "slowest functions" (spec §6.4). The trees are
 * stored at ingest in a compact binary form (kl_calltree_encode/_decode) so that reads and
 * flamegraph aggregation never re-parse profile JSON.
 *
 * Model:
 *   struct kl_calltree           one profile's trees
 *     .frames[]   struct kl_cframe   distinct (name, package, path, line, is_application)
 *                                    of the tree; nodes refer to them by index
 *     .nodes[]    struct kl_cnode    every node of every thread, depth-first pre-order per
 *                                    thread; children of a node follow it, in start order
 *     .threads[]  struct kl_cthread  thread id, name, [first_node, first_node + n_nodes),
 *                                    roots are the nodes with depth 0 in that range
 *   Times are ns relative to the profile start (v1: elapsed_since_start_ns; v2: sample
 *   timestamp - the chunk's first sample; Android: event time - start); start_ns() of the
 *   profile (unix ns) is kept in .start_unix_ns so chunk slices can be placed in time.
 *   duration = end_ns - start_ns; self_ns = duration - sum of children's durations.
 *   fingerprint: FNV-1a 64 over, per frame from the root, module-or-package (or filename,
 *   or "-"), function (or "-"), then instruction_addr if present (spec §6.3).
 *
 * Binary form "KCT2" (calltree_codec.c). v = unsigned LEB128 varint of the shortest length,
 * z = zigzag-encoded signed varint, u32 = 4 bytes little-endian:
 *   "KCT2"  magic (4 bytes)
 *   v flags (bit 0: android event tree), z start_unix_ns, v duration_ns,
 *   v n_strings, v n_frames, v n_nodes, v n_threads
 *   strings  n_strings x {v len, bytes}
 *   frames   n_frames x {v name, v package (string indexes), v path (0 absent, else index
 *            + 1), v line, v flags (bit0 is_application, bit1 aggregatable), u32
 *            fingerprint}
 *   threads  n_threads x {v id (index), v name (0 absent, else index + 1), v n_nodes,
 *            v active (0/1)}; a thread's nodes follow the previous thread's
 *   nodes    per thread, in pre-order, n_nodes x {v frame, v up, z start delta,
 *            v duration (end - start), v sample_count}
 *   A node's depth is the previous node's depth + 1 - up (a thread's first node: 0, up 0).
 *   Its start is predicted from the shape: a first child (depth = previous + 1) starts
 *   with its parent, any other node where the previous node at its depth ended (a sibling
 *   in a sampled tree starts at the sample its predecessor ended on); the delta is usually
 *   0. So a node of a sampled tree is ~7 bytes (KCT1, the fixed form before, used 32).
 *   The form is canonical: strings are distinct and listed in order of first reference
 *   (frames' name, package, path, then threads' id, name), varints have their shortest
 *   length and nothing follows the last node; so decode + encode gives back the same
 *   bytes. Decoding checks every count against the remaining bytes (each item has a
 *   minimum size) before allocating, every index against its table, value ranges (u32
 *   fields, flags, up <= previous depth + 1), end = start + duration without overflow, and
 *   the canonical rules; a bad blob (KCT1 included) is KL_R_CALLTREE_CORRUPT. Fingerprints
 *   are stored, not recomputed on decode (see calltree_codec.c). Encoding refuses a tree
 *   the form cannot hold (threads not covering the nodes in order, depth jumps, frame out
 *   of range, start > end) with KL_R_CALLTREE_CORRUPT in the buffer's error.
 *
 * Why a flat pre-order array: one allocation, cache-friendly walks, trivially serialized, and
 * merging many trees (flamegraph aggregation) is one linear pass per tree with a parent
 * stack; a pointer tree would cost an allocation per node and a pointer chase per step.
 *
 * Ownership: everything in arena a (strings may point into the profile, which must
 * outlive the tree; decoded trees point into the blob bytes). Errors: KL_R_CALLTREE_*.
 * Threads: pure functions. Limits: KL_CALLTREE_MAX_NODES nodes, depth KL_MAX_STACK_DEPTH
 * (sample formats) and 128 (Android, as vroomrs), legacy Android profiles longer than 15 s
 * get no tree (vroomrs skips them; it builds chunks of any length).
 * Tests: tests/unit/test_calltree.c (hand-computed trees, self times, metrics, the KCT2
 * layout byte for byte and targeted corruptions of it), fuzz/fuzz_calltree.c (decode;
 * seeds in fuzz/corpus/calltree, rewritten by test_calltree with KL_CALLTREE_SEED_DIR).
 */
#ifndef KL_CALLTREE_CALLTREE_H
#define KL_CALLTREE_CALLTREE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"
#include "profile/profile.h"

#define KL_CALLTREE_MAX_NODES 20000000u
#define KL_CALLTREE_ANDROID_MAX_DEPTH 128
#define KL_CALLTREE_ANDROID_MAX_NS (15ULL * 1000000000ULL)

enum kl_cframe_flags {
    KL_CFRAME_APPLICATION = 1 << 0,  /* is_application (in_app, default true when unset) */
    KL_CFRAME_AGGREGATABLE = 1 << 1, /* counts for function metrics (spec §6.4) */
};

struct kl_cframe {
    struct kl_str name;    /* function, or "" */
    struct kl_str package; /* module_or_package */
    struct kl_str path;    /* abs_path or filename (Android: source_file), may be absent */
    uint32_t line;
    uint32_t flags;       /* enum kl_cframe_flags */
    uint32_t fingerprint; /* (u32) FNV-1a 64 of package ":" name: the function key (§6.4) */
};

struct kl_cnode {
    uint32_t frame; /* index into frames */
    uint32_t depth; /* 0 for roots */
    uint64_t start_ns, end_ns;
    uint32_t sample_count;
};

struct kl_cthread {
    struct kl_str id;   /* as in the profile ("259", "0x...") */
    struct kl_str name; /* thread name, absent if unknown */
    uint32_t first_node, n_nodes;
    bool active; /* v1: the transaction's active thread (+ cocoa "main"); v2: named
                    "main"; Android: the "main" thread */
};

struct kl_calltree {
    struct kl_cframe *frames;
    uint32_t n_frames;
    struct kl_cnode *nodes;
    uint32_t n_nodes;
    struct kl_cthread *threads;
    uint32_t n_threads;
    int64_t start_unix_ns; /* the profile's start */
    uint64_t duration_ns;
    bool android; /* built from method-trace events */
};

/* Which threads to build. */
enum kl_calltree_threads {
    KL_CALLTREE_ACTIVE = 0, /* vroomrs's choice: v1 active thread (+ cocoa "main"), chunks all,
                               Android the "main" thread */
    KL_CALLTREE_ALL = 1,    /* every thread */
};

/* Build the call trees of a normalized profile. NULL with *err on a bad index
 * (KL_R_CALLTREE_BAD_INDEX) or a limit (KL_R_CALLTREE_TOO_LARGE); a legacy Android profile
 * over 15 s gives an empty tree (no threads), as vroomrs skips it. Only threads that got
 * at least one node are listed (vroomrs has no entry for the others). */
struct kl_calltree *kl_calltree_build(struct kl_arena *a, const struct kl_profile *p,
                                      enum kl_calltree_threads which, struct kl_err *err);

/* Self time of node i: its duration minus its children's (the nodes after it with depth
 * + 1 until depth falls back). */
uint64_t kl_calltree_self_ns(const struct kl_calltree *t, uint32_t i);

/* ---- function metrics (spec §6.4) ---- */

struct kl_function_metric {
    uint32_t fingerprint;
    struct kl_str function, package;
    bool in_app;
    struct kl_str thread_id;  /* of the call with the largest self time */
    uint64_t *self_times_ns;  /* one per call with self time > 0 */
    uint64_t *total_times_ns; /* the same calls' durations */
    uint32_t n;
    uint64_t sum_self_time_ns;
    uint64_t sample_count;
    uint64_t max_duration_ns; /* largest self time */
};

/* vroomrs's extraction: min_depth 1, application frames only when filter_system is set,
 * drop functions seen in <= 1 sample, sort by sum_self_time_ns descending (ties in order of
 * first record), keep max_n (0: all). OUT: *out (in a), *n_out. */
int kl_function_metrics(struct kl_arena *a, const struct kl_calltree *t, bool filter_system,
                        uint32_t max_n, struct kl_function_metric **out, uint32_t *n_out,
                        struct kl_err *err);

/* ---- binary form ---- */

int kl_calltree_encode(const struct kl_calltree *t, struct kl_buf *out);
/* Decode a blob (bytes must outlive the result: strings point into it). */
struct kl_calltree *kl_calltree_decode(struct kl_arena *a, const char *bytes, size_t len,
                                       struct kl_err *err);

#endif
